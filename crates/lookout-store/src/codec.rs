//! Probe results as bytes and sums, the same for every backend: the varint encodings of phase timings, packed
//! blocks and latency histograms, the aggregate ([`Agg`]) they roll up into, and the decisions the roll-up and
//! the reads make on them (what is kept raw, what is packed, how percentiles and slices are counted).
//!
//! Why one module for both backends: SQLite and PostgreSQL store the same bytes in their BLOB/BYTEA columns and
//! answer the same reads, so `lookout store copy` moves blocks and roll-ups as they are, and a change to an
//! encoding or a rule is made once. The backends only fetch and write rows (`sqlite/results.rs`,
//! `sqlite/blocks.rs`, `postgres/results.rs`). Nothing here does IO, and nothing here panics on bytes read from a
//! store: a damaged value decodes to `None`, which each backend reports as a query error.

use std::collections::BTreeMap;

use lookout_core::{Timestamp, Timings};

use crate::{ResultBucket, ResultRow};

/// The fine aggregates' period: at a 10 s interval 30 results in one ~55-byte row. Per minute (6 results) an
/// aggregate would cost as much as the packed results themselves (see ARCHITECTURE.md, "Storage budget").
pub(crate) const FINE_MS: i64 = 300_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// `result_rollups.level` of the 5-minute aggregates.
pub(crate) const FINE: i64 = 0;
/// `result_rollups.level` of the per-hour aggregates.
pub(crate) const HOUR: i64 = 1;

/// A block's span: at a 10 s interval its 60 successes (~12 bytes each) stay under the ~1 KB a `WITHOUT ROWID`
/// row keeps in its page (4 KB pages); a longer block would spill into overflow pages and waste most of the last.
pub(crate) const BLOCK_MS: i64 = 600_000;

/// `t` rounded down to a multiple of `span` (times before 1970 included).
pub(crate) fn floor_to(t: i64, span: i64) -> i64 {
    t.div_euclid(span) * span
}

/// Milliseconds (as measured) to whole microseconds, the stored precision.
pub(crate) fn us(ms: f64) -> i64 {
    (ms * 1000.0).round().max(0.0) as i64
}

/// The histogram's buckets: 0 below 100 µs, then 4 per doubling (each 2^(1/4) ≈ 1.19 × the one before), so a
/// value is known to ±9 % and 64 buckets reach 100 µs × 2^15.75 ≈ 5.5 s, 80 reach 88 s.
pub(crate) fn bucket(latency_us: i64) -> u8 {
    if latency_us < 100 {
        return 0;
    }
    ((latency_us as f64 / 100.0).log2() * 4.0).floor().clamp(0.0, 254.0) as u8 + 1
}

