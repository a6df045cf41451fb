//! Probe results on PostgreSQL: the same three forms and the same answers as SQLite's (`sqlite/results.rs`, whose
//! module comment says why) — raw rows for the short window, their successes packed into 10-minute blocks after an
//! hour, 5-minute and per-hour aggregates after that, failures and recoveries kept raw for the long retention. The
//! bytes and the decisions are `codec.rs`'s; this file only reads and writes rows.
//!
//! What differs, and why:
//! - Writes are bulk: a batch's results are one `INSERT … SELECT FROM unnest(…)` (and one look-up of target ids),
//!   so a storm of thousands of results costs a few round trips, not one per row.
//! - Several agents write at once, where SQLite has one writer. Two results of a target in one millisecond get
//!   `seq` 0, 1, … as in SQLite; a row whose key another writer took meanwhile is detected (`ON CONFLICT DO
//!   NOTHING`) and its group written again after the other writer's rows. The roll-up locks the target's row in
//!   `targets` first, so two agents' roll-ups of a target take turns, and it deletes or marks exactly the rows it
//!   counted (by key), so a late result written meanwhile is left for the next run, never deleted uncounted.
//! - A read's independent queries are sent together on one connection (pipelined), so it costs about one round
//!   trip.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::{GenericClient, Object, Pool, Transaction};
use lookout_core::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{bad, from_json, get, q, to_json};
use crate::codec::{self, Agg, BLOCK_MS, Candidate, Counted, DAY_MS, HOUR_MS, Sample, Slices};
use crate::{Horizons, Result, ResultBucket, ResultRow, RollUp, StoreError};

/// How often a batch's rows are written again after other writers took their keys before it gives up: each
/// time reads the keys taken anew, so only a writer that wins every race makes it fail.
const MAX_ATTEMPTS: usize = 8;

/// The columns [`result_row`] reads.
const COLUMNS: &str = "at, ok, status, latency_us, error, failed_conditions, timings, body_excerpt";

/// A connection from the pool.
pub(super) async fn connect(pool: &Pool, op: &'static str) -> Result<Object> {
    pool.get().await.map_err(|e| StoreError::Query { op, message: super::pool_error(e) })
}

/// One query through the connection's statement cache.
pub(super) async fn fetch<C: GenericClient>(
    c: &C,
    op: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(q(op))?;
    c.query(&stmt, params).await.map_err(q(op))
}

/// One statement through the connection's statement cache; returns the rows it changed.
pub(super) async fn exec<C: GenericClient>(
    c: &C,
    op: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(q(op))?;
    c.execute(&stmt, params).await.map_err(q(op))
}

fn status(op: &'static str, v: Option<i32>) -> Result<Option<u16>> {
    v.map(|s| u16::try_from(s).map_err(|_| bad(op, format!("status {s}")))).transpose()
}

fn malformed(op: &'static str, what: &str) -> StoreError {
    bad(op, format!("malformed {what}"))
}

/// A result as written, before the database has it: its target's id and `seq`, and its columns as stored.
struct Pending<'a> {
    target: i64,
    at: i64,
    seq: i32,
    r: &'a ResultRow,
    latency_us: i64,
    timings: Option<Vec<u8>>,
    failed: Option<String>,
}

/// Writes a batch's results into an open transaction (`record_all`'s): target ids looked up (and added) for the
/// whole batch at once, then every row in one statement.
pub(super) async fn insert_all(tx: &Transaction<'_>, rows: &[&ResultRow]) -> Result<()> {
    const OP: &str = "record results";
    let ids = intern_targets(tx, rows.iter().map(|r| r.target.as_str())).await?;
    // Two results of one target in one millisecond: 0, 1, … in the order they came, as in SQLite.
    let mut next_seq: HashMap<(i64, i64), i32> = HashMap::new();
    let mut pending = Vec::with_capacity(rows.len());
    for &r in rows {
        let target = *ids.get(r.target.as_str()).ok_or_else(|| bad(OP, format!("no id for target {}", r.target)))?;
        let seq = next_seq.entry((target, r.at.0)).or_default();
        let latency_us = codec::us(r.latency_ms);
        let failed = if r.failed_conditions.is_empty() { None } else { Some(to_json(OP, &r.failed_conditions)?) };
        let timings = codec::encode_timings(&r.timings, latency_us);
        pending.push(Pending { target, at: r.at.0, seq: *seq, r, latency_us, timings, failed });
        *seq = seq.saturating_add(1);
    }
    // In key order, so two writers that wait on each other's rows always wait in the same order (no deadlock).
    pending.sort_by_key(|p| (p.target, p.at, p.seq));
    for _ in 0..MAX_ATTEMPTS {
        let refused = insert_rows(tx, &pending).await?;
        if refused.is_empty() {
            return Ok(());
        }
        pending = after_others(tx, pending, &refused).await?;
    }
    Err(StoreError::Query {
        op: OP,
        message: format!("other writers kept taking the keys of results (target, time) after {MAX_ATTEMPTS} attempts"),
    })
}

