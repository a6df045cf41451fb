//! Raw successes packed per target and 10 minutes (`result_blocks`): the raw window's bulk at a fraction of a row's
//! bytes. A row costs ~44 bytes (key, record header, cell and page overhead); a packed success costs its varints,
//! ~5 bytes: the time since the one before, the status (1 for 200) and the latency in µs — phase timings are
//! dropped when packing (they stay with the last hour's rows and every failure). Only a success without error,
//! failed conditions or body, and not the first success after a failure (kept raw), is packed, so reads return
//! the same rows but for the phases.
//!
//! The block's bytes and which rows go into one are `codec.rs`'s (shared with PostgreSQL); this file reads and
//! writes SQLite's `result_blocks`.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::results::{COLUMNS, row};
use crate::ResultRow;
use crate::codec::{self, BLOCK_MS, Candidate, Sample};

fn malformed() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "malformed result block".into())
}

fn decoded(start: i64, data: &[u8]) -> rusqlite::Result<Vec<Sample>> {
    codec::decode_block(start, data).ok_or_else(malformed)
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
    let rows: Vec<(i64, ResultRow)> = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, seq FROM results WHERE target = ?1 AND at >= ?2 AND at < ?3 AND rolled = 0
             ORDER BY at, seq"
        ))?
        .query_map(params![id, from, before], |r| Ok((r.get(8)?, row("", r)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let Some((_, first)) = rows.first() else { return Ok(0) };
    let prev_ok: bool = tx
        .prepare_cached("SELECT ok FROM results WHERE target = ?1 AND at < ?2 ORDER BY at DESC, seq DESC LIMIT 1")?
        .query_row(params![id, first.at.0], |r| r.get(0))
        .optional()?
        .unwrap_or(true);
    let candidates = rows.into_iter().map(|(seq, r)| Candidate {
        at: r.at.0,
        seq,
        ok: r.ok,
        status: r.status,
        latency_us: codec::us(r.latency_ms),
        plain: r.error.is_none() && r.failed_conditions.is_empty() && r.body_excerpt.is_none(),
    });
    let hours = codec::pack_plan(prev_ok, candidates);
    let mut packed = 0;
    for (start, new) in hours {
        let existing: Option<Vec<u8>> = tx
            .prepare_cached("SELECT data FROM result_blocks WHERE target = ?1 AND start = ?2")?
            .query_row(params![id, start], |r| r.get(0))
            .optional()?;
        let existing = existing.map(|d| decoded(start, &d)).transpose()?.unwrap_or_default();
        for (seq, s) in &new {
            tx.prepare_cached("DELETE FROM results WHERE target = ?1 AND at = ?2 AND seq = ?3")?
                .execute(params![id, s.at, seq])?;
        }
        packed += new.len() as u64;
        let all = codec::merged(existing, new.into_iter().map(|(_, s)| s));
        tx.prepare_cached("INSERT OR REPLACE INTO result_blocks (target, start, n, data) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, start, all.len() as i64, codec::encode_block(start, &all)])?;
    }
    Ok(packed)
}
