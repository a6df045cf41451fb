//! Writing what one event produced ([`Record`]) into an open transaction; [`super::PgStore::record_all`] writes a
//! batch of them and their results (in bulk) and commits once.

use deadpool_postgres::{GenericClient, Transaction};
use lookout_core::Timestamp;
use tokio_postgres::types::ToSql;

use super::{q, to_json};
use crate::sql::{FORGET_CHECKS, FORGET_LOCATIONS};
use crate::{Record, Result};

const OP: &str = "record";

/// Runs a statement through the connection's statement cache: a batch of thousands of records prepares each
/// statement once.
pub(super) async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let stmt = tx.prepare_cached(sql).await.map_err(q(OP))?;
    tx.execute(&stmt, params).await.map_err(q(OP))
}

/// Writes one record except its result (written in bulk for the whole batch). `Err(Conflict)` when an incident
/// change met a newer revision: the caller drops the transaction, which rolls everything back.
pub(super) async fn write(tx: &Transaction<'_>, record: &Record) -> Result<()> {
    // Incidents first: a refused change refuses everything else of this record with it.
    for change in &record.incidents {
        super::incidents::write(tx, change).await?;
    }
    super::checks::consume(tx, &record.consumed).await?;
    for l in &record.locations {
        super::checks::upsert_location(tx, l).await?;
    }
    let now = Timestamp::now().0;
    if let Some((target, state)) = &record.state {
        exec(
            tx,
            "INSERT INTO alert_state (target, state, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (target) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            &[target, &to_json(OP, state)?, &now],
        )
        .await?;
    }
    if let Some(log) = &record.log {
        for (file, cursor) in &log.cursors {
            exec(
                tx,
                "INSERT INTO log_cursors (source, file, cursor, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (source, file) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                &[&log.source, file, cursor, &now],
            )
            .await?;
        }
        for c in &log.counts {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            exec(
                tx,
                "INSERT INTO log_counts AS c (source, minute, requests, s1xx, s2xx, s3xx, s4xx, s5xx, malformed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (source, minute) DO UPDATE SET
                   requests = c.requests + excluded.requests, s1xx = c.s1xx + excluded.s1xx,
                   s2xx = c.s2xx + excluded.s2xx, s3xx = c.s3xx + excluded.s3xx, s4xx = c.s4xx + excluded.s4xx,
                   s5xx = c.s5xx + excluded.s5xx, malformed = c.malformed + excluded.malformed",
                &[
                    &log.source,
                    &c.minute,
                    &n(c.requests),
                    &n(c.classes[0]),
                    &n(c.classes[1]),
                    &n(c.classes[2]),
                    &n(c.classes[3]),
                    &n(c.classes[4]),
                    &n(c.malformed),
                ],
            )
            .await?;
        }
        if let Some(w) = &log.window {
            if let Some((sec, entry)) = &w.entry {
                exec(tx, "INSERT INTO log_window (source, sec, entry) VALUES ($1, $2, $3)", &[&log.source, sec, entry])
                    .await?;
            }
            exec(tx, "DELETE FROM log_window WHERE source = $1 AND sec < $2", &[&log.source, &w.keep_from]).await?;
        }
    }
    for target in &record.forget {
        exec(tx, "DELETE FROM alert_state WHERE target = $1", &[target]).await?;
        exec(tx, FORGET_LOCATIONS, &[target]).await?;
        exec(tx, FORGET_CHECKS, &[target]).await?;
    }
    for t in &record.transitions {
        exec(
            tx,
            "INSERT INTO transitions (target, kind, at, alert_id, detail) VALUES ($1, $2, $3, $4, $5)",
            &[&t.target, &t.kind.as_str(), &t.at.0, &t.alert_id, &to_json(OP, t)?],
        )
        .await?;
    }
    for m in &record.messages {
        let alert = lookout_core::key::alert_of(&m.key);
        let Some(sent) = &m.sent else {
            exec(
                tx,
                "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key, alert_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (channel, key) DO NOTHING",
                &[&m.channel, &m.key, &m.payload, &now, &Timestamp(now).plus(m.wait).0, &m.group_key, &alert],
            )
            .await?;
            continue;
        };
        let attempts = i32::try_from(sent.attempts).unwrap_or(i32::MAX);
        exec(
            tx,
            "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key, attempts,
                                 delivered_at, last_error, abandoned_at, suppressed_at, alert_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (channel, key) DO NOTHING",
            &[
                &m.channel,
                &m.key,
                &m.payload,
                &sent.created_at.0,
                &sent.next_attempt_at.0,
                &m.group_key,
                &attempts,
                &sent.delivered_at.map(|t| t.0),
                &sent.last_error,
                &sent.abandoned_at.map(|t| t.0),
                &sent.suppressed_at.map(|t| t.0),
                &alert,
            ],
        )
        .await?;
    }
    Ok(())
}
