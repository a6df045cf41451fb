//! The offline report of `lookout logs`: totals, status distribution, 5xx over time, top failing paths,
//! latency percentiles and error windows with distinct clients affected — the numbers a postmortem needs.
//!
//! A [`Partial`] is built per block of lines on any thread and merged; [`Partial::finish`] turns the merged
//! result into a [`Report`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::access::{AccessRecord, Malformed};
use crate::distinct::{ClientKey, Distinct, Precision};
use crate::fast::TimeCache;
use crate::format::LogFormat;

/// Slots of [`Partial::seen`] (128 KiB).
const SEEN_SLOTS: usize = 1 << 14;
/// Malformed lines kept as samples.
const SAMPLES: usize = 5;
/// Characters of a sample line kept.
const SAMPLE_CHARS: usize = 200;

#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Width of the time buckets, seconds.
    pub bucket_secs: i64,
    /// Only lines at or after (Unix seconds).
    pub since: Option<i64>,
    /// Only lines before (Unix seconds).
    pub until: Option<i64>,
    /// A bucket is in an error window when its 5xx ratio is at least this (0..1)...
    pub threshold: f64,
    /// ...and it has at least this many requests.
    pub min_requests: u64,
    /// How many failing paths to list.
    pub top: usize,
    /// What counts as one client.
    pub clients: ClientKey,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            bucket_secs: 60,
            since: None,
            until: None,
            threshold: 0.05,
            min_requests: 1,
            top: 10,
            clients: ClientKey::Address,
        }
    }
}

#[derive(Default)]
struct Bucket {
    requests: u64,
    failed: u64,
    failing_clients: Distinct,
}

/// Counts from some of the lines; merge partials in any order.
pub struct Partial {
    lines: u64,
    malformed: u64,
    malformed_by: HashMap<&'static str, u64>,
    samples: Vec<String>,
    filtered: u64,
    status: Vec<u64>,
    buckets: HashMap<i64, Bucket>,
    /// The bucket lines are going into, kept out of the map: lines come in time order, so nearly every line
    /// finds its bucket here without a lookup. Moved back into `buckets` when another bucket is needed.
    current: Option<(i64, Bucket)>,
    /// The last timestamp parsed (lines of one minute share it).
    times: TimeCache,
    /// Client hashes already in `clients`, direct-mapped by their low bits: a hit skips the set (a hash-table
    /// probe per line). A slot starts as its own complement, a value no hash stored there can have.
    seen: Box<[u64]>,
    clients: Distinct,
    /// Clients that got at least one 5xx anywhere in the analysed range.
    failing_clients: Distinct,
    failing_paths: HashMap<String, u64, BuildHasherDefault<Fnv>>,
    first: Option<i64>,
    last: Option<i64>,
    latency_us: Option<Histogram<u64>>,
    bytes: u64,
}

impl Default for Partial {
    fn default() -> Self {
        Partial {
            lines: 0,
            malformed: 0,
            malformed_by: HashMap::new(),
            samples: Vec::new(),
            filtered: 0,
            status: vec![0; 1000],
            buckets: HashMap::new(),
            current: None,
            times: TimeCache::default(),
            seen: (0..SEEN_SLOTS).map(|i| !(i as u64)).collect(),
            clients: Distinct::default(),
            failing_clients: Distinct::default(),
            failing_paths: HashMap::default(),
            first: None,
            last: None,
            latency_us: None,
            bytes: 0,
        }
    }
}

impl Partial {
    /// Counts one line (without its newline).
    pub fn add_line(&mut self, format: &LogFormat, opts: &ReportOptions, line: &[u8]) {
        self.lines += 1;
        match format.parse_line_cached(line, &mut self.times) {
            Ok(rec) => self.add_record(opts, &rec),
            Err(why) => self.malformed(why, line),
        }
    }

    /// [`Partial::add_line`] for a line already known to be UTF-8.
    pub fn add_text(&mut self, format: &LogFormat, opts: &ReportOptions, line: &str) {
        self.lines += 1;
        match format.parse_text_cached(line, &mut self.times) {
            Ok(rec) => self.add_record(opts, &rec),
            Err(why) => self.malformed(why, line.as_bytes()),
        }
    }

