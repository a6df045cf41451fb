//! Status pages: Apache `mod_status` (`?auto`), nginx `stub_status` and PHP-FPM's status page (`?json`), read
//! into [`Observation::readings`] under the names conditions use (see `lookout_engine::READINGS`).
//!
//! Counters since the server started (requests served, FPM's "max children reached") say little by themselves;
//! what pages is their increase, so each is read against the previous reading ([`Memory`], kept by the probe
//! loop): `[REQUESTS_PER_SECOND]` is the increase over the seconds between, `[MAX_CHILDREN_REACHED]` the
//! increase itself. The first reading has no previous one, so it has neither; a counter that went down (the
//! server restarted) counts from zero.

use lookout_config::{Server, StatusCheck};
use lookout_core::{Observation, ProbeError, ProbeErrorKind, ProbeKind, Timestamp};

/// The previous reading's counters, for rates and increases.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    previous: Option<(Timestamp, Vec<(&'static str, f64)>)>,
}

/// What one page said: readings as they are, and the counters to compare with the previous page.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub readings: Vec<(&'static str, f64)>,
    pub counters: Vec<(&'static str, f64)>,
}

/// How often a PHP-FPM status page that answered 500 (its scoreboard locked) is asked again, and the pause.
const FPM_LOCKED_RETRIES: usize = 3;
const FPM_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Reads the status page `check` names into an observation of `target`.
pub async fn probe(name: &str, check: &StatusCheck, timeout: std::time::Duration, memory: &mut Memory) -> Observation {
    let at = Timestamp::now();
    let h = &check.http;
    let req = lookout_http::HttpRequest {
        url: h.url.clone(),
        method: h.method.clone(),
        headers: h.headers.clone(),
        body: None,
        follow_redirects: h.follow_redirects,
        verify_tls: h.verify_tls,
        timeout,
        max_body: lookout_http::MAX_BODY,
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut obs = lookout_http::fetch(&req).await;
    // PHP-FPM answers 500 when its scoreboard is locked at that moment (fpm_status.c: "unable to find or access
    // status shared memory"): two readers at once, or the master updating it. That says nothing about the pool,
    // so ask again, briefly, a few times within the timeout.
    for _ in 0..FPM_LOCKED_RETRIES {
        if check.server != Server::PhpFpm
            || obs.status != Some(500)
            || std::time::Instant::now() + FPM_RETRY_PAUSE >= deadline
        {
            break;
        }
        tokio::time::sleep(FPM_RETRY_PAUSE).await;
        obs = lookout_http::fetch(&req).await;
    }
    obs.target = name.to_string();
    obs.kind = ProbeKind::Status;
    obs.at = at;
    if obs.error.is_some() {
        return obs;
    }
    if obs.status != Some(200) {
        let status = obs.status.unwrap_or(0);
        obs.error = Some(protocol(format!("the {} status page answered {status}, not 200", check.server.as_str())));
        return obs;
    }
    match parse(check.server, &obs.body) {
        Ok(page) => obs.readings = readings(page, check.workers, at, memory),
        Err(why) => obs.error = Some(protocol(why)),
    }
    obs
}

fn protocol(message: String) -> ProbeError {
    ProbeError { kind: ProbeErrorKind::Protocol, message }
}

/// The page's readings, with the derived ones: saturation against the worker limit, rates and increases
/// against `memory` (which then holds this page's counters).
pub fn readings(page: Page, workers: Option<u32>, at: Timestamp, memory: &mut Memory) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = page.readings.iter().map(|(n, v)| ((*n).to_string(), *v)).collect();
    let get = |name: &str| page.readings.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let limit = workers.map(f64::from).or_else(|| get("WORKER_LIMIT"));
    if let Some(limit) = limit {
        out.retain(|(n, _)| n != "WORKER_LIMIT");
        out.push(("WORKER_LIMIT".into(), limit));
        if let Some(busy) = get("BUSY_WORKERS")
            && limit > 0.0
        {
            out.push(("WORKER_SATURATION".into(), busy / limit));
        }
    }
    if let Some((then, counters)) = &memory.previous {
        let seconds = at.since(*then).as_secs_f64();
        for (name, now) in &page.counters {
            let Some(before) = counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v) else { continue };
            let increase = if *now >= before { now - before } else { *now };
            match *name {
                "requests" if seconds > 0.0 => out.push(("REQUESTS_PER_SECOND".into(), increase / seconds)),
                "max_children_reached" => out.push(("MAX_CHILDREN_REACHED".into(), increase)),
                "slow_requests" => out.push(("SLOW_REQUESTS".into(), increase)),
                _ => {}
            }
        }
    }
    memory.previous = Some((at, page.counters));
    out
}

