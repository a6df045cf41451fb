//! An incident's impact, measured: how long, how many requests failed, how many distinct clients got an error,
//! how long the probes saw the site down. Each number keeps how it was measured, because a postmortem that says
//! "approximately 10,000 users" should say what was counted.
//!
//! Requests and clients come from the access log itself (re-read for the incident's window, so the numbers are
//! exact to the second); when it cannot be read any more, from lookout's per-minute counts in the store, without
//! clients.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_config::{Config, LogSource};
use lookout_core::{Incident, Timestamp};
use lookout_logs::distinct::{ClientKey, Precision};
use lookout_logs::report::{PathCount, ReportOptions};
use lookout_store::Store;
use serde::Serialize;

/// Requests before the first failing observation that still count: a probe or a log window notices a failure
/// up to an interval or a window after the first failing request.
pub const LOOKBACK: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Impact {
    pub first_failure: Timestamp,
    pub alerted: Timestamp,
    /// The resolution, or `now` while the incident is open.
    pub end: Timestamp,
    pub ongoing: bool,
    pub requests: Vec<RequestImpact>,
    pub probes: Vec<ProbeImpact>,
}

impl Impact {
    /// First failure → resolution.
    pub fn duration(&self) -> Duration {
        self.end.since(self.first_failure)
    }

    /// First failure → alert.
    pub fn time_to_alert(&self) -> Duration {
        self.alerted.since(self.first_failure)
    }

    /// One plain line per source and probe, for `incidents show` and the incident page (raw text: escape it for
    /// where it goes).
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.requests {
            let mut l = format!("{}: {} of {} requests failed", r.source, r.failed, r.total);
            if let Some(c) = r.clients {
                l.push_str(&format!(", {c} distinct {} affected", r.client_key.describe()));
            }
            if let Some((_, ratio)) = r.peak {
                l.push_str(&format!(", peak 5xx ratio {:.0}%", ratio * 100.0));
            }
            l.push_str(&format!(" ({})", r.measured_from));
            lines.push(l);
        }
        for p in &self.probes {
            lines.push(format!("probe {}: {} of {} checks failed", p.target, p.failed, p.total));
        }
        lines
    }
}

/// What one `[[log]]` source saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestImpact {
    pub source: String,
    /// Where the numbers come from, for the reader: the access log's file name, or lookout's per-minute counts.
    pub measured_from: String,
    pub exact: bool,
    pub from: Timestamp,
    pub to: Timestamp,
    pub failed: u64,
    pub total: u64,
    /// Start (Unix seconds) and 5xx ratio of the worst minute.
    pub peak: Option<(i64, f64)>,
    /// Distinct clients that got a 5xx; `None` when the access log could not be read.
    pub clients: Option<u64>,
    pub clients_precision: Precision,
    pub client_key: ClientKey,
    pub failing_paths: Vec<PathCount>,
    /// Why the access log was not used, when it was not.
    pub note: Option<String>,
}

/// What one probed target saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeImpact {
    pub target: String,
    pub failed: u64,
    pub total: u64,
    /// First failing check and the first successful check after the last failing one (if any yet).
    pub down_from: Option<Timestamp>,
    pub down_until: Option<Timestamp>,
}

/// Measures an incident's impact from its log sources and probes. `config` says which files belong to the
/// incident's group; targets no longer configured still get their probe results.
pub async fn measure<S: Store>(store: &S, config: &Config, incident: &Incident, now: Timestamp) -> Impact {
    let end = incident.resolved_at.unwrap_or(now);
    let from = Timestamp(incident.first_failure_at.as_millis() - LOOKBACK.as_millis() as i64);
    let in_incident =
        |name: &str, group: &str| group == incident.group || incident.alerts.iter().any(|a| a.target == name);

    let mut requests = Vec::new();
    // A warning level reads its source's requests: counted once, as the source's.
    for source in config.logs.iter().filter(|l| in_incident(&l.name, &l.group)) {
        if source.access.is_none() || source.follows.is_some() {
            continue;
        }
        requests.push(request_impact(store, source, from, end).await);
    }

    let mut targets: Vec<String> =
        config.targets.iter().filter(|t| in_incident(&t.name, &t.group)).map(|t| t.name.clone()).collect();
    for a in &incident.alerts {
        let is_log = config.logs.iter().any(|l| l.name == a.target);
        if !is_log && !targets.contains(&a.target) {
            targets.push(a.target.clone());
        }
    }
    let mut probes = Vec::new();
    for target in targets {
        // One more minute after the end finds the first successful check.
        let rows = store.results_between(target.clone(), from, end.plus(LOOKBACK)).await.unwrap_or_default();
        let in_window: Vec<_> = rows.iter().filter(|r| r.at <= end).collect();
        if in_window.is_empty() {
            continue;
        }
        let failed: Vec<_> = in_window.iter().filter(|r| !r.ok).collect();
        let down_from = failed.first().map(|r| r.at);
        let last_failed = failed.last().map(|r| r.at);
        let down_until = last_failed.and_then(|last| rows.iter().find(|r| r.ok && r.at > last).map(|r| r.at));
        let total = checks_in(store, &target, from, end, in_window.len() as u64).await;
        probes.push(ProbeImpact { target, failed: failed.len() as u64, total, down_from, down_until });
    }
    Impact {
        first_failure: incident.first_failure_at,
        alerted: incident.opened_at,
        end,
        ongoing: incident.resolved_at.is_none(),
        requests,
        probes,
    }
}

