//! What one message says went wrong with which file (or socket, pool, script that ran out of time, request): the
//! messages of PHP, Apache, nginx and PHP-FPM, one at a time, after [`lookout_logs::error_log::entries`] has split
//! them apart. Only texts these servers really write are matched (checked against their sources and real logs).

use std::path::PathBuf;

use lookout_logs::error_log::{self, Entry};
use serde::Serialize;

use super::Cause;

/// What a finding adds beyond cause and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// PHP refused by `open_basedir`: the directories it allows.
    OpenBasedir { allowed: Vec<String> },
    /// The backend the web server could not reach: `unix:/run/php/php8.2-fpm.sock` or `127.0.0.1:9000`, why
    /// (`connection refused`, `the socket does not exist`), and what serves it (`php8.2-fpm`, when the socket's
    /// name says).
    Backend { address: String, reason: String, service: Option<String>, php: bool },
    /// An FPM pool at its `pm.max_children`.
    Saturation { pool: String, max_children: Option<u32> },
    /// A request that ran out of time (or, for [`Limit::Slowlog`], was logged as slow).
    Timeout {
        limit: Limit,
        /// The limit in whole seconds, when the log says (`Maximum execution time of 30 seconds`, FPM's
        /// `execution timed out (30.012345 sec)`).
        seconds: Option<u64>,
        /// The line PHP was on.
        line: Option<u32>,
        /// FPM's pool.
        pool: Option<String>,
        /// One request that ran out of time, `GET /slow.php` (without the query string, which may carry secrets).
        request: Option<String>,
        /// What the web server waited for: `fastcgi://unix:/run/php/php8.2-fpm.sock`, `127.0.0.1:8080`.
        upstream: Option<String>,
        /// What it was doing: `reading response header from upstream`.
        during: Option<String>,
        /// The setting that sets the limit: `fastcgi_read_timeout`, `ProxyTimeout`, `request_terminate_timeout`.
        setting: String,
    },
    /// PHP-FPM found no script (`Primary script unknown`) for these requests (a few, distinct).
    ScriptUnknown { requests: Vec<String> },
    /// PHP-FPM workers of `pool` that died of a crash signal: each signal with how often, and whether any dumped
    /// core (where to look next differs).
    Crash { pool: String, signals: Vec<SignalCount>, core_dumped: bool },
    /// A backend that closed the connection before the web server had its answer's header: the upstream when the
    /// web server says (nginx does, Apache's proxy_fcgi does not), what it saw, a few requests it happened to
    /// (distinct, without query strings), and whether the backend is PHP-FPM.
    Closed { upstream: Option<String>, reason: String, requests: Vec<String>, php: bool },
    /// Why a file may not be read: whose credentials were checked (a live process's, else `www-data`'s) and each
    /// step of the path with what it lacks.
    Access { reader: Option<crate::hints::Reader>, steps: Vec<crate::hints::Step> },
}

/// Which limit a request ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// PHP's `max_execution_time`: PHP stopped the script with a fatal error (500).
    MaxExecutionTime,
    /// PHP-FPM's `request_terminate_timeout`: the master killed the worker (the web server answers 502 or 504).
    RequestTerminateTimeout,
    /// The web server gave up waiting for its backend (nginx's `fastcgi_read_timeout`, Apache's `ProxyTimeout`).
    Upstream,
    /// PHP-FPM's `request_slowlog_timeout`: only logged (with a stack trace in the slowlog).
    Slowlog,
}

/// One signal FPM workers died of, and how many times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SignalCount {
    /// `SIGSEGV`, or `signal 42` when FPM names none.
    pub signal: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Classified {
    pub cause: Cause,
    pub path: PathBuf,
    pub needed_by: Option<String>,
    pub detail: Option<Detail>,
    /// The process that failed, when it is the one that wrote the entry (not a web server relaying PHP-FPM).
    pub pid: Option<u32>,
    /// The message says a file failed to open, not why (`Failed opening required`): it joins the finding of the
    /// warning before it, a denial as much as a missing file.
    pub why_unsaid: bool,
}

impl Classified {
    fn new(cause: Cause, path: PathBuf, detail: Option<Detail>) -> Classified {
        Classified { cause, path, needed_by: None, detail, pid: None, why_unsaid: false }
    }
}

