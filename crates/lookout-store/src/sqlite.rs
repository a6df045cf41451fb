//! The embedded SQLite store: one file, WAL mode, versioned migrations.
//!
//! rusqlite is synchronous; each call runs on tokio's blocking pool so the runtime never stalls on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lookout_core::{AlertState, Incident, IncidentChange, LogCount, TimelineEntry, Timestamp, Transition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{NewSilence, OutboxMessage, Record, Result, ResultRow, Silence, Store, StoreError};

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_logs.sql"),
    include_str!("../migrations/0003_incidents.sql"),
    include_str!("../migrations/0004_outbox_abandoned.sql"),
    include_str!("../migrations/0005_dispatch.sql"),
];

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn q(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Query { op, message: e.to_string() }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let open_err =
            |e: &dyn std::fmt::Display| StoreError::Open { path: path.display().to_string(), message: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(&e))?;
        Self::init(conn).map_err(|e| match e {
            StoreError::Query { message, .. } => open_err(&message),
            other => other,
        })
    }

    /// An in-memory database, for tests and one-shot commands.
    pub fn in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory().map_err(q("open"))?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(q("configure"))?;
        set_wal(&conn)?;
        // FULL: a notification acknowledged as enqueued survives power loss, not just a process crash.
        conn.pragma_update(None, "synchronous", "FULL").map_err(q("configure"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("configure"))?;
        let known = MIGRATIONS.len() as i64;
        loop {
            // IMMEDIATE takes the write lock before reading the version, so two processes opening the same new
            // database at once cannot both run a migration.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(q("migrate"))?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(q("migrate"))?;
            if version > known {
                return Err(StoreError::TooNew { found: version, known });
            }
            let Some(sql) = MIGRATIONS.get(version.max(0) as usize) else { break };
            tx.execute_batch(sql).map_err(q("migrate"))?;
            tx.pragma_update(None, "user_version", version + 1).map_err(q("migrate"))?;
            tx.commit().map_err(q("migrate"))?;
        }
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs one outbox update (`?1` the id, `?2` a time, `?3` a text) for each message, in one transaction.
    async fn update_messages(
        &self,
        op: &'static str,
        sql: &'static str,
        ids: Vec<i64>,
        at: Timestamp,
        text: Option<String>,
    ) -> Result<()> {
        self.with(op, move |conn| {
            let tx = conn.transaction()?;
            for id in ids {
                tx.execute(sql, params![id, at.0, text])?;
            }
            tx.commit()
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back), so a
            // poisoned mutex is safe to keep using.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard).map_err(q(op))
        })
        .await
        .map_err(|e| StoreError::Query { op, message: format!("worker failed: {e}") })?
    }
}

/// Switches to WAL (persistent in the file). SQLite may answer BUSY without calling the busy handler while
/// another connection is creating the same database, so retry for a while.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mode: rusqlite::Result<String> = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0));
        match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") || m.eq_ignore_ascii_case("memory") => return Ok(()),
            Ok(m) => {
                return Err(StoreError::Query { op: "configure", message: format!("journal mode stayed {m}") });
            }
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(q("configure")(e)),
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(col: usize, s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
}

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: r.get(0)?,
        channel: r.get(1)?,
        key: r.get(2)?,
        payload: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
        attempts: r.get(5)?,
        next_attempt_at: Timestamp(r.get(6)?),
        delivered_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
        last_error: r.get(8)?,
        abandoned_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
        group_key: r.get(10)?,
        suppressed_at: r.get::<_, Option<i64>>(11)?.map(Timestamp),
    })
}

const MESSAGE_COLUMNS: &str = "id, channel, key, payload, created_at, attempts, next_attempt_at, delivered_at, last_error, abandoned_at, \
     group_key, suppressed_at";

/// A message still to send.
const PENDING: &str = "delivered_at IS NULL AND abandoned_at IS NULL AND suppressed_at IS NULL";

