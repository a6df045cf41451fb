//! The condition language: a small, Gatus-compatible way to say what "healthy" means.
//!
//! ```text
//! [STATUS] == 200                         [RESPONSE_TIME] < 500
//! [BODY] not contains "Fatal error"       [BODY].data.items[0].state == "up"
//! [STATUS] == any(200, 204)               len([BODY].items) > 0
//! [HEADER].Content-Type contains "json"   [CERTIFICATE_EXPIRATION] > 72h
//! [BODY] matches "^ok$"                   [CONNECTED] == true
//! [BODY] == pat(*ready*)                  has([BODY].errors) == false
//! [DNS_RCODE] == NOERROR                  [PROTOCOL] == HTTP/2
//! ```
//!
//! A condition is parsed once (at config load, where a parse error points at the offending text) and then
//! evaluated against every observation. Evaluation never fails: a value that cannot be obtained (no status
//! because the connection was refused, a JSON path that is not there) makes the condition false, and the
//! description says what was seen.
//!
//! The pieces, by job: this file holds the types (a parsed [`Condition`], its placeholders, operators and
//! literals, the [`LogView`] of a log window, the located [`ConditionError`]); `parse` turns text into a
//! condition, `eval` evaluates one against an observation or a log window, and `judge` combines a list of them
//! into a [`Verdict`].

mod eval;
mod judge;
mod parse;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::fmt;

use regex::Regex;
use thiserror::Error;

pub use judge::{Verdict, judge, judge_log, judge_log_while, judge_while};

/// A condition that did not parse, with the part of it that is wrong.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ConditionError {
    pub message: String,
    /// Byte offset into the condition where the problem starts.
    pub start: usize,
    /// Length in bytes of the offending part (at least 1).
    pub len: usize,
}

impl ConditionError {
    fn new(message: impl Into<String>, start: usize, len: usize) -> Self {
        ConditionError { message: message.into(), start, len: len.max(1) }
    }

