//! Diagnosing a live server: trace its workers while driving requests at it, so the failing code path runs while
//! the tracer is attached. Shared by `lookout diagnose` and the automatic diagnosis of `lookout run`.

use std::time::Duration;

use crate::trace::{TraceError, TraceEvent};

/// The tracer thread could not be joined; the traced server was detached either way.
#[derive(Debug, thiserror::Error)]
pub enum TracerLost {
    #[error("the tracer failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the tracer thread panicked (the server was detached)")]
    Panicked,
}

/// Traces `pids` for `duration` on a thread of its own while sending `requests` GETs to each URL (through
/// [`lookout_http`], 2 s each). Returns the trace — or why tracing was not possible — and the requests that could
/// not be made.
pub async fn trace_while_requesting(
    pids: Vec<i32>,
    duration: Duration,
    urls: &[http::Uri],
    requests: u32,
) -> Result<(Result<Vec<TraceEvent>, TraceError>, Vec<String>), TracerLost> {
    let tracer = std::thread::spawn(move || crate::trace::trace(&pids, duration, 200_000));
    let mut request_errors = Vec::new();
    if !urls.is_empty() {
        // Give the tracer a moment to attach before the requests that should show the failure.
        tokio::time::sleep(Duration::from_millis(150)).await;
        for _ in 0..requests {
            for uri in urls {
                let req = lookout_http::HttpRequest::get(uri.clone(), Duration::from_secs(2));
                if let Some(e) = lookout_http::fetch(&req).await.error {
                    request_errors.push(format!("{uri}: {e}"));
                }
            }
        }
    }
    let traced = tokio::task::spawn_blocking(move || tracer.join()).await?.map_err(|_| TracerLost::Panicked)?;
    Ok((traced, request_errors))
}

/// The command name of a process (`/proc/PID/comm`), for verdicts.
pub fn process_label(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim().to_string())
}