impl Store for SqliteStore {
    async fn record(&self, record: Record) -> Result<()> {
        self.with("record", move |conn| {
            let tx = conn.transaction()?;
            // Incidents first: a refused change rolls back everything else of this record with it.
            for change in &record.incidents {
                if let Err(conflict) = write_incident(&tx, change)? {
                    return Ok(Err(conflict));
                }
            }
            if let Some(r) = &record.result {
                tx.execute(
                    "INSERT INTO results (target, at, ok, status, latency_ms, error, failed_conditions, timings, body_excerpt)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        r.target,
                        r.at.0,
                        r.ok,
                        r.status,
                        r.latency_ms,
                        r.error,
                        to_json(&r.failed_conditions)?,
                        to_json(&r.timings)?,
                        r.body_excerpt
                    ],
                )?;
            }
            if let Some((target, state)) = &record.state {
                tx.execute(
                    "INSERT INTO alert_state (target, state, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (target) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                    params![target, to_json(state)?, Timestamp::now().0],
                )?;
            }
            if let Some(log) = &record.log {
                for (file, cursor) in &log.cursors {
                    tx.execute(
                        "INSERT INTO log_cursors (source, file, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (source, file) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                        params![log.source, file, cursor, Timestamp::now().0],
                    )?;
                }
                for c in &log.counts {
                    tx.execute(
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
            }
            for target in &record.forget {
                tx.execute("DELETE FROM alert_state WHERE target = ?1", [target])?;
            }
            for t in &record.transitions {
                tx.execute(
                    "INSERT INTO transitions (target, kind, at, alert_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t.target, t.kind.as_str(), t.at.0, t.alert_id, to_json(t)?],
                )?;
            }
            let now = Timestamp::now();
            for m in &record.messages {
                tx.execute(
                    "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (channel, key) DO NOTHING",
                    params![m.channel, m.key, m.payload, now.0, now.plus(m.wait).0, m.group_key],
                )?;
            }
            tx.commit().map(Ok)
        })
        .await?
    }

    async fn alert_states(&self) -> Result<Vec<(String, AlertState)>> {
        self.with("load alert state", |conn| {
            let mut stmt = conn.prepare("SELECT target, state FROM alert_state ORDER BY target")?;
            let rows = stmt.query_map([], |r| {
                let target: String = r.get(0)?;
                let state: String = r.get(1)?;
                Ok((target, from_json(1, &state)?))
            })?;
            rows.collect()
        })
        .await
    }

    async fn next_pending(&self, channel: String) -> Result<Option<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            conn.query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {PENDING} AND channel = ?1 ORDER BY next_attempt_at, id LIMIT 1"),
                [channel],
                message_from_row,
            )
            .optional()
        })
        .await
    }

    async fn pending_in_group(&self, channel: String, group_key: String) -> Result<Vec<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {PENDING} AND channel = ?1 AND group_key = ?2 ORDER BY id"
            ))?;
            let rows = stmt.query_map([channel, group_key], message_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn mark_attempted(&self, ids: Vec<i64>) -> Result<()> {
        self.with("mark attempted", move |conn| {
            let tx = conn.transaction()?;
            for id in ids {
                tx.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1", [id])?;
            }
            tx.commit()
        })
        .await
    }

    async fn mark_delivered(&self, ids: Vec<i64>, at: Timestamp, note: Option<String>) -> Result<()> {
        let sql = "UPDATE outbox SET delivered_at = ?2, last_error = ?3 WHERE id = ?1 AND delivered_at IS NULL";
        self.update_messages("mark delivered", sql, ids, at, note).await
    }

    async fn mark_abandoned(&self, ids: Vec<i64>, at: Timestamp, error: String) -> Result<()> {
        let sql = "UPDATE outbox SET abandoned_at = ?2, last_error = ?3 WHERE id = ?1 AND delivered_at IS NULL";
        self.update_messages("mark abandoned", sql, ids, at, Some(error)).await
    }

    async fn mark_suppressed(&self, ids: Vec<i64>, at: Timestamp, reason: String) -> Result<()> {
        let sql = "UPDATE outbox SET suppressed_at = ?2, last_error = ?3 WHERE id = ?1 AND delivered_at IS NULL";
        self.update_messages("mark suppressed", sql, ids, at, Some(reason)).await
    }

    async fn mark_failed(&self, ids: Vec<i64>, next_attempt_at: Timestamp, error: String) -> Result<()> {
        let sql = "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1";
        self.update_messages("mark failed", sql, ids, next_attempt_at, Some(error)).await
    }

    async fn was_delivered(&self, channel: String, prefix: String) -> Result<bool> {
        self.with("read outbox", move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM outbox WHERE channel = ?1 AND substr(key, 1, length(?2)) = ?2
                 AND delivered_at IS NOT NULL",
                [channel, prefix],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn add_silence(&self, s: NewSilence) -> Result<i64> {
        self.with("add silence", move |conn| {
            conn.execute(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![to_json(&s.matchers)?, s.starts_at.0, s.ends_at.0, s.created_by, s.comment, Timestamp::now().0],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn silences(&self, include_ended: bool, now: Timestamp) -> Result<Vec<Silence>> {
        self.with("read silences", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at FROM silences
                 WHERE ?1 OR (ends_at > ?2 AND expired_at IS NULL) ORDER BY id DESC",
            )?;
            let rows = stmt.query_map(params![include_ended, now.0], |r| {
                Ok(Silence {
                    id: r.get(0)?,
                    matchers: from_json(1, &r.get::<_, String>(1)?)?,
                    starts_at: Timestamp(r.get(2)?),
                    ends_at: Timestamp(r.get(3)?),
                    created_by: r.get(4)?,
                    comment: r.get(5)?,
                    created_at: Timestamp(r.get(6)?),
                    expired_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn expire_silence(&self, id: i64, at: Timestamp) -> Result<bool> {
        self.with("expire silence", move |conn| {
            conn.execute(
                "UPDATE silences SET expired_at = ?2 WHERE id = ?1 AND expired_at IS NULL AND ends_at > ?2",
                params![id, at.0],
            )
            .map(|n| n > 0)
        })
        .await
    }

    async fn messages(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            let mut stmt = conn.prepare(&format!("SELECT {MESSAGE_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1"))?;
            let rows = stmt.query_map([limit as i64], message_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn recent_results(&self, target: String, limit: usize) -> Result<Vec<ResultRow>> {
        self.with("read results", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE target = ?1 ORDER BY at DESC, id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![target, limit as i64], result_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn transitions(&self, target: Option<String>) -> Result<Vec<Transition>> {
        self.with("read transitions", move |conn| {
            let mut stmt =
                conn.prepare("SELECT detail FROM transitions WHERE ?1 IS NULL OR target = ?1 ORDER BY at, id")?;
            let rows = stmt.query_map([target], |r| from_json(0, &r.get::<_, String>(0)?))?;
            rows.collect()
        })
        .await
    }

    async fn log_cursor(&self, source: String, file: String) -> Result<Option<String>> {
        self.with("read log cursor", move |conn| {
            conn.query_row("SELECT cursor FROM log_cursors WHERE source = ?1 AND file = ?2", [source, file], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    async fn log_totals(&self, source: String) -> Result<LogCount> {
        self.with("read log counts", move |conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(s1xx), 0), COALESCE(SUM(s2xx), 0), COALESCE(SUM(s3xx), 0),
                        COALESCE(SUM(s4xx), 0), COALESCE(SUM(s5xx), 0), COALESCE(SUM(malformed), 0)
                 FROM log_counts WHERE source = ?1",
                [source],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok(LogCount {
                        minute: 0,
                        requests: n(0)?,
                        classes: [n(1)?, n(2)?, n(3)?, n(4)?, n(5)?],
                        malformed: n(6)?,
                    })
                },
            )
        })
        .await
    }

    async fn prune_results(&self, before: Timestamp) -> Result<usize> {
        self.with("prune results", move |conn| conn.execute("DELETE FROM results WHERE at < ?1", [before.0])).await
    }

    async fn incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        self.with("read incidents", move |conn| {
            let mut stmt = conn.prepare("SELECT detail FROM incidents ORDER BY opened_at DESC, id DESC LIMIT ?1")?;
            let rows = stmt.query_map([limit as i64], |r| from_json(0, &r.get::<_, String>(0)?))?;
            rows.collect()
        })
        .await
    }

    async fn incident(&self, id: String) -> Result<Option<Incident>> {
        self.with("read incident", move |conn| {
            let detail: Option<String> =
                conn.query_row("SELECT detail FROM incidents WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            detail.map(|d| from_json(0, &d)).transpose()
        })
        .await
    }

    async fn live_incidents(&self) -> Result<(Vec<Incident>, Vec<(String, String, u32)>)> {
        self.with("read live incidents", move |conn| {
            let mut stmt = conn.prepare("SELECT detail FROM incidents WHERE live = 1 ORDER BY opened_at")?;
            let live =
                stmt.query_map([], |r| from_json(0, &r.get::<_, String>(0)?))?.collect::<rusqlite::Result<_>>()?;
            let mut stmt = conn.prepare("SELECT day, grp, MAX(seq) FROM incidents GROUP BY day, grp")?;
            let seqs =
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
            Ok((live, seqs))
        })
        .await
    }

    async fn timeline(&self, id: String) -> Result<Vec<TimelineEntry>> {
        self.with("read timeline", move |conn| {
            let mut stmt = conn.prepare("SELECT detail FROM incident_timeline WHERE incident = ?1 ORDER BY at, id")?;
            let rows = stmt.query_map([id], |r| from_json(0, &r.get::<_, String>(0)?))?;
            rows.collect()
        })
        .await
    }

    async fn alert_messages(&self, alert_id: String) -> Result<Vec<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            // Keys are `lookout/{alert_id}/{kind}`; compare the prefix literally (no LIKE wildcards from names).
            let prefix = format!("lookout/{alert_id}/");
            let mut stmt = conn.prepare(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE substr(key, 1, length(?1)) = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map([prefix], message_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn results_between(&self, target: String, from: Timestamp, to: Timestamp) -> Result<Vec<ResultRow>> {
        self.with("read results", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE target = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, id"
            ))?;
            let rows = stmt.query_map(params![target, from.0, to.0], result_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn daily_uptime(&self, target: String, from: Timestamp) -> Result<Vec<(i64, u64, u64)>> {
        self.with("read uptime", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at / 86400000 AS day, SUM(ok), COUNT(*) FROM results WHERE target = ?1 AND at >= ?2
                 GROUP BY day ORDER BY day",
            )?;
            let rows = stmt.query_map(params![target, from.0], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get::<_, i64>(2)?.max(0) as u64))
            })?;
            rows.collect()
        })
        .await
    }

    async fn log_counts_between(&self, source: String, from: Timestamp, to: Timestamp) -> Result<Vec<LogCount>> {
        self.with("read log counts", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT minute, requests, s1xx, s2xx, s3xx, s4xx, s5xx, malformed FROM log_counts
                 WHERE source = ?1 AND minute >= ?2 AND minute <= ?3 ORDER BY minute",
            )?;
            let rows = stmt.query_map(params![source, from.0.div_euclid(60_000) * 60, to.0.div_euclid(1000)], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(LogCount {
                    minute: r.get(0)?,
                    requests: n(1)?,
                    classes: [n(2)?, n(3)?, n(4)?, n(5)?, n(6)?],
                    malformed: n(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

/// Writes one incident change: inserts a new incident or updates one whose stored revision is still the expected
/// one, and appends its timeline entries. `Ok(Err(Conflict))` when someone else changed it first.
fn write_incident(tx: &rusqlite::Transaction<'_>, change: &IncidentChange) -> rusqlite::Result<Result<()>> {
    let i = &change.incident;
    let live = i.status == lookout_core::IncidentStatus::Open || i.has_firing_alerts();
    let conflict = || StoreError::Conflict { incident: i.id.clone() };
    match change.expected_revision {
        None => {
            let inserted = tx.execute(
                "INSERT INTO incidents (id, grp, day, seq, status, live, opened_at, resolved_at, revision, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    i.id,
                    i.group,
                    i.day,
                    i.seq,
                    i.status.as_str(),
                    live,
                    i.opened_at.0,
                    i.resolved_at.map(|t| t.0),
                    i.revision as i64,
                    to_json(i)?
                ],
            );
            match inserted {
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    return Ok(Err(conflict()));
                }
                other => other?,
            };
        }
        Some(expected) => {
            let updated = tx.execute(
                "UPDATE incidents SET status = ?2, live = ?3, resolved_at = ?4, revision = ?5, detail = ?6
                 WHERE id = ?1 AND revision = ?7",
                params![
                    i.id,
                    i.status.as_str(),
                    live,
                    i.resolved_at.map(|t| t.0),
                    i.revision as i64,
                    to_json(i)?,
                    expected as i64
                ],
            );
            match updated {
                Ok(0) => return Ok(Err(conflict())),
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    return Ok(Err(conflict()));
                }
                other => other?,
            };
        }
    }
    for e in &change.entries {
        tx.execute(
            "INSERT INTO incident_timeline (incident, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![i.id, e.at.0, e.kind.as_str(), to_json(e)?],
        )?;
    }
    Ok(Ok(()))
}

const RESULT_COLUMNS: &str = "target, at, ok, status, latency_ms, error, failed_conditions, timings, body_excerpt";

fn result_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ResultRow> {
    Ok(ResultRow {
        target: r.get(0)?,
        at: Timestamp(r.get(1)?),
        ok: r.get(2)?,
        status: r.get(3)?,
        latency_ms: r.get(4)?,
        error: r.get(5)?,
        failed_conditions: from_json(6, &r.get::<_, String>(6)?)?,
        timings: from_json(7, &r.get::<_, String>(7)?)?,
        body_excerpt: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogRecord, NewMessage};
    use lookout_core::{Phase, Timings, TransitionKind};

    fn result(target: &str, at: i64, ok: bool) -> ResultRow {
        ResultRow {
            target: target.into(),
            at: Timestamp(at),
            ok,
            status: Some(if ok { 200 } else { 500 }),
            latency_ms: 12.5,
            error: None,
            failed_conditions: if ok { vec![] } else { vec!["[STATUS] (500) == 200".into()] },
            timings: Timings { connect_ms: Some(0.2), total_ms: 12.5, ..Timings::default() },
            body_excerpt: Some("<h1>hi</h1>".into()),
        }
    }

    fn firing(target: &str) -> Transition {
        Transition {
            target: target.into(),
            kind: TransitionKind::Firing,
            at: Timestamp(3000),
            alert_id: Some(format!("{target}@3000")),
            failing_since: Some(Timestamp(1000)),
            reasons: vec!["[STATUS] (500) == 200".into()],
            consecutive: 3,
            diagnosis: None,
        }
    }

    fn msg(channel: &str, key: &str) -> NewMessage {
        NewMessage {
            channel: channel.into(),
            key: key.into(),
            payload: format!("{{\"key\":\"{key}\"}}"),
            ..NewMessage::default()
        }
    }

    #[tokio::test]
    async fn record_is_atomic_and_readable() {
        let s = SqliteStore::in_memory().unwrap();
        let state = AlertState {
            phase: Phase::Firing,
            consecutive_failures: 3,
            alert_id: Some("site@3000".into()),
            ..Default::default()
        };
        s.record(Record {
            result: Some(result("site", 3000, false)),
            state: Some(("site".into(), state.clone())),
            transitions: vec![firing("site")],
            messages: vec![msg("ops", "k1"), msg("team", "k1")],
            forget: vec![],
            log: None,
            incidents: vec![],
        })
        .await
        .unwrap();
        assert_eq!(s.alert_states().await.unwrap(), vec![("site".to_string(), state)]);
        assert_eq!(s.recent_results("site".into(), 10).await.unwrap(), vec![result("site", 3000, false)]);
        assert_eq!(s.transitions(Some("site".into())).await.unwrap(), vec![firing("site")]);
        assert_eq!(s.transitions(Some("other".into())).await.unwrap(), vec![]);
        assert_eq!(s.messages(10).await.unwrap().len(), 2);
        s.record(Record { forget: vec!["site".into()], ..Record::default() }).await.unwrap();
        assert_eq!(s.alert_states().await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn outbox_is_keyed_and_fifo_per_channel() {
        let s = SqliteStore::in_memory().unwrap();
        let rec = |m| Record { messages: vec![m], ..Record::default() };
        s.record(rec(msg("ops", "k1"))).await.unwrap();
        s.record(rec(msg("ops", "k1"))).await.unwrap();
        s.record(rec(msg("ops", "k2"))).await.unwrap();
        s.record(rec(msg("team", "k3"))).await.unwrap();
        let head = s.next_pending("ops".into()).await.unwrap().unwrap();
        assert_eq!(head.key, "k1");
        assert_eq!(head.attempts, 0);

        let later = Timestamp(head.created_at.0 + 60_000);
        s.mark_attempted(vec![head.id]).await.unwrap();
        s.mark_failed(vec![head.id], later, "connection refused".into()).await.unwrap();
        let head = s.next_pending("ops".into()).await.unwrap().unwrap();
        assert_eq!(head.key, "k2", "k1 waits until it may be retried; k2 is due first now");
        let k1 = s.pending_in_group("ops".into(), String::new()).await.unwrap();
        assert_eq!(k1.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["k1", "k2"], "one group, oldest first");
        assert_eq!((k1[0].attempts, k1[0].next_attempt_at), (1, later));
        assert_eq!(k1[0].last_error.as_deref(), Some("connection refused"));

        s.mark_attempted(vec![k1[0].id, k1[1].id]).await.unwrap();
        s.mark_delivered(vec![k1[0].id, k1[1].id], later, Some("template failed".into())).await.unwrap();
        s.mark_delivered(vec![k1[0].id], Timestamp(later.0 + 5), None).await.unwrap();
        assert_eq!(s.next_pending("ops".into()).await.unwrap(), None, "k1 was enqueued once and delivered once");
        assert!(s.was_delivered("ops".into(), "k1".into()).await.unwrap());
        assert!(!s.was_delivered("team".into(), "k1".into()).await.unwrap());
        let team = s.next_pending("team".into()).await.unwrap().unwrap();
        assert_eq!(team.key, "k3");
        // A refusal for good: kept with its reason, never selected again.
        s.mark_attempted(vec![team.id]).await.unwrap();
        s.mark_abandoned(vec![team.id], later, "receiver answered HTTP 400".into()).await.unwrap();
        assert_eq!(s.next_pending("team".into()).await.unwrap(), None);
        s.record(rec(msg("team", "k4"))).await.unwrap();
        let k4 = s.next_pending("team".into()).await.unwrap().unwrap();
        s.mark_suppressed(vec![k4.id], later, "silenced by #1".into()).await.unwrap();
        assert_eq!(s.next_pending("team".into()).await.unwrap(), None, "a suppressed message is not sent");

        let all = s.messages(10).await.unwrap();
        let k1 = all.iter().find(|m| m.key == "k1").unwrap();
        assert_eq!(k1.delivered_at, Some(later), "a delivered message is never re-marked");
        assert_eq!(k1.attempts, 2);
        assert_eq!(all.len(), 4);
        let k3 = all.iter().find(|m| m.key == "k3").unwrap();
        assert_eq!((k3.abandoned_at, k3.delivered_at), (Some(later), None));
        assert_eq!(k3.last_error.as_deref(), Some("receiver answered HTTP 400"));
        let k2 = all.iter().find(|m| m.key == "k2").unwrap();
        assert_eq!(k2.last_error.as_deref(), Some("template failed"), "a delivery's note is kept");
        let k4 = all.iter().find(|m| m.key == "k4").unwrap();
        assert_eq!((k4.suppressed_at, k4.last_error.as_deref()), (Some(later), Some("silenced by #1")));
    }

    #[tokio::test]
    async fn survives_reopen_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/lookout.sqlite");
        {
            let s = SqliteStore::open(&path).unwrap();
            for at in [1000, 2000, 3000] {
                s.record(Record { result: Some(result("site", at, true)), ..Record::default() }).await.unwrap();
            }
            s.record(Record { messages: vec![msg("ops", "k")], ..Record::default() }).await.unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.recent_results("site".into(), 10).await.unwrap().len(), 3);
        assert_eq!(s.prune_results(Timestamp(2500)).await.unwrap(), 2);
        assert_eq!(s.recent_results("site".into(), 10).await.unwrap().len(), 1);
        assert_eq!(s.messages(10).await.unwrap().len(), 1, "pruning results keeps the outbox");
    }

    #[tokio::test]
    async fn log_cursor_and_counts_are_written_together_and_add_up() {
        let s = SqliteStore::in_memory().unwrap();
        let count = |minute, requests, s5xx| LogCount {
            minute,
            requests,
            classes: [0, requests - s5xx, 0, 0, s5xx],
            malformed: 1,
        };
        for (cursor, counts) in
            [("{\"offset\":10}", vec![count(60, 5, 1)]), ("{\"offset\":20}", vec![count(60, 3, 0), count(120, 4, 4)])]
        {
            s.record(Record {
                log: Some(LogRecord { source: "web".into(), cursors: vec![("access".into(), cursor.into())], counts }),
                ..Record::default()
            })
            .await
            .unwrap();
        }
        assert_eq!(s.log_cursor("web".into(), "access".into()).await.unwrap().as_deref(), Some("{\"offset\":20}"));
        assert_eq!(s.log_cursor("web".into(), "error".into()).await.unwrap(), None);
        let t = s.log_totals("web".into()).await.unwrap();
        assert_eq!((t.requests, t.classes[4], t.classes[1], t.malformed), (12, 5, 7, 3));
        assert_eq!(s.log_totals("other".into()).await.unwrap().requests, 0);
    }

    #[test]
    fn concurrent_opens_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.sqlite");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || SqliteStore::open(&p).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn refuses_a_newer_schema_and_reports_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("schema 99") && e.contains("upgrade lookout"), "{e}");
        let e = SqliteStore::open(Path::new("/proc/nope/x.sqlite")).unwrap_err().to_string();
        assert!(e.starts_with("cannot open the store at /proc/nope/x.sqlite"), "{e}");
    }

    fn transition(kind: TransitionKind, target: &str, at: i64, alert: &str) -> Transition {
        Transition {
            target: target.into(),
            kind,
            at: Timestamp(at),
            alert_id: Some(alert.into()),
            failing_since: Some(Timestamp(at - 20_000)),
            reasons: vec![],
            consecutive: 2,
            diagnosis: None,
        }
    }

    fn with_incident(change: IncidentChange) -> Record {
        Record { incidents: vec![change], ..Record::default() }
    }

    #[tokio::test]
    async fn incidents_round_trip_with_their_timeline() {
        let s = SqliteStore::in_memory().unwrap();
        let mut book = lookout_engine::IncidentBook::default();
        // 2026-11-25T14:00:00Z
        let t0 = 1_795_615_200_000;
        let opened = book.on_transition("shop", &transition(TransitionKind::Firing, "web", t0, "web@1")).unwrap();
        s.record(with_incident(opened.clone())).await.unwrap();
        let joined =
            book.on_transition("shop", &transition(TransitionKind::Firing, "api", t0 + 5000, "api@2")).unwrap();
        s.record(with_incident(joined)).await.unwrap();

        let (live, seqs) = s.live_incidents().await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, "2026-11-25-shop-1");
        assert_eq!(live[0].alerts.len(), 2);
        assert_eq!(live[0].revision, 2);
        assert_eq!(seqs, vec![("2026-11-25".to_string(), "shop".to_string(), 1)]);

        for (target, alert, at) in [("web", "web@1", t0 + 60_000), ("api", "api@2", t0 + 70_000)] {
            let change = book.on_transition("shop", &transition(TransitionKind::Resolved, target, at, alert)).unwrap();
            s.record(with_incident(change)).await.unwrap();
        }
        let stored = s.incident("2026-11-25-shop-1".into()).await.unwrap().unwrap();
        assert_eq!(stored.status, lookout_core::IncidentStatus::Resolved);
        assert_eq!(stored.resolved_at, Some(Timestamp(t0 + 70_000)));
        assert!(s.live_incidents().await.unwrap().0.is_empty(), "a finished incident is not live");
        let kinds: Vec<&str> = s.timeline(stored.id.clone()).await.unwrap().iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "first-failure",
                "first-failure",
                "alert-fired",
                "alert-fired",
                "alert-resolved",
                "alert-resolved",
                "resolved"
            ],
            "ordered by time"
        );
        assert_eq!(s.incidents(10).await.unwrap(), vec![stored]);
        assert_eq!(s.incident("nope".into()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_stale_incident_change_is_refused_with_everything_recorded_beside_it() {
        let s = SqliteStore::in_memory().unwrap();
        let mut book = lookout_engine::IncidentBook::default();
        let t0 = 1_795_615_200_000;
        let opened = book.on_transition("site", &transition(TransitionKind::Firing, "site", t0, "site@1")).unwrap();
        s.record(with_incident(opened.clone())).await.unwrap();
        // Someone acknowledges it from the CLI...
        let ack = lookout_engine::incident::acknowledge(&opened.incident, "alice", Timestamp(t0 + 1000)).unwrap();
        s.record(with_incident(ack)).await.unwrap();
        // ...while the daemon resolves its stale copy, together with a transition and a message.
        let stale =
            book.on_transition("site", &transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")).unwrap();
        let record = Record {
            transitions: vec![transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")],
            messages: vec![msg("ops", "lookout/site@1/resolved")],
            ..with_incident(stale)
        };
        let err = s.record(record).await.unwrap_err();
        assert!(matches!(&err, StoreError::Conflict { incident } if incident == "2026-11-25-site-1"), "{err}");
        assert!(s.transitions(None).await.unwrap().is_empty(), "nothing of the refused record was written");
        assert!(s.messages(10).await.unwrap().is_empty());
        let stored = s.incident(opened.incident.id.clone()).await.unwrap().unwrap();
        assert_eq!(stored.ack.as_ref().map(|a| a.by.as_str()), Some("alice"), "the acknowledgement stands");

        // Reloading and redoing the change works, and keeps the acknowledgement.
        let (live, seqs) = s.live_incidents().await.unwrap();
        book.restore(live, seqs);
        let redo =
            book.on_transition("site", &transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")).unwrap();
        s.record(with_incident(redo)).await.unwrap();
        let stored = s.incident(opened.incident.id.clone()).await.unwrap().unwrap();
        assert_eq!(stored.status, lookout_core::IncidentStatus::Resolved);
        assert_eq!(stored.ack.map(|a| a.by), Some("alice".into()));

        // A second open incident for a group is refused even from a writer that did not know of the first.
        let mut other = lookout_engine::IncidentBook::default();
        let a = other.on_transition("shop", &transition(TransitionKind::Firing, "web", t0, "web@1")).unwrap();
        s.record(with_incident(a)).await.unwrap();
        let mut unaware = lookout_engine::IncidentBook::default();
        unaware.restore(vec![], vec![("2026-11-25".into(), "shop".into(), 1)]);
        let b = unaware.on_transition("shop", &transition(TransitionKind::Firing, "api", t0, "api@1")).unwrap();
        assert_eq!(b.incident.id, "2026-11-25-shop-2");
        assert!(matches!(s.record(with_incident(b)).await, Err(StoreError::Conflict { .. })));
    }

    #[tokio::test]
    async fn an_alert_s_messages_are_found_by_its_id_only() {
        let s = SqliteStore::in_memory().unwrap();
        let messages = vec![
            msg("ops", "lookout/a_b@1/firing"),
            msg("ops", "lookout/a_b@1/resolved"),
            msg("ops", "lookout/axb@1/firing"),
        ];
        s.record(Record { messages, ..Record::default() }).await.unwrap();
        let keys: Vec<String> = s.alert_messages("a_b@1".into()).await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, ["lookout/a_b@1/firing", "lookout/a_b@1/resolved"], "`_` is not a wildcard");
    }

    #[tokio::test]
    async fn results_and_counts_between_two_times() {
        let s = SqliteStore::in_memory().unwrap();
        for (at, ok) in [(1000, true), (2000, false), (3000, false), (4000, true)] {
            s.record(Record { result: Some(result("site", at, ok)), ..Record::default() }).await.unwrap();
        }
        let rows = s.results_between("site".into(), Timestamp(2000), Timestamp(3000)).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.at.0).collect::<Vec<_>>(), [2000, 3000]);
        s.record(Record { result: Some(result("site", 86_400_000 + 5, true)), ..Record::default() }).await.unwrap();
        assert_eq!(s.daily_uptime("site".into(), Timestamp(0)).await.unwrap(), vec![(0, 2, 4), (1, 1, 1)]);
        let counts =
            (0..3).map(|m| LogCount { minute: 60 * m, requests: 10, classes: [0, 9, 0, 0, 1], malformed: 0 }).collect();
        s.record(Record {
            log: Some(LogRecord { source: "web".into(), cursors: vec![], counts }),
            ..Record::default()
        })
        .await
        .unwrap();
        let between = s.log_counts_between("web".into(), Timestamp(60_500), Timestamp(130_000)).await.unwrap();
        assert_eq!(between.iter().map(|c| c.minute).collect::<Vec<_>>(), [60, 120]);
    }

    #[tokio::test]
    async fn silences_are_added_listed_and_expired() {
        let s = SqliteStore::in_memory().unwrap();
        let now = Timestamp::now();
        let silence = |hours: i64| NewSilence {
            matchers: vec!["group=shop".into()],
            starts_at: now,
            ends_at: Timestamp(now.0 + hours * 3_600_000),
            created_by: "alice".into(),
            comment: "deploy".into(),
        };
        let a = s.add_silence(silence(2)).await.unwrap();
        let b = s.add_silence(silence(1)).await.unwrap();
        let active = s.silences(false, now).await.unwrap();
        assert_eq!(active.iter().map(|x| x.id).collect::<Vec<_>>(), [b, a], "newest first");
        assert!(active[0].active(now));
        assert!(s.expire_silence(a, now).await.unwrap());
        assert!(!s.expire_silence(a, now).await.unwrap(), "already expired");
        assert!(!s.expire_silence(999, now).await.unwrap());
        assert_eq!(s.silences(false, now).await.unwrap().len(), 1);
        let all = s.silences(true, now).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].expired_at, Some(now));
        assert!(!all[1].active(now));
        // Ended by time.
        assert!(s.silences(false, Timestamp(now.0 + 3 * 3_600_000)).await.unwrap().is_empty());
    }
}