/// Classifies one message of `entry`.
pub(super) fn classify(message: &str, entry: &Entry) -> Option<Classified> {
    if let Some(c) = backend(message, entry) {
        return Some(c);
    }
    if let Some(c) = saturation(message, entry) {
        return Some(c);
    }
    if let Some(c) = timeout(message, entry) {
        return Some(c);
    }
    if let Some(c) = crash(message, entry).or_else(|| closed(message, entry)) {
        return Some(c);
    }
    if message.trim() == "Primary script unknown" {
        let requests = request_of(entry).into_iter().collect();
        return Some(Classified::new(
            Cause::ScriptUnknown,
            PathBuf::from("SCRIPT_FILENAME"),
            Some(Detail::ScriptUnknown { requests }),
        ));
    }
    // The first line says what failed; `Stack trace:` lines after it only repeat where.
    let first = message.lines().next().unwrap_or("");
    let paths = error_log::paths_in(first);
    let needed_by = first
        .rsplit_once(" in /")
        .map(|(_, rest)| format!("/{}", rest.trim().trim_end_matches('.')))
        .map(|s| s.replace(" on line ", ":"));
    let pid = if entry.relayed { None } else { entry.pid };
    let plain = |cause, path: &str, needed_by: Option<String>| {
        let needed_by = needed_by.filter(|n| !n.starts_with(path));
        Some(Classified { cause, path: PathBuf::from(path), needed_by, detail: None, pid, why_unsaid: false })
    };
    if first.contains("PHP Parse error") {
        let script = needed_by.as_deref()?.rsplit_once(':').map_or(needed_by.clone()?, |(p, _)| p.to_string());
        return Some(Classified { needed_by, ..Classified::new(Cause::ParseError, PathBuf::from(script), None) });
    }
    if let Some((_, rest)) = first.split_once("Maximum execution time of ") {
        let seconds = rest.split_once(" second").and_then(|(n, _)| n.trim().parse().ok());
        let at = needed_by?;
        let (script, line) = match at.rsplit_once(':') {
            Some((script, line)) => (script.to_string(), line.parse().ok()),
            None => (at, None),
        };
        return Some(Classified::new(
            Cause::Timeout,
            PathBuf::from(script),
            Some(Detail::Timeout {
                limit: Limit::MaxExecutionTime,
                seconds,
                line,
                pool: None,
                request: request_of(entry),
                upstream: None,
                during: None,
                setting: "max_execution_time".into(),
            }),
        ));
    }
    if let Some((_, rest)) = first.split_once("open_basedir restriction in effect. File(") {
        let (file, rest) = rest.split_once(") is not within the allowed path(s): (")?;
        let allowed = rest.split_once(')').map_or(rest, |(a, _)| a);
        let allowed = allowed.split(':').filter(|a| !a.is_empty()).map(str::to_string).take(32).collect();
        let needed_by = needed_by.filter(|n| !n.starts_with(file));
        return Some(Classified {
            needed_by,
            ..Classified::new(Cause::Unreadable, PathBuf::from(file), Some(Detail::OpenBasedir { allowed }))
        });
    }
    let missing = first.contains("No such file or directory")
        || first.contains("Failed opening required")
        || first.contains("File does not exist");
    let denied = first.contains("Permission denied")
        || first.contains("permissions are missing")
        || first.contains("Operation not permitted");
    let cause = match (missing, denied) {
        (_, true) => Cause::Unreadable,
        (true, false) => Cause::Missing,
        _ => return None,
    };
    // PHP's fatal `Failed opening required` follows the warning that said why; alone it only says it failed.
    let says_why = first.contains("No such file or directory") || first.contains("File does not exist") || denied;
    // The first path is the one that failed; a later `in /x.php` is the script that asked for it.
    plain(cause, paths.first()?, needed_by).map(|c| Classified { why_unsaid: !says_why, ..c })
}

