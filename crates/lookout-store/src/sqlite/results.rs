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
//!
//! The encodings and the decisions (what is kept raw, packed, counted) are the backends' common `codec.rs`; this
//! file and `blocks.rs` only read and write SQLite's rows.

use lookout_core::{Timestamp, Timings};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::blocks;
use super::{from_json, to_json};
use crate::codec::{self, Agg, Counted, DAY_MS, HOUR_MS, Slices, encode_hist, encode_timings, us};
use crate::{Horizons, ResultBucket, ResultRow, RollUp};

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

pub(super) fn intern_target(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    if let Some(id) = target_id(conn, name)? {
        return Ok(id);
    }
    // Another process may have added it since: then its id is the one.
    conn.prepare_cached("INSERT INTO targets (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?.execute([name])?;
    target_id(conn, name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub(super) fn target_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM targets WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()
}

pub(super) const COLUMNS: &str = "at, ok, status, latency_us, error, failed_conditions, timings, body_excerpt";

pub(super) fn row(target: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<ResultRow> {
    let latency_us: i64 = r.get(3)?;
    let failed: Option<String> = r.get(5)?;
    let timings = match r.get_ref(6)? {
        ValueRef::Null => Timings { total_ms: latency_us as f64 / 1000.0, ..Timings::default() },
        // Rows from before migration 0007 keep their JSON.
        ValueRef::Text(t) => from_json(6, &String::from_utf8_lossy(t))?,
        ValueRef::Blob(b) => codec::decode_timings(b, latency_us).ok_or_else(|| {
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
    let rows: Vec<ResultRow> =
        stmt.query_map(params![id, limit as i64], |r| row(target, r))?.collect::<rusqlite::Result<_>>()?;
    codec::newest_first(rows, &blocks::newest(conn, id, limit)?, target, limit).ok_or_else(malformed_timings)
}

fn malformed_timings() -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "malformed timings".into())
}

/// The raw results of a target from `from` to `to`: every result inside the raw window; beyond it, the failures
/// and the first success after each run of them.
pub(super) fn between(conn: &Connection, target: &str, from: i64, to: i64) -> rusqlite::Result<Vec<ResultRow>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM results WHERE target = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, seq"
    ))?;
    let rows: Vec<ResultRow> =
        stmt.query_map(params![id, from, to], |r| row(target, r))?.collect::<rusqlite::Result<_>>()?;
    codec::oldest_first(rows, &blocks::samples(conn, id, from, to)?, target).ok_or_else(malformed_timings)
}

/// (day, passed, total) per UTC day from `from` on: raw rows not yet rolled up plus the hourly aggregates.
pub(super) fn daily_uptime(conn: &Connection, target: &str, from: i64) -> rusqlite::Result<Vec<(i64, u64, u64)>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut days = codec::Days::default();
    let mut stmt = conn.prepare_cached(
        "SELECT at / ?3 AS day, SUM(ok), COUNT(*) FROM results WHERE target = ?1 AND at >= ?2 AND rolled = 0
         GROUP BY day",
    )?;
    let mut rows = stmt.query(params![id, from, DAY_MS])?;
    while let Some(r) = rows.next()? {
        days.add(r.get(0)?, r.get(1)?, r.get(2)?);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT start / ?3 AS day, SUM(total - failures), SUM(total) FROM result_rollups
         WHERE target = ?1 AND level = 1 AND start >= ?2 GROUP BY day",
    )?;
    let mut rows = stmt.query(params![id, from, DAY_MS])?;
    while let Some(r) = rows.next()? {
        days.add(r.get(0)?, r.get(1)?, r.get(2)?);
    }
    for (day, n) in blocks::per_day(conn, id, from, DAY_MS)? {
        days.add(day, n as i64, n as i64);
    }
    Ok(days.finish())
}

