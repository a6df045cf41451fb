//! Root causes read from the error logs alone: what PHP, Apache, nginx or PHP-FPM said they could not open, parse
//! or reach, what ran out of time, which workers crashed — grouped by cause and file across every log given, ranked
//! by how often (context such as a full pool, slow scripts and `Primary script unknown` after every root cause),
//! with hints. This is the diagnosis that works without the privilege to trace, and the only one for failures that
//! make no syscall fail (PHP parse errors, open_basedir) or happen outside the traced processes (PHP-FPM down or
//! crashing).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lookout_logs::error_log::{self, Entries, Entry, ErrorFormat};
use serde::Serialize;

use crate::hints::{self, Missing};

mod classify;

pub use classify::{Detail, Limit, SignalCount};
pub use lookout_core::Cause;

/// Error-log entries kept as evidence per finding.
const EVIDENCE_LINES: usize = 3;
/// One piece of evidence is cut here (an entry may be a whole stack trace).
const EVIDENCE_CHARS: usize = 4000;

/// One probable root cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    /// The file (for `BackendDown` the socket, or `host:port`; for `Saturated` and `Crashed` `pool NAME`; for
    /// `Timeout` and `Slow` the script, else the request `GET /x.php` or the upstream; for `ScriptUnknown`
    /// `SCRIPT_FILENAME`; for `BackendClosed` the upstream, or `proxy_fcgi backend` for Apache).
    pub path: PathBuf,
    /// The script that needed it (`in /var/www/html/index.php:3`), when the log says.
    pub needed_by: Option<String>,
    /// Messages that said so (one log entry may carry several, e.g. PHP's warning and fatal error).
    pub occurrences: u64,
    /// Unix milliseconds of the first and last message.
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// For `Missing`: what exists nearby now.
    pub hint: Option<Missing>,
    /// For `Missing`: the existing path that differs from it only by case, at any step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_only: Option<PathBuf>,
    /// For `Missing`: it is a symlink, and this is the target that does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dangling_target: Option<PathBuf>,
    /// open_basedir's allowed paths, the backend that is down, the pool that is full, the limit a request ran
    /// into, the requests PHP-FPM found no script for, whose permissions a denial was checked with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// Whether the path exists now (a missing file that exists now was fixed, or is a different problem).
    pub exists_now: bool,
    /// A few of the error-log entries behind it, verbatim (an entry may span lines).
    pub evidence: Vec<String>,
    /// The process that failed, when it wrote the entry itself (Apache's mod_php child, an nginx worker, an FPM
    /// child): for a denial, its credentials are the ones checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The first message that said so (one PHP message, without the log's prefix).
    pub message: String,
    /// One sentence for humans, the verdict first.
    pub summary: String,
}

impl Finding {
    /// The finding as an incident keeps it.
    pub fn diagnosis(&self) -> lookout_core::Diagnosis {
        // Only a missing or unreadable file is a path an incident checks again at its resolution; a pool, a TCP
        // address, a request or a slow script is not.
        let path = match self.cause {
            Cause::Saturated
            | Cause::Timeout
            | Cause::Slow
            | Cause::ScriptUnknown
            | Cause::Crashed
            | Cause::BackendClosed => None,
            _ if !self.path.is_absolute() => None,
            _ => Some(self.path.display().to_string()),
        };
        lookout_core::Diagnosis {
            verdict: self.summary.clone(),
            cause: Some(self.cause),
            path,
            source: "error log".into(),
            evidence: self.evidence.clone(),
        }
    }
}

/// What was read from one error log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRead {
    pub path: PathBuf,
    /// The format it was read in (detected when not given); `None` when no line fits any.
    pub format: Option<ErrorFormat>,
    pub entries: usize,
    /// Lines that fit no entry (skipped).
    pub malformed: u64,
}

/// The findings from several error logs, merged by cause and path, and what was read from each.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diagnosed {
    pub findings: Vec<Finding>,
    pub logs: Vec<LogRead>,
}

/// An error log that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the error log {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A finding's identity: cause, path, and for timeouts which limit (PHP's and FPM's for one script say different
/// things).
type Key = (Cause, PathBuf, Option<Limit>);

