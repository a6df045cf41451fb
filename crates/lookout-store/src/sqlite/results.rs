//! Probe results in SQLite, kept small (issue 13; the arithmetic is in ARCHITECTURE.md, "Storage budget").
//!
//! Three forms, one answer: raw results for the short window — compact rows (`results`: target as an integer id,
//! latency in µs, timings as varints and NULL when only the total is known, no rowid and no second index), their
//! successes packed into 10-minute blocks after an hour (`blocks.rs`) — then 5-minute and per-hour aggregates
//! (`result_rollups`) with a log-spaced latency histogram; failing results and the first success after them stay
//! raw for the long retention, because incidents, impact and postmortems read them.
//!
//! Every read adds the raw results not yet rolled up (rows with `rolled = 0`, and the blocks) to the aggregates,
//! so it answers the same whether
//! the data is raw or rolled up: counts exactly (an aggregate counts at its start), mean latencies to the µs, and
//! percentiles exactly from raw rows alone, within one histogram bucket (±9 %) once aggregates are involved.

use std::collections::BTreeMap;

use lookout_core::{Timestamp, Timings};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::blocks::{self, Sample};
use super::{from_json, to_json};
use crate::{Horizons, ResultBucket, ResultRow, RollUp};

/// The fine aggregates' period: at a 10 s interval 30 results in one ~55-byte row. Per minute (6 results) an
/// aggregate would cost as much as the packed results themselves (see ARCHITECTURE.md, "Storage budget").
const FINE_MS: i64 = 300_000;
pub(super) const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const FINE: i64 = 0;
const HOUR: i64 = 1;

/// Writes one result into an open transaction (called by `record.rs`).
pub(super) fn insert(tx: &Connection, r: &ResultRow) -> rusqlite::Result<()> {
    let target = intern_target(tx, &r.target)?;
    let latency = us(r.latency_ms);
    let failed = if r.failed_conditions.is_empty() { None } else { Some(to_json(&r.failed_conditions)?) };
    tx.prepare_cached(
        "INSERT INTO results (target, at, seq, ok, status, latency_us, timings, error, failed_conditions, body_excerpt)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq) + 1, 0) FROM results WHERE target = ?1 AND at = ?2),
                 ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        target,
        r.at.0,
        r.ok,
        r.status,
        latency,
        encode_timings(&r.timings, latency),
        r.error,
        failed,
        r.body_excerpt
    ])?;
    Ok(())
}

fn intern_target(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    if let Some(id) = target_id(conn, name)? {
        return Ok(id);
    }
    // Another process may have added it since: then its id is the one.
    conn.prepare_cached("INSERT INTO targets (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?.execute([name])?;
    target_id(conn, name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

fn target_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM targets WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()
}

/// Milliseconds (as measured) to whole microseconds, the stored precision.
fn us(ms: f64) -> i64 {
    (ms * 1000.0).round().max(0.0) as i64
}

pub(super) const COLUMNS: &str = "at, ok, status, latency_us, error, failed_conditions, timings, body_excerpt";

pub(super) fn row(target: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<ResultRow> {
    let latency_us: i64 = r.get(3)?;
    let failed: Option<String> = r.get(5)?;
    let timings = match r.get_ref(6)? {
        ValueRef::Null => Timings { total_ms: latency_us as f64 / 1000.0, ..Timings::default() },
        // Rows from before migration 0007 keep their JSON.
        ValueRef::Text(t) => from_json(6, &String::from_utf8_lossy(t))?,
        ValueRef::Blob(b) => decode_timings(b, latency_us).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Blob, "malformed timings".into())
        })?,
        _ => return Err(rusqlite::Error::InvalidColumnType(6, "timings".into(), rusqlite::types::Type::Integer)),
    };
    Ok(ResultRow {
        target: target.to_owned(),
        at: Timestamp(r.get(0)?),
        ok: r.get(1)?,
        status: r.get(2)?,
        latency_ms: latency_us as f64 / 1000.0,
        error: r.get(4)?,
        failed_conditions: failed.map(|f| from_json(5, &f)).transpose()?.unwrap_or_default(),
        timings,
        body_excerpt: r.get(7)?,
    })
}

