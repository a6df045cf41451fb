//! Writing what one event produced ([`Record`]): many records go in one transaction ([`Store::record_all`]), so
//! a storm of thousands of alerts costs one commit, not thousands.

use lookout_core::Timestamp;
use rusqlite::params;

use super::to_json;
use crate::sql::{FORGET_CHECKS, FORGET_LOCATIONS};
use crate::{Record, Result};

/// Writes one record into an open transaction. `Ok(Err(Conflict))` when an incident change met a newer revision:
/// the caller rolls the whole transaction back.
pub(super) fn write(tx: &rusqlite::Transaction<'_>, record: &Record) -> rusqlite::Result<Result<()>> {
    // Incidents first: a refused change rolls back everything else of this record with it.
    for change in &record.incidents {
        if let Err(conflict) = super::incidents::write(tx, change)? {
            return Ok(Err(conflict));
        }
    }
    super::checks::consume(tx, &record.consumed)?;
    if let Some(r) = &record.result {
        super::results::insert(tx, r)?;
    }
    if !record.readings.is_empty() {
        super::readings::insert(tx, &record.readings)?;
    }
    for l in &record.locations {
        super::checks::upsert_location(tx, l)?;
    }
    if let Some((target, state)) = &record.state {
        exec(
            tx,
            "INSERT INTO alert_state (target, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (target) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![target, to_json(state)?, Timestamp::now().0],
        )?;
    }
    if let Some(log) = &record.log {
        for (file, cursor) in &log.cursors {
            exec(
                tx,
                "INSERT INTO log_cursors (source, file, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, file) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                params![log.source, file, cursor, Timestamp::now().0],
            )?;
        }
        for c in &log.counts {
            exec(
                tx,
                "INSERT INTO log_counts (source, minute, requests, s1xx, s2xx, s3xx, s4xx, s5xx, malformed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (source, minute) DO UPDATE SET
                   requests = requests + excluded.requests, s1xx = s1xx + excluded.s1xx,
                   s2xx = s2xx + excluded.s2xx, s3xx = s3xx + excluded.s3xx, s4xx = s4xx + excluded.s4xx,
                   s5xx = s5xx + excluded.s5xx, malformed = malformed + excluded.malformed",
                params![
                    log.source,
                    c.minute,
                    c.requests as i64,
                    c.classes[0] as i64,
                    c.classes[1] as i64,
                    c.classes[2] as i64,
                    c.classes[3] as i64,
                    c.classes[4] as i64,
                    c.malformed as i64
                ],
            )?;
        }
        if let Some(w) = &log.window {
            if let Some((sec, entry)) = &w.entry {
                exec(
                    tx,
                    "INSERT INTO log_window (source, sec, entry) VALUES (?1, ?2, ?3)",
                    params![log.source, sec, entry],
                )?;
            }
            exec(tx, "DELETE FROM log_window WHERE source = ?1 AND sec < ?2", params![log.source, w.keep_from])?;
        }
    }
    for target in &record.forget {
        exec(tx, "DELETE FROM alert_state WHERE target = ?1", [target])?;
        exec(tx, FORGET_LOCATIONS, [target])?;
        exec(tx, FORGET_CHECKS, [target])?;
    }
    for t in &record.transitions {
        exec(
            tx,
            "INSERT INTO transitions (target, kind, at, alert_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.target, t.kind.as_str(), t.at.0, t.alert_id, to_json(t)?],
        )?;
    }
    let now = Timestamp::now();
    for m in &record.messages {
        let alert = lookout_core::key::alert_of(&m.key);
        let Some(sent) = &m.sent else {
            exec(
                tx,
                "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key, alert_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (channel, key) DO NOTHING",
                params![m.channel, m.key, m.payload, now.0, now.plus(m.wait).0, m.group_key, alert],
            )?;
            continue;
        };
        exec(
            tx,
            "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key, attempts,
                                 delivered_at, last_error, abandoned_at, suppressed_at, alert_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (channel, key) DO NOTHING",
            params![
                m.channel,
                m.key,
                m.payload,
                sent.created_at.0,
                sent.next_attempt_at.0,
                m.group_key,
                sent.attempts,
                sent.delivered_at.map(|t| t.0),
                sent.last_error,
                sent.abandoned_at.map(|t| t.0),
                sent.suppressed_at.map(|t| t.0),
                alert
            ],
        )?;
    }
    Ok(Ok(()))
}

/// Runs a statement through the connection's statement cache: a batch of thousands of records parses each
/// statement once.
pub(super) fn exec(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}