/// Findings gathered over one or more logs; [`Gather::finish`] ranks them and adds hints.
#[derive(Default)]
struct Gather {
    by_key: HashMap<Key, Finding>,
    order: Vec<Key>,
    /// FPM children killed by request_terminate_timeout → their finding (the child's exit is more evidence).
    terminated: HashMap<(String, u32), Key>,
    /// The last connect failure Apache logged per process (`AH02454`), for the `AH01079` that follows it.
    connect_failed: HashMap<Option<u32>, (Option<i64>, Key)>,
    /// The last `AH01067` (no FastCGI header) per Apache process, for the one `AH01075` that follows it.
    no_header: HashMap<Option<u32>, (Option<i64>, Key)>,
}

/// Distinct example requests kept for `Primary script unknown`.
const EXAMPLE_REQUESTS: usize = 3;

impl Gather {
    fn add(&mut self, entries: &Entries, since_ms: Option<i64>) {
        for entry in &entries.entries {
            if let (Some(since), Some(t)) = (since_ms, entry.time_ms)
                && t < since
            {
                continue;
            }
            for message in &entry.messages {
                if self.follows_up(message, entry) {
                    continue;
                }
                let Some(c) =
                    classify::classify(message, entry).or_else(|| classify::apache_no_connection(message, entry))
                else {
                    continue;
                };
                let limit = match &c.detail {
                    Some(Detail::Timeout { limit, .. }) => Some(*limit),
                    _ => None,
                };
                let mut key = (c.cause, c.path.clone(), limit);
                let denied = (Cause::Unreadable, c.path.clone(), None);
                if c.why_unsaid && self.by_key.contains_key(&denied) {
                    key = denied;
                }
                if limit == Some(Limit::RequestTerminateTimeout)
                    && let Some(classify::FpmRequest { child, .. }) = classify::fpm_request(message)
                {
                    self.terminated.insert((entry.module.clone(), child), key.clone());
                }
                if c.cause == Cause::BackendDown && message.contains("attempt to connect to") {
                    self.connect_failed.insert(entry.pid, (entry.time_ms, key.clone()));
                }
                if classify::apache_no_header(message) {
                    self.no_header.insert(entry.pid, (entry.time_ms, key.clone()));
                }
                let f = self.by_key.entry(key.clone()).or_insert_with(|| {
                    self.order.push(key);
                    Finding {
                        cause: c.cause,
                        path: c.path.clone(),
                        needed_by: None,
                        occurrences: 0,
                        first_seen_ms: entry.time_ms,
                        last_seen_ms: entry.time_ms,
                        hint: None,
                        case_only: None,
                        dangling_target: None,
                        detail: None,
                        exists_now: false,
                        evidence: Vec::new(),
                        pid: None,
                        message: lookout_core::text::truncate(message, EVIDENCE_CHARS),
                        summary: String::new(),
                    }
                });
                f.occurrences += 1;
                // Logs are read one after the other: the earliest and latest over all of them.
                f.first_seen_ms = min_some(f.first_seen_ms, entry.time_ms);
                f.last_seen_ms = max_some(f.last_seen_ms, entry.time_ms);
                if f.needed_by.is_none() {
                    f.needed_by = c.needed_by;
                }
                // The latest writer is the likeliest still to run.
                f.pid = c.pid.or(f.pid);
                match (&mut f.detail, c.detail) {
                    (Some(Detail::ScriptUnknown { requests }), Some(Detail::ScriptUnknown { requests: more })) => {
                        for r in more {
                            if requests.len() < EXAMPLE_REQUESTS && !requests.contains(&r) {
                                requests.push(r);
                            }
                        }
                    }
                    (
                        Some(Detail::Crash { signals, core_dumped, .. }),
                        Some(Detail::Crash { signals: more, core_dumped: dumped, .. }),
                    ) => {
                        *core_dumped |= dumped;
                        for s in more {
                            match signals.iter_mut().find(|known| known.signal == s.signal) {
                                Some(known) => known.count += s.count,
                                None => signals.push(s),
                            }
                        }
                    }
                    (Some(Detail::Closed { requests, .. }), Some(Detail::Closed { requests: more, .. })) => {
                        for r in more {
                            if requests.len() < EXAMPLE_REQUESTS && !requests.contains(&r) {
                                requests.push(r);
                            }
                        }
                    }
                    (detail @ None, new) => *detail = new,
                    (detail, new @ Some(Detail::OpenBasedir { .. })) => *detail = new,
                    _ => {}
                }
                push_evidence(f, entry);
            }
        }
    }