/// Writes the rows; returns the indexes (into `rows`) of those whose key was taken (by a result of the same target
/// and millisecond written before, or by another writer meanwhile), which were not written.
async fn insert_rows(tx: &Transaction<'_>, rows: &[Pending<'_>]) -> Result<HashSet<usize>> {
    const OP: &str = "record results";
    let target: Vec<i64> = rows.iter().map(|p| p.target).collect();
    let at: Vec<i64> = rows.iter().map(|p| p.at).collect();
    let seq: Vec<i32> = rows.iter().map(|p| p.seq).collect();
    let ok: Vec<bool> = rows.iter().map(|p| p.r.ok).collect();
    let status: Vec<Option<i32>> = rows.iter().map(|p| p.r.status.map(i32::from)).collect();
    let latency: Vec<i64> = rows.iter().map(|p| p.latency_us).collect();
    let timings: Vec<Option<&[u8]>> = rows.iter().map(|p| p.timings.as_deref()).collect();
    let error: Vec<Option<&str>> = rows.iter().map(|p| p.r.error.as_deref()).collect();
    let failed: Vec<Option<&str>> = rows.iter().map(|p| p.failed.as_deref()).collect();
    let body: Vec<Option<&str>> = rows.iter().map(|p| p.r.body_excerpt.as_deref()).collect();
    let refused = fetch(
        tx,
        OP,
        "WITH input AS (
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::INTEGER[], $4::BOOLEAN[], $5::INTEGER[],
                                  $6::BIGINT[], $7::BYTEA[], $8::TEXT[], $9::TEXT[], $10::TEXT[]) WITH ORDINALITY
                 AS u (target, at, seq, ok, status, latency_us, timings, error, failed_conditions, body_excerpt, i)
         ), written AS (
             INSERT INTO results
                 (target, at, seq, ok, status, latency_us, timings, error, failed_conditions, body_excerpt)
             SELECT target, at, seq, ok, status, latency_us, timings, error, failed_conditions, body_excerpt
             FROM input
             ON CONFLICT (target, at, seq) DO NOTHING
             RETURNING target, at, seq
         )
         SELECT i FROM input
         WHERE NOT EXISTS (SELECT 1 FROM written w
                           WHERE (w.target, w.at, w.seq) = (input.target, input.at, input.seq))",
        &[&target, &at, &seq, &ok, &status, &latency, &timings, &error, &failed, &body],
    )
    .await?;
    refused
        .iter()
        .map(|r| {
            let i = get::<i64>(OP, r, 0)?;
            usize::try_from(i - 1).ok().filter(|&i| i < rows.len()).ok_or_else(|| bad(OP, format!("row {i}")))
        })
        .collect()
}

/// The rows to write again after some were refused: every result of each (target, millisecond) that had a row
/// refused — those of them that were written are taken back, so the group keeps its order — numbered after what
/// the store holds for it now.
async fn after_others<'a>(
    tx: &Transaction<'_>,
    rows: Vec<Pending<'a>>,
    refused: &HashSet<usize>,
) -> Result<Vec<Pending<'a>>> {
    const OP: &str = "record results";
    let groups: HashSet<(i64, i64)> = refused.iter().filter_map(|&i| rows.get(i)).map(|p| (p.target, p.at)).collect();
    let (mut again, mut undo) = (Vec::new(), (Vec::new(), Vec::new(), Vec::new()));
    for (i, p) in rows.into_iter().enumerate() {
        if !groups.contains(&(p.target, p.at)) {
            continue;
        }
        if !refused.contains(&i) {
            undo.0.push(p.target);
            undo.1.push(p.at);
            undo.2.push(p.seq);
        }
        again.push(p);
    }
    exec(
        tx,
        OP,
        "DELETE FROM results USING unnest($1::BIGINT[], $2::BIGINT[], $3::INTEGER[]) AS d (target, at, seq)
         WHERE (results.target, results.at, results.seq) = (d.target, d.at, d.seq)",
        &[&undo.0, &undo.1, &undo.2],
    )
    .await?;
    let (targets, ats): (Vec<i64>, Vec<i64>) = groups.iter().copied().unzip();
    let taken = fetch(
        tx,
        OP,
        "SELECT r.target, r.at, MAX(r.seq) FROM results r
         JOIN unnest($1::BIGINT[], $2::BIGINT[]) AS g (target, at) ON (r.target, r.at) = (g.target, g.at)
         GROUP BY r.target, r.at",
        &[&targets, &ats],
    )
    .await?;
    let mut next: HashMap<(i64, i64), i32> = HashMap::new();
    for r in &taken {
        next.insert((get(OP, r, 0)?, get(OP, r, 1)?), get::<i32>(OP, r, 2)?.saturating_add(1));
    }
    for p in &mut again {
        let seq = next.entry((p.target, p.at)).or_default();
        p.seq = *seq;
        *seq = seq.saturating_add(1);
    }
    Ok(again)
}

