//! Readings of status pages and of the host on PostgreSQL: the same levels and answers as SQLite's
//! (`sqlite/readings.rs`), written in bulk with `unnest`.

use deadpool_postgres::{Pool, Transaction};
use lookout_core::Timestamp;

use super::get;
use super::results::{connect, exec, fetch, intern_targets, target_id};
use crate::{Horizons, Reading, ReadingBucket, Result};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

pub(super) async fn insert_all(tx: &Transaction<'_>, readings: &[&Reading]) -> Result<()> {
    const OP: &str = "record readings";
    let ids = intern_targets(tx, readings.iter().map(|r| r.target.as_str())).await?;
    let (mut targets, mut names, mut starts, mut values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in readings.iter().filter(|r| r.value.is_finite()) {
        let Some(id) = ids.get(r.target.as_str()) else { continue };
        targets.push(*id);
        names.push(r.name.as_str());
        starts.push(r.at.0);
        values.push(r.value);
    }
    exec(
        tx,
        OP,
        "INSERT INTO readings (target, name, level, start, n, sum, min, max)
         SELECT t, n, 0, s, 1, v, v, v FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::DOUBLE PRECISION[])
             AS x(t, n, s, v)
         ON CONFLICT DO NOTHING",
        &[&targets, &names, &starts, &values],
    )
    .await?;
    Ok(())
}

pub(super) async fn between(
    pool: &Pool,
    target: &str,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> Result<Vec<ReadingBucket>> {
    const OP: &str = "read readings";
    let c = connect(pool, OP).await?;
    let Some(id) = target_id(&c, OP, target).await? else { return Ok(Vec::new()) };
    let rows = fetch(
        &c,
        OP,
        "SELECT name, (start - $2) / $4 AS slice, SUM(n)::BIGINT, SUM(sum), MIN(min), MAX(max) FROM readings
         WHERE target = $1 AND start >= $2 AND start <= $3 GROUP BY name, slice ORDER BY name, slice",
        &[&id, &from, &to, &bucket_ms],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = get(OP, r, 2)?;
            let sum: f64 = get(OP, r, 3)?;
            Ok(ReadingBucket {
                name: get(OP, r, 0)?,
                start: Timestamp(from + get::<i64>(OP, r, 1)? * bucket_ms),
                n: n.max(0) as u64,
                mean: if n > 0 { sum / n as f64 } else { 0.0 },
                min: get(OP, r, 4)?,
                max: get(OP, r, 5)?,
            })
        })
        .collect()
}

/// As SQLite's: raw → per minute after `h.raw`, per minute → per hour after `h.detail`, per hour deleted after
/// `h.hourly`; one transaction.
pub(super) async fn roll_up(pool: &Pool, h: &Horizons) -> Result<u64> {
    const OP: &str = "roll up readings";
    let mut c = connect(pool, OP).await?;
    let tx = c.transaction().await.map_err(super::q(OP))?;
    let mut changed = 0;
    for (from_level, to_level, width, before) in [(0i16, 1i16, MINUTE_MS, h.raw.0), (1, 2, HOUR_MS, h.detail.0)] {
        exec(
            &tx,
            OP,
            "INSERT INTO readings (target, name, level, start, n, sum, min, max)
             SELECT target, name, $2, start - start % $3, SUM(n), SUM(sum), MIN(min), MAX(max) FROM readings
             WHERE level = $1 AND start < $4 GROUP BY target, name, start - start % $3
             ON CONFLICT (target, name, level, start) DO UPDATE SET n = readings.n + excluded.n,
                 sum = readings.sum + excluded.sum, min = LEAST(readings.min, excluded.min),
                 max = GREATEST(readings.max, excluded.max)",
            &[&from_level, &to_level, &width, &before],
        )
        .await?;
        changed +=
            exec(&tx, OP, "DELETE FROM readings WHERE level = $1 AND start < $2", &[&from_level, &before]).await?;
    }
    changed += exec(&tx, OP, "DELETE FROM readings WHERE level = 2 AND start < $1", &[&h.hourly.0]).await?;
    tx.commit().await.map_err(super::q(OP))?;
    Ok(changed)
}
