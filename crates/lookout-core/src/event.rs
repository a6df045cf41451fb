//! What sources observe: one [`Event`] per probe run, and one per log batch of a `[[log]]` source.
//!
//! An observation records what happened, not whether it is good: judging it is the engine's job.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Something a source saw, addressed to one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Probe(Observation),
    Log(LogBatch),
}

impl Event {
    pub fn target(&self) -> &str {
        match self {
            Event::Probe(o) => &o.target,
            Event::Log(b) => &b.target,
        }
    }
}

/// What a log source read since its last batch (possibly nothing: batches also mark the passing of time, so
/// windows slide). The cursors and counts are persisted in the same transaction, so a restart resumes exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub target: String,
    pub at: Timestamp,
    pub requests: u64,
    pub status_5xx: u64,
    /// Hashes of the client addresses that got a 5xx.
    pub failing_clients: Vec<u64>,
    /// Error-log messages read in this batch (capped).
    pub error_lines: Vec<String>,
    /// Request durations in microseconds (from `%D`/`%T`), capped per batch.
    pub durations_us: Vec<u64>,
    pub malformed: u64,
    /// Per-minute counts, for the store.
    pub counts: Vec<LogCount>,
    /// Request-duration percentiles of the minutes that closed since the last batch, for the store's readings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<MinuteLatency>,
    /// Where each file of the source now stands: (`access` | `error`, cursor as JSON).
    pub cursors: Vec<(String, String)>,
    /// Set while a file of the source cannot be read, so that the engine can tell a blind source from a quiet one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<Unreadable>,
}

/// A log source that cannot read (one of) its files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The first failed read of this streak.
    pub since: crate::Timestamp,
    /// E.g. `cannot read /var/log/apache2/access.log: Permission denied (os error 13)`.
    pub reason: String,
}

/// Request durations of one source in one minute (from `%D`/`%T`), as percentiles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteLatency {
    /// Unix seconds of the minute's start.
    pub minute: i64,
    /// Requests with a duration in the minute.
    pub requests: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Requests of one source in one minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCount {
    /// Unix seconds of the minute's start.
    pub minute: i64,
    pub requests: u64,
    /// Index 0 = 1xx ... 4 = 5xx.
    pub classes: [u64; 5],
    pub malformed: u64,
}

/// What kind of probe produced an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Http,
    Tcp,
    Tls,
    Dns,
    Icmp,
    /// A server's status page (Apache `mod_status`, nginx `stub_status`, PHP-FPM's `pm.status_path`), read
    /// into [`Observation::readings`].
    Status,
    /// The machine lookout runs on (`[host]`, `[[process]]`): CPU, memory, filesystems, descriptors, processes.
    Host,
}

/// Phase timings of one probe, in milliseconds, each the phase's own duration (not the time since the start, so
/// `first_byte_ms` — the server's wait — may well be shorter than `connect_ms`). A phase that did not happen is
/// `None`. Written to the microsecond (`0.44`, not `0.44024599999999997`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(serialize_with = "micros_opt")]
    pub dns_ms: Option<f64>,
    #[serde(serialize_with = "micros_opt")]
    pub connect_ms: Option<f64>,
    #[serde(serialize_with = "micros_opt")]
    pub tls_ms: Option<f64>,
    /// From sending the request to the response head.
    #[serde(serialize_with = "micros_opt")]
    pub first_byte_ms: Option<f64>,
    /// From the start of the probe to its end (including body download and redirects).
    #[serde(serialize_with = "micros")]
    pub total_ms: f64,
}

/// Milliseconds to the microsecond: three decimals are all a clock of this kind says.
pub fn round_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn micros<S: serde::Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_micros(*ms))
}

fn micros_opt<S: serde::Serializer>(ms: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_some(&round_micros(*ms)),
        None => s.serialize_none(),
    }
}

/// Why a probe could not complete. Every failure mode is a result, never a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeErrorKind {
    Dns,
    Refused,
    Connect,
    Timeout,
    Tls,
    /// The peer spoke, but not valid HTTP.
    Protocol,
    Io,
    /// The target itself is unusable (bad URL, unsupported scheme).
    Config,
}

