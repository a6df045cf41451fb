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

pub use judge::{Verdict, judge, judge_log};

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
}

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

    /// Whether this condition looks at `[CONNECTED]`.
    pub fn checks_connectivity(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder() == Some(&Placeholder::Connected))
    }
}