/// Where the 5-minute aggregates of a target begin (an hour boundary; they cover every hour from there on);
/// older periods are read from the hourly ones. `i64::MAX` when there are none.
fn fine_from(conn: &Connection, id: i64) -> rusqlite::Result<i64> {
    let first: Option<i64> = conn
        .prepare_cached("SELECT MIN(start) FROM result_rollups WHERE target = ?1 AND level = 0")?
        .query_row([id], |r| r.get(0))?;
    Ok(first.map_or(i64::MAX, |s| codec::floor_to(s, HOUR_MS)))
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
    let mut slices = Slices::new(from, bucket_ms);
    let mut stmt = conn.prepare_cached(
        "SELECT (at - ?2) / ?4 AS slice, COUNT(*), SUM(ok), SUM(latency_us) FROM results
         WHERE target = ?1 AND at >= ?2 AND at <= ?3 AND rolled = 0 GROUP BY slice",
    )?;
    let mut rows = stmt.query(params![id, from, to, bucket_ms])?;
    while let Some(r) = rows.next()? {
        slices.add_counts(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    }
    for sample in blocks::samples(conn, id, from, to)? {
        slices.add_sample(&sample);
    }
    for (start, a) in aggregates(conn, id, from, to)? {
        slices.add_agg(start, &a);
    }
    Ok(slices.finish())
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
    Ok(codec::percentiles(&sorted, &aggregates(conn, id, from, to)?, qs))
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
    let raw_before = codec::floor_to(h.raw.0, HOUR_MS);
    let mut rows: Vec<Counted> = tx
        .prepare_cached(
            "SELECT at, seq, ok, latency_us FROM results WHERE target = ?1 AND at < ?2 AND rolled = 0 ORDER BY at, seq",
        )?
        .query_map(params![id, raw_before], |r| {
            Ok(Counted { at: r.get(0)?, seq: Some(r.get(1)?), ok: r.get(2)?, latency_us: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.extend(blocks::take_before(&tx, id, raw_before)?.into_iter().map(|s| Counted {
        at: s.at,
        seq: None,
        ok: true,
        latency_us: s.latency_us,
    }));
    rows.sort_by_key(|r| r.at);
    let mut deleted = 0u64;
    if let Some(&Counted { at: first_at, .. }) = rows.first() {
        // Whether the result before this batch failed: then the batch's first success is a recovery. The rows
        // before it are counted already, and only failures and recoveries of them remain, so the latest one is
        // the true predecessor whenever it failed.
        let prev_ok: bool = tx
            .prepare_cached("SELECT ok FROM results WHERE target = ?1 AND at < ?2 ORDER BY at DESC, seq DESC LIMIT 1")?
            .query_row(params![id, first_at], |r| r.get(0))
            .optional()?
            .unwrap_or(true);
        let codec::Roll { aggs, keep, gone: _ } = codec::roll(prev_ok, &rows);
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
        .execute(params![id, codec::floor_to(h.detail.0, HOUR_MS)])?;
    tx.prepare_cached("DELETE FROM result_rollups WHERE target = ?1 AND level = 1 AND start < ?2")?
        .execute(params![id, h.hourly.0])?;
    let packed = blocks::pack(&tx, id, raw_before, codec::floor_to(h.pack.0, HOUR_MS))?;
    tx.commit()?;
    Ok(RollUp { rolled: rows.len() as u64, deleted, packed })
}

/// Deletes every form of result older than `before` (raw rows of any kind, blocks and aggregates); returns the raw
/// rows.
pub(super) fn prune(conn: &mut Connection, before: i64) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM results WHERE at < ?1", [before])?;
    tx.execute("DELETE FROM result_blocks WHERE start + ?2 <= ?1", [before, codec::BLOCK_MS])?;
    tx.execute("DELETE FROM result_rollups WHERE start < ?1", [before])?;
    tx.commit()?;
    Ok(n)
}

/// Reads total, failures, sum, min, max, histogram from columns `first..first + 6`.
fn agg_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Agg> {
    let n = |i: usize| r.get::<_, i64>(first + i);
    let bytes: Vec<u8> = r.get(first + 5)?;
    Agg::from_stored(n(0)?, n(1)?, n(2)?, n(3)?, n(4)?, &bytes).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(first + 5, rusqlite::types::Type::Blob, "malformed histogram".into())
    })
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
}