/// The ids of the targets named, those not yet known added (in name order, so concurrent writers adding the same
/// names wait on each other in one order). Usually one round trip: every target but a new one is known.
pub(super) async fn intern_targets<'n>(
    tx: &Transaction<'_>,
    names: impl Iterator<Item = &'n str>,
) -> Result<HashMap<&'n str, i64>> {
    const OP: &str = "record results";
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.dedup();
    let mut ids = HashMap::with_capacity(names.len());
    let select = "SELECT name, id FROM targets WHERE name = ANY($1::TEXT[])";
    let read = |rows: Vec<Row>, ids: &mut HashMap<&'n str, i64>| -> Result<()> {
        for r in &rows {
            let name: &str = get(OP, r, 0)?;
            // The name as asked for (borrowed from the results), not the row's.
            if let Ok(i) = names.binary_search(&name) {
                ids.insert(names[i], get(OP, r, 1)?);
            }
        }
        Ok(())
    };
    read(fetch(tx, OP, select, &[&names]).await?, &mut ids)?;
    let missing: Vec<&str> = names.iter().copied().filter(|n| !ids.contains_key(n)).collect();
    if !missing.is_empty() {
        exec(
            tx,
            OP,
            "INSERT INTO targets (name) SELECT n FROM unnest($1::TEXT[]) AS n ORDER BY n ON CONFLICT (name) DO NOTHING",
            &[&missing],
        )
        .await?;
        // Another writer may have added some meanwhile: their ids are the ones.
        read(fetch(tx, OP, select, &[&missing]).await?, &mut ids)?;
    }
    Ok(ids)
}

/// A target's id, `None` if it has no results.
pub(super) async fn target_id<C: GenericClient>(c: &C, op: &'static str, name: &str) -> Result<Option<i64>> {
    let rows = fetch(c, op, "SELECT id FROM targets WHERE name = $1", &[&name]).await?;
    rows.first().map(|r| get(op, r, 0)).transpose()
}

/// A row of [`COLUMNS`] as a result of `target`.
fn result_row(op: &'static str, target: &str, r: &Row) -> Result<ResultRow> {
    let latency_us: i64 = get(op, r, 3)?;
    let failed: Option<&str> = get(op, r, 5)?;
    let timings: Option<&[u8]> = get(op, r, 6)?;
    Ok(ResultRow {
        target: target.to_owned(),
        at: Timestamp(get(op, r, 0)?),
        ok: get(op, r, 1)?,
        status: status(op, get(op, r, 2)?)?,
        latency_ms: latency_us as f64 / 1000.0,
        error: get(op, r, 4)?,
        failed_conditions: failed.map(|f| from_json(op, f)).transpose()?.unwrap_or_default(),
        timings: codec::timings_of(timings, latency_us).ok_or_else(|| malformed(op, "timings"))?,
        body_excerpt: get(op, r, 7)?,
    })
}

/// The samples of block rows (start, data).
fn block_samples(op: &'static str, rows: &[Row]) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for r in rows {
        let (start, data): (i64, &[u8]) = (get(op, r, 0)?, get(op, r, 1)?);
        out.extend(codec::decode_block(start, data).ok_or_else(|| malformed(op, "result block"))?);
    }
    Ok(out)
}

