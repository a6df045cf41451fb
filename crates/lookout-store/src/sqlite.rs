//! The embedded SQLite store: one file, WAL mode, versioned migrations.
//!
//! rusqlite is synchronous; each call runs on tokio's blocking pool so the runtime never stalls on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lookout_core::{AlertState, Incident, IncidentChange, LogCount, TimelineEntry, Timestamp, Transition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{NewSilence, OutboxMessage, OutboxStore, Record, Result, ResultRow, Silence, Store, StoreError};

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_logs.sql"),
    include_str!("../migrations/0003_incidents.sql"),
    include_str!("../migrations/0004_outbox_abandoned.sql"),
    include_str!("../migrations/0005_dispatch.sql"),
    include_str!("../migrations/0006_log_window.sql"),
];

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The file, to open again when SQLite opened it read-only (it does so silently when the file or its
    /// directory cannot be written) and a write was refused: once the permissions are mended, writes succeed
    /// again without a restart. `None` in memory.
    path: Option<std::path::PathBuf>,
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
        let mut store = Self::init(conn).map_err(|e| match e {
            StoreError::Query { message, .. } => open_err(&message),
            other => other,
        })?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// An in-memory database, for tests and one-shot commands.
    pub fn in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory().map_err(q("open"))?;
        Self::init(conn)
    }

    fn configure(conn: &Connection) -> Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(q("configure"))?;
        set_wal(conn)?;
        // FULL: a notification acknowledged as enqueued survives power loss, not just a process crash.
        conn.pragma_update(None, "synchronous", "FULL").map_err(q("configure"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("configure"))
    }

    fn init(mut conn: Connection) -> Result<SqliteStore> {
        Self::configure(&conn)?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            // Not an error: lookout keeps alerting from memory and says so (lookout-app's holding store).
            let known = MIGRATIONS.len() as i64;
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(q("migrate"))?;
            if version > known {
                return Err(StoreError::TooNew { found: version, known });
            }
            if version < known {
                return Err(StoreError::Query {
                    op: "migrate",
                    message: format!(
                        "the database is read-only for this user and needs {} migration(s) this build would run",
                        known - version
                    ),
                });
            }
            return Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: None });
        }
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
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: None })
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
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back), so a
            // poisoned mutex is safe to keep using.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = f(&mut guard);
            if let (Err(e), Some(path)) = (&result, path)
                && e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
                && let Ok(fresh) = Connection::open(&path)
                && Self::configure(&fresh).is_ok()
                && !fresh.is_readonly(rusqlite::MAIN_DB).unwrap_or(true)
            {
                tracing::info!(path = %path.display(), "The store file is writable again; reopened it.");
                *guard = fresh;
            }
            result.map_err(q(op))
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

impl OutboxStore for SqliteStore {
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
}

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
                if let Some(w) = &log.window {
                    if let Some((sec, entry)) = &w.entry {
                        tx.execute(
                            "INSERT INTO log_window (source, sec, entry) VALUES (?1, ?2, ?3)",
                            params![log.source, sec, entry],
                        )?;
                    }
                    tx.execute(
                        "DELETE FROM log_window WHERE source = ?1 AND sec < ?2",
                        params![log.source, w.keep_from],
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
                let Some(sent) = &m.sent else {
                    tx.execute(
                        "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (channel, key) DO NOTHING",
                        params![m.channel, m.key, m.payload, now.0, now.plus(m.wait).0, m.group_key],
                    )?;
                    continue;
                };
                tx.execute(
                    "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at, group_key, attempts,
                                         delivered_at, last_error, abandoned_at, suppressed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
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
                        sent.suppressed_at.map(|t| t.0)
                    ],
                )?;
            }
            tx.commit().map(Ok)
        })
        .await?
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

    async fn log_window(&self, source: String, from_sec: i64) -> Result<Vec<String>> {
        self.with("read log window", move |conn| {
            let mut stmt =
                conn.prepare("SELECT entry FROM log_window WHERE source = ?1 AND sec >= ?2 ORDER BY sec, id")?;
            let rows = stmt.query_map(params![source, from_sec], |r| r.get(0))?;
            rows.collect()
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
            // Compare the prefix literally (no LIKE wildcards from names).
            let prefix = lookout_core::key::alert_prefix(&alert_id);
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

    async fn result_buckets(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<crate::ResultBucket>> {
        let bucket_ms = bucket_ms.max(1);
        self.with("read result buckets", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT (at - ?2) / ?4 AS slice, COUNT(*), SUM(ok), AVG(latency_ms) FROM results
                 WHERE target = ?1 AND at >= ?2 AND at <= ?3 GROUP BY slice ORDER BY slice",
            )?;
            let rows = stmt.query_map(params![target, from.0, to.0, bucket_ms], |r| {
                Ok(crate::ResultBucket {
                    start: Timestamp(from.0 + r.get::<_, i64>(0)? * bucket_ms),
                    total: r.get::<_, i64>(1)?.max(0) as u64,
                    ok: r.get::<_, i64>(2)?.max(0) as u64,
                    mean_latency_ms: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn latency_percentiles(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        qs: Vec<f64>,
    ) -> Result<Vec<Option<f64>>> {
        // One sort in SQLite for all the percentiles; only the latencies of the range cross into Rust.
        self.with("read latency percentiles", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT latency_ms FROM results WHERE target = ?1 AND at >= ?2 AND at <= ?3 ORDER BY latency_ms",
            )?;
            let sorted: Vec<f64> =
                stmt.query_map(params![target, from.0, to.0], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(qs
                .iter()
                .map(|q| {
                    let last = sorted.len().checked_sub(1)?;
                    let rank = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
                    sorted.get(rank.min(last)).copied()
                })
                .collect())
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
mod tests;