/// A bucket's representative value in µs: the geometric middle of its bounds.
pub(crate) fn bucket_value(b: u8) -> f64 {
    if b == 0 {
        return 50.0;
    }
    100.0 * 2f64.powf((f64::from(b) - 0.5) / 4.0)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The varint at `pos` (advanced past it); `None` when the bytes end inside it or it is longer than 64 bits.
pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// (bucket, count) pairs, buckets ascending: the count as a varint.
pub(crate) fn encode_hist(hist: &BTreeMap<u8, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(hist.len() * 2);
    for (&b, &n) in hist {
        out.push(b);
        put_varint(&mut out, n);
    }
    out
}

pub(crate) fn decode_hist(bytes: &[u8]) -> Option<BTreeMap<u8, u64>> {
    let mut hist = BTreeMap::new();
    let mut pos = 0;
    while let Some(&b) = bytes.get(pos) {
        pos += 1;
        let n = get_varint(bytes, &mut pos)?;
        let count: &mut u64 = hist.entry(b).or_default();
        *count = count.checked_add(n)?;
    }
    Some(hist)
}

/// DNS, connect, TLS and first byte as varints of µs + 1 (0: not measured), then the total (0: the latency).
/// `None` when nothing but the total, equal to the latency, is known.
pub(crate) fn encode_timings(t: &Timings, latency_us: i64) -> Option<Vec<u8>> {
    let total = us(t.total_ms);
    let phases = [t.dns_ms, t.connect_ms, t.tls_ms, t.first_byte_ms];
    if phases.iter().all(Option::is_none) && total == latency_us {
        return None;
    }
    let mut out = Vec::with_capacity(12);
    for p in phases {
        put_varint(&mut out, p.map_or(0, |ms| us(ms) as u64 + 1));
    }
    put_varint(&mut out, if total == latency_us { 0 } else { total as u64 + 1 });
    Some(out)
}

pub(crate) fn decode_timings(bytes: &[u8], latency_us: i64) -> Option<Timings> {
    let mut pos = 0;
    let mut next = || -> Option<Option<f64>> {
        let v = get_varint(bytes, &mut pos)?;
        Some(v.checked_sub(1).map(|us| us as f64 / 1000.0))
    };
    let (dns_ms, connect_ms, tls_ms, first_byte_ms) = (next()?, next()?, next()?, next()?);
    let total_ms = next()?.unwrap_or(latency_us as f64 / 1000.0);
    Some(Timings { dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms })
}

/// A stored `timings` value: `None` (the column is NULL) when only the total, equal to the latency, is known.
pub(crate) fn timings_of(bytes: Option<&[u8]>, latency_us: i64) -> Option<Timings> {
    match bytes {
        None => Some(Timings { total_ms: latency_us as f64 / 1000.0, ..Timings::default() }),
        Some(b) => decode_timings(b, latency_us),
    }
}

/// Count, failures, latency sum/min/max and histogram of a period's results.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Agg {
    pub total: u64,
    pub failures: u64,
    pub sum_us: i64,
    pub min_us: i64,
    pub max_us: i64,
    pub hist: BTreeMap<u8, u64>,
}

impl Agg {
    pub fn add(&mut self, ok: bool, latency_us: i64) {
        if self.total == 0 {
            (self.min_us, self.max_us) = (latency_us, latency_us);
        }
        self.total += 1;
        self.failures += u64::from(!ok);
        self.sum_us += latency_us;
        self.min_us = self.min_us.min(latency_us);
        self.max_us = self.max_us.max(latency_us);
        *self.hist.entry(bucket(latency_us)).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Agg) {
        if o.total == 0 {
            return;
        }
        if self.total == 0 {
            (self.min_us, self.max_us) = (o.min_us, o.max_us);
        }
        // Saturating: stored sums are read back here, and a damaged one must not overflow.
        self.total = self.total.saturating_add(o.total);
        self.failures = self.failures.saturating_add(o.failures);
        self.sum_us = self.sum_us.saturating_add(o.sum_us);
        self.min_us = self.min_us.min(o.min_us);
        self.max_us = self.max_us.max(o.max_us);
        for (&b, &n) in &o.hist {
            let count = self.hist.entry(b).or_default();
            *count = count.saturating_add(n);
        }
    }

    /// An aggregate as stored (total, failures, sum, min, max, histogram bytes); `None` if the histogram is
    /// damaged.
    pub fn from_stored(total: i64, failures: i64, sum_us: i64, min_us: i64, max_us: i64, hist: &[u8]) -> Option<Agg> {
        Some(Agg {
            total: total.max(0) as u64,
            failures: failures.max(0) as u64,
            sum_us,
            min_us,
            max_us,
            hist: decode_hist(hist)?,
        })
    }
}

/// A packed success.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub at: i64,
    pub status: Option<u16>,
    pub latency_us: i64,
    /// As stored in a row's `timings` (varints), `None` when only the total, equal to the latency, is known.
    pub timings: Option<Vec<u8>>,
}