/// A target's packed successes from `from` to `to` inclusive, oldest first.
async fn samples<C: GenericClient>(c: &C, op: &'static str, id: i64, from: i64, to: i64) -> Result<Vec<Sample>> {
    let rows = fetch(
        c,
        op,
        "SELECT start, data FROM result_blocks WHERE target = $1 AND start >= $2 AND start <= $3 ORDER BY start",
        &[&id, &codec::floor_to(from, BLOCK_MS), &to],
    )
    .await?;
    Ok(block_samples(op, &rows)?.into_iter().filter(|s| (from..=to).contains(&s.at)).collect())
}

/// The aggregates of a target whose start is in `from..=to`, each period once: 5-minute where they are kept
/// (every hour from the first one's), per-hour before.
async fn aggregates<C: GenericClient>(c: &C, op: &'static str, id: i64, from: i64, to: i64) -> Result<Vec<(i64, Agg)>> {
    let rows = fetch(
        c,
        op,
        "WITH split AS (
             SELECT COALESCE(MIN(start) - ((MIN(start) % $4) + $4) % $4, 9223372036854775807) AS at
             FROM result_rollups WHERE target = $1 AND level = 0
         )
         SELECT r.start, r.total, r.failures, r.latency_sum_us, r.latency_min_us, r.latency_max_us, r.histogram
         FROM result_rollups r, split
         WHERE r.target = $1 AND r.start >= $2 AND r.start <= $3
           AND ((r.level = 1 AND r.start < split.at) OR (r.level = 0 AND r.start >= split.at))
         ORDER BY r.start",
        &[&id, &from, &to, &HOUR_MS],
    )
    .await?;
    rows.iter().map(|r| Ok((get(op, r, 0)?, agg_from_row(op, r, 1)?))).collect()
}

/// Total, failures, sum, min, max and histogram from columns `first..first + 6`.
fn agg_from_row(op: &'static str, r: &Row, first: usize) -> Result<Agg> {
    let n = |i: usize| get::<i64>(op, r, first + i);
    let hist: &[u8] = get(op, r, first + 5)?;
    Agg::from_stored(n(0)?, n(1)?, n(2)?, n(3)?, n(4)?, hist).ok_or_else(|| malformed(op, "histogram"))
}

/// The latest results of a target, newest first: raw rows and packed successes.
pub(super) async fn recent(pool: &Pool, target: &str, limit: usize) -> Result<Vec<ResultRow>> {
    const OP: &str = "read results";
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(Vec::new()) };
    let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
    let raw_sql = format!("SELECT {COLUMNS} FROM results WHERE target = $1 ORDER BY at DESC, seq DESC LIMIT $2");
    // The newest blocks until they hold `limit` results (by their count, without reading the others' data).
    let blocks_sql = "SELECT start, data FROM result_blocks WHERE target = $1 AND start IN (
                          SELECT start FROM (
                              SELECT start, SUM(n) OVER (ORDER BY start DESC) - n AS newer
                              FROM result_blocks WHERE target = $1
                          ) b WHERE newer < $2)
                      ORDER BY start DESC";
    let (raw, blocks) = tokio::try_join!(async { fetch(&c, OP, &raw_sql, &[&id, &limit_i]).await }, async {
        fetch(&c, OP, blocks_sql, &[&id, &limit_i]).await
    })?;
    let rows = raw.iter().map(|r| result_row(OP, target, r)).collect::<Result<Vec<_>>>()?;
    // Newest first: the blocks come newest first, each block's samples oldest first.
    let mut newest = Vec::new();
    for block in &blocks {
        newest.extend(block_samples(OP, std::slice::from_ref(block))?.into_iter().rev());
    }
    codec::newest_first(rows, &newest, target, limit).ok_or_else(|| malformed(OP, "timings"))
}

/// A target's results from `from` to `to`: every result inside the raw window; beyond it, the failures and the
/// first success after each run of them.
pub(super) async fn between(pool: &Pool, target: &str, from: i64, to: i64) -> Result<Vec<ResultRow>> {
    const OP: &str = "read results";
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(Vec::new()) };
    let raw_sql = format!("SELECT {COLUMNS} FROM results WHERE target = $1 AND at >= $2 AND at <= $3 ORDER BY at, seq");
    let (raw, samples) =
        tokio::try_join!(async { fetch(&c, OP, &raw_sql, &[&id, &from, &to]).await }, samples(&c, OP, id, from, to))?;
    let rows = raw.iter().map(|r| result_row(OP, target, r)).collect::<Result<Vec<_>>>()?;
    codec::oldest_first(rows, &samples, target).ok_or_else(|| malformed(OP, "timings"))
}

