//! `lookout check`'s use case: every selected target probed once, concurrently, and judged by its conditions —
//! the "test before production" gate. The binary prints the reports.

use lookout_config::Config;
use lookout_core::Observation;
use lookout_engine::{Verdict, judge};
use serde::Serialize;

/// One check's outcome, as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub kind: lookout_core::ProbeKind,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub failed_conditions: Vec<String>,
    pub error: Option<String>,
    pub timings: lookout_core::Timings,
    /// Leaf certificate expiry (RFC 3339), when TLS was used.
    pub certificate_expires_at: Option<String>,
    /// Other agents' locations where the target fails below its quorum (several agents on a shared store):
    /// `degraded in us`. Said, not counted in the exit code, which is this machine's own verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<String>,
}

impl CheckReport {
    fn new(obs: &Observation, verdict: Verdict) -> Self {
        CheckReport {
            name: obs.target.clone(),
            kind: obs.kind,
            ok: verdict.ok,
            status: obs.status,
            latency_ms: (obs.timings.total_ms * 10.0).round() / 10.0,
            failed_conditions: verdict.failed_conditions,
            error: verdict.error,
            timings: obs.timings.clone(),
            certificate_expires_at: obs.cert_not_after.map(|t| t.to_rfc3339()),
            degraded: Vec::new(),
        }
    }

    /// The first reason it failed.
    pub fn detail(&self) -> String {
        self.error.clone().or_else(|| self.failed_conditions.first().cloned()).unwrap_or_default()
    }
}

/// Probes the selected targets of `config` concurrently, in config order.
pub async fn run(config: &Config, only: &[String]) -> Result<Vec<CheckReport>, String> {
    let unknown: Vec<&String> = only.iter().filter(|n| config.target(n).is_none()).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "no target named {}; targets in {}: {}",
            unknown.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
            config.source.display(),
            if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
        ));
    }
    let selected: Vec<_> =
        config.targets.iter().filter(|t| only.is_empty() || only.contains(&t.name)).cloned().collect();
    if selected.is_empty() {
        return Err(format!("{} defines no [[target]]; add one (see lookout.example.toml)", config.source.display()));
    }
    // The levels of one status page (NAME, NAME-critical, NAME-queue) are judged on one reading of it: read three
    // times at once, the page counts its own readers among the busy workers (a pool of three PHP-FPM workers
    // read 100 % busy), and the server is asked thrice for one answer.
    let mut groups: Vec<Vec<(usize, lookout_config::Target)>> = Vec::new();
    let mut by_page: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, t) in selected.into_iter().enumerate() {
        let page = match &t.check {
            lookout_config::Check::Status(s) => Some(s.http.url.to_string()),
            _ => None,
        };
        match page.as_ref().and_then(|p| by_page.get(p)) {
            Some(&g) => groups[g].push((i, t)),
            None => {
                if let Some(p) = page {
                    by_page.insert(p, groups.len());
                }
                groups.push(vec![(i, t)]);
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for group in groups {
        set.spawn(async move {
            let mut obs = lookout_probe::probe(&group[0].1).await;
            let mut out = Vec::with_capacity(group.len());
            for (i, t) in &group {
                obs.target.clone_from(&t.name);
                out.push((*i, CheckReport::new(&obs, judge(&t.conditions, &obs))));
            }
            out
        });
    }
    let mut reports: Vec<(usize, CheckReport)> = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(group) => reports.extend(group),
            Err(e) => return Err(format!("a check crashed: {e}")),
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    Ok(reports.into_iter().map(|(_, r)| r).collect())
}

/// Adds to each report where the running agents see its target failing below its quorum (from the shared
/// store's location states; a target firing is not "degraded").
pub async fn add_degraded<S: lookout_store::Store>(
    reports: &mut [CheckReport],
    config: &Config,
    store: &S,
) -> lookout_store::Result<()> {
    let now = lookout_core::Timestamp::now();
    let firing: std::collections::HashSet<String> = store
        .alert_states()
        .await?
        .into_iter()
        .filter(|(_, s)| s.phase == lookout_core::Phase::Firing)
        .map(|(t, _)| t)
        .collect();
    let locations = store.location_states().await?;
    for r in reports.iter_mut() {
        let Some(t) = config.target(&r.name) else { continue };
        if firing.contains(&r.name) {
            continue;
        }
        let stale_after = t.policy.stale_after;
        r.degraded = locations
            .iter()
            .filter(|l| l.target == r.name && l.state.phase == lookout_core::Phase::Firing)
            .filter(|l| stale_after.is_zero() || now.since(l.at) <= stale_after)
            .map(|l| l.location.clone())
            .collect();
    }
    Ok(())
}