impl Sample {
    /// The result it stands for; `None` if its timings are damaged.
    pub fn to_row(&self, target: &str) -> Option<ResultRow> {
        Some(ResultRow {
            target: target.to_owned(),
            at: Timestamp(self.at),
            ok: true,
            status: self.status,
            latency_ms: self.latency_us as f64 / 1000.0,
            error: None,
            failed_conditions: Vec::new(),
            timings: timings_of(self.timings.as_deref(), self.latency_us)?,
            body_excerpt: None,
        })
    }
}

/// A block's bytes: per sample the time since the one before (the block's start for the first), the status (0:
/// none, 1: 200, else status + 2), the latency in µs, and a flag (0: no timings, 1: the timings' five varints).
pub(crate) fn encode_block(start: i64, samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 12);
    let mut prev = start;
    for s in samples {
        put_varint(&mut out, (s.at - prev).max(0) as u64);
        prev = s.at.max(prev);
        put_varint(&mut out, s.status.map_or(0, |c| if c == 200 { 1 } else { u64::from(c) + 2 }));
        put_varint(&mut out, s.latency_us.max(0) as u64);
        match &s.timings {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                out.extend_from_slice(t);
            }
        }
    }
    out
}

pub(crate) fn decode_block(start: i64, bytes: &[u8]) -> Option<Vec<Sample>> {
    let mut samples = Vec::new();
    let (mut pos, mut at) = (0, start);
    while pos < bytes.len() {
        at = at.checked_add(i64::try_from(get_varint(bytes, &mut pos)?).ok()?)?;
        let status = match get_varint(bytes, &mut pos)? {
            0 => None,
            1 => Some(200),
            c => Some(u16::try_from(c - 2).ok()?),
        };
        let latency_us = i64::try_from(get_varint(bytes, &mut pos)?).ok()?;
        let flag = *bytes.get(pos)?;
        pos += 1;
        let timings = match flag {
            0 => None,
            1 => {
                let from = pos;
                for _ in 0..5 {
                    get_varint(bytes, &mut pos)?;
                }
                Some(bytes.get(from..pos)?.to_vec())
            }
            _ => return None,
        };
        samples.push(Sample { at, status, latency_us, timings });
    }
    Some(samples)
}