/// (day, passed, total) per UTC day from `from` on: raw rows not yet rolled up, packed successes and the hourly
/// aggregates.
pub(super) async fn daily_uptime(pool: &Pool, target: &str, from: i64) -> Result<Vec<(i64, u64, u64)>> {
    const OP: &str = "read uptime";
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(Vec::new()) };
    // The block `from` cuts is counted by sample, the others whole by their count.
    let cut_start = codec::floor_to(from, BLOCK_MS);
    let cut = async {
        if cut_start < from { samples(&c, OP, id, from, cut_start + BLOCK_MS - 1).await } else { Ok(Vec::new()) }
    };
    let (raw, hourly, blocks, cut) = tokio::try_join!(
        async {
            fetch(
                &c,
                OP,
                "SELECT at / $3 AS day, COUNT(*) FILTER (WHERE ok), COUNT(*) FROM results
                 WHERE target = $1 AND at >= $2 AND NOT rolled GROUP BY day",
                &[&id, &from, &DAY_MS],
            )
            .await
        },
        async {
            fetch(
                &c,
                OP,
                "SELECT start / $3 AS day, SUM(total - failures)::BIGINT, SUM(total)::BIGINT FROM result_rollups
                 WHERE target = $1 AND level = 1 AND start >= $2 GROUP BY day",
                &[&id, &from, &DAY_MS],
            )
            .await
        },
        async {
            fetch(
                &c,
                OP,
                "SELECT start / $3 AS day, SUM(n)::BIGINT FROM result_blocks WHERE target = $1 AND start >= $2
                 GROUP BY day",
                &[&id, &from, &DAY_MS],
            )
            .await
        },
        cut
    )?;
    let mut days = codec::Days::default();
    for r in raw.iter().chain(&hourly) {
        days.add(get(OP, r, 0)?, get(OP, r, 1)?, get(OP, r, 2)?);
    }
    for r in &blocks {
        let n: i64 = get(OP, r, 1)?;
        days.add(get(OP, r, 0)?, n, n);
    }
    for s in &cut {
        days.add(s.at / DAY_MS, 1, 1);
    }
    Ok(days.finish())
}

/// A target's results from `from` to `to` counted per slice of `bucket_ms`.
pub(super) async fn buckets(
    pool: &Pool,
    target: &str,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> Result<Vec<ResultBucket>> {
    const OP: &str = "read result buckets";
    let bucket_ms = bucket_ms.max(1);
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(Vec::new()) };
    let (raw, samples, aggs) = tokio::try_join!(
        async {
            fetch(
                &c,
                OP,
                "SELECT (at - $2) / $4 AS slice, COUNT(*), COUNT(*) FILTER (WHERE ok), SUM(latency_us)::BIGINT
                 FROM results WHERE target = $1 AND at >= $2 AND at <= $3 AND NOT rolled GROUP BY slice",
                &[&id, &from, &to, &bucket_ms],
            )
            .await
        },
        samples(&c, OP, id, from, to),
        aggregates(&c, OP, id, from, to)
    )?;
    let mut slices = Slices::new(from, bucket_ms);
    for r in &raw {
        slices.add_counts(get(OP, r, 0)?, get(OP, r, 1)?, get(OP, r, 2)?, get(OP, r, 3)?);
    }
    for s in &samples {
        slices.add_sample(s);
    }
    for (start, a) in &aggs {
        slices.add_agg(*start, a);
    }
    Ok(slices.finish())
}

/// Nearest-rank latency percentiles: exact from raw results alone, estimated from the merged histograms once the
/// range reaches rolled-up data (`codec::percentiles`).
pub(super) async fn percentiles(pool: &Pool, target: &str, from: i64, to: i64, qs: &[f64]) -> Result<Vec<Option<f64>>> {
    const OP: &str = "read latency percentiles";
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(vec![None; qs.len()]) };
    let (raw, samples, aggs) = tokio::try_join!(
        async {
            fetch(
                &c,
                OP,
                "SELECT latency_us FROM results WHERE target = $1 AND at >= $2 AND at <= $3 AND NOT rolled",
                &[&id, &from, &to],
            )
            .await
        },
        samples(&c, OP, id, from, to),
        aggregates(&c, OP, id, from, to)
    )?;
    let mut sorted = raw.iter().map(|r| get::<i64>(OP, r, 0)).collect::<Result<Vec<_>>>()?;
    sorted.extend(samples.iter().map(|s| s.latency_us));
    sorted.sort_unstable();
    Ok(codec::percentiles(&sorted, &aggs, qs))
}

