//! The embedded SQLite store: one file, WAL mode, versioned migrations.
//!
//! rusqlite is synchronous; each call runs on tokio's blocking pool so the runtime never stalls on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lookout_core::{AlertState, Incident, LogCount, TimelineEntry, Timestamp, Transition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{NewSilence, OutboxMessage, OutboxStore, Record, Result, ResultRow, Silence, Store, StoreError};

/// Prepared statements kept per connection: more than the store has (`prepare_cached` call sites), so none is
/// evicted by another and parsed again.
const STATEMENT_CACHE: usize = 128;

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_logs.sql"),
    include_str!("../migrations/0003_incidents.sql"),
    include_str!("../migrations/0004_outbox_abandoned.sql"),
    include_str!("../migrations/0005_dispatch.sql"),
    include_str!("../migrations/0006_log_window.sql"),
    include_str!("../migrations/0007_compact_results.sql"),
    include_str!("../migrations/0008_incident_alerts.sql"),
    include_str!("../migrations/0009_agents.sql"),
    include_str!("../migrations/0010_checks.sql"),
    include_str!("../migrations/0011_diagnosis_requests.sql"),
    include_str!("../migrations/0012_readings.sql"),
    include_str!("../migrations/0013_agent_mounts.sql"),
    include_str!("../migrations/0014_silence_pause.sql"),
];

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// One call at a time reaches the blocking pool: the others wait here, as tasks, not as threads blocked on
    /// `conn`'s lock. Without it every concurrent call (results, outbox, dashboard, API) held a blocking thread
    /// while it waited — 27 threads in the soak, each with its own stack and malloc cache.
    gate: Arc<tokio::sync::Semaphore>,
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