/// nginx: `connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to
/// upstream`; Apache: `(111)Connection refused: AH02454: FCGI: attempt to connect to Unix domain socket /x.sock
/// (localhost:8000) failed` (or `AH00957: FCGI: attempt to connect to 127.0.0.1:9000 (…) failed`).
fn backend(message: &str, entry: &Entry) -> Option<Classified> {
    let (address, errno, reason) = if let Some(rest) = message.strip_prefix("connect() to ") {
        if !message.contains("while connecting to upstream") {
            return None;
        }
        let (address, rest) = rest.split_once(" failed (")?;
        let (errno, reason) = rest.split_once(')').map_or(rest, |(e, _)| e).split_once(": ")?;
        (address.to_string(), errno.to_string(), reason.to_string())
    } else if let Some((before, rest)) = message.split_once("FCGI: attempt to connect to ") {
        let rest = rest.strip_suffix(" failed")?;
        let address = match rest.strip_prefix("Unix domain socket ") {
            Some(socket) => format!("unix:{}", socket.split_once(" (").map_or(socket, |(s, _)| s)),
            None => rest.split_once(" (").map_or(rest, |(a, _)| a).to_string(),
        };
        // `(111)Connection refused: AH…`
        let (errno, reason) = before.strip_prefix('(')?.split_once(')')?;
        let reason = reason.split_once(": ").map_or(reason, |(r, _)| r);
        (address, errno.to_string(), reason.to_string())
    } else {
        return None;
    };
    let socket = address.strip_prefix("unix:").map(str::to_string);
    // Where nginx or Apache may not connect, the socket's owner or mode is the cause, not the backend.
    if errno == "13" {
        return Some(Classified::new(Cause::Unreadable, PathBuf::from(socket.unwrap_or(address)), None));
    }
    let reason = match errno.as_str() {
        "111" => "connection refused".to_string(),
        "2" => "the socket does not exist".to_string(),
        _ => reason.to_lowercase(),
    };
    let name = socket.as_deref().and_then(|s| s.rsplit('/').next()).and_then(|n| n.strip_suffix(".sock"));
    let service = name.filter(|n| n.starts_with("php")).map(str::to_string);
    let php = entry.upstream.starts_with("fastcgi://")
        || message.contains("FCGI:")
        || address.contains("php")
        || address.contains("fpm");
    let path = PathBuf::from(socket.unwrap_or_else(|| address.clone()));
    Some(Classified::new(Cause::BackendDown, path, Some(Detail::Backend { address, reason, service, php })))
}

/// Apache's proxy: `AH01079: failed to make connection to backend: localhost` — the request's side of an
/// `AH02454`/`AH00957` connect failure, which names the socket or address (the host here is only the URL's).
pub(super) fn apache_no_connection(message: &str, entry: &Entry) -> Option<Classified> {
    let (_, host) = message.split_once("AH01079: failed to make connection to backend: ")?;
    let address = host.trim().to_string();
    let php = entry.module == "proxy_fcgi";
    let reason = "failed to make a connection".to_string();
    Some(Classified::new(
        Cause::BackendDown,
        PathBuf::from(&address),
        Some(Detail::Backend { address, reason, service: None, php }),
    ))
}

/// FPM: `[pool www] server reached pm.max_children setting (5), consider raising it` (the pool is the entry's
/// module).
fn saturation(message: &str, entry: &Entry) -> Option<Classified> {
    let (_, rest) = message
        .split_once("server reached pm.max_children setting (")
        .or_else(|| message.split_once("server reached max_children setting ("))?;
    let max_children = rest.split_once(')').and_then(|(n, _)| n.parse().ok());
    let pool = if entry.module.is_empty() { "?".to_string() } else { entry.module.clone() };
    Some(Classified::new(
        Cause::Saturated,
        PathBuf::from(format!("pool {pool}")),
        Some(Detail::Saturation { pool, max_children }),
    ))
}

/// `GET /slow.php` from nginx's `request: "GET /slow.php?id=1 HTTP/1.1"`: method and path, without the query
/// string (it may carry tokens) or the protocol.
fn request_of(entry: &Entry) -> Option<String> {
    short_request(&entry.request)
}

fn short_request(request: &str) -> Option<String> {
    let mut words = request.split_whitespace();
    let method = words.next()?;
    let target = words.next().unwrap_or("");
    let path = target.split(['?', '#']).next().unwrap_or("");
    let short = if path.is_empty() { method.to_string() } else { format!("{method} {path}") };
    Some(lookout_core::text::truncate(&short, 200))
}

/// What FPM's master says about one request that ran long.
pub(super) struct FpmRequest<'a> {
    pub child: u32,
    pub script: &'a str,
    /// `GET /slow.php`, without the query string.
    pub request: Option<String>,
    /// Whole seconds it had run.
    pub seconds: Option<u64>,
    /// Killed (request_terminate_timeout), rather than only logged (slowlog).
    pub terminated: bool,
}

