//! Raw successes packed per target and 10 minutes (`result_blocks`): the raw window's bulk at a fraction of a row's
//! bytes. A row costs ~44 bytes (key, record header, cell and page overhead); a packed success costs its varints,
//! ~5 bytes: the time since the one before, the status (1 for 200) and the latency in µs — phase timings are
//! dropped when packing (they stay with the last hour's rows and every failure). Only a success without error,
//! failed conditions or body, and not the first success after a failure (kept raw), is packed, so reads return
//! the same rows but for the phases.

use std::collections::BTreeMap;

use lookout_core::{Timestamp, Timings};
use rusqlite::{Connection, OptionalExtension, params};

use super::results::{COLUMNS, decode_timings, get_varint, put_varint, row};
use crate::ResultRow;

/// A block's span: at a 10 s interval its 60 successes (~12 bytes each) stay under the ~1 KB a `WITHOUT ROWID`
/// row keeps in its page (4 KB pages); a longer block would spill into overflow pages and waste most of the last.
pub(super) const BLOCK_MS: i64 = 600_000;

/// A packed success.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Sample {
    pub at: i64,
    pub status: Option<u16>,
    pub latency_us: i64,
    /// As stored in a row's `timings` (varints), `None` when only the total, equal to the latency, is known.
    pub timings: Option<Vec<u8>>,
}

impl Sample {
    pub fn to_row(&self, target: &str) -> Option<ResultRow> {
        let timings = match &self.timings {
            None => Timings { total_ms: self.latency_us as f64 / 1000.0, ..Timings::default() },
            Some(t) => decode_timings(t, self.latency_us)?,
        };
        Some(ResultRow {
            target: target.to_owned(),
            at: Timestamp(self.at),
            ok: true,
            status: self.status,
            latency_ms: self.latency_us as f64 / 1000.0,
            error: None,
            failed_conditions: Vec::new(),
            timings,
            body_excerpt: None,
        })
    }
}

fn encode(start: i64, samples: &[Sample]) -> Vec<u8> {
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

fn decode(start: i64, bytes: &[u8]) -> Option<Vec<Sample>> {
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
                Some(bytes[from..pos].to_vec())
            }
            _ => return None,
        };
        samples.push(Sample { at, status, latency_us, timings });
    }
    Some(samples)
}

fn malformed() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "malformed result block".into())
}

fn decoded(start: i64, data: &[u8]) -> rusqlite::Result<Vec<Sample>> {
    decode(start, data).ok_or_else(malformed)
}

/// A target's packed successes from `from` to `to` inclusive, oldest first.
pub(super) fn samples(conn: &Connection, id: i64, from: i64, to: i64) -> rusqlite::Result<Vec<Sample>> {
    let mut stmt = conn.prepare_cached(
        "SELECT start, data FROM result_blocks WHERE target = ?1 AND start >= ?2 AND start <= ?3 ORDER BY start",
    )?;
    let mut rows = stmt.query(params![id, from.div_euclid(BLOCK_MS) * BLOCK_MS, to])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let data: Vec<u8> = r.get(1)?;
        out.extend(decoded(r.get(0)?, &data)?.into_iter().filter(|s| (from..=to).contains(&s.at)));
    }
    Ok(out)
}

/// The newest `limit` packed successes of a target, newest first.
pub(super) fn newest(conn: &Connection, id: i64, limit: usize) -> rusqlite::Result<Vec<Sample>> {
    let mut stmt =
        conn.prepare_cached("SELECT start, data FROM result_blocks WHERE target = ?1 ORDER BY start DESC")?;
    let mut rows = stmt.query([id])?;
    let mut out = Vec::new();
    while out.len() < limit
        && let Some(r) = rows.next()?
    {
        let data: Vec<u8> = r.get(1)?;
        out.extend(decoded(r.get(0)?, &data)?.into_iter().rev());
    }
    out.truncate(limit);
    Ok(out)
}

/// Per UTC day, the packed successes from `from` on: whole blocks by their count, the one `from` cuts by sample.
pub(super) fn per_day(conn: &Connection, id: i64, from: i64, day_ms: i64) -> rusqlite::Result<Vec<(i64, u64)>> {
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    let mut stmt = conn
        .prepare_cached("SELECT start / ?3, SUM(n) FROM result_blocks WHERE target = ?1 AND start >= ?2 GROUP BY 1")?;
    let mut rows = stmt.query(params![id, from, day_ms])?;
    while let Some(r) = rows.next()? {
        *days.entry(r.get(0)?).or_default() += r.get::<_, i64>(1)?.max(0) as u64;
    }
    let cut_start = from.div_euclid(BLOCK_MS) * BLOCK_MS;
    if cut_start < from {
        for s in samples(conn, id, from, cut_start + BLOCK_MS - 1)? {
            *days.entry(s.at / day_ms).or_default() += 1;
        }
    }
    Ok(days.into_iter().collect())
}