/// The latest `limit` results, newest first, from a target's raw rows (newest first) and packed successes.
pub(crate) fn newest_first(
    mut rows: Vec<ResultRow>,
    samples: &[Sample],
    target: &str,
    limit: usize,
) -> Option<Vec<ResultRow>> {
    for s in samples {
        rows.push(s.to_row(target)?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(limit);
    Some(rows)
}

/// A target's results oldest first, from its raw rows (oldest first) and packed successes.
pub(crate) fn oldest_first(mut rows: Vec<ResultRow>, samples: &[Sample], target: &str) -> Option<Vec<ResultRow>> {
    for s in samples {
        rows.push(s.to_row(target)?);
    }
    rows.sort_by_key(|r| r.at);
    Some(rows)
}

/// Passed and total results per UTC day, summed from every form they are stored in.
#[derive(Default)]
pub(crate) struct Days(BTreeMap<i64, (u64, u64)>);

impl Days {
    pub fn add(&mut self, day: i64, passed: i64, total: i64) {
        let d = self.0.entry(day).or_default();
        d.0 = d.0.saturating_add(passed.max(0) as u64);
        d.1 = d.1.saturating_add(total.max(0) as u64);
    }

    /// (day, passed, total), oldest first.
    pub fn finish(self) -> Vec<(i64, u64, u64)> {
        self.0.into_iter().map(|(day, (passed, total))| (day, passed, total)).collect()
    }
}

/// Results counted per slice of `bucket_ms` from `from`, from every form they are stored in.
pub(crate) struct Slices {
    from: i64,
    bucket_ms: i64,
    /// slice → (total, ok, latency sum in µs)
    slices: BTreeMap<i64, (u64, u64, i64)>,
}

impl Slices {
    pub fn new(from: i64, bucket_ms: i64) -> Slices {
        Slices { from, bucket_ms: bucket_ms.max(1), slices: BTreeMap::new() }
    }

    /// Raw rows of slice number `slice`, counted by the store.
    pub fn add_counts(&mut self, slice: i64, total: i64, ok: i64, sum_us: i64) {
        let s = self.slices.entry(slice).or_default();
        s.0 = s.0.saturating_add(total.max(0) as u64);
        s.1 = s.1.saturating_add(ok.max(0) as u64);
        s.2 = s.2.saturating_add(sum_us);
    }

    pub fn add_sample(&mut self, sample: &Sample) {
        let s = self.slices.entry((sample.at - self.from) / self.bucket_ms).or_default();
        s.0 += 1;
        s.1 += 1;
        s.2 += sample.latency_us;
    }

    /// An aggregate counts in the slice of its start.
    pub fn add_agg(&mut self, start: i64, a: &Agg) {
        let s = self.slices.entry((start - self.from) / self.bucket_ms).or_default();
        s.0 = s.0.saturating_add(a.total);
        s.1 = s.1.saturating_add(a.total - a.failures.min(a.total));
        s.2 = s.2.saturating_add(a.sum_us);
    }

    /// The slices with results, oldest first.
    pub fn finish(self) -> Vec<ResultBucket> {
        let (from, bucket_ms) = (self.from, self.bucket_ms);
        self.slices
            .into_iter()
            .filter(|(_, (total, _, _))| *total > 0)
            .map(|(slice, (total, ok, sum))| ResultBucket {
                start: Timestamp(from + slice * bucket_ms),
                total,
                ok,
                mean_latency_ms: sum as f64 / total as f64 / 1000.0,
            })
            .collect()
    }
}

/// Nearest-rank latency percentiles (ms) of raw latencies (µs, ascending) and aggregates: exact from raw values
/// alone; estimated from the merged histograms (clamped to the exact minimum and maximum) once aggregates are
/// involved.
pub(crate) fn percentiles(sorted: &[i64], aggs: &[(i64, Agg)], qs: &[f64]) -> Vec<Option<f64>> {
    let rank = |n: u64, q: f64| ((n.saturating_sub(1) as f64) * q.clamp(0.0, 1.0)).round() as u64;
    if aggs.is_empty() {
        return qs
            .iter()
            .map(|&q| {
                let last = sorted.len().checked_sub(1)?;
                sorted.get((rank(sorted.len() as u64, q) as usize).min(last)).map(|&v| v as f64 / 1000.0)
            })
            .collect();
    }
    let mut all = Agg::default();
    for &v in sorted {
        all.add(true, v);
    }
    for (_, a) in aggs {
        all.merge(a);
    }
    qs.iter()
        .map(|&q| {
            if all.total == 0 {
                return None;
            }
            let want = rank(all.total, q);
            // The extremes are known exactly.
            if want == 0 {
                return Some(all.min_us as f64 / 1000.0);
            }
            if want + 1 >= all.total {
                return Some(all.max_us as f64 / 1000.0);
            }
            let mut seen = 0;
            for (&b, &n) in &all.hist {
                seen += n;
                if seen > want {
                    let v = bucket_value(b).clamp(all.min_us as f64, all.max_us as f64);
                    return Some(v.round() / 1000.0);
                }
            }
            Some(all.max_us as f64 / 1000.0)
        })
        .collect()
}

/// A result the roll-up counts: a raw row (`seq` set) or a packed success (`seq` `None`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counted {
    pub at: i64,
    pub seq: Option<i64>,
    pub ok: bool,
    pub latency_us: i64,
}

/// What the roll-up does with one target's results older than the raw horizon.
#[derive(Debug, Default)]
pub(crate) struct Roll {
    /// The 5-minute and hour aggregates to add, by (level, start).
    pub aggs: BTreeMap<(i64, i64), Agg>,
    /// Raw rows (at, seq) kept and marked counted: failures and the first success after each run of them.
    pub keep: Vec<(i64, i64)>,
    /// Raw rows (at, seq) deleted once counted.
    pub gone: Vec<(i64, i64)>,
}

/// Counts `rows` (sorted by time) into aggregates and sorts the raw ones into kept and deleted. `prev_ok`: whether
/// the result before them passed (a failure before makes their first success a recovery, kept raw).
pub(crate) fn roll(mut prev_ok: bool, rows: &[Counted]) -> Roll {
    let mut out = Roll::default();
    for r in rows {
        out.aggs.entry((FINE, floor_to(r.at, FINE_MS))).or_default().add(r.ok, r.latency_us);
        out.aggs.entry((HOUR, floor_to(r.at, HOUR_MS))).or_default().add(r.ok, r.latency_us);
        if let Some(seq) = r.seq {
            if !r.ok || !prev_ok { out.keep.push((r.at, seq)) } else { out.gone.push((r.at, seq)) }
        }
        prev_ok = r.ok;
    }
    out
}

/// A raw row the packing looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub at: i64,
    pub seq: i64,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_us: i64,
    /// Without error, failed conditions or body excerpt: nothing a block could not hold.
    pub plain: bool,
}