/// Rolls every target up, each in its own transaction (see [`roll_up_target`]).
pub(super) async fn roll_up(pool: &Pool, h: &Horizons) -> Result<RollUp> {
    const OP: &str = "roll up results";
    let mut c = connect(pool, OP).await?;
    let ids = fetch(&c, OP, "SELECT id FROM targets ORDER BY id", &[]).await?;
    let mut done = RollUp::default();
    for r in &ids {
        let part = roll_up_target(&mut c, get(OP, r, 0)?, h).await?;
        done.rolled += part.rolled;
        done.deleted += part.deleted;
        done.packed += part.packed;
    }
    Ok(done)
}

/// Rolls up one target in one transaction, as SQLite does: the raw results older than `h.raw` (by whole hours)
/// not yet counted are added to the 5-minute and hour aggregates, and deleted unless failing or the first success
/// after a failure (those are marked counted); then what is older than the long horizons is deleted, and the raw
/// window's successes older than `h.pack` are packed. A crash rolls all of it back; running it again finds
/// nothing left to count.
async fn roll_up_target(c: &mut Object, id: i64, h: &Horizons) -> Result<RollUp> {
    const OP: &str = "roll up results";
    let tx = c.transaction().await.map_err(q(OP))?;
    // Another agent's roll-up of this target waits here until this one commits, then sees its work.
    fetch(&tx, OP, "SELECT id FROM targets WHERE id = $1 FOR UPDATE", &[&id]).await?;
    let raw_before = codec::floor_to(h.raw.0, HOUR_MS);
    let (raw, blocks) = tokio::try_join!(
        async {
            fetch(
                &tx,
                OP,
                "SELECT at, seq, ok, latency_us FROM results WHERE target = $1 AND at < $2 AND NOT rolled
                 ORDER BY at, seq",
                &[&id, &raw_before],
            )
            .await
        },
        async {
            fetch(
                &tx,
                OP,
                "DELETE FROM result_blocks WHERE target = $1 AND start < $2 RETURNING start, data",
                &[&id, &raw_before],
            )
            .await
        }
    )?;
    let mut rows = Vec::with_capacity(raw.len());
    for r in &raw {
        let seq: i32 = get(OP, r, 1)?;
        rows.push(Counted {
            at: get(OP, r, 0)?,
            seq: Some(i64::from(seq)),
            ok: get(OP, r, 2)?,
            latency_us: get(OP, r, 3)?,
        });
    }
    let mut blocks: Vec<&Row> = blocks.iter().collect();
    blocks.sort_by_key(|r| r.try_get::<_, i64>(0).ok());
    for r in blocks {
        let (start, data): (i64, &[u8]) = (get(OP, r, 0)?, get(OP, r, 1)?);
        let samples = codec::decode_block(start, data).ok_or_else(|| malformed(OP, "result block"))?;
        rows.extend(samples.into_iter().map(|s| Counted { at: s.at, seq: None, ok: true, latency_us: s.latency_us }));
    }
    rows.sort_by_key(|r| r.at);
    let mut deleted = 0u64;
    if let Some(first) = rows.first() {
        let prev_ok = ok_before(&tx, id, first.at).await?;
        let roll = codec::roll(prev_ok, &rows);
        write_aggregates(&tx, id, roll.aggs).await?;
        let keys = |v: &[(i64, i64)]| -> (Vec<i64>, Vec<i32>) {
            v.iter().map(|&(at, seq)| (at, i32::try_from(seq).unwrap_or(i32::MAX))).unzip()
        };
        let (keep, gone) = (keys(&roll.keep), keys(&roll.gone));
        let (_, n) = tokio::try_join!(
            async {
                exec(
                    &tx,
                    OP,
                    "UPDATE results SET rolled = TRUE FROM unnest($2::BIGINT[], $3::INTEGER[]) AS k (at, seq)
                     WHERE results.target = $1 AND (results.at, results.seq) = (k.at, k.seq)",
                    &[&id, &keep.0, &keep.1],
                )
                .await
            },
            async {
                exec(
                    &tx,
                    OP,
                    "DELETE FROM results USING unnest($2::BIGINT[], $3::INTEGER[]) AS d (at, seq)
                     WHERE results.target = $1 AND (results.at, results.seq) = (d.at, d.seq)",
                    &[&id, &gone.0, &gone.1],
                )
                .await
            }
        )?;
        deleted += n;
    }
    // The long horizons. 5-minute aggregates go by whole hours, so every hour from the first one kept is complete.
    let detail_hour = codec::floor_to(h.detail.0, HOUR_MS);
    let (n, _, _) = tokio::try_join!(
        async {
            exec(&tx, OP, "DELETE FROM results WHERE target = $1 AND at < $2 AND rolled", &[&id, &h.detail.0]).await
        },
        async {
            exec(
                &tx,
                OP,
                "DELETE FROM result_rollups WHERE target = $1 AND level = 0 AND start < $2",
                &[&id, &detail_hour],
            )
            .await
        },
        async {
            exec(
                &tx,
                OP,
                "DELETE FROM result_rollups WHERE target = $1 AND level = 1 AND start < $2",
                &[&id, &h.hourly.0],
            )
            .await
        }
    )?;
    deleted += n;
    let packed = pack(&tx, id, raw_before, codec::floor_to(h.pack.0, HOUR_MS)).await?;
    tx.commit().await.map_err(q(OP))?;
    Ok(RollUp { rolled: rows.len() as u64, deleted, packed })
}

