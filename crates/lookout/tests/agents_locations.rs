//! Several `lookout run` agents on one real PostgreSQL: they share a location's checks (each target probed by one
//! agent at a time, a dead agent's checks taken over within 15 s), fire by quorum of locations (below it a target
//! is *degraded in us* and pages nobody), and a leader killed with SIGKILL loses no notification, resends at most
//! once and does not split the incident.
//!
//! The site under test tells locations apart by the probes' `User-Agent` (`lookout/x (location us)`), so one
//! machine can play a regional fault.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookout::http_server::{ServerRequest, respond, serve};
use tokio::net::TcpListener;

use crate::agents::{agents, leaders, spawn_agent, spawn_agent_with};
use crate::support::{Receiver, lookout_with_config, wait_until};

/// A site whose pages answer 500 to the locations told to fail (or to all), and that remembers when each page
/// was asked for, from which location.
pub(crate) struct Site {
    pub(crate) addr: std::net::SocketAddr,
    failing: Arc<Mutex<HashSet<String>>>,
    hits: Arc<Mutex<Vec<(Instant, String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    pub(crate) async fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failing: Arc<Mutex<HashSet<String>>> = Arc::default();
        let hits: Arc<Mutex<Vec<(Instant, String, String)>>> = Arc::default();
        let (f, h) = (failing.clone(), hits.clone());
        let task = tokio::spawn(serve(listener, move |req: ServerRequest| {
            let ua = req.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let location = ua.split("(location ").nth(1).unwrap_or("").trim_end_matches(')').to_string();
            let path = req.uri.path().to_string();
            h.lock().unwrap().push((Instant::now(), path.clone(), location.clone()));
            let fail = {
                let f = f.lock().unwrap();
                f.contains("*") || f.contains(&location) || f.contains(&path)
            };
            async move { if fail { respond(500, "text/plain", "down") } else { respond(200, "text/plain", "up") } }
        }));
        Site { addr, failing, hits, task }
    }

    /// Answers 500 to these locations, paths (`/shop`), or all (`*`).
    pub(crate) fn fail(&self, locations: &[&str]) {
        *self.failing.lock().unwrap() = locations.iter().map(|l| l.to_string()).collect();
    }

    /// Requests per path (and location) since `since`.
    pub(crate) fn hits_since(&self, since: Instant) -> HashMap<(String, String), usize> {
        let mut out = HashMap::new();
        for (at, path, location) in self.hits.lock().unwrap().iter() {
            if *at >= since {
                *out.entry((path.clone(), location.clone())).or_insert(0) += 1;
            }
        }
        out
    }

    /// The longest pause between two requests for `path` since `since` (and until now).
    pub(crate) fn longest_gap(&self, path: &str, since: Instant) -> Duration {
        let mut times: Vec<Instant> = self
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, p, _)| p == path && *at >= since)
            .map(|(at, ..)| *at)
            .collect();
        times.push(Instant::now());
        let mut last = since;
        let mut gap = Duration::ZERO;
        for t in times {
            gap = gap.max(t.duration_since(last));
            last = t;
        }
        gap
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body of a 200 answer to GET `url`.
pub(crate) async fn get(url: &str) -> Option<String> {
    let (status, body) = crate::support::http_get(url).await;
    (status == 200).then_some(body)
}

