//! Readings of status pages and of the host (migration 0012): written raw, rolled up per minute after
//! `raw_retention` and per hour after `retention`, deleted after the hourly retention; read back per slice from
//! whatever levels a range holds (each moment is in one level only).

use rusqlite::{Connection, params};

use super::results::{intern_target, target_id};
use crate::{Horizons, Reading, ReadingBucket};
use lookout_core::Timestamp;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// Writes readings raw (a second reading of a name in the same millisecond is dropped).
pub(super) fn insert(tx: &Connection, readings: &[Reading]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO readings (target, name, level, start, n, sum, min, max) VALUES (?1, ?2, 0, ?3, 1, ?4, ?4, ?4)
         ON CONFLICT DO NOTHING",
    )?;
    let mut last: Option<(&str, i64)> = None;
    for r in readings {
        let id = match last {
            Some((name, id)) if name == r.target => id,
            _ => intern_target(tx, &r.target)?,
        };
        last = Some((&r.target, id));
        if r.value.is_finite() {
            stmt.execute(params![id, r.name, r.at.0, r.value])?;
        }
    }
    Ok(())
}

pub(super) fn between(
    conn: &Connection,
    target: &str,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> rusqlite::Result<Vec<ReadingBucket>> {
    let Some(id) = target_id(conn, target)? else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(
        "SELECT name, (start - ?2) / ?4 AS slice, SUM(n), SUM(sum), MIN(min), MAX(max) FROM readings
         WHERE target = ?1 AND start >= ?2 AND start <= ?3 GROUP BY name, slice ORDER BY name, slice",
    )?;
    let rows = stmt.query_map(params![id, from, to, bucket_ms], |r| {
        let n: i64 = r.get(2)?;
        let sum: f64 = r.get(3)?;
        Ok(ReadingBucket {
            name: r.get(0)?,
            start: Timestamp(from + r.get::<_, i64>(1)? * bucket_ms),
            n: n.max(0) as u64,
            mean: if n > 0 { sum / n as f64 } else { 0.0 },
            min: r.get(4)?,
            max: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Moves raw readings older than `h.raw` into per-minute rows and per-minute rows older than `h.detail` into
/// per-hour rows (adding to a row already there), and deletes per-hour rows older than `h.hourly`; in one
/// transaction, so a crash leaves nothing counted twice. Returns the rows moved or deleted.
pub(super) fn roll_up(conn: &mut Connection, h: &Horizons) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let mut changed = 0;
    for (from_level, to_level, width, before) in [(0, 1, MINUTE_MS, h.raw.0), (1, 2, HOUR_MS, h.detail.0)] {
        tx.prepare_cached(
            "INSERT INTO readings (target, name, level, start, n, sum, min, max)
             SELECT target, name, ?2, start - start % ?3, SUM(n), SUM(sum), MIN(min), MAX(max) FROM readings
             WHERE level = ?1 AND start < ?4 GROUP BY target, name, start - start % ?3
             ON CONFLICT (target, name, level, start) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
                 min = MIN(min, excluded.min), max = MAX(max, excluded.max)",
        )?
        .execute(params![from_level, to_level, width, before])?;
        changed += tx
            .prepare_cached("DELETE FROM readings WHERE level = ?1 AND start < ?2")?
            .execute(params![from_level, before])? as u64;
    }
    changed += tx.prepare_cached("DELETE FROM readings WHERE level = 2 AND start < ?1")?.execute([h.hourly.0])? as u64;
    tx.commit()?;
    Ok(changed)
}