/// The latest raw results of a target, newest first.
pub(super) fn recent(conn: &Connection, target: &str, limit: usize) -> rusqlite::Result<Vec<ResultRow>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM results WHERE target = ?1 ORDER BY at DESC, seq DESC LIMIT ?2"
    ))?;
    let mut rows: Vec<ResultRow> =
        stmt.query_map(params![id, limit as i64], |r| row(target, r))?.collect::<rusqlite::Result<_>>()?;
    rows.extend(to_rows(target, blocks::newest(conn, id, limit)?)?);
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(limit);
    Ok(rows)
}

fn to_rows(target: &str, samples: Vec<Sample>) -> rusqlite::Result<Vec<ResultRow>> {
    samples
        .iter()
        .map(|s| {
            s.to_row(target).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "malformed timings".into())
            })
        })
        .collect()
}

/// The raw results of a target from `from` to `to`: every result inside the raw window; beyond it, the failures
/// and the first success after each run of them.
pub(super) fn between(conn: &Connection, target: &str, from: i64, to: i64) -> rusqlite::Result<Vec<ResultRow>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM results WHERE target = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, seq"
    ))?;
    let mut rows: Vec<ResultRow> =
        stmt.query_map(params![id, from, to], |r| row(target, r))?.collect::<rusqlite::Result<_>>()?;
    rows.extend(to_rows(target, blocks::samples(conn, id, from, to)?)?);
    rows.sort_by_key(|r| r.at);
    Ok(rows)
}

/// (day, passed, total) per UTC day from `from` on: raw rows not yet rolled up plus the hourly aggregates.
pub(super) fn daily_uptime(conn: &Connection, target: &str, from: i64) -> rusqlite::Result<Vec<(i64, u64, u64)>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut days: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut add = |day: i64, passed: i64, total: i64| {
        let d = days.entry(day).or_default();
        d.0 += passed.max(0) as u64;
        d.1 += total.max(0) as u64;
    };
    let mut stmt = conn.prepare_cached(
        "SELECT at / ?3 AS day, SUM(ok), COUNT(*) FROM results WHERE target = ?1 AND at >= ?2 AND rolled = 0
         GROUP BY day",
    )?;
    let mut rows = stmt.query(params![id, from, DAY_MS])?;
    while let Some(r) = rows.next()? {
        add(r.get(0)?, r.get(1)?, r.get(2)?);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT start / ?3 AS day, SUM(total - failures), SUM(total) FROM result_rollups
         WHERE target = ?1 AND level = 1 AND start >= ?2 GROUP BY day",
    )?;
    let mut rows = stmt.query(params![id, from, DAY_MS])?;
    while let Some(r) = rows.next()? {
        add(r.get(0)?, r.get(1)?, r.get(2)?);
    }
    for (day, n) in blocks::per_day(conn, id, from, DAY_MS)? {
        add(day, n as i64, n as i64);
    }
    Ok(days.into_iter().map(|(day, (passed, total))| (day, passed, total)).collect())
}

/// Where the 5-minute aggregates of a target begin (an hour boundary; they cover every hour from there on);
/// older periods are read from the hourly ones. `i64::MAX` when there are none.
fn fine_from(conn: &Connection, id: i64) -> rusqlite::Result<i64> {
    let first: Option<i64> = conn
        .prepare_cached("SELECT MIN(start) FROM result_rollups WHERE target = ?1 AND level = 0")?
        .query_row([id], |r| r.get(0))?;
    Ok(first.map_or(i64::MAX, |s| s.div_euclid(HOUR_MS) * HOUR_MS))
}