pub(crate) fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lookout.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An agent's log, without colour codes.
pub(crate) fn log_of(dir: &Path, agent: &str) -> String {
    let raw = std::fs::read_to_string(dir.join(format!("{agent}.log"))).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number of checks an agent said it holds last (its log's `checks=N`).
fn held(dir: &Path, agent: &str) -> Option<usize> {
    log_of(dir, agent)
        .lines()
        .filter(|l| l.contains("share of its location's checks"))
        .filter_map(|l| l.split("checks=").nth(1)?.split_whitespace().next()?.parse().ok())
        .next_back()
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_of_a_location_share_its_checks_and_take_over_a_dead_agent_s_within_15_s() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let mut text = format!("[store]\nurl = \"{url}\"\n[web]\nenabled = false\n");
    for i in 0..6 {
        text.push_str(&format!(
            "\n[[target]]\nname = \"t{i}\"\nurl = \"http://{}/t{i}\"\ninterval = \"1s\"\n",
            site.addr
        ));
    }
    let config = write(dir.path(), &text);
    let mut a = Some(spawn_agent(&config, dir.path(), "agent-a", "eu"));
    let _b = spawn_agent(&config, dir.path(), "agent-b", "eu");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(held(dir.path(), "agent-a") == Some(3) && held(dir.path(), "agent-b") == Some(3)) {
        assert!(
            Instant::now() < deadline,
            "each agent holds half of the checks; logs:\n{}\n{}",
            log_of(dir.path(), "agent-a"),
            log_of(dir.path(), "agent-b")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Settled: over 5 s each target is probed about once a second, by one agent, not twice a second by both.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hits = site.hits_since(since);
    for i in 0..6 {
        let n = hits.get(&(format!("/t{i}"), "eu".to_string())).copied().unwrap_or(0);
        assert!((3..=7).contains(&n), "t{i} was probed {n} times in 5 s (one agent: ~5; both: ~10): {hits:?}");
    }

    // SIGKILL one: its leases run out and the other takes every check.
    let killed = Instant::now();
    drop(a.take());
    wait_until("agent-b to hold every check", Duration::from_secs(30), || async {
        held(dir.path(), "agent-b") == Some(6)
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(15), "took the checks over after {took:?}");
    eprintln!("checks taken over after SIGKILL: {took:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..6 {
        let gap = site.longest_gap(&format!("/t{i}"), killed);
        assert!(gap <= Duration::from_secs(15), "t{i} went unprobed for {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_location_failing_below_the_quorum_is_degraded_and_pages_nobody_two_fire_once() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let config = write(
        dir.path(),
        &format!(
            "[store]\nurl = \"{url}\"\n[web]\nenabled = true\n\n[[target]]\nname = \"shop\"\nurl = \"http://{}/\"\n\
             interval = \"1s\"\nfailure_threshold = 2\nsuccess_threshold = 1\nlocations = [\"eu\", \"us\"]\nquorum = 2\n\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            site.addr,
            hook.url()
        ),
    );
    let web_port = crate::support::free_port().await;
    let web = format!("127.0.0.1:{web_port}");
    let _eu = spawn_agent_with(&config, dir.path(), "probe-eu", "eu", &[("LOOKOUT_WEB_LISTEN", web.as_str())]);
    let other_port = crate::support::free_port().await;
    let other = format!("127.0.0.1:{other_port}");
    let _us = spawn_agent_with(&config, dir.path(), "probe-us", "us", &[("LOOKOUT_WEB_LISTEN", other.as_str())]);
    let shop = || async {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(&get(&format!("http://{web}/api/v1/targets")).await?).ok()?;
        all.into_iter().find(|t| t["name"] == "shop")
    };
    wait_until("both locations to report shop ok", Duration::from_secs(30), || async {
        shop().await.is_some_and(|t| {
            let l = t["locations"].as_array().cloned().unwrap_or_default();
            l.len() == 2 && l.iter().all(|l| l["state"] == "ok")
        })
    })
    .await;

    // A regional fault: only "us" sees errors. Degraded there; nobody is paged.
    site.fail(&["us"]);
    wait_until("shop to be degraded in us", Duration::from_secs(20), || async {
        shop().await.is_some_and(|t| t["degraded"] == serde_json::json!(["us"]))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let t = shop().await.unwrap();
    assert_ne!(t["state"], "firing", "{t}");
    assert_eq!(t["degraded"], serde_json::json!(["us"]), "{t}");
    let us = t["locations"].as_array().unwrap().iter().find(|l| l["location"] == "us").cloned().unwrap();
    assert_eq!((us["state"].as_str(), us["status"].as_u64()), (Some("firing"), Some(500)), "{us}");
    assert!(hook.received().is_empty(), "below the quorum nobody is paged: {:?}", hook.received());
    // `lookout check` from here passes (this machine is not in us) and says where it is degraded.
    let (code, out, err) = lookout_with_config(&["check", "--json"], &config).await;
    assert_eq!(code, 0, "{out}{err}");
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["degraded"], serde_json::json!(["us"]), "{out}");
    let (_, table, _) = lookout_with_config(&["check"], &config).await;
    assert!(table.contains("shop: degraded in us"), "{table}");
    let page = get(&format!("http://{web}/")).await.unwrap_or_default();
    assert!(page.contains("degraded in us"), "the dashboard says where");
    assert!(page.contains("probe-eu") && page.contains("probe-us") && page.contains("leader"), "agents listed");

    // Both locations see it: it fires, once.
    site.fail(&["*"]);
    hook.wait_for_target("shop", "firing", Duration::from_secs(20)).await;
    site.fail(&[]);
    hook.wait_for_target("shop", "resolved", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hook.received();
    let firing: Vec<&str> = got.iter().filter(|r| r.key.ends_with("/firing")).map(|r| r.key.as_str()).collect();
    assert_eq!(firing.len(), 1, "one alert for one outage seen from two locations: {got:?}");
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_leader_loses_no_notification_resends_at_most_once_and_keeps_one_incident() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let config = write(
        dir.path(),
        &format!(
            "[store]\nurl = \"{url}\"\n[web]\nenabled = false\n\n[[target]]\nname = \"shop\"\nurl = \"http://{}/\"\n\
             interval = \"1s\"\nfailure_threshold = 2\nsuccess_threshold = 2\n\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            site.addr,
            hook.url()
        ),
    );
    let mut first = Some(spawn_agent(&config, dir.path(), "agent-a", "eu"));
    wait_until("agent-a to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["agent-a"] })
        .await;
    let _second = spawn_agent(&config, dir.path(), "agent-b", "eu");
    wait_until("both agents to beat", Duration::from_secs(20), || async { agents(&config).await.len() == 2 }).await;

    site.fail(&["*"]);
    let fired = hook.wait_for_target("shop", "firing", Duration::from_secs(20)).await;
    // The leader dies in the middle of the outage; the site recovers while nobody leads.
    let killed = Instant::now();
    drop(first.take());
    tokio::time::sleep(Duration::from_secs(2)).await;
    site.fail(&[]);
    let resolved = hook.wait_for_target("shop", "resolved", Duration::from_secs(40)).await;
    eprintln!("resolved by the new leader {:?} after the SIGKILL", killed.elapsed());
    assert_eq!(leaders(&agents(&config).await), ["agent-b"]);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let got = hook.received();
    let firing: Vec<&crate::support::Received> = got.iter().filter(|r| r.key.ends_with("/firing")).collect();
    assert!(!firing.is_empty() && firing.len() <= 2, "sent once, resent at most once: {got:?}");
    assert!(firing.iter().all(|r| r.key == fired.key), "a resend carries the same Idempotency-Key: {got:?}");
    let resolves: HashSet<&str> = got.iter().filter(|r| r.key.ends_with("/resolved")).map(|r| r.key.as_str()).collect();
    assert_eq!(resolves.len(), 1, "one alert, one resolve: {got:?}");
    assert_eq!(resolved.body["alert_id"], fired.body["alert_id"], "the same alert, not a new one");
    let (code, out, err) = lookout_with_config(&["incidents", "--json"], &config).await;
    assert_eq!(code, 0, "{err}");
    let incidents: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(incidents.len(), 1, "one outage, one incident across the change of leader: {out}");
    assert_eq!(incidents[0]["status"], "resolved", "{out}");
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
    let gap = site.longest_gap("/", killed);
    assert!(gap <= Duration::from_secs(15), "probing paused for {gap:?} across the failover");
}