/// Whether the latest result of a target before `at` passed (true when there is none).
async fn ok_before(tx: &Transaction<'_>, id: i64, at: i64) -> Result<bool> {
    const OP: &str = "roll up results";
    let rows = fetch(
        tx,
        OP,
        "SELECT ok FROM results WHERE target = $1 AND at < $2 ORDER BY at DESC, seq DESC LIMIT 1",
        &[&id, &at],
    )
    .await?;
    Ok(match rows.first() {
        Some(r) => get(OP, r, 0)?,
        None => true,
    })
}

/// Adds aggregates, by (level, start), to those stored: read, merged and written back in one statement each.
async fn write_aggregates(
    tx: &Transaction<'_>,
    id: i64,
    aggs: std::collections::BTreeMap<(i64, i64), Agg>,
) -> Result<()> {
    const OP: &str = "roll up results";
    let level = |l: i64| i16::try_from(l).unwrap_or(i16::MAX);
    let (levels, starts): (Vec<i16>, Vec<i64>) = aggs.keys().map(|&(l, s)| (level(l), s)).unzip();
    let stored = fetch(
        tx,
        OP,
        "SELECT r.level, r.start, r.total, r.failures, r.latency_sum_us, r.latency_min_us, r.latency_max_us,
                r.histogram
         FROM result_rollups r JOIN unnest($2::SMALLINT[], $3::BIGINT[]) AS k (level, start)
           ON (r.level, r.start) = (k.level, k.start)
         WHERE r.target = $1",
        &[&id, &levels, &starts],
    )
    .await?;
    let mut aggs = aggs;
    for r in &stored {
        let key = (i64::from(get::<i16>(OP, r, 0)?), get::<i64>(OP, r, 1)?);
        let existing = agg_from_row(OP, r, 2)?;
        if let Some(agg) = aggs.get_mut(&key) {
            agg.merge(&existing);
        }
    }
    let total: Vec<i64> = aggs.values().map(|a| i64::try_from(a.total).unwrap_or(i64::MAX)).collect();
    let failures: Vec<i64> = aggs.values().map(|a| i64::try_from(a.failures).unwrap_or(i64::MAX)).collect();
    let sum: Vec<i64> = aggs.values().map(|a| a.sum_us).collect();
    let min: Vec<i64> = aggs.values().map(|a| a.min_us).collect();
    let max: Vec<i64> = aggs.values().map(|a| a.max_us).collect();
    let hist: Vec<Vec<u8>> = aggs.values().map(|a| codec::encode_hist(&a.hist)).collect();
    exec(
        tx,
        OP,
        "INSERT INTO result_rollups
             (target, level, start, total, failures, latency_sum_us, latency_min_us, latency_max_us, histogram)
         SELECT $1, * FROM unnest($2::SMALLINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[],
                                  $7::BIGINT[], $8::BIGINT[], $9::BYTEA[])
         ON CONFLICT (target, level, start) DO UPDATE SET
             total = excluded.total, failures = excluded.failures, latency_sum_us = excluded.latency_sum_us,
             latency_min_us = excluded.latency_min_us, latency_max_us = excluded.latency_max_us,
             histogram = excluded.histogram",
        &[&id, &levels, &starts, &total, &failures, &sum, &min, &max, &hist],
    )
    .await?;
    Ok(())
}

