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

/// The requests sent while tracing.
#[derive(Clone, Debug, Default)]
pub struct Requests {
    /// How many were sent (fewer than asked when the trace ended first).
    pub sent: u32,
    /// `url: why` of each that got no answer.
    pub errors: Vec<String>,
    /// How many were answered 5xx: the failing code path ran while traced.
    pub failed: u32,
    /// How long the server was traced: once a request sent has failed, the trace ends [`SETTLE`] after the last
    /// answer instead of at the end of its duration.
    pub traced_for: Duration,
}

/// How long the trace goes on after the last request was answered: the worker's last calls for it (the FastCGI
/// END_REQUEST, the access-log line) come just after the client has its answer.
pub const SETTLE: Duration = Duration::from_millis(300);

impl Requests {
    /// Whether requests were sent and none got an answer: the URL is wrong or the server is down.
    pub fn none_answered(&self) -> bool {
        self.sent > 0 && self.errors.len() as u64 >= u64::from(self.sent)
    }
}

/// Traces `pids` for `duration` (at most [`crate::trace::MAX_DURATION`]) on a thread of its own while sending
/// `requests` GETs to each URL (through [`lookout_http`], 2 s each) — no more once the trace is over. Returns the
/// trace — or why tracing was not possible — and the requests made.
pub async fn trace_while_requesting(
    pids: Vec<i32>,
    duration: Duration,
    urls: &[http::Uri],
    requests: u32,
) -> Result<(Result<Vec<TraceEvent>, TraceError>, Requests), TracerLost> {
    let duration = duration.min(crate::trace::MAX_DURATION);
    let started = std::time::Instant::now();
    let stop = crate::trace::Stop::default();
    let stopper = stop.clone();
    let tracer = std::thread::spawn(move || crate::trace::trace_until(&pids, duration, 200_000, &stopper));
    let mut made = Requests::default();
    if !urls.is_empty() {
        // Give the tracer a moment to attach before the requests that should show the failure.
        tokio::time::sleep(Duration::from_millis(150)).await;
        'requests: for _ in 0..requests {
            for uri in urls {
                // Requests after the trace has ended (or could not begin) would show nothing: stop, so a huge
                // --requests stays bounded by the duration.
                if started.elapsed() >= duration || tracer.is_finished() {
                    break 'requests;
                }
                let mut req = lookout_http::HttpRequest::get(uri.clone(), Duration::from_secs(2));
                // Named as lookout's, so the site's log alerts and impact do not count them as users' failures.
                req.headers.push(("User-Agent".into(), lookout_core::DIAGNOSE_USER_AGENT.into()));
                made.sent += 1;
                let answer = lookout_http::fetch(&req).await;
                made.failed += u32::from(answer.status.is_some_and(|s| s >= 500));
                if let Some(e) = answer.error {
                    made.errors.push(format!("{}: {e}", lookout_core::url::Redacted(&uri.to_string())));
                }
            }
        }
    }
    // The failing code path has run while traced: every further moment would only slow the server down. (When
    // every answer was fine the trace goes on, to catch the failure in other clients' requests.)
    if made.failed > 0 && !tracer.is_finished() {
        tokio::time::sleep(SETTLE).await;
        stop.now();
    }
    let traced = tokio::task::spawn_blocking(move || tracer.join()).await?.map_err(|_| TracerLost::Panicked)?;
    made.traced_for = started.elapsed().min(duration);
    Ok((traced, made))
}

/// The command name of a process (`/proc/PID/comm`), for verdicts.
pub fn process_label(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim().to_string())
}

/// A URL `trace_while_requesting` may request: `http` or `https` with a host (and a valid port). Checked before
/// anything is traced, so a mistyped or hostile URL (`javascript:…`) is refused at once, not after the trace.
pub fn request_url(text: &str) -> Result<http::Uri, String> {
    // Credentials in the URL (`user:pass@`) never reach the terminal.
    let shown = lookout_core::text::truncate(&lookout_core::text::one_line(&lookout_core::url::redact(text)), 200);
    let refuse = |why: &str| format!("{shown:?} cannot be requested: {why} (write e.g. http://127.0.0.1:8080/)");
    // The scheme first: `file:///…` or `javascript:…` are refused as such, not as malformed.
    let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(refuse("only http:// and https:// URLs can be requested"));
    }
    let uri: http::Uri = text.parse().map_err(|e| refuse(&format!("it is not a URL ({e})")))?;
    let why = match uri.authority().map(|a| lookout_core::url::split_authority(a.as_str())) {
        Some(a) if a.host.is_empty() => "it has no host".to_string(),
        // `http` accepts any digits as a port (and then has none): 80800 must not become port 80.
        Some(a) => match lookout_core::url::parse_port(a.port) {
            Ok(_) => return Ok(uri),
            Err(why) => why,
        },
        None => "it has no host".to_string(),
    };
    Err(refuse(&why))
}

#[cfg(test)]
mod tests {
    use super::request_url;

    #[test]
    fn only_http_and_https_urls_with_a_host_are_requested() {
        assert!(request_url("http://127.0.0.1:8080/").is_ok());
        assert!(request_url("https://shop.example/").is_ok());
        assert!(request_url("http://[::1]:8080/x?y=1").is_ok());
        assert!(request_url("HTTP://127.0.0.1/").is_ok());
        for (bad, why) in [
            ("javascript:alert(1)", "only http:// and https:// URLs"),
            ("file:///etc/passwd", "only http:// and https:// URLs"),
            ("ftp://127.0.0.1/", "only http:// and https:// URLs"),
            ("127.0.0.1:8080", "only http:// and https:// URLs"),
            ("/index.php", "only http:// and https:// URLs"),
            ("http://127.0.0.1:80800/", "port 80800 is out of range: use 1 to 65535"),
            ("http://127.0.0.1:65536/", "port 65536 is out of range"),
            ("http://[::1]:99999/", "port 99999 is out of range"),
            ("http://127.0.0.1:0/", "port 0 is out of range"),
            ("http://admin:hunter2@127.0.0.1:0/", "admin:***@127.0.0.1:0"),
            ("http:///x", "not a URL"),
            ("", "only http:// and https:// URLs"),
            ("http://exa mple/", "not a URL"),
        ] {
            let e = request_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(!request_url("http://admin:hunter2@127.0.0.1:0/").unwrap_err().contains("hunter2"), "never echoed");
        // Control characters in what is echoed are escaped.
        let e = request_url("javascript:\x1b[2J").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
    }
}