/// The raw rows (sorted by time) that go into blocks, by block start, each with its `seq`: plain successes that
/// do not follow a failure (`prev_ok`: whether the result before the first passed).
pub(crate) fn pack_plan(
    mut prev_ok: bool,
    rows: impl IntoIterator<Item = Candidate>,
) -> BTreeMap<i64, Vec<(i64, Sample)>> {
    let mut blocks: BTreeMap<i64, Vec<(i64, Sample)>> = BTreeMap::new();
    for r in rows {
        let packable = r.ok && prev_ok && r.plain;
        prev_ok = r.ok;
        if !packable {
            continue;
        }
        // A packed success keeps its total latency only: phase timings (DNS, connect, TLS, first byte) explain a
        // slow or failing check now, and stay with the last hour's rows and every failure; for a success hours old
        // the total is what charts and percentiles read, and dropping the phases saves ~1.9 GB of 90 days at
        // 10,000 targets (ARCHITECTURE.md, "Storage budget").
        let sample = Sample { at: r.at, status: r.status, latency_us: r.latency_us, timings: None };
        blocks.entry(floor_to(r.at, BLOCK_MS)).or_default().push((r.seq, sample));
    }
    blocks
}

/// A block's samples after new ones join those it held, in time order (a sample of the same millisecond after
/// those already there).
pub(crate) fn merged(mut existing: Vec<Sample>, new: impl IntoIterator<Item = Sample>) -> Vec<Sample> {
    existing.extend(new);
    existing.sort_by_key(|s| s.at);
    existing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_round_trip_at_microsecond_precision_and_cost_nothing_when_only_the_total_is_known() {
        let t = Timings {
            dns_ms: None,
            connect_ms: Some(0.25),
            tls_ms: Some(3.5),
            first_byte_ms: Some(12.0),
            total_ms: 20.0,
        };
        let bytes = encode_timings(&t, 20_000).unwrap_or_default();
        assert!(bytes.len() <= 10, "{bytes:?}");
        assert_eq!(decode_timings(&bytes, 20_000), Some(t));
        let other_total = Timings { total_ms: 21.5, ..Timings::default() };
        assert_eq!(
            decode_timings(&encode_timings(&other_total, 20_000).unwrap_or_default(), 20_000),
            Some(other_total)
        );
        assert_eq!(encode_timings(&Timings { total_ms: 20.0, ..Timings::default() }, 20_000), None);
        assert_eq!(decode_timings(&[0x80], 1), None, "a truncated varint is an error, not a panic");
    }

    #[test]
    fn histogram_buckets_are_log_spaced_within_nine_percent_and_round_trip() {
        for us in [100i64, 150, 999, 12_500, 250_000, 5_000_000, 60_000_000] {
            let v = bucket_value(bucket(us));
            assert!((v / us as f64 - 1.0).abs() < 0.095, "{us} µs → bucket {} ≈ {v}", bucket(us));
        }
        assert_eq!(bucket(0), 0);
        assert!(bucket(i64::MAX) > bucket(60_000_000), "no overflow at the top");
        let mut a = Agg::default();
        for us in [5_000, 5_100, 80_000, 300, 5_000] {
            a.add(us != 300, us);
        }
        assert_eq!((a.total, a.failures, a.min_us, a.max_us), (5, 1, 300, 80_000));
        assert_eq!(decode_hist(&encode_hist(&a.hist)), Some(a.hist.clone()));
        assert_eq!(decode_hist(&[3, 0xff]), None);
        let huge = [3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(decode_hist(&[huge, huge].concat()), None, "a count that overflows is an error, not a panic");
    }

    #[test]
    fn a_block_round_trips_and_a_damaged_one_is_an_error_not_a_panic() {
        let t =
            encode_timings(&Timings { connect_ms: Some(0.5), first_byte_ms: Some(20.0), ..Timings::default() }, 21_000);
        let samples = vec![
            Sample { at: 3_600_000 + 5, status: Some(200), latency_us: 21_000, timings: t.clone() },
            Sample { at: 3_600_000 + 10_005, status: None, latency_us: 3, timings: None },
            Sample { at: 3_600_000 + 10_005, status: Some(302), latency_us: 900_000, timings: t },
        ];
        let bytes = encode_block(3_600_000, &samples);
        assert!(bytes.len() <= 3 * 14, "{} bytes", bytes.len());
        assert_eq!(decode_block(3_600_000, &bytes), Some(samples));
        for cut in 1..bytes.len() {
            let _ = decode_block(3_600_000, &bytes[..cut]);
        }
        assert_eq!(decode_block(0, &[0, 1, 5, 7]), None, "an unknown timings flag");
    }

    /// Failures and the first success after each run of them stay raw; everything is counted once per level.
    #[test]
    fn the_roll_up_keeps_failures_and_recoveries_and_counts_everything() {
        let c = |at: i64, seq: Option<i64>, ok: bool| Counted { at, seq, ok, latency_us: 1_000 };
        let rows =
            [c(0, Some(0), true), c(1, Some(0), false), c(2, None, true), c(3, Some(0), true), c(4, Some(0), true)];
        let r = roll(false, &rows);
        assert_eq!(r.keep, [(0, 0), (1, 0)], "the first is a recovery from the failure before the batch");
        assert_eq!(r.gone, [(3, 0), (4, 0)], "a packed success is neither kept nor deleted");
        assert_eq!(r.aggs.len(), 2);
        assert!(r.aggs.values().all(|a| a.total == 5 && a.failures == 1));
        let plan = pack_plan(
            true,
            [
                Candidate { at: 10, seq: 0, ok: true, status: Some(200), latency_us: 5, plain: true },
                Candidate { at: 11, seq: 0, ok: false, status: Some(500), latency_us: 5, plain: false },
                Candidate { at: 12, seq: 0, ok: true, status: Some(200), latency_us: 5, plain: true },
                Candidate { at: 13, seq: 1, ok: true, status: Some(200), latency_us: 5, plain: false },
                Candidate { at: BLOCK_MS, seq: 0, ok: true, status: None, latency_us: 5, plain: true },
            ],
        );
        let packed: Vec<(i64, Vec<i64>)> =
            plan.iter().map(|(start, v)| (*start, v.iter().map(|(_, s)| s.at).collect())).collect();
        assert_eq!(packed, [(0, vec![10]), (BLOCK_MS, vec![BLOCK_MS])]);
    }
}