    fn add_record(&mut self, opts: &ReportOptions, rec: &AccessRecord<'_>) {
        if rec.is_lookout_diagnosis() {
            self.filtered += 1;
            return;
        }
        if let Some(t) = rec.time {
            if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t >= u) {
                self.filtered += 1;
                return;
            }
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        let status = usize::from(rec.status);
        if let Some(slot) = self.status.get_mut(status) {
            *slot += 1;
        }
        let client = opts.clients.hash(rec.client, rec.user_agent);
        self.insert_client(client);
        let failed = (500..600).contains(&rec.status);
        if let Some(t) = rec.time {
            let key = t.div_euclid(opts.bucket_secs.max(1));
            let b = self.bucket(key);
            b.requests += 1;
            if failed {
                b.failed += 1;
                b.failing_clients.insert_hash(client);
            }
        }
        if failed {
            self.failing_clients.insert_hash(client);
            match self.failing_paths.get_mut(rec.path) {
                Some(n) => *n += 1,
                None => {
                    self.failing_paths.insert(rec.path.to_string(), 1);
                }
            }
        }
        if let Some(us) = rec.duration_us {
            let h = self.latency_us.get_or_insert_with(new_histogram);
            let _ = h.record(us.clamp(1, MAX_LATENCY_US));
        }
        self.bytes = self.bytes.saturating_add(rec.bytes_sent.or(rec.body_bytes).unwrap_or(0));
    }

    /// Counts a client, skipping the set when the client was seen recently (nearly always, in a busy log).
    fn insert_client(&mut self, h: u64) {
        let slot = (h as usize) & (SEEN_SLOTS - 1);
        if self.seen[slot] != h {
            self.clients.insert_hash(h);
            self.seen[slot] = h;
        }
    }

    /// The bucket `key`, made the current one.
    fn bucket(&mut self, key: i64) -> &mut Bucket {
        if self.current.as_ref().is_none_or(|(k, _)| *k != key) {
            self.park();
            let b = self.buckets.remove(&key).unwrap_or_default();
            self.current = Some((key, b));
        }
        &mut self.current.get_or_insert_with(|| (key, Bucket::default())).1
    }

    /// Moves the current bucket back into the map.
    fn park(&mut self) {
        if let Some((k, b)) = self.current.take() {
            self.buckets.insert(k, b);
        }
    }

    /// Counts a line that was cut before the parser saw it (e.g. longer than the line limit).
    pub fn malformed(&mut self, why: Malformed, line: &[u8]) {
        self.malformed += 1;
        *self.malformed_by.entry(why.as_str()).or_insert(0) += 1;
        if self.samples.len() < SAMPLES {
            let text = String::from_utf8_lossy(&line[..line.len().min(SAMPLE_CHARS * 4)]);
            self.samples.push(text.chars().take(SAMPLE_CHARS).collect());
        }
    }

    /// Counts a line that was dropped without being seen (too long).
    pub fn count_line(&mut self) {
        self.lines += 1;
    }

    pub fn merge(&mut self, mut other: Partial) {
        self.park();
        other.park();
        self.lines += other.lines;
        self.malformed += other.malformed;
        for (k, v) in other.malformed_by {
            *self.malformed_by.entry(k).or_insert(0) += v;
        }
        for s in other.samples {
            if self.samples.len() < SAMPLES {
                self.samples.push(s);
            }
        }
        self.filtered += other.filtered;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (k, b) in other.buckets {
            let mine = self.buckets.entry(k).or_default();
            mine.requests += b.requests;
            mine.failed += b.failed;
            mine.failing_clients.merge(&b.failing_clients);
        }
        self.clients.merge(&other.clients);
        self.failing_clients.merge(&other.failing_clients);
        for (p, n) in other.failing_paths {
            *self.failing_paths.entry(p).or_insert(0) += n;
        }
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match (&mut self.latency_us, other.latency_us) {
            (Some(a), Some(b)) => {
                let _ = a.add(&b);
            }
            (mine @ None, Some(b)) => *mine = Some(b),
            _ => {}
        }
        self.bytes = self.bytes.saturating_add(other.bytes);
    }