    /// Whether `message` only adds to a finding already made: FPM's `child N exited on signal 15` after it
    /// killed N for request_terminate_timeout, Apache's `AH01079` after the `AH02454` of the same process and
    /// moment, Apache's `AH01075` after the `AH01067` (one each: a thread logs both for one request). Its entry
    /// becomes evidence; it is not counted again.
    fn follows_up(&mut self, message: &str, entry: &Entry) -> bool {
        let key = if let Some(child) = classify::fpm_child_signalled(message) {
            self.terminated.remove(&(entry.module.clone(), child))
        } else if classify::apache_dispatch_error(message) {
            match self.no_header.remove(&entry.pid) {
                Some((at, key)) if at.zip(entry.time_ms).is_some_and(|(a, b)| (b - a).abs() <= 1000) => Some(key),
                _ => None,
            }
        } else if message.contains("AH01079: ") {
            match self.connect_failed.get(&entry.pid) {
                Some((at, key)) if at.zip(entry.time_ms).is_some_and(|(a, b)| (b - a).abs() <= 1000) => {
                    Some(key.clone())
                }
                _ => None,
            }
        } else {
            None
        };
        match key.and_then(|k| self.by_key.get_mut(&k)) {
            Some(f) => {
                push_evidence(f, entry);
                true
            }
            None => false,
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self.order.into_iter().filter_map(|k| self.by_key.remove(&k)).collect();
        // Root causes first, the most often logged first (the same file reported as missing by a warning and a
        // fatal error is one finding, counted per message); then what is context, in a fixed order: a full pool,
        // slow scripts, requests for scripts PHP-FPM did not find.
        // A backend that closed connections is the web server's view of workers that died: where PHP-FPM's log
        // says why (a crash, a request_terminate_timeout kill), that is the root cause and the closed connections
        // are context — a finding of their own after it (not merged into it: they name the requests that failed,
        // and nginx's and FPM's logs do not say which closed connection was which worker).
        let killed = findings.iter().any(|f| {
            f.cause == Cause::Crashed
                || matches!(f.detail, Some(Detail::Timeout { limit: Limit::RequestTerminateTimeout, .. }))
        });
        let context = |f: &Finding| is_context(f.cause) || (killed && f.cause == Cause::BackendClosed);
        findings.sort_by(|a, b| {
            let (ta, tb) = (context(a), context(b));
            ta.cmp(&tb)
                .then(if ta && tb { rank(a).cmp(&rank(b)) } else { std::cmp::Ordering::Equal })
                .then(b.occurrences.cmp(&a.occurrences))
                .then(rank(a).cmp(&rank(b)))
        });
        // `Primary script unknown` and nothing else that shows a script ran: every PHP request that failed, failed
        // for it — the web server passes PHP-FPM a wrong path.
        let script_unknown_alone = findings.iter().any(|f| f.cause == Cause::ScriptUnknown)
            && findings.iter().all(|f| matches!(f.cause, Cause::ScriptUnknown | Cause::Saturated));
        if script_unknown_alone && let Some(i) = findings.iter().position(|f| f.cause == Cause::ScriptUnknown) {
            let f = findings.remove(i);
            findings.insert(0, f);
        }
        // A backend that is down as of the last thing the logs say explains every failure now; what failed
        // before it is history, however often it was logged.
        let latest = findings.iter().filter_map(|f| f.last_seen_ms).max();
        if let Some(i) = findings.iter().position(|f| f.cause == Cause::BackendDown && f.last_seen_ms == latest) {
            let down = findings.remove(i);
            findings.insert(0, down);
        }
        for f in &mut findings {
            let is_context = context(f);
            f.exists_now = f.path.is_absolute() && f.path.symlink_metadata().is_ok();
            if f.cause == Cause::Missing {
                f.dangling_target = hints::dangling(&f.path);
                if f.dangling_target.is_none() {
                    f.hint = hints::enoent(&f.path);
                    f.case_only = hints::ignoring_case(&f.path);
                }
            }
            if f.cause == Cause::Unreadable && f.detail.is_none() && f.path.is_absolute() && !is_socket(&f.path) {
                // The process that was refused, if it still runs; else the user web servers run as on Debian.
                let reader = f.pid.and_then(hints::process_reader).or_else(|| hints::user_reader(WEB_USER));
                let steps = match &reader {
                    Some(r) => hints::eacces(&f.path, r.uid, &r.gids),
                    None => Vec::new(),
                };
                f.detail = Some(Detail::Access { reader, steps });
            }
            f.summary = summary(f, script_unknown_alone, is_context);
        }
        findings
    }
}

/// The user web servers and PHP-FPM pools run as on Debian and Ubuntu, whose permissions are checked when the
/// process that was refused is not known or is gone.
const WEB_USER: &str = "www-data";

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    path.metadata().is_ok_and(|m| m.file_type().is_socket())
}