/// The aggregates of a target whose start is in `from..=to`, each period once: 5-minute where they are kept,
/// per-hour before.
fn aggregates(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<(i64, Agg)>> {
    let split = fine_from(conn, id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT start, total, failures, latency_sum_us, latency_min_us, latency_max_us, histogram FROM result_rollups
         WHERE target = ?1 AND start >= ?2 AND start <= ?3
           AND ((level = 1 AND start < ?4) OR (level = 0 AND start >= ?4))
         ORDER BY start",
    )?;
    let rows = stmt.query_map(params![id, from, to, split], |r| Ok((r.get(0)?, agg_from_row(r, 1)?)))?;
    rows.collect()
}

/// A target's results from `from` to `to` counted per slice of `bucket_ms`.
pub(super) fn buckets(
    conn: &Connection,
    target: &str,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> rusqlite::Result<Vec<ResultBucket>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    // slice → (total, ok, latency sum in µs)
    let mut slices: BTreeMap<i64, (u64, u64, i64)> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT (at - ?2) / ?4 AS slice, COUNT(*), SUM(ok), SUM(latency_us) FROM results
         WHERE target = ?1 AND at >= ?2 AND at <= ?3 AND rolled = 0 GROUP BY slice",
    )?;
    let mut rows = stmt.query(params![id, from, to, bucket_ms])?;
    while let Some(r) = rows.next()? {
        let s = slices.entry(r.get(0)?).or_default();
        s.0 += r.get::<_, i64>(1)?.max(0) as u64;
        s.1 += r.get::<_, i64>(2)?.max(0) as u64;
        s.2 += r.get::<_, i64>(3)?;
    }
    for sample in blocks::samples(conn, id, from, to)? {
        let s = slices.entry((sample.at - from) / bucket_ms).or_default();
        s.0 += 1;
        s.1 += 1;
        s.2 += sample.latency_us;
    }
    for (start, a) in aggregates(conn, id, from, to)? {
        let s = slices.entry((start - from) / bucket_ms).or_default();
        s.0 += a.total;
        s.1 += a.total - a.failures.min(a.total);
        s.2 += a.sum_us;
    }
    Ok(slices
        .into_iter()
        .filter(|(_, (total, _, _))| *total > 0)
        .map(|(slice, (total, ok, sum))| ResultBucket {
            start: Timestamp(from + slice * bucket_ms),
            total,
            ok,
            mean_latency_ms: sum as f64 / total as f64 / 1000.0,
        })
        .collect())
}