/// The blocks of a target older than `before` (a block boundary), taken out: their samples, to be rolled up.
pub(super) fn take_before(tx: &Connection, id: i64, before: i64) -> rusqlite::Result<Vec<Sample>> {
    let mut out = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT start, data FROM result_blocks WHERE target = ?1 AND start < ?2 ORDER BY start")?;
        let mut rows = stmt.query(params![id, before])?;
        while let Some(r) = rows.next()? {
            let data: Vec<u8> = r.get(1)?;
            out.extend(decoded(r.get(0)?, &data)?);
        }
    }
    tx.prepare_cached("DELETE FROM result_blocks WHERE target = ?1 AND start < ?2")?.execute(params![id, before])?;
    Ok(out)
}

/// Packs a target's raw rows from `from` to before `before` (block boundaries) that a block holds exactly; returns
/// how many. Part of the roll-up's transaction.
pub(super) fn pack(tx: &Connection, id: i64, from: i64, before: i64) -> rusqlite::Result<u64> {
    if before <= from {
        return Ok(0);
    }
    let rows: Vec<(i64, ResultRow, Option<Vec<u8>>)> = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, seq FROM results WHERE target = ?1 AND at >= ?2 AND at < ?3 AND rolled = 0
             ORDER BY at, seq"
        ))?
        .query_map(params![id, from, before], |r| {
            let blob = match r.get_ref(6)? {
                rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
                _ => None,
            };
            Ok((r.get(8)?, row("", r)?, blob))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let Some((_, first, _)) = rows.first() else { return Ok(0) };
    let mut prev_ok: bool = tx
        .prepare_cached("SELECT ok FROM results WHERE target = ?1 AND at < ?2 ORDER BY at DESC, seq DESC LIMIT 1")?
        .query_row(params![id, first.at.0], |r| r.get(0))
        .optional()?
        .unwrap_or(true);
    let mut hours: BTreeMap<i64, Vec<(i64, Sample)>> = BTreeMap::new();
    for (seq, r, blob) in rows {
        let packable =
            r.ok && prev_ok && r.error.is_none() && r.failed_conditions.is_empty() && r.body_excerpt.is_none();
        prev_ok = r.ok;
        if !packable {
            continue;
        }
        let latency_us = (r.latency_ms * 1000.0).round() as i64;
        // A packed success keeps its total latency only: phase timings (DNS, connect, TLS, first byte) explain a
        // slow or failing check now, and stay with the last hour's rows and every failure; for a success hours old
        // the total is what charts and percentiles read, and dropping the phases saves ~1.9 GB of 90 days at
        // 10,000 targets (ARCHITECTURE.md, "Storage budget").
        let _ = blob;
        let sample = Sample { at: r.at.0, status: r.status, latency_us, timings: None };
        hours.entry(r.at.0.div_euclid(BLOCK_MS) * BLOCK_MS).or_default().push((seq, sample));
    }
    let mut packed = 0;
    for (start, new) in hours {
        let existing: Option<Vec<u8>> = tx
            .prepare_cached("SELECT data FROM result_blocks WHERE target = ?1 AND start = ?2")?
            .query_row(params![id, start], |r| r.get(0))
            .optional()?;
        let mut all = existing.map(|d| decoded(start, &d)).transpose()?.unwrap_or_default();
        for (seq, s) in &new {
            tx.prepare_cached("DELETE FROM results WHERE target = ?1 AND at = ?2 AND seq = ?3")?
                .execute(params![id, s.at, seq])?;
        }
        packed += new.len() as u64;
        all.extend(new.into_iter().map(|(_, s)| s));
        all.sort_by_key(|s| s.at);
        tx.prepare_cached("INSERT OR REPLACE INTO result_blocks (target, start, n, data) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, start, all.len() as i64, encode(start, &all)])?;
    }
    Ok(packed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_round_trips_and_a_damaged_one_is_an_error_not_a_panic() {
        let t = super::super::results::encode_timings(
            &Timings { connect_ms: Some(0.5), first_byte_ms: Some(20.0), ..Timings::default() },
            21_000,
        );
        let samples = vec![
            Sample { at: 3_600_000 + 5, status: Some(200), latency_us: 21_000, timings: t.clone() },
            Sample { at: 3_600_000 + 10_005, status: None, latency_us: 3, timings: None },
            Sample { at: 3_600_000 + 10_005, status: Some(302), latency_us: 900_000, timings: t },
        ];
        let bytes = encode(3_600_000, &samples);
        assert!(bytes.len() <= 3 * 14, "{} bytes", bytes.len());
        assert_eq!(decode(3_600_000, &bytes), Some(samples));
        for cut in 1..bytes.len() {
            let _ = decode(3_600_000, &bytes[..cut]);
        }
        assert_eq!(decode(0, &[0, 1, 5, 7]), None, "an unknown timings flag");
    }
}