fn gate() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(1))
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

    fn configure(conn: &mut Connection) -> Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(q("configure"))?;
        // Every write transaction takes the write lock when it begins, waiting for it (busy timeout) there. A
        // deferred one would read first and then find its snapshot stale once another writer committed, and fail
        // with "database is locked" at once instead of waiting: a lock held two seconds would lose the write.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // The store prepares its statements through the connection's cache (`prepare_cached`, ~60 of them); with
        // rusqlite's default of 16 the dashboard's per-target reads and the pipeline's writes evicted each other,
        // and SQLite parsed the same SQL again on nearly every call (heaptrack: four fifths of all allocations
        // in an hour's soak were SQLite's parser).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        set_wal(conn)?;
        // FULL: a notification acknowledged as enqueued survives power loss, not just a process crash.
        conn.pragma_update(None, "synchronous", "FULL").map_err(q("configure"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("configure"))
    }

    fn init(mut conn: Connection) -> Result<SqliteStore> {
        Self::configure(&mut conn)?;
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
            return Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), gate: gate(), path: None });
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
            if version + 1 == incidents::ALERTS_MIGRATION {
                incidents::migrate(&tx).map_err(q("migrate"))?;
            }
            tx.pragma_update(None, "user_version", version + 1).map_err(q("migrate"))?;
            tx.commit().map_err(q("migrate"))?;
        }
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), gate: gate(), path: None })
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
        // The permit goes with the work: a caller that stops waiting (a timeout) does not let the next call
        // start a thread that would only block on the lock this one still holds.
        let permit = self
            .gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Query { op, message: format!("store closed: {e}") })?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back), so a
            // poisoned mutex is safe to keep using.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = f(&mut guard);
            if let (Err(e), Some(path)) = (&result, path)
                && e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
                && let Ok(mut fresh) = Connection::open(&path)
                && Self::configure(&mut fresh).is_ok()
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

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(col: usize, s: &str) -> rusqlite::Result<T> {
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

use crate::sql::{MESSAGE_COLUMNS, PENDING};

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
                "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at, pause FROM silences
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
                    pause: r.get(8)?,
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
    async fn record_all(&self, records: Vec<Record>) -> Result<()> {
        self.with("record", move |conn| {
            let tx = conn.transaction()?;
            for record in &records {
                if let Err(conflict) = record::write(&tx, record)? {
                    return Ok(Err(conflict));
                }
            }
            tx.commit().map(Ok)
        })
        .await?
    }

    async fn add_silence(&self, s: NewSilence) -> Result<i64> {
        self.with("add silence", move |conn| {
            conn.execute(
                "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at, pause)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    to_json(&s.matchers)?,
                    s.starts_at.0,
                    s.ends_at.0,
                    s.created_by,
                    s.comment,
                    Timestamp::now().0,
                    s.pause
                ],
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
        self.with("read results", move |conn| results::recent(conn, &target, limit)).await
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
        self.with("prune results", move |conn| results::prune(conn, before.0)).await
    }

    async fn roll_up(&self, horizons: crate::Horizons) -> Result<crate::RollUp> {
        // Each target in its own transaction, a few per turn of the lock, so records wait milliseconds, not the
        // whole roll-up.
        let ids = self.with("roll up results", |conn| results::target_ids(conn)).await?;
        let mut done = crate::RollUp::default();
        for chunk in ids.chunks(16).map(<[i64]>::to_vec) {
            let part = self
                .with("roll up results", move |conn| {
                    chunk.iter().try_fold(crate::RollUp::default(), |sum, &id| {
                        let r = results::roll_up_target(conn, id, &horizons)?;
                        Ok(crate::RollUp {
                            rolled: sum.rolled + r.rolled,
                            deleted: sum.deleted + r.deleted,
                            packed: sum.packed + r.packed,
                        })
                    })
                })
                .await?;
            done.rolled += part.rolled;
            done.deleted += part.deleted;
            done.packed += part.packed;
        }
        self.with("roll up readings", move |conn| readings::roll_up(conn, &horizons)).await?;
        Ok(done)
    }

    async fn incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        self.with("read incidents", move |conn| {
            incidents::read(conn, "ORDER BY opened_at DESC, id DESC LIMIT ?1", [limit as i64])
        })
        .await
    }

    async fn incident(&self, id: String) -> Result<Option<Incident>> {
        self.with("read incident", move |conn| Ok(incidents::read(conn, "WHERE id = ?1", [id])?.pop())).await
    }

    async fn open_incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        self.with("read open incidents", move |conn| {
            incidents::read(conn, "WHERE status = 'open' ORDER BY opened_at DESC, id DESC LIMIT ?1", [limit as i64])
        })
        .await
    }

    async fn open_incident_groups(&self) -> Result<Vec<String>> {
        self.with("read open incidents", move |conn| {
            let mut stmt = conn.prepare_cached("SELECT grp FROM incidents WHERE status = 'open' ORDER BY grp")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn live_incidents(&self) -> Result<(Vec<Incident>, Vec<(String, String, u32)>)> {
        self.with("read live incidents", move |conn| {
            let live = incidents::read(conn, "WHERE live = 1 ORDER BY opened_at", [])?;
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
            let mut stmt =
                conn.prepare(&format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE alert_id = ?1 ORDER BY id"))?;
            let rows = stmt.query_map([alert_id], message_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn incident_messages(&self, id: String) -> Result<Vec<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM outbox
                 WHERE alert_id IN (SELECT alert_id FROM incident_alerts WHERE incident = ?1) ORDER BY id"
            ))?;
            let rows = stmt.query_map([id], message_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn results_between(&self, target: String, from: Timestamp, to: Timestamp) -> Result<Vec<ResultRow>> {
        self.with("read results", move |conn| results::between(conn, &target, from.0, to.0)).await
    }

    async fn daily_uptime(&self, target: String, from: Timestamp) -> Result<Vec<(i64, u64, u64)>> {
        self.with("read uptime", move |conn| results::daily_uptime(conn, &target, from.0)).await
    }

    async fn result_buckets(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<crate::ResultBucket>> {
        let bucket_ms = bucket_ms.max(1);
        self.with("read result buckets", move |conn| results::buckets(conn, &target, from.0, to.0, bucket_ms)).await
    }

    async fn readings_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<crate::ReadingBucket>> {
        let bucket_ms = bucket_ms.max(1);
        self.with("read readings", move |conn| readings::between(conn, &target, from.0, to.0, bucket_ms)).await
    }

    async fn latency_percentiles(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        qs: Vec<f64>,
    ) -> Result<Vec<Option<f64>>> {
        self.with("read latency percentiles", move |conn| results::percentiles(conn, &target, from.0, to.0, &qs)).await
    }

    async fn heartbeat(&self, agent: crate::AgentInfo) -> Result<()> {
        let name = agent.name.clone();
        if self.with("heartbeat", move |conn| agents::heartbeat(conn, &agent)).await? {
            Ok(())
        } else {
            Err(StoreError::NameTaken { name })
        }
    }

    async fn agents(&self) -> Result<Vec<crate::AgentRow>> {
        self.with("read agents", |conn| agents::agents(conn)).await
    }

    async fn acquire_lease(&self, name: String, holder: String, ttl: std::time::Duration) -> Result<crate::Lease> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        self.with("take lease", move |conn| agents::acquire(conn, &name, &holder, ttl_ms)).await
    }

    async fn release_lease(&self, name: String, holder: String) -> Result<()> {
        self.with("release lease", move |conn| agents::release(conn, &name, &holder)).await
    }

    async fn leave(&self, agent: crate::AgentInfo) -> Result<()> {
        self.with("leave", move |conn| agents::leave(conn, &agent)).await
    }

    async fn location_states(&self) -> Result<Vec<crate::LocationState>> {
        self.with("read location states", |conn| checks::location_states(conn)).await
    }

    async fn forward(&self, agent: String, bodies: Vec<String>) -> Result<()> {
        self.with("forward", move |conn| checks::forward(conn, &agent, &bodies)).await
    }

    async fn forwarded(&self, limit: usize) -> Result<Vec<crate::Forwarded>> {
        self.with("read forwarded", move |conn| checks::forwarded(conn, limit)).await
    }

    async fn claim_checks(&self, claim: crate::CheckClaim) -> Result<Vec<String>> {
        let ttl_ms = i64::try_from(claim.ttl.as_millis()).unwrap_or(i64::MAX / 2);
        self.with("claim checks", move |conn| checks::claim(conn, &claim, ttl_ms)).await
    }

    async fn release_checks(&self, agent: String, location: String) -> Result<()> {
        self.with("release checks", move |conn| checks::release(conn, &agent, &location)).await
    }

    async fn check_holders(&self) -> Result<Vec<(String, String, String)>> {
        self.with("read check holders", |conn| checks::holders(conn)).await
    }

    async fn request_diagnosis(&self, agent: String, target: String, since: Option<Timestamp>) -> Result<i64> {
        self.with("request diagnosis", move |conn| diagnosis::request(conn, &agent, &target, since)).await
    }

    async fn take_diagnosis_requests(&self, agent: String) -> Result<Vec<crate::DiagnosisRequest>> {
        self.with("take diagnosis requests", move |conn| diagnosis::take(conn, &agent)).await
    }

    async fn answer_diagnosis(&self, id: i64, answer: String) -> Result<()> {
        self.with("answer diagnosis", move |conn| diagnosis::answer(conn, id, &answer)).await
    }

    async fn diagnosis_answer(&self, id: i64) -> Result<Option<String>> {
        self.with("read diagnosis answer", move |conn| diagnosis::answer_of(conn, id)).await
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

mod agents;
mod blocks;
mod checks;
mod diagnosis;
mod incidents;
mod readings;
mod record;
mod results;
mod rows;

#[cfg(test)]
mod tests;