    pub fn finish(mut self, opts: &ReportOptions) -> Report {
        self.park();
        let requests: u64 = self.status.iter().sum();
        let class = |lo: usize| self.status[lo..lo + 100].iter().sum::<u64>();
        let mut codes: Vec<StatusCount> = self
            .status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| StatusCount { status: code as u16, requests: *n })
            .collect();
        codes.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.status.cmp(&b.status)));

        let mut keys: Vec<i64> = self.buckets.keys().copied().collect();
        keys.sort_unstable();
        let width = opts.bucket_secs.max(1);
        let timeline: Vec<TimePoint> = keys
            .iter()
            .map(|k| {
                let b = &self.buckets[k];
                TimePoint { start: k * width, requests: b.requests, failed: b.failed }
            })
            .collect();

        let mut windows: Vec<ErrorWindow> = Vec::new();
        let mut open: Option<(ErrorWindow, Distinct)> = None;
        for k in &keys {
            let b = &self.buckets[k];
            let bad = b.requests >= opts.min_requests.max(1)
                && b.failed > 0
                && b.failed as f64 / b.requests as f64 >= opts.threshold;
            let contiguous = open.as_ref().is_some_and(|(w, _)| w.end == k * width);
            if bad {
                match &mut open {
                    Some((w, clients)) if contiguous => {
                        w.end = (k + 1) * width;
                        w.requests += b.requests;
                        w.failed += b.failed;
                        clients.merge(&b.failing_clients);
                    }
                    _ => {
                        if let Some((w, c)) = open.take() {
                            windows.push(close(w, &c));
                        }
                        let mut c = Distinct::default();
                        c.merge(&b.failing_clients);
                        let w = ErrorWindow {
                            start: k * width,
                            end: (k + 1) * width,
                            requests: b.requests,
                            failed: b.failed,
                            clients_affected: 0,
                            clients_precision: Precision::Exact,
                            peak_ratio: 0.0,
                        };
                        open = Some((w, c));
                    }
                }
                if let Some((w, _)) = &mut open {
                    w.peak_ratio = w.peak_ratio.max(b.failed as f64 / b.requests as f64);
                }
            } else if let Some((w, c)) = open.take() {
                windows.push(close(w, &c));
            }
        }
        if let Some((w, c)) = open.take() {
            windows.push(close(w, &c));
        }

        let mut failing_paths: Vec<PathCount> =
            self.failing_paths.into_iter().map(|(path, failed)| PathCount { path, failed }).collect();
        failing_paths.sort_by(|a, b| b.failed.cmp(&a.failed).then_with(|| a.path.cmp(&b.path)));
        failing_paths.truncate(opts.top);

        let latency = self.latency_us.filter(|h| !h.is_empty()).map(|h| Latency {
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p95_ms: h.value_at_quantile(0.95) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        });
        let mut malformed_by: Vec<(String, u64)> =
            self.malformed_by.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        malformed_by.sort();

        Report {
            lines: self.lines,
            requests,
            malformed: self.malformed,
            malformed_reasons: malformed_by,
            malformed_samples: self.samples,
            filtered_out: self.filtered,
            first: self.first,
            last: self.last,
            distinct_clients: self.clients.count(),
            distinct_clients_precision: self.clients.precision(),
            failed: class(500),
            failing_clients: self.failing_clients.count(),
            failing_clients_precision: self.failing_clients.precision(),
            client_key: opts.clients,
            classes: StatusClasses {
                s1xx: class(100),
                s2xx: class(200),
                s3xx: class(300),
                s4xx: class(400),
                s5xx: class(500),
            },
            statuses: codes,
            bucket_secs: width,
            timeline,
            failing_paths,
            error_windows: windows,
            threshold: opts.threshold,
            min_requests: opts.min_requests.max(1),
            latency,
            bytes: self.bytes,
        }
    }
}

/// FNV-1a for the failing-path map: paths are short and hashed once per failed line; SipHash's protection against
/// chosen keys buys nothing in a one-shot report.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

const MAX_LATENCY_US: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_LATENCY_US, 2) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}