/// Parses a status page of `server`, or says why it is not one.
pub fn parse(server: Server, body: &str) -> Result<Page, String> {
    match server {
        Server::Apache => apache(body),
        Server::Nginx => nginx(body),
        Server::PhpFpm => fpm(body),
    }
}

/// `mod_status?auto`: `Key: value` lines; the scoreboard has one character per worker slot (`.` an open slot).
fn apache(body: &str) -> Result<Page, String> {
    let mut page = Page::default();
    let mut busy = None;
    for line in body.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        let number = || value.parse::<f64>().ok().filter(|v| v.is_finite());
        match key.trim() {
            "BusyWorkers" => busy = number(),
            "IdleWorkers" => page.readings.extend(number().map(|v| ("IDLE_WORKERS", v))),
            "ConnsTotal" => page.readings.extend(number().map(|v| ("ACTIVE_CONNECTIONS", v))),
            "CPULoad" => page.readings.extend(number().map(|v| ("CPU_LOAD", v))),
            "Total Accesses" => page.counters.extend(number().map(|v| ("requests", v))),
            "Scoreboard" if !value.is_empty() => page.readings.push(("WORKER_LIMIT", value.chars().count() as f64)),
            _ => {}
        }
    }
    let Some(busy) = busy else {
        return Err("not an Apache mod_status page: no BusyWorkers line (is the URL /server-status?auto?)".into());
    };
    page.readings.insert(0, ("BUSY_WORKERS", busy));
    Ok(page)
}

/// `stub_status`: four lines, e.g. `Active connections: 2` / `server accepts handled requests` / ` 10 10 12` /
/// `Reading: 0 Writing: 1 Waiting: 1`.
fn nginx(body: &str) -> Result<Page, String> {
    let not = || "not an nginx stub_status page: no \"Active connections:\" line".to_string();
    let mut page = Page::default();
    let mut lines = body.lines().map(str::trim);
    let active = lines
        .next()
        .and_then(|l| l.strip_prefix("Active connections:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(not)?;
    page.readings.push(("ACTIVE_CONNECTIONS", active));
    let mut rest = lines.skip_while(|l| !l.starts_with("server accepts"));
    rest.next();
    if let Some(counts) = rest.next() {
        let n: Vec<f64> = counts.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if let [_, _, requests] = n.as_slice() {
            page.counters.push(("requests", *requests));
        }
    }
    if let Some(states) = rest.next() {
        let words: Vec<&str> = states.split_whitespace().collect();
        for pair in words.chunks(2) {
            let [key, value] = pair else { continue };
            let Ok(v) = value.parse::<f64>() else { continue };
            match *key {
                "Reading:" => page.readings.push(("READING", v)),
                "Writing:" => page.readings.push(("WRITING", v)),
                "Waiting:" => page.readings.push(("WAITING", v)),
                _ => {}
            }
        }
    }
    Ok(page)
}

/// PHP-FPM's `?json`: `{"pool": "www", "listen queue": 0, "active processes": 1, …}`. Its "active processes"
/// include the one answering this very request.
fn fpm(body: &str) -> Result<Page, String> {
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|_| "not a PHP-FPM status page in JSON (is the URL the pool's pm.status_path with ?json?)")?;
    let get = |key: &str| json.get(key).and_then(serde_json::Value::as_f64);
    let Some(active) = get("active processes") else {
        return Err("not a PHP-FPM status page: no \"active processes\"".into());
    };
    let mut page = Page::default();
    page.readings.push(("BUSY_WORKERS", active));
    page.readings.extend(get("idle processes").map(|v| ("IDLE_WORKERS", v)));
    page.readings.extend(get("listen queue").map(|v| ("LISTEN_QUEUE", v)));
    page.counters.extend(get("accepted conn").map(|v| ("requests", v)));
    page.counters.extend(get("max children reached").map(|v| ("max_children_reached", v)));
    page.counters.extend(get("slow requests").map(|v| ("slow_requests", v)));
    Ok(page)
}

#[cfg(test)]
mod tests;