/// Nearest-rank latency percentiles: exact from raw rows alone; estimated from the merged histograms (clamped to
/// the exact minimum and maximum) once the range reaches rolled-up data.
pub(super) fn percentiles(
    conn: &Connection,
    target: &str,
    from: i64,
    to: i64,
    qs: &[f64],
) -> rusqlite::Result<Vec<Option<f64>>> {
    let Some(id) = target_id(conn, target)? else { return Ok(vec![None; qs.len()]) };
    let mut stmt = conn.prepare_cached(
        "SELECT latency_us FROM results WHERE target = ?1 AND at >= ?2 AND at <= ?3 AND rolled = 0
         ORDER BY latency_us",
    )?;
    let mut sorted: Vec<i64> = stmt.query_map(params![id, from, to], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    sorted.extend(blocks::samples(conn, id, from, to)?.iter().map(|s| s.latency_us));
    sorted.sort_unstable();
    let aggs = aggregates(conn, id, from, to)?;
    let rank = |n: u64, q: f64| ((n.saturating_sub(1) as f64) * q.clamp(0.0, 1.0)).round() as u64;
    if aggs.is_empty() {
        return Ok(qs
            .iter()
            .map(|&q| {
                let last = sorted.len().checked_sub(1)?;
                sorted.get((rank(sorted.len() as u64, q) as usize).min(last)).map(|&v| v as f64 / 1000.0)
            })
            .collect());
    }
    let mut all = Agg::default();
    for &v in &sorted {
        all.add(true, v);
    }
    for (_, a) in &aggs {
        all.merge(a);
    }
    Ok(qs
        .iter()
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
        .collect())
}

/// Every target's id, for the roll-up's per-target transactions.
pub(super) fn target_ids(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM targets ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Rolls up one target in one transaction: the raw rows older than `h.raw` not yet counted are added to the
/// 5-minute and hour aggregates, and deleted unless failing or the first success after a failure (those are marked
/// counted); then what is older than the long horizons is deleted. A crash rolls all of it back; running it again
/// finds nothing left to count, so it never counts twice. Returns (rows counted, rows deleted).
pub(super) fn roll_up_target(conn: &mut Connection, id: i64, h: &Horizons) -> rusqlite::Result<RollUp> {
    let tx = conn.transaction()?;
    // By whole hours, as the blocks are.
    let raw_before = h.raw.0.div_euclid(HOUR_MS) * HOUR_MS;
    // (at, seq: None for a packed success, ok, latency)
    let mut rows: Vec<(i64, Option<i64>, bool, i64)> = tx
        .prepare_cached(
            "SELECT at, seq, ok, latency_us FROM results WHERE target = ?1 AND at < ?2 AND rolled = 0 ORDER BY at, seq",
        )?
        .query_map(params![id, raw_before], |r| Ok((r.get(0)?, Some(r.get(1)?), r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    rows.extend(blocks::take_before(&tx, id, raw_before)?.into_iter().map(|s| (s.at, None, true, s.latency_us)));
    rows.sort_by_key(|r| r.0);
    let mut deleted = 0u64;
    if let Some(&(first_at, ..)) = rows.first() {
        // Whether the result before this batch failed: then the batch's first success is a recovery. The rows
        // before it are counted already, and only failures and recoveries of them remain, so the latest one is
        // the true predecessor whenever it failed.
        let mut prev_ok: bool = tx
            .prepare_cached("SELECT ok FROM results WHERE target = ?1 AND at < ?2 ORDER BY at DESC, seq DESC LIMIT 1")?
            .query_row(params![id, first_at], |r| r.get(0))
            .optional()?
            .unwrap_or(true);
        let mut aggs: BTreeMap<(i64, i64), Agg> = BTreeMap::new();
        let mut keep = Vec::new();
        for &(at, seq, ok, latency) in &rows {
            aggs.entry((FINE, at.div_euclid(FINE_MS) * FINE_MS)).or_default().add(ok, latency);
            aggs.entry((HOUR, at.div_euclid(HOUR_MS) * HOUR_MS)).or_default().add(ok, latency);
            if let Some(seq) = seq
                && (!ok || !prev_ok)
            {
                keep.push((at, seq));
            }
            prev_ok = ok;
        }
        for ((level, start), mut agg) in aggs {
            let existing = tx
                .prepare_cached(
                    "SELECT total, failures, latency_sum_us, latency_min_us, latency_max_us, histogram
                     FROM result_rollups WHERE target = ?1 AND level = ?2 AND start = ?3",
                )?
                .query_row(params![id, level, start], |r| agg_from_row(r, 0))
                .optional()?;
            if let Some(e) = existing {
                agg.merge(&e);
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO result_rollups
                 (target, level, start, total, failures, latency_sum_us, latency_min_us, latency_max_us, histogram)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                id,
                level,
                start,
                agg.total as i64,
                agg.failures as i64,
                agg.sum_us,
                agg.min_us,
                agg.max_us,
                encode_hist(&agg.hist)
            ])?;
        }
        for (at, seq) in keep {
            tx.prepare_cached("UPDATE results SET rolled = 1 WHERE target = ?1 AND at = ?2 AND seq = ?3")?
                .execute(params![id, at, seq])?;
        }
        deleted += tx
            .prepare_cached("DELETE FROM results WHERE target = ?1 AND at < ?2 AND rolled = 0")?
            .execute(params![id, raw_before])? as u64;
    }
    // The long horizons. 5-minute aggregates go by whole hours, so every hour from the first one kept is complete.
    deleted += tx
        .prepare_cached("DELETE FROM results WHERE target = ?1 AND at < ?2 AND rolled = 1")?
        .execute(params![id, h.detail.0])? as u64;
    tx.prepare_cached("DELETE FROM result_rollups WHERE target = ?1 AND level = 0 AND start < ?2")?
        .execute(params![id, h.detail.0.div_euclid(HOUR_MS) * HOUR_MS])?;
    tx.prepare_cached("DELETE FROM result_rollups WHERE target = ?1 AND level = 1 AND start < ?2")?
        .execute(params![id, h.hourly.0])?;
    let packed = blocks::pack(&tx, id, raw_before, h.pack.0.div_euclid(HOUR_MS) * HOUR_MS)?;
    tx.commit()?;
    Ok(RollUp { rolled: rows.len() as u64, deleted, packed })
}

/// Deletes every form of result older than `before` (raw rows of any kind, blocks and aggregates); returns the raw
/// rows.
pub(super) fn prune(conn: &mut Connection, before: i64) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM results WHERE at < ?1", [before])?;
    tx.execute("DELETE FROM result_blocks WHERE start + ?2 <= ?1", [before, blocks::BLOCK_MS])?;
    tx.execute("DELETE FROM result_rollups WHERE start < ?1", [before])?;
    tx.commit()?;
    Ok(n)
}

/// Count, failures, latency sum/min/max and histogram of a period's results.
#[derive(Clone, Debug, Default, PartialEq)]
struct Agg {
    total: u64,
    failures: u64,
    sum_us: i64,
    min_us: i64,
    max_us: i64,
    hist: BTreeMap<u8, u64>,
}

impl Agg {
    fn add(&mut self, ok: bool, latency_us: i64) {
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

    fn merge(&mut self, o: &Agg) {
        if o.total == 0 {
            return;
        }
        if self.total == 0 {
            (self.min_us, self.max_us) = (o.min_us, o.max_us);
        }
        self.total += o.total;
        self.failures += o.failures;
        self.sum_us += o.sum_us;
        self.min_us = self.min_us.min(o.min_us);
        self.max_us = self.max_us.max(o.max_us);
        for (&b, &n) in &o.hist {
            *self.hist.entry(b).or_default() += n;
        }
    }
}

/// Reads total, failures, sum, min, max, histogram from columns `first..first + 6`.
fn agg_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Agg> {
    let n = |i: usize| r.get::<_, i64>(first + i);
    let bytes: Vec<u8> = r.get(first + 5)?;
    Ok(Agg {
        total: n(0)?.max(0) as u64,
        failures: n(1)?.max(0) as u64,
        sum_us: n(2)?,
        min_us: n(3)?,
        max_us: n(4)?,
        hist: decode_hist(&bytes).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                first + 5,
                rusqlite::types::Type::Blob,
                "malformed histogram".into(),
            )
        })?,
    })
}

/// The histogram's buckets: 0 below 100 µs, then 4 per doubling (each 2^(1/4) ≈ 1.19 × the one before), so a
/// value is known to ±9 % and 64 buckets reach 100 µs × 2^15.75 ≈ 5.5 s, 80 reach 88 s.
fn bucket(latency_us: i64) -> u8 {
    if latency_us < 100 {
        return 0;
    }
    ((latency_us as f64 / 100.0).log2() * 4.0).floor().clamp(0.0, 254.0) as u8 + 1
}

/// A bucket's representative value in µs: the geometric middle of its bounds.
fn bucket_value(b: u8) -> f64 {
    if b == 0 {
        return 50.0;
    }
    100.0 * 2f64.powf((f64::from(b) - 0.5) / 4.0)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
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

fn encode_hist(hist: &BTreeMap<u8, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(hist.len() * 2);
    for (&b, &n) in hist {
        out.push(b);
        put_varint(&mut out, n);
    }
    out
}

fn decode_hist(bytes: &[u8]) -> Option<BTreeMap<u8, u64>> {
    let mut hist = BTreeMap::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let b = bytes[pos];
        pos += 1;
        *hist.entry(b).or_default() += get_varint(bytes, &mut pos)?;
    }
    Some(hist)
}

/// DNS, connect, TLS and first byte as varints of µs + 1 (0: not measured), then the total (0: the latency).
/// `None` when nothing but the total, equal to the latency, is known.
pub(super) fn encode_timings(t: &Timings, latency_us: i64) -> Option<Vec<u8>> {
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

pub(super) fn decode_timings(bytes: &[u8], latency_us: i64) -> Option<Timings> {
    let mut pos = 0;
    let mut next = || -> Option<Option<f64>> {
        let v = get_varint(bytes, &mut pos)?;
        Some(v.checked_sub(1).map(|us| us as f64 / 1000.0))
    };
    let (dns_ms, connect_ms, tls_ms, first_byte_ms) = (next()?, next()?, next()?, next()?);
    let total_ms = next()?.unwrap_or(latency_us as f64 / 1000.0);
    Some(Timings { dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written by a lookout before migration 0007 (names and JSON in every row) is migrated in place:
    /// every result reads back the same, two in one millisecond included, and rolls up and packs like new ones.
    #[tokio::test]
    async fn results_written_before_migration_0007_read_back_the_same() {
        use crate::Store;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.sqlite");
        let ok = |at: i64, total: f64| ResultRow {
            target: "site".into(),
            at: Timestamp(at),
            ok: true,
            status: Some(200),
            latency_ms: total,
            error: None,
            failed_conditions: vec![],
            timings: Timings {
                connect_ms: Some(0.25),
                first_byte_ms: Some(3.5),
                total_ms: total,
                ..Timings::default()
            },
            body_excerpt: None,
        };
        let failed = ResultRow {
            ok: false,
            status: Some(500),
            error: Some("boom".into()),
            failed_conditions: vec!["[STATUS] (500) == 200".into()],
            body_excerpt: Some("<h1>500</h1>".into()),
            ..ok(7_200_000, 12.5)
        };
        let rows = vec![ok(3_600_000, 10.125), ok(3_600_000, 11.0), ok(3_610_000, 9.5), failed, ok(7_210_000, 8.0)];
        {
            let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            for sql in &super::super::MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
            }
            conn.pragma_update(None, "user_version", 6).unwrap_or_else(|e| panic!("{e}"));
            for r in &rows {
                conn.execute(
                    "INSERT INTO results (target, at, ok, status, latency_ms, error, failed_conditions, timings, body_excerpt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![r.target, r.at.0, r.ok, r.status, r.latency_ms, r.error, to_json(&r.failed_conditions).ok(),
                            to_json(&r.timings).ok(), r.body_excerpt],
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let store = super::super::SqliteStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let read = store.results_between("site".into(), Timestamp(0), Timestamp(i64::MAX)).await;
        assert_eq!(read.ok().as_ref(), Some(&rows));
        let h = Horizons { pack: Timestamp(7_200_000), raw: Timestamp(0), detail: Timestamp(0), hourly: Timestamp(0) };
        let done = store.roll_up(h).await.ok();
        assert_eq!(done.map(|d| d.packed), Some(3), "the three successes before the failure are packed");
        // Packed successes keep their total latency only; the failure and the recovery after it keep their phases.
        let mut packed = rows.clone();
        for r in &mut packed[..3] {
            r.timings = Timings { total_ms: r.latency_ms, ..Timings::default() };
        }
        let read = store.results_between("site".into(), Timestamp(0), Timestamp(i64::MAX)).await;
        assert_eq!(read.ok().as_ref(), Some(&packed));
    }

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
    }
}