/// FPM's `[pool www] child 1234, script '/srv/www/slow.php' (request: "GET /slow.php?x=1") execution timed out
/// (30.012345 sec), terminating` (or `executing too slow (5.012345 sec), logging`).
pub(super) fn fpm_request(message: &str) -> Option<FpmRequest<'_>> {
    let rest = message.strip_prefix("child ")?;
    let (child, rest) = rest.split_once(", script '")?;
    let child = child.parse().ok()?;
    let (script, rest) = rest.split_once("' (request: \"")?;
    let (request, tail, terminated) = if let Some((r, t)) = rest.rsplit_once("\") execution timed out (") {
        (r, t, true)
    } else if let Some((r, t)) = rest.rsplit_once("\") executing too slow (") {
        (r, t, false)
    } else {
        return None;
    };
    let seconds = tail.split_once(" sec)").and_then(|(n, _)| n.split('.').next()).and_then(|n| n.parse().ok());
    Some(FpmRequest { child, script, request: short_request(request), seconds, terminated })
}

/// A request that ran out of time, as FPM (request_terminate_timeout, slowlog), nginx (`upstream timed out`) or
/// Apache (`(70007)The timeout specified has expired: … AH01075`/`AH01102`) says. PHP's own max_execution_time
/// is in [`classify`] (it names the script like the file errors).
fn timeout(message: &str, entry: &Entry) -> Option<Classified> {
    let pool = (!entry.module.is_empty()).then(|| entry.module.clone());
    if let Some(FpmRequest { script, request, seconds, terminated, .. }) = fpm_request(message) {
        let (cause, limit, setting) = if terminated {
            (Cause::Timeout, Limit::RequestTerminateTimeout, "request_terminate_timeout")
        } else {
            (Cause::Slow, Limit::Slowlog, "request_slowlog_timeout")
        };
        let detail = Detail::Timeout {
            limit,
            seconds,
            line: None,
            pool,
            request,
            upstream: None,
            during: None,
            setting: setting.into(),
        };
        return Some(Classified::new(cause, PathBuf::from(script), Some(detail)));
    }
    if let Some(rest) = message.strip_prefix("upstream timed out ") {
        let during = rest.split_once(" while ").map(|(_, d)| d.trim().to_string());
        let upstream = entry.upstream.trim_end_matches(':');
        let scheme = upstream.split_once("://").map_or("", |(s, _)| s);
        let prefix = match scheme {
            "fastcgi" => "fastcgi",
            "uwsgi" => "uwsgi",
            "scgi" => "scgi",
            "grpc" => "grpc",
            _ => "proxy",
        };
        let what = match during.as_deref() {
            Some(d) if d.starts_with("connecting") => "connect",
            Some(d) if d.starts_with("sending") => "send",
            _ => "read",
        };
        let request = request_of(entry);
        let upstream = (!upstream.is_empty()).then(|| upstream.to_string());
        let path = request.clone().or_else(|| upstream.clone()).unwrap_or_else(|| "upstream".into());
        let detail = Detail::Timeout {
            limit: Limit::Upstream,
            seconds: None,
            line: None,
            pool: None,
            request,
            upstream,
            during,
            setting: format!("{prefix}_{what}_timeout"),
        };
        return Some(Classified::new(Cause::Timeout, PathBuf::from(path), Some(detail)));
    }
    // Apache logs the OS error first: `(70007)The timeout specified has expired: [client …] AH01075: …`.
    if !message.starts_with("(70007)") {
        return None;
    }
    // AH01075 names no backend: its `to %s` is the port Apache itself listens on (for the Via header).
    let (upstream, during, path) = if message.contains("AH01075: Error dispatching request to ") {
        (None, "waiting for PHP-FPM's response", "proxy_fcgi backend".to_string())
    } else if let Some((_, server)) = message.split_once("AH01102: error reading status line from remote server ") {
        let server = server.trim().to_string();
        (Some(server.clone()), "reading the status line", server)
    } else {
        return None;
    };
    let detail = Detail::Timeout {
        limit: Limit::Upstream,
        seconds: None,
        line: None,
        pool: None,
        request: None,
        upstream,
        during: Some(during.into()),
        setting: "ProxyTimeout".into(),
    };
    Some(Classified::new(Cause::Timeout, PathBuf::from(path), Some(detail)))
}

/// FPM's `[pool www] child 1234 exited on signal 15 (SIGTERM) after 40.500000 seconds from start`: the child (what
/// follows a request_terminate_timeout).
pub(super) fn fpm_child_signalled(message: &str) -> Option<u32> {
    let (child, rest) = message.strip_prefix("child ")?.split_once(" exited on signal ")?;
    rest.starts_with(|c: char| c.is_ascii_digit()).then_some(())?;
    child.parse().ok()
}