    /// The condition with a caret line under the offending part, for terminal output.
    pub fn pointer(&self, source: &str) -> String {
        let col = source.get(..self.start).map_or(0, |s| s.chars().count());
        let width =
            source.get(self.start..(self.start + self.len).min(source.len())).map_or(1, |s| s.chars().count().max(1));
        format!("    {source}\n    {}{}", " ".repeat(col), "^".repeat(width))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Matches,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::NotContains => "not contains",
            Op::Matches => "matches",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

/// A step in a JSON path: `.name` or `[index]`.
#[derive(Clone, Debug, PartialEq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A value taken from the observation.
#[derive(Clone, Debug, PartialEq)]
pub enum Placeholder {
    Status,
    /// Total probe time in milliseconds.
    ResponseTime,
    /// The body, or a JSON path into it.
    Body(Vec<PathSeg>),
    Connected,
    /// Time left until the certificate's `notAfter`, in milliseconds.
    CertificateExpiration,
    /// A DNS probe's response code, e.g. `NOERROR` or `NXDOMAIN` (its answers are `[BODY]`, as in Gatus).
    DnsRcode,
    /// The HTTP version of the response: `HTTP/2` when ALPN chose h2, else `HTTP/1.1`.
    Protocol,
    Header(String),
    /// Requests in the log window.
    Requests,
    /// 5xx responses in the log window.
    Errors5xx,
    /// 5xx / requests in the log window (missing below the source's `min_requests`).
    Ratio5xx,
    /// Error-log messages of the window, one per line.
    ErrorLog,
    /// Distinct clients that got a 5xx in the window.
    ClientsAffected,
    /// A percentile (50, 95 or 99) of request durations in the window, in milliseconds.
    LatencyPercentile(u8),
    /// A status page's reading (`[BUSY_WORKERS]`, `[WORKER_SATURATION]`, …): see [`READINGS`].
    Reading(&'static str),
}

/// How a reading is shown and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Number,
    /// A fraction, compared with `80%` and shown as a percentage.
    Ratio,
    /// Milliseconds, compared with `8h` and shown as a duration.
    Duration,
}

/// The readings of status pages (`[[status]]`) and of the host (`[host]`, `[[process]]`), each with its unit and
/// what it means. Which source gives which is the probe's business (`lookout_probe::status`, `::host`); a reading
/// a source does not give has no value, so a condition on it is false.
pub const READINGS: &[(&str, Unit, &str)] = &[
    ("BUSY_WORKERS", Unit::Number, "workers serving a request (Apache), active processes (PHP-FPM)"),
    ("IDLE_WORKERS", Unit::Number, "workers waiting for a request (Apache), idle processes (PHP-FPM)"),
    ("WORKER_LIMIT", Unit::Number, "the most workers there can be: `workers = N`, else Apache's scoreboard slots"),
    ("WORKER_SATURATION", Unit::Ratio, "busy workers ÷ the worker limit"),
    ("REQUESTS_PER_SECOND", Unit::Number, "requests served per second since the previous reading"),
    ("ACTIVE_CONNECTIONS", Unit::Number, "open client connections (nginx; Apache's event MPM)"),
    ("READING", Unit::Number, "connections reading a request (nginx)"),
    ("WRITING", Unit::Number, "connections writing a response (nginx)"),
    ("WAITING", Unit::Number, "idle keep-alive connections (nginx)"),
    ("LISTEN_QUEUE", Unit::Number, "requests waiting for a free PHP-FPM process"),
    ("MAX_CHILDREN_REACHED", Unit::Number, "times PHP-FPM hit pm.max_children since the previous reading"),
    ("SLOW_REQUESTS", Unit::Number, "requests past request_slowlog_timeout since the previous reading (PHP-FPM)"),
    ("CPU_LOAD", Unit::Number, "Apache's CPU load, percent of one CPU"),
    ("CPU_BUSY_RATIO", Unit::Ratio, "the host's CPU time not idle since the previous reading, over all CPUs"),
    ("LOAD1", Unit::Number, "load average over 1 minute"),
    ("LOAD5", Unit::Number, "load average over 5 minutes"),
    ("LOAD15", Unit::Number, "load average over 15 minutes"),
    ("CPUS", Unit::Number, "CPUs lookout may use"),
    ("MEMORY_USED_RATIO", Unit::Ratio, "memory not available (1 - MemAvailable ÷ MemTotal)"),
    ("MEMORY_AVAILABLE_MB", Unit::Number, "MemAvailable, in MiB"),
    ("SWAP_USED_RATIO", Unit::Ratio, "swap in use (none without swap)"),
    ("OPEN_FILES", Unit::Number, "file handles open on the host"),
    ("OPEN_FILES_RATIO", Unit::Ratio, "file handles open ÷ the kernel's maximum (fs.file-max)"),
    ("FS_USED_RATIO", Unit::Ratio, "a filesystem's space used, as df counts it"),
    ("FS_AVAILABLE_MB", Unit::Number, "a filesystem's space available to users, in MiB"),
    ("FS_INODES_USED_RATIO", Unit::Ratio, "a filesystem's inodes used"),
    ("TIME_TO_FULL", Unit::Duration, "until the filesystem is full at its growth over the last hour"),
    ("PROCESS_COUNT", Unit::Number, "processes of the name"),
    ("PROCESS_RSS_MB", Unit::Number, "their resident memory, in MiB"),
    ("PROCESS_RESTARTS", Unit::Number, "1 when the oldest of them started since the previous reading"),
];

impl Placeholder {
    /// Whether this placeholder reads a log window (`[[log]]`) rather than a probe result (`[[target]]`).
    pub fn is_log(&self) -> bool {
        matches!(
            self,
            Placeholder::Requests
                | Placeholder::Errors5xx
                | Placeholder::Ratio5xx
                | Placeholder::ErrorLog
                | Placeholder::ClientsAffected
                | Placeholder::LatencyPercentile(_)
        )
    }
}

/// What log conditions are evaluated against: the sliding window of a `[[log]]` source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogView {
    pub requests: u64,
    pub errors_5xx: u64,
    /// Below this many requests, `[5XX_RATIO]` has no value (too few to judge).
    pub min_requests: u64,
    pub error_log: String,
    pub clients_affected: u64,
    /// p50, p95, p99 of request durations in ms, when the log format has them.
    pub latency_ms: Option<[f64; 3]>,
}

/// A literal written in the condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(f64),
    /// Milliseconds (written as `500ms`, `72h`, ...).
    Duration(f64),
    Bool(bool),
    Str(String),
}

