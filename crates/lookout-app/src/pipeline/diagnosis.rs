//! The root cause of a firing alert, found before its message is recorded so the verdict rides on it: a trace of
//! the server's workers while its URL is requested, or else the error log's tail. Bounded in time. With several
//! agents the server may be on another agent's machine (`[target.diagnose] agent`): the leader asks it through the
//! store and waits for its answer, bounded the same way.

use std::time::Duration;

use lookout_config::DiagnoseSpec;
use lookout_core::{Diagnosis, Timestamp, Transition, TransitionKind};
use lookout_store::Store;

use super::consume::Pipeline;

/// Error-log lines this long before the first failure still count as evidence (and the server's clock may differ).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Bytes of the error log's end read for a diagnosis.
const TAIL_BYTES: u64 = 4 << 20;
/// How long reading the error log may take.
const ERROR_LOG_LIMIT: Duration = Duration::from_secs(2);

impl<S: Store> Pipeline<S> {
    /// Looks for the root cause of each firing alert whose target says where (its processes, its error log): on
    /// this machine, or on the agent `[target.diagnose] agent` names, asked through the store.
    pub(super) async fn attach_diagnosis(&self, transitions: &mut [Transition]) {
        for t in transitions.iter_mut().filter(|t| t.kind == TransitionKind::Firing) {
            let Some(spec) = self.diagnose.get(&t.target).cloned() else { continue };
            let found = match &spec.agent {
                Some(agent) if *agent != self.relay.agent && self.relay.shared => {
                    self.ask(agent, &t.target, &spec, t.failing_since).await
                }
                _ => diagnose_here(&t.target, &spec, self.urls.get(&t.target).cloned(), t.failing_since).await,
            };
            t.diagnosis = found.or(t.diagnosis.take());
        }
    }

    /// Asks `agent` to diagnose `target` on its machine and waits for its answer, as long as a diagnosis here
    /// would take and a little more (the agent looks for requests every 0.5 s).
    async fn ask(&self, agent: &str, target: &str, spec: &DiagnoseSpec, since: Option<Timestamp>) -> Option<Diagnosis> {
        let id = match self.store.request_diagnosis(agent.to_string(), target.to_string(), since).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(%target, %agent, error = %e, "Cannot ask the agent for a diagnosis; sent without it.");
                return None;
            }
        };
        let limit = spec.duration + ERROR_LOG_LIMIT + ANSWER_SLACK;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.store.diagnosis_answer(id).await {
                Ok(Some(text)) => {
                    let found = serde_json::from_str::<Option<Diagnosis>>(&text).ok().flatten();
                    match &found {
                        Some(d) => {
                            tracing::warn!(%target, %agent, diagnosis = %d.verdict, "Diagnosed on the agent's machine.")
                        }
                        None => tracing::info!(%target, %agent, "The agent found no probable cause."),
                    }
                    return found;
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%target, error = %e, "Cannot read the diagnosis answer yet."),
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(%target, %agent, after = %lookout_core::format_duration(limit), "The agent did not answer the diagnosis request in time (is it running?); sent without it.");
                return None;
            }
        }
    }

    /// Answers the diagnoses the leader asked this agent for, each in a task of its own (a trace takes seconds;
    /// the pipeline goes on meanwhile).
    pub(super) async fn serve_diagnoses(&self) {
        let requests = match self.store.take_diagnosis_requests(self.relay.agent.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot look for diagnosis requests.");
                return;
            }
        };
        for r in requests {
            let spec = self.diagnose.get(&r.target).cloned();
            let url = self.urls.get(&r.target).cloned();
            let store = self.store.clone();
            tokio::spawn(async move {
                let found = match spec {
                    Some(spec) => diagnose_here(&r.target, &spec, url, r.since).await,
                    None => {
                        tracing::warn!(target = %r.target, "Asked to diagnose a target this agent's config does not diagnose.");
                        None
                    }
                };
                let answer = serde_json::to_string(&found).unwrap_or_else(|_| "null".into());
                if let Err(e) = store.answer_diagnosis(r.id, answer).await {
                    tracing::warn!(target = %r.target, error = %e, "Cannot give the leader the diagnosis.");
                }
            });
        }
    }
}

/// How much longer than a diagnosis takes the leader waits for an agent's answer: its next look for requests
/// (0.5 s), the store's round trips.
const ANSWER_SLACK: Duration = Duration::from_secs(3);

/// The root cause as this machine sees it: a trace of the server's workers while its URL is requested, or else
/// the error log's tail since a little before `since`.
async fn diagnose_here(
    target: &str,
    spec: &DiagnoseSpec,
    url: Option<http::Uri>,
    since: Option<Timestamp>,
) -> Option<Diagnosis> {
    let traced = trace(target, spec, url).await;
    let findings = read_error_logs(target, spec, since).await;
    match traced {
        Some(mut d) => {
            tracing::warn!(%target, diagnosis = %d.verdict, "Diagnosed by tracing.");
            // What the error logs say about the same file backs the traced verdict up, on the incident too.
            let same = |f: &&lookout_diagnose::Finding| d.path.as_deref() == f.path.to_str();
            let says = |f: &lookout_diagnose::Finding| {
                format!("error log: {}", f.summary.trim_start_matches("Probable root cause: "))
            };
            d.evidence.extend(findings.iter().filter(same).map(says));
            Some(d)
        }
        None => {
            let f = findings.first()?;
            tracing::warn!(%target, diagnosis = %f.summary, "Diagnosed.");
            Some(f.diagnosis())
        }
    }
}

/// The findings of the tails of the target's error logs (none configured: none), read in 2 s at most.
async fn read_error_logs(
    target: &str,
    spec: &DiagnoseSpec,
    since: Option<Timestamp>,
) -> Vec<lookout_diagnose::Finding> {
    if spec.error_logs.is_empty() {
        return Vec::new();
    }
    let logs = spec.error_logs.clone();
    let since = since.map(|s| s.as_millis() - LOOKBACK_MS);
    let format = spec.error_format;
    let job = tokio::task::spawn_blocking(move || lookout_diagnose::diagnose_tails(&logs, format, since, TAIL_BYTES));
    match tokio::time::timeout(ERROR_LOG_LIMIT, job).await {
        Ok(Ok((findings, errors))) => {
            for e in errors {
                tracing::warn!(%target, error = %e, "Cannot read an error log to diagnose.");
            }
            findings
        }
        Ok(Err(e)) => {
            tracing::warn!(%target, error = %e, "The diagnosis failed.");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(%target, "Reading the error logs took longer than 2 s; sent without them.");
            Vec::new()
        }
    }
}

/// Traces the target's server (by pid file or process names) for `spec.duration` while requesting its URL, and
/// returns the diagnosis when a failing path explains the failing requests. `None` when there is nothing to trace,
/// tracing is not possible (logged), or no candidate was found — the error log is the fallback.
async fn trace(target: &str, spec: &DiagnoseSpec, url: Option<http::Uri>) -> Option<Diagnosis> {
    let mut pids: Vec<i32> = Vec::new();
    for file in &spec.pid_files {
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