fn push_evidence(f: &mut Finding, entry: &Entry) {
    let evidence = lookout_core::text::truncate(entry.text.trim_end(), EVIDENCE_CHARS);
    if f.evidence.len() < EVIDENCE_LINES && !f.evidence.contains(&evidence) {
        f.evidence.push(evidence);
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Reads `lines` of an error log (in `format`, or recognised with [`ErrorFormat::Auto`]) and returns findings,
/// most frequent first.
pub fn diagnose<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    format: ErrorFormat,
    since_ms: Option<i64>,
) -> Vec<Finding> {
    let mut g = Gather::default();
    g.add(&error_log::entries::read(format, lines), since_ms);
    g.finish()
}

/// Context, not a root cause by itself: a full pool, a slow script, requests for scripts that PHP-FPM did not
/// find (bots asking for `/wp-login.php` make those on any site).
fn is_context(c: Cause) -> bool {
    matches!(c, Cause::Saturated | Cause::Slow | Cause::ScriptUnknown)
}

/// Order among findings logged as often: what names the most precise cause first. A script's own time limit names
/// its line, FPM's names the script, the web server's only the request.
fn rank(f: &Finding) -> u8 {
    let limit = match &f.detail {
        Some(Detail::Timeout { limit, .. }) => Some(*limit),
        _ => None,
    };
    // A crash names the pool and the signal, not the script: after what names a file, before what only names a
    // request. A closed connection is only the web server's view of a worker that died.
    match f.cause {
        Cause::BackendDown => 0,
        Cause::ParseError => 1,
        Cause::Missing => 2,
        Cause::Unreadable => 3,
        Cause::Timeout => match limit {
            Some(Limit::MaxExecutionTime) => 4,
            Some(Limit::RequestTerminateTimeout) => 5,
            _ => 7,
        },
        Cause::Crashed => 6,
        Cause::BackendClosed => 8,
        Cause::Failing => 9,
        Cause::Saturated => 10,
        Cause::Slow => 11,
        Cause::ScriptUnknown => 12,
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "?".into(), |ms| lookout_core::Timestamp::from_millis(ms).to_rfc3339_seconds())
}

/// `is_context`: the finding is context for a root cause found beside it (a closed connection beside a crash).
fn summary(f: &Finding, script_unknown_alone: bool, is_context: bool) -> String {
    let p = f.path.display();
    let seen = format!(
        "{} error-log line{} from {} to {}",
        f.occurrences,
        if f.occurrences == 1 { "" } else { "s" },
        when(f.first_seen_ms),
        when(f.last_seen_ms)
    );
    let by = f.needed_by.as_deref().map(|s| format!("required by {s}; ")).unwrap_or_default();
    match f.cause {
        Cause::Missing if f.dangling_target.is_some() => format!(
            "Probable root cause: {p} is a symlink to {}, which does not exist (dangling; {by}{seen})",
            f.dangling_target.as_deref().unwrap_or(Path::new("?")).display()
        ),
        Cause::Missing if f.exists_now => format!("{p} was missing ({by}{seen}); it exists now"),
        Cause::Missing => {
            let mut s = match &f.hint {
                Some(Missing::Directory { deepest_existing, missing, .. }) => format!(
                    "Probable root cause: {p} does not exist: directory {missing:?} is missing under {} ({by}{seen})",
                    deepest_existing.display()
                ),
                _ => format!("Probable root cause: {p} does not exist ({by}{seen})"),
            };
            // The whole path found ignoring case says more than the nearest name in one directory.
            let best = match &f.case_only {
                Some(c) => Some((c.as_path(), hints::Difference::Case)),
                None => f.hint.as_ref().and_then(Missing::best),
            };
            if let Some((best, difference)) = best {
                s.push_str(&format!("; did you mean {}?", best.display()));
                if let Some(says) = difference.says() {
                    s.push_str(&format!(" ({says})"));
                }
            }
            s
        }
        Cause::Unreadable => match &f.detail {
            Some(Detail::OpenBasedir { allowed }) => format!(
                "Probable root cause: open_basedir restriction in effect: PHP may not open {p}, which is not within the allowed path(s) {} ({by}{seen}); add its directory to open_basedir or move the file under an allowed path",
                allowed.join(":")
            ),
            Some(Detail::Access { reader, .. }) => format!(
                "Probable root cause: the web server may not read {p} (permission denied; {seen}): {}",
                hints::eacces_says(&f.path, reader.as_ref())
            ),
            _ => {
                let mode = std::fs::metadata(&f.path)
                    .map(|m| {
                        use std::os::unix::fs::MetadataExt;
                        format!("; it is owned by uid {} gid {} with mode {:o}", m.uid(), m.gid(), m.mode() & 0o7777)
                    })
                    .unwrap_or_default();
                format!("Probable root cause: the web server may not read {p} (permission denied; {seen}){mode}")
            }
        },
        Cause::ParseError => {
            let what = f
                .message
                .split_once("PHP Parse error:")
                .map(|(_, m)| m.lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            format!("Probable root cause: PHP cannot parse {p} ({seen}): {what}")
        }
        Cause::BackendDown => {
            let (address, reason, service, php) = match &f.detail {
                Some(Detail::Backend { address, reason, service, php }) => {
                    (address.as_str(), reason.as_str(), service.as_deref(), *php)
                }
                _ => ("?", "not answering", None, true),
            };
            if php {
                format!(
                    "Probable root cause: PHP-FPM is not answering at {address} ({reason}; {seen}): start or restart {}",
                    service.unwrap_or("PHP-FPM")
                )
            } else {
                format!(
                    "Probable root cause: the upstream server is not answering at {address} ({reason}; {seen}): start or restart it"
                )
            }
        }
        Cause::Saturated => {
            let (pool, max) = match &f.detail {
                Some(Detail::Saturation { pool, max_children }) => {
                    (pool.as_str(), max_children.map(|n| format!(" ({n})")).unwrap_or_default())
                }
                _ => ("?", String::new()),
            };
            format!(
                "Probable cause: PHP-FPM pool {pool} is saturated: it reached pm.max_children{max} ({seen}); requests wait for a free worker and may time out: raise pm.max_children if memory allows, or find what makes requests slow"
            )
        }
        Cause::Timeout | Cause::Slow => timeout_summary(f, &seen),
        Cause::Crashed => crash_summary(f, &seen),
        Cause::BackendClosed => closed_summary(f, &seen, is_context),
        Cause::ScriptUnknown => {
            let requests = match &f.detail {
                Some(Detail::ScriptUnknown { requests }) if !requests.is_empty() => {
                    format!("e.g. {}; ", requests.join(", "))
                }
                _ => String::new(),
            };
            let n = f.occurrences;
            let check = "check the SCRIPT_FILENAME the web server passes (nginx: root and fastcgi_param SCRIPT_FILENAME; Apache: the path of ProxyPass or SetHandler \"proxy:unix:…|fcgi://…\")";
            if script_unknown_alone {
                format!(
                    "Probable root cause: PHP-FPM found no script for every PHP request that failed (\"Primary script unknown\"; {requests}{seen}): {check}"
                )
            } else {
                format!(
                    "Also: PHP-FPM found no script for {n} request{} (\"Primary script unknown\", answered 404; {requests}{seen}): if those scripts exist, {check}",
                    if n == 1 { "" } else { "s" }
                )
            }
        }
        // The error log classifies only the causes above; a trace finds other errnos.
        Cause::Failing => format!("Probable root cause: the server cannot use {p} ({seen})"),
    }
}

/// Which pool's workers crashed, of which signals, and where to look.
fn crash_summary(f: &Finding, seen: &str) -> String {
    let Some(Detail::Crash { pool, signals, core_dumped }) = &f.detail else {
        return format!("Probable root cause: PHP-FPM workers crashed ({seen})");
    };
    let signals: Vec<String> = signals
        .iter()
        .map(|s| if s.count > 1 { format!("{} {}×", s.signal, s.count) } else { s.signal.clone() })
        .collect();
    let signals = signals.join(", ");
    let who = if f.occurrences == 1 {
        format!("a PHP-FPM worker of pool {pool} crashed")
    } else {
        format!("PHP-FPM workers of pool {pool} crashed {}×", f.occurrences)
    };
    // Without a core there is nothing to load into gdb: say how to get one.
    let look = if *core_dumped {
        "the core dump (core_pattern says where; `coredumpctl` under systemd) or `dmesg` says in which library"
    } else {
        "`dmesg` says in which library; for a core dump set rlimit_core = unlimited in the pool"
    };
    let dumped = if *core_dumped { ", core dumped" } else { "" };
    format!(
        "Probable root cause: {who} ({signals}{dumped}; {seen}): the request each was serving got no answer (nginx answers 502, Apache 503); a PHP extension or opcache is failing, not a script's own error: {look}"
    )
}

/// A backend that closed connections mid-request: alone a root cause (its log says more), beside a crash or a
/// kill its effect.
fn closed_summary(f: &Finding, seen: &str, is_context: bool) -> String {
    let Some(Detail::Closed { upstream, reason, requests, php }) = &f.detail else {
        return format!(
            "Probable root cause: the backend {} closed connections mid-request ({seen})",
            f.path.display()
        );
    };
    let backend = match (upstream, php) {
        (Some(u), _) => format!("the backend at {u}"),
        (None, true) => "PHP-FPM".to_string(),
        (None, false) => "the backend".to_string(),
    };
    let n = f.occurrences;
    let what = if n == 1 { "a request".to_string() } else { format!("{n} requests") };
    let examples = if requests.is_empty() { String::new() } else { format!("e.g. {}; ", requests.join(", ")) };
    // nginx answers 502; Apache's proxy_fcgi (which names no upstream) 503.
    let status = if upstream.is_some() { 502 } else { 503 };
    let context = format!("{reason}; {examples}answered {status}; {seen}");
    if is_context {
        return format!(
            "Also: {backend} closed the connection before answering {what} ({context}): the worker serving each died (above)"
        );
    }
    let why = if *php {
        "a PHP-FPM worker died mid-request: PHP-FPM's log says why (`child N exited on signal 11 (SIGSEGV)` is a crash, `execution timed out` a request_terminate_timeout kill); read it too (--error-log)"
    } else {
        "the upstream server dropped the request: its own log says why"
    };
    format!("Probable root cause: {backend} closed the connection before answering {what} ({context}): {why}")
}

/// What ran out of time, which limit it ran into and what to do, for `Timeout` and `Slow`.
fn timeout_summary(f: &Finding, seen: &str) -> String {
    let p = f.path.display();
    let Some(Detail::Timeout { limit, seconds, line, pool, request, upstream, during, setting }) = &f.detail else {
        return format!("Probable root cause: a request to {p} ran out of time ({seen})");
    };
    let secs = seconds.map(|s| format!(" ({s} s)")).unwrap_or_default();
    let mut context: Vec<String> = Vec::new();
    if let Some(pool) = pool {
        context.push(format!("pool {pool}"));
    }
    if let Some(r) = request {
        context.push(format!("e.g. {r}"));
    }
    context.push(seen.to_string());
    let context = context.join("; ");
    match limit {
        Limit::MaxExecutionTime => {
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            format!(
                "Probable root cause: {p}{at} ran longer than PHP's max_execution_time{secs} and was stopped with a fatal error ({context}): find what it waits for, or raise max_execution_time"
            )
        }
        Limit::RequestTerminateTimeout => format!(
            "Probable root cause: {p} ran longer than PHP-FPM's request_terminate_timeout{secs} and was killed ({context}): the web server answered 502 or 504; find what it waits for (request_slowlog_timeout makes PHP-FPM log its stack), or raise request_terminate_timeout"
        ),
        Limit::Slowlog => format!(
            "Slow: {p} ran longer than PHP-FPM's request_slowlog_timeout{secs} ({context}); the pool's slowlog has the stack it was waiting in"
        ),
        // Apache's proxy: AH01075 names no backend (proxy_fcgi), AH01102 the server it read from (mod_proxy_http).
        Limit::Upstream if setting == "ProxyTimeout" => match upstream {
            None => format!(
                "Probable root cause: PHP-FPM did not answer in time: Apache's proxy_fcgi gave up waiting for its response (answered 503 or 504; {seen}): find which script is slow (PHP-FPM's slowlog says), or raise ProxyTimeout (or timeout= of the proxy worker)"
            ),
            Some(up) => format!(
                "Probable root cause: the upstream server {up} did not answer in time: Apache's mod_proxy gave up reading its status line (answered 502 or 504; {seen}): find what makes it slow, or raise ProxyTimeout"
            ),
        },
        Limit::Upstream => {
            let during = during.as_deref().map(|d| format!(" while {d}")).unwrap_or_default();
            let what = request.as_deref().unwrap_or("a request");
            let to = upstream.as_deref().map(|u| format!(" at {u}")).unwrap_or_default();
            format!(
                "Probable root cause: the backend{to} did not answer {what} in time: nginx waited longer than {setting}{during} (answered 504; {seen}): find what makes it slow, or raise {setting}"
            )
        }
    }
}

/// The verdict when nothing in the log explains the failures.
pub const NOTHING_FOUND: &str = "No probable cause in the error log: no file that could not be opened, read or parsed. If PHP runs with log_errors=Off, only a trace of the workers can tell";

/// Findings from the last `max_bytes` of each error log (what running servers wrote recently: nginx's and
/// PHP-FPM's, say), merged by cause and path. A log that cannot be read is reported beside the findings of the
/// others, not instead of them: FPM's log being unreadable must not hide what nginx's says.
pub fn diagnose_tails(
    paths: &[PathBuf],
    format: ErrorFormat,
    since_ms: Option<i64>,
    max_bytes: u64,
) -> (Vec<Finding>, Vec<ReadError>) {
    let mut g = Gather::default();
    let mut errors = Vec::new();
    for path in paths {
        match read_tail(path, max_bytes) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                // A partial first line (when starting mid-file) does not parse and is skipped (or joined to nothing).
                g.add(&error_log::entries::read(format, text.lines()), since_ms);
            }
            Err(source) => errors.push(ReadError { path: path.clone(), source }),
        }
    }
    (g.finish(), errors)
}

fn read_tail(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)))?;
    let mut bytes = Vec::new();
    file.take(max_bytes).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Findings from an error-log file (read whole).
pub fn diagnose_file(path: &Path, format: ErrorFormat, since_ms: Option<i64>) -> std::io::Result<Vec<Finding>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(diagnose(text.lines(), format, since_ms))
}

/// Findings from several error logs (nginx's and FPM's, say), each read whole in `format` (or recognised on its
/// own with [`ErrorFormat::Auto`]), merged by cause and path.
pub fn diagnose_files(paths: &[PathBuf], format: ErrorFormat, since_ms: Option<i64>) -> Result<Diagnosed, ReadError> {
    let mut g = Gather::default();
    let mut logs = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| ReadError { path: path.clone(), source })?;
        let text = String::from_utf8_lossy(&bytes);
        let entries = error_log::entries::read(format, text.lines());
        g.add(&entries, since_ms);
        logs.push(LogRead {
            path: path.clone(),
            format: entries.format,
            entries: entries.entries.len(),
            malformed: entries.malformed,
        });
    }
    Ok(Diagnosed { findings: g.finish(), logs })
}

#[cfg(test)]
mod tests;