#[derive(Clone, Debug)]
enum Operand {
    Placeholder(Placeholder),
    Len(Placeholder),
    Has(Placeholder),
    Literal(Literal),
    Any(Vec<Literal>),
    Pattern(String),
}

impl Operand {
    fn placeholder(&self) -> Option<&Placeholder> {
        match self {
            Operand::Placeholder(p) | Operand::Len(p) | Operand::Has(p) => Some(p),
            _ => None,
        }
    }
}

/// A parsed condition, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    /// A `fire_when` rule in a probe's list (`[[status]]`): the observation fails when it holds.
    fires: bool,
    /// What decides instead once the alert fires (hysteresis, see [`Condition::with_hysteresis`]).
    clear: Option<Box<Condition>>,
    lhs: Operand,
    op: Op,
    rhs: Operand,
    regex: Option<Regex>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Condition {
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any side reads a log window (`[5XX_RATIO]`, `[ERROR_LOG]`, ...).
    pub fn uses_log_placeholders(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder().is_some_and(Placeholder::is_log))
    }

    /// Whether any side reads a probe result (`[STATUS]`, `[BODY]`, ...).
    pub fn uses_probe_placeholders(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder().is_some_and(|p| !p.is_log()))
    }

    /// This condition as a `fire_when` rule: judging an observation, it fails when the condition holds (and the
    /// reason is the condition with the value seen).
    pub fn fire_when(mut self) -> Condition {
        self.fires = true;
        self
    }

    /// This rule with hysteresis: once its alert fires, it goes on holding until the value is `fraction` of the
    /// threshold back past it — `[MEMORY_USED_RATIO] >= 90%` with 0.05 keeps firing down to 85.5 %, `[TIME_TO_FULL]
    /// < 8h` up to 8.4 h — so a value that wavers at the threshold does not fire and resolve on every reading.
    /// Only a comparison of a placeholder with a number, percentage or duration has a threshold to move.
    pub fn with_hysteresis(mut self, fraction: f64) -> Condition {
        let usable = fraction > 0.0 && fraction < 1.0 && self.op.is_ordering();
        if !usable || self.lhs.placeholder().is_none() {
            return self;
        }
        let Operand::Literal(literal) = &self.rhs else { return self };
        let (lhs, rhs) = self.sides_source();
        let factor = if matches!(self.op, Op::Gt | Op::Ge) { 1.0 - fraction } else { 1.0 + fraction };
        let short = |v: f64| format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_string();
        let threshold = match literal {
            Literal::Number(x) if rhs.ends_with('%') => format!("{}%", short(x * 100.0 * factor)),
            Literal::Number(x) => short(x * factor),
            Literal::Duration(ms) => {
                lookout_core::format_duration(std::time::Duration::from_millis((ms * factor).max(0.0) as u64))
            }
            _ => return self,
        };
        if let Ok(clear) = Condition::parse(&format!("{lhs} {} {threshold}", self.op.as_str())) {
            self.clear = Some(Box::new(clear));
        }
        self
    }

    /// The condition that decides now: the hysteresis one while the alert fires.
    pub(crate) fn deciding(&self, firing: bool) -> &Condition {
        match &self.clear {
            Some(c) if firing => c,
            _ => self,
        }
    }

    /// Whether this is a `fire_when` rule (see [`Condition::fire_when`]).
    pub fn fires(&self) -> bool {
        self.fires
    }

    /// Whether this condition looks at `[CONNECTED]`.
    pub fn checks_connectivity(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder() == Some(&Placeholder::Connected))
    }
}