fn close(mut w: ErrorWindow, clients: &Distinct) -> ErrorWindow {
    w.clients_affected = clients.count();
    w.clients_precision = clients.precision();
    w
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusCount {
    pub status: u16,
    pub requests: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusClasses {
    #[serde(rename = "1xx")]
    pub s1xx: u64,
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
}

/// The JSON report says times and durations in milliseconds, as the rest of lookout does (`latency.p50_ms`, the
/// API); inside, the report counts whole seconds (an access log's `%t` has no finer resolution).
fn secs_as_ms<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(secs.saturating_mul(1000))
}

fn opt_secs_as_ms<S: serde::Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(v) => s.serialize_some(&v.saturating_mul(1000)),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimePoint {
    /// Unix seconds (in JSON `start_ms`, milliseconds).
    #[serde(rename = "start_ms", serialize_with = "secs_as_ms")]
    pub start: i64,
    pub requests: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathCount {
    pub path: String,
    pub failed: u64,
}

/// A period where the 5xx ratio stayed at or above the threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorWindow {
    /// Unix seconds, inclusive (in JSON `start_ms`).
    #[serde(rename = "start_ms", serialize_with = "secs_as_ms")]
    pub start: i64,
    /// Unix seconds, exclusive: the end of the last bucket (in JSON `end_ms`).
    #[serde(rename = "end_ms", serialize_with = "secs_as_ms")]
    pub end: i64,
    pub requests: u64,
    pub failed: u64,
    /// Distinct client addresses that got a 5xx in the window (an approximation of users).
    pub clients_affected: u64,
    pub clients_precision: Precision,
    pub peak_ratio: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub lines: u64,
    pub requests: u64,
    pub malformed: u64,
    pub malformed_reasons: Vec<(String, u64)>,
    pub malformed_samples: Vec<String>,
    pub filtered_out: u64,
    /// Unix seconds of the first and last request (in JSON `first_ms`, `last_ms`).
    #[serde(rename = "first_ms", serialize_with = "opt_secs_as_ms")]
    pub first: Option<i64>,
    #[serde(rename = "last_ms", serialize_with = "opt_secs_as_ms")]
    pub last: Option<i64>,
    pub distinct_clients: u64,
    pub distinct_clients_precision: Precision,
    /// Requests answered with a 5xx, and the distinct clients that got at least one (the whole range).
    pub failed: u64,
    pub failing_clients: u64,
    pub failing_clients_precision: Precision,
    /// What counted as one client.
    pub client_key: ClientKey,
    pub classes: StatusClasses,
    pub statuses: Vec<StatusCount>,
    /// In JSON `bucket_ms`.
    #[serde(rename = "bucket_ms", serialize_with = "secs_as_ms")]
    pub bucket_secs: i64,
    pub timeline: Vec<TimePoint>,
    pub failing_paths: Vec<PathCount>,
    pub error_windows: Vec<ErrorWindow>,
    pub threshold: f64,
    pub min_requests: u64,
    /// From `%D`/`%T`, when the format has it.
    pub latency: Option<Latency>,
    pub bytes: u64,
}

impl Report {
    /// The time bucket with the highest 5xx ratio among those with at least `min_requests` requests:
    /// (start, ratio).
    pub fn peak(&self) -> Option<(i64, f64)> {
        self.timeline
            .iter()
            .filter(|p| p.requests >= self.min_requests.max(1) && p.failed > 0)
            .map(|p| (p.start, p.failed as f64 / p.requests as f64))
            .fold(None, |best: Option<(i64, f64)>, x| match best {
                Some(b) if b.1 >= x.1 => Some(b),
                _ => Some(x),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ip: &str, minute: u32, status: u16, path: &str) -> String {
        format!("{ip} - - [25/Nov/2026:14:{minute:02}:00 +0000] \"GET {path} HTTP/1.1\" {status} 10 \"-\" \"ua\"")
    }

    fn report(lines: &[String], opts: &ReportOptions) -> Report {
        let f = LogFormat::named_or_custom("combined").unwrap();
        // Split across two partials to exercise merging.
        let mut a = Partial::default();
        let mut b = Partial::default();
        for (i, l) in lines.iter().enumerate() {
            if i % 2 == 0 { &mut a } else { &mut b }.add_line(&f, opts, l.as_bytes());
        }
        a.merge(b);
        a.finish(opts)
    }

    #[test]
    fn known_answers() {
        let mut lines = Vec::new();
        // Minutes 0-1 healthy, 2-4 broken for three clients, 5 healthy again.
        for m in 0..6 {
            for c in 0..5 {
                let ip = format!("10.0.0.{c}");
                let broken = (2..=4).contains(&m) && c < 3;
                lines.push(line(&ip, m, if broken { 500 } else { 200 }, if broken { "/index.php" } else { "/" }));
            }
        }
        lines.push(line("10.0.0.9", 3, 503, "/api"));
        lines.push("garbage".to_string());
        let r = report(&lines, &ReportOptions::default());
        assert_eq!(r.lines, 32);
        assert_eq!(r.requests, 31);
        assert_eq!(r.malformed, 1);
        assert_eq!(r.classes.s5xx, 10);
        assert_eq!(r.classes.s2xx, 21);
        assert_eq!(r.distinct_clients, 6);
        assert_eq!(r.statuses[0], StatusCount { status: 200, requests: 21 });
        assert_eq!(r.failing_paths[0], PathCount { path: "/index.php".into(), failed: 9 });
        assert_eq!(r.failing_paths[1], PathCount { path: "/api".into(), failed: 1 });
        assert_eq!(r.timeline.len(), 6);
        assert_eq!(r.error_windows.len(), 1);
        let w = &r.error_windows[0];
        assert_eq!(w.end - w.start, 180);
        assert_eq!((w.requests, w.failed, w.clients_affected), (16, 10, 4));
        assert_eq!(w.clients_precision, Precision::Exact);
        assert_eq!(r.malformed_samples, vec!["garbage".to_string()]);
        assert_eq!((r.failed, r.failing_clients), (10, 4));
        // Minute 3: 4 of 6 failed.
        assert_eq!(r.peak(), Some((1_795_615_200 + 180, 4.0 / 6.0)));
    }

    #[test]
    fn clients_can_be_told_apart_by_user_agent() {
        let mut lines = Vec::new();
        for ua in ["Firefox", "Chrome", "curl"] {
            lines.push(line("10.0.0.1", 0, 500, "/").replace("\"ua\"", &format!("\"{ua}\"")));
        }
        let by_address = report(&lines, &ReportOptions::default());
        assert_eq!((by_address.failing_clients, by_address.distinct_clients), (1, 1));
        let opts = ReportOptions { clients: ClientKey::AddressAndUserAgent, ..ReportOptions::default() };
        let by_pair = report(&lines, &opts);
        assert_eq!((by_pair.failing_clients, by_pair.distinct_clients), (3, 3));
        assert_eq!(by_pair.error_windows[0].clients_affected, 3);
        assert_eq!(by_pair.client_key, ClientKey::AddressAndUserAgent);
    }

    #[test]
    fn lookout_s_own_diagnosis_requests_are_not_counted() {
        let mut lines: Vec<String> = (0..5).map(|m| line("1.1.1.1", m, 200, "/")).collect();
        for m in 0..5 {
            let own = format!("\"{}\"", lookout_core::DIAGNOSE_USER_AGENT);
            lines.push(line("127.0.0.1", m, 500, "/").replace("\"ua\"", &own));
        }
        let r = report(&lines, &ReportOptions::default());
        assert_eq!((r.requests, r.failed, r.filtered_out, r.distinct_clients), (5, 0, 5, 1));
        assert!(r.error_windows.is_empty(), "the diagnosis's 500s are not an outage");
    }

    #[test]
    fn time_filters_and_thresholds() {
        let lines: Vec<String> = (0..10).map(|m| line("1.1.1.1", m, if m == 5 { 500 } else { 200 }, "/")).collect();
        let since = crate::time::parse_clf(b"[25/Nov/2026:14:03:00 +0000]");
        let until = crate::time::parse_clf(b"[25/Nov/2026:14:07:00 +0000]");
        let r = report(&lines, &ReportOptions { since, until, ..Default::default() });
        assert_eq!((r.requests, r.filtered_out), (4, 6));
        assert_eq!(r.error_windows.len(), 1);
        let strict = report(&lines, &ReportOptions { min_requests: 2, ..Default::default() });
        assert!(strict.error_windows.is_empty(), "one request per minute is below min_requests");
    }
}