/// Packs a target's raw rows from `from` to before `before` (block boundaries) that a block holds exactly
/// (`codec::pack_plan`); returns how many. Part of the roll-up's transaction.
async fn pack(tx: &Transaction<'_>, id: i64, from: i64, before: i64) -> Result<u64> {
    const OP: &str = "roll up results";
    if before <= from {
        return Ok(0);
    }
    let rows = fetch(
        tx,
        OP,
        "SELECT at, seq, ok, status, latency_us,
                error IS NULL AND COALESCE(failed_conditions, '[]') = '[]' AND body_excerpt IS NULL
         FROM results WHERE target = $1 AND at >= $2 AND at < $3 AND NOT rolled ORDER BY at, seq",
        &[&id, &from, &before],
    )
    .await?;
    let mut candidates = Vec::with_capacity(rows.len());
    for r in &rows {
        let seq: i32 = get(OP, r, 1)?;
        candidates.push(Candidate {
            at: get(OP, r, 0)?,
            seq: i64::from(seq),
            ok: get(OP, r, 2)?,
            status: status(OP, get(OP, r, 3)?)?,
            latency_us: get(OP, r, 4)?,
            plain: get(OP, r, 5)?,
        });
    }
    let Some(first) = candidates.first() else { return Ok(0) };
    let prev_ok = ok_before(tx, id, first.at).await?;
    let plan = codec::pack_plan(prev_ok, candidates);
    if plan.is_empty() {
        return Ok(0);
    }
    let starts: Vec<i64> = plan.keys().copied().collect();
    let stored =
        fetch(tx, OP, "SELECT start, data FROM result_blocks WHERE target = $1 AND start = ANY($2)", &[&id, &starts])
            .await?;
    let mut existing: HashMap<i64, Vec<Sample>> = HashMap::new();
    for r in &stored {
        let (start, data): (i64, &[u8]) = (get(OP, r, 0)?, get(OP, r, 1)?);
        existing.insert(start, codec::decode_block(start, data).ok_or_else(|| malformed(OP, "result block"))?);
    }
    let (mut gone_at, mut gone_seq) = (Vec::new(), Vec::new());
    let (mut counts, mut data) = (Vec::with_capacity(plan.len()), Vec::with_capacity(plan.len()));
    let mut packed = 0u64;
    for (&start, new) in &plan {
        for (seq, s) in new {
            gone_at.push(s.at);
            gone_seq.push(i32::try_from(*seq).unwrap_or(i32::MAX));
        }
        packed += new.len() as u64;
        let all = codec::merged(existing.remove(&start).unwrap_or_default(), new.iter().map(|(_, s)| s.clone()));
        counts.push(i32::try_from(all.len()).unwrap_or(i32::MAX));
        data.push(codec::encode_block(start, &all));
    }
    tokio::try_join!(
        async {
            exec(
                tx,
                OP,
                "DELETE FROM results USING unnest($2::BIGINT[], $3::INTEGER[]) AS d (at, seq)
                 WHERE results.target = $1 AND (results.at, results.seq) = (d.at, d.seq)",
                &[&id, &gone_at, &gone_seq],
            )
            .await
        },
        async {
            exec(
                tx,
                OP,
                "INSERT INTO result_blocks (target, start, n, data)
                 SELECT $1, * FROM unnest($2::BIGINT[], $3::INTEGER[], $4::BYTEA[])
                 ON CONFLICT (target, start) DO UPDATE SET n = excluded.n, data = excluded.data",
                &[&id, &starts, &counts, &data],
            )
            .await
        }
    )?;
    Ok(packed)
}

/// Deletes every form of result older than `before` (raw rows of any kind, blocks and aggregates) in one
/// transaction; returns the raw rows.
pub(super) async fn prune(pool: &Pool, before: i64) -> Result<usize> {
    const OP: &str = "prune results";
    let mut c = connect(pool, OP).await?;
    let tx = c.transaction().await.map_err(q(OP))?;
    let (n, _, _) = tokio::try_join!(
        async { exec(&tx, OP, "DELETE FROM results WHERE at < $1", &[&before]).await },
        async { exec(&tx, OP, "DELETE FROM result_blocks WHERE start + $2 <= $1", &[&before, &BLOCK_MS]).await },
        async { exec(&tx, OP, "DELETE FROM result_rollups WHERE start < $1", &[&before]).await }
    )?;
    tx.commit().await.map_err(q(OP))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests;