/// How many checks of `target` fell in `from..=to`. Exact while the results are raw (`raw` of them were read);
/// past the raw window only failures and the success after them are rows, so the rest comes from the store's
/// 5-minute counts, each pro-rated by how much of its 5 minutes lies in the window.
async fn checks_in<S: Store>(store: &S, target: &str, from: Timestamp, to: Timestamp, raw: u64) -> u64 {
    let span = (to.as_millis() - from.as_millis() + 1).max(1);
    let counted: u64 =
        store.result_buckets(target.into(), from, to, span).await.map(|b| b.iter().map(|b| b.total).sum()).unwrap_or(0);
    if counted <= raw {
        return raw;
    }
    const FIVE_MINUTES: i64 = 300_000;
    let start = Timestamp(from.as_millis().div_euclid(FIVE_MINUTES) * FIVE_MINUTES);
    let Ok(periods) = store.result_buckets(target.into(), start, to, FIVE_MINUTES).await else {
        return counted;
    };
    let (lo, hi) = (from.as_millis(), to.as_millis() + 1);
    let estimate: f64 = periods
        .iter()
        .map(|b| {
            let s = b.start.as_millis();
            b.total as f64 * (hi.min(s + FIVE_MINUTES) - lo.max(s)).max(0) as f64 / FIVE_MINUTES as f64
        })
        .sum();
    (estimate.round() as u64).max(raw)
}

async fn request_impact<S: Store>(store: &S, source: &LogSource, from: Timestamp, to: Timestamp) -> RequestImpact {
    let access = source.access.clone().unwrap_or_default();
    let opts = ReportOptions {
        since: Some(from.as_millis().div_euclid(1000)),
        until: Some(to.as_millis().div_euclid(1000) + 1),
        clients: source.clients,
        top: 5,
        ..ReportOptions::default()
    };
    let format = source.format.clone();
    let files = access_files(&access);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<lookout_logs::report::Report> {
        let mut inputs: Vec<Box<dyn Read + Send>> = Vec::new();
        for f in &files {
            inputs.push(Box::new(std::io::BufReader::new(std::fs::File::open(f)?)));
        }
        if inputs.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
        }
        lookout_logs::offline::analyze(inputs, &format, &opts, 2, &|_| {})
    })
    .await;
    let name = access.file_name().map_or_else(|| access.display().to_string(), |n| n.to_string_lossy().into_owned());
    match read {
        Ok(Ok(r)) if r.requests > 0 => RequestImpact {
            source: source.name.clone(),
            measured_from: format!("access log {name}"),
            exact: true,
            from,
            to,
            failed: r.failed,
            total: r.requests,
            peak: r.peak(),
            clients: Some(r.failing_clients),
            clients_precision: r.failing_clients_precision,
            client_key: source.clients,
            failing_paths: r.failing_paths,
            note: None,
        },
        other => {
            let why = match other {
                Ok(Ok(_)) => format!("{name} has no requests in the incident's window (rotated away?)"),
                Ok(Err(e)) => format!("{name} could not be read: {e}"),
                Err(e) => format!("{name} could not be read: {e}"),
            };
            let counts = store.log_counts_between(source.name.clone(), from, to).await.unwrap_or_default();
            let failed: u64 = counts.iter().map(|c| c.classes[4]).sum();
            let total: u64 = counts.iter().map(|c| c.requests).sum();
            let peak = counts
                .iter()
                .filter(|c| c.requests > 0 && c.classes[4] > 0)
                .map(|c| (c.minute, c.classes[4] as f64 / c.requests as f64))
                .fold(None, |best: Option<(i64, f64)>, x| match best {
                    Some(b) if b.1 >= x.1 => Some(b),
                    _ => Some(x),
                });
            RequestImpact {
                source: source.name.clone(),
                measured_from: "lookout's per-minute counts of the access log".into(),
                exact: false,
                from,
                to,
                failed,
                total,
                peak,
                clients: None,
                clients_precision: Precision::Exact,
                client_key: source.clients,
                failing_paths: Vec::new(),
                note: Some(why),
            }
        }
    }
}

/// The access log and its first rotation (logrotate's `.1`), oldest first, when they exist: an incident that
/// spans a rotation is measured across both.
fn access_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    [PathBuf::from(rotated), path.to_path_buf()].into_iter().filter(|p| p.is_file()).collect()
}