impl fmt::Display for ProbeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ProbeErrorKind::Dns => "dns",
            ProbeErrorKind::Refused => "refused",
            ProbeErrorKind::Connect => "connect",
            ProbeErrorKind::Timeout => "timeout",
            ProbeErrorKind::Tls => "tls",
            ProbeErrorKind::Protocol => "protocol",
            ProbeErrorKind::Io => "io",
            ProbeErrorKind::Config => "config",
        };
        f.write_str(s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    pub kind: ProbeErrorKind,
    pub message: String,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The outcome of one probe run against one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub target: String,
    pub kind: ProbeKind,
    /// When the probe started.
    pub at: Timestamp,
    pub timings: Timings,
    /// Whether a connection (and TLS handshake, if any) was established.
    pub connected: bool,
    pub status: Option<u16>,
    /// Response headers as received (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// The response body, capped (see `body_truncated`), decoded as UTF-8 lossily.
    pub body: String,
    pub body_truncated: bool,
    /// `notAfter` of the leaf certificate, when TLS was used.
    pub cert_not_after: Option<Timestamp>,
    /// The HTTP version the response came in: ALPN picks it for HTTPS. (Small types here and below: every
    /// held-back record carries an observation, so its size is memory under a store outage.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<HttpVersion>,
    /// A DNS probe's response code (0 = `NOERROR`, 3 = `NXDOMAIN`, see [`dns_rcode_name`]); its answers are the
    /// `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_rcode: Option<u16>,
    pub error: Option<ProbeError>,
    /// Where it was probed from: the probing agent's `[agent] location`. Several locations judge one target each
    /// on their own, and its quorum decides (see the engine's quorum). Empty before the agent stamps it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// What a status page said, by the names conditions use (`BUSY_WORKERS`, `LISTEN_QUEUE`, …); empty for
    /// every other probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<(String, f64)>,
}

/// An HTTP version as conditions write it (`[PROTOCOL] == HTTP/2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    #[serde(rename = "HTTP/1.0")]
    Http10,
    #[serde(rename = "HTTP/1.1")]
    Http11,
    #[serde(rename = "HTTP/2")]
    Http2,
    #[serde(rename = "HTTP/3")]
    Http3,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
            HttpVersion::Http3 => "HTTP/3",
        }
    }
}

/// The mnemonic `dig` prints for a DNS response code (`NOERROR`, `NXDOMAIN`, ...), so conditions read as people
/// know them; an unassigned one is `RCODE<n>`.
pub fn dns_rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return format!("RCODE{code}"),
    };
    name.to_string()
}

impl Observation {
    /// An observation with nothing seen yet; probes fill it in.
    pub fn new(target: impl Into<String>, kind: ProbeKind, at: Timestamp) -> Self {
        Observation {
            target: target.into(),
            kind,
            at,
            timings: Timings::default(),
            connected: false,
            status: None,
            headers: Vec::new(),
            body: String::new(),
            body_truncated: false,
            cert_not_after: None,
            protocol: None,
            dns_rcode: None,
            error: None,
            location: String::new(),
            readings: Vec::new(),
        }
    }

    /// A status page's reading by name.
    pub fn reading(&self, name: &str) -> Option<f64> {
        self.readings.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// First header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The first `max` characters of the body, for storage and messages.
    pub fn body_excerpt(&self, max: usize) -> String {
        crate::text::truncate(&self.body, max + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_written_to_the_microsecond() {
        let t = Timings { connect_ms: Some(0.440_245_999_999_999_97), total_ms: 12.345_678_9, ..Timings::default() };
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, r#"{"dns_ms":null,"connect_ms":0.44,"tls_ms":null,"first_byte_ms":null,"total_ms":12.346}"#);
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries() {
        let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
        o.body = "héllo wörld".into();
        assert_eq!(o.body_excerpt(2), "hé…");
        assert_eq!(o.body_excerpt(100), "héllo wörld");
    }

    #[test]
    fn header_lookup_ignores_case() {
        let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
        o.headers.push(("content-type".into(), "text/html".into()));
        assert_eq!(o.header("Content-Type"), Some("text/html"));
        assert_eq!(o.header("x-missing"), None);
    }
}
