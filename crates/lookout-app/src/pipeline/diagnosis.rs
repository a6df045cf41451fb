//! The root cause of a firing alert, found before its message is recorded so the verdict rides on it: a trace of
//! the server's workers while its URL is requested, or else the error log's tail. Bounded in time.

use std::time::Duration;

use lookout_config::DiagnoseSpec;
use lookout_core::{Diagnosis, Transition, TransitionKind};
use lookout_store::Store;

use super::consume::Pipeline;

/// Error-log lines this long before the first failure still count as evidence (and the server's clock may differ).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Bytes of the error log's end read for a diagnosis.
const TAIL_BYTES: u64 = 4 << 20;
/// How long reading the error log may take.
const ERROR_LOG_LIMIT: Duration = Duration::from_secs(2);

impl<S: Store> Pipeline<S> {
    /// Looks for the root cause of each firing alert whose target says where (its processes, its error log).
    pub(super) async fn attach_diagnosis(&self, transitions: &mut [Transition]) {
        for t in transitions.iter_mut().filter(|t| t.kind == TransitionKind::Firing) {
            let Some(spec) = self.diagnose.get(&t.target).cloned() else { continue };
            let url = self.urls.get(&t.target).cloned();
            if let Some(d) = trace(&t.target, &spec, url).await {
                tracing::warn!(target = %t.target, diagnosis = %d.verdict, "Diagnosed by tracing.");
                t.diagnosis = Some(d);
                continue;
            }
            let Some(error_log) = spec.error_log.clone() else { continue };
            let since = t.failing_since.map(|s| s.as_millis() - LOOKBACK_MS);
            let job = tokio::task::spawn_blocking(move || {
                lookout_diagnose::diagnose_tail(&error_log, spec.error_format, since, TAIL_BYTES)
            });
            match tokio::time::timeout(ERROR_LOG_LIMIT, job).await {
                Ok(Ok(Ok(findings))) => {
                    if let Some(f) = findings.first() {
                        tracing::warn!(target = %t.target, diagnosis = %f.summary, "Diagnosed.");
                        t.diagnosis = Some(f.diagnosis());
                    }
                }
                Ok(Ok(Err(e))) => {
                    tracing::warn!(target = %t.target, error = %e, "Cannot read the error log to diagnose.")
                }
                Ok(Err(e)) => tracing::warn!(target = %t.target, error = %e, "The diagnosis failed."),
                Err(_) => tracing::warn!(target = %t.target, "The diagnosis took longer than 2 s; sent without it."),
            }
        }
    }
}

/// Traces the target's server (by pid file or process names) for `spec.duration` while requesting its URL, and
/// returns the diagnosis when a failing path explains the failing requests. `None` when there is nothing to trace,
/// tracing is not possible (logged), or no candidate was found — the error log is the fallback.
async fn trace(target: &str, spec: &DiagnoseSpec, url: Option<http::Uri>) -> Option<Diagnosis> {
    let mut pids: Vec<i32> = Vec::new();
    if let Some(file) = &spec.pid_file {
        match std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            Some(pid) => pids.extend(lookout_diagnose::trace::with_children(pid)),
            None => tracing::warn!(%target, pid_file = %file.display(), "Cannot read a pid from the pid file."),
        }
    }
    for name in &spec.processes {
        pids.extend(lookout_diagnose::trace::pids_by_name(name));
    }
    if pids.is_empty() {
        return None;
    }
    let label = lookout_diagnose::live::process_label(pids[0]).unwrap_or_else(|| "server".into());
    let urls: Vec<http::Uri> = url.into_iter().collect();
    let (joined, _) = match lookout_diagnose::live::trace_while_requesting(pids, spec.duration, &urls, 5).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(%target, error = %e, "The trace failed; diagnosing from the error log instead.");
            return None;
        }
    };
    match joined {
        Ok(events) => lookout_diagnose::correlate::correlate(&events).diagnosis(&label),
        Err(e) => {
            tracing::warn!(%target, error = %e, "Cannot trace; diagnosing from the error log instead.");
            None
        }
    }
}