/// Signals that mean a worker crashed rather than was stopped. SIGTERM, SIGQUIT and SIGKILL are how FPM's master
/// (and an operator, or the OOM killer) stops workers — at a reload, at `request_terminate_timeout` (which
/// [`super::Gather`] reads as the timeout's evidence) — so they are not crashes by themselves.
const CRASH_SIGNALS: [&str; 7] = ["SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL", "SIGFPE", "SIGSYS", "SIGTRAP"];

/// FPM's master: `[pool www] child 1234 exited on signal 11 (SIGSEGV - core dumped) after 12.345000 seconds from
/// start` (from `fpm_children_bury`; the pool is the entry's module) → [`Cause::Crashed`], when the signal is
/// one of [`CRASH_SIGNALS`] (or it dumped core, and is not SIGQUIT).
fn crash(message: &str, entry: &Entry) -> Option<Classified> {
    let (_, rest) = message.strip_prefix("child ")?.split_once(" exited on signal ")?;
    let (number, rest) = rest.split_once(' ')?;
    let number: u32 = number.parse().ok()?;
    let inside = rest.strip_prefix('(')?.split_once(')').map(|(s, _)| s)?;
    let (name, core_dumped) = match inside.strip_suffix(" - core dumped") {
        Some(name) => (name, true),
        None => (inside, false),
    };
    let crashed = CRASH_SIGNALS.contains(&name) || (core_dumped && name != "SIGQUIT");
    if !crashed {
        return None;
    }
    let signal = if name.is_empty() { format!("signal {number}") } else { lookout_core::text::truncate(name, 16) };
    let pool = if entry.module.is_empty() { "?".to_string() } else { entry.module.clone() };
    Some(Classified::new(
        Cause::Crashed,
        PathBuf::from(format!("pool {pool}")),
        Some(Detail::Crash { pool, signals: vec![SignalCount { signal, count: 1 }], core_dumped }),
    ))
}

/// A backend gone mid-request, as the web server saw it. nginx: `recv() failed (104: Connection reset by peer)
/// while reading response header from upstream`, `upstream prematurely closed connection while reading response
/// header from upstream` (the generic upstream's EOF), `upstream prematurely closed FastCGI stdout while reading
/// response header from upstream` (fastcgi's); Apache's proxy_fcgi: `AH01067: Failed to read FastCGI header`, and
/// `(104)Connection reset by peer: [client …] AH01075: Error dispatching request to :18978:` (which
/// [`super::Gather`] takes as the AH01067's evidence when it follows one).
fn closed(message: &str, entry: &Entry) -> Option<Classified> {
    let reason = if message.starts_with("recv() failed (104: Connection reset by peer) while reading response header")
        || (message.starts_with("(104)Connection reset by peer: ") && message.contains(" AH01075: "))
    {
        "connection reset by peer"
    } else if message.starts_with("upstream prematurely closed FastCGI stdout while reading response header") {
        "closed FastCGI stdout before the header"
    } else if message.starts_with("upstream prematurely closed connection while reading response header") {
        "closed the connection"
    } else if message.contains("AH01067: Failed to read FastCGI header") {
        "no FastCGI header"
    } else {
        return None;
    };
    let upstream = entry.upstream.trim_end_matches(':');
    let upstream = (!upstream.is_empty()).then(|| lookout_core::text::truncate(upstream, 300));
    let php = upstream.as_deref().is_none_or(|u| u.starts_with("fastcgi://")) || entry.module == "proxy_fcgi";
    let path = upstream.clone().unwrap_or_else(|| "proxy_fcgi backend".into());
    let requests = request_of(entry).into_iter().collect();
    Some(Classified::new(
        Cause::BackendClosed,
        PathBuf::from(path),
        Some(Detail::Closed { upstream, reason: reason.into(), requests, php }),
    ))
}

/// Apache's `AH01067` (proxy_fcgi found no FastCGI header): the `AH01075` the same thread logs next is its
/// evidence.
pub(super) fn apache_no_header(message: &str) -> bool {
    message.contains("AH01067: Failed to read FastCGI header")
}

/// Apache's `AH01075: Error dispatching request to …` that is not a timeout (those are [`Cause::Timeout`]).
pub(super) fn apache_dispatch_error(message: &str) -> bool {
    message.contains(" AH01075: Error dispatching request to ") && !message.starts_with("(70007)")
}
