//! The embedded SQLite store: one file, WAL mode, versioned migrations.
//!
//! rusqlite is synchronous; each call runs on tokio's blocking pool so the runtime never stalls on disk.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lookout_core::{AlertState, LogCount, Timestamp, Transition};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{OutboxMessage, Record, Result, ResultRow, Store, StoreError};

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_logs.sql")];

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
    })
}

const MESSAGE_COLUMNS: &str =
    "id, channel, key, payload, created_at, attempts, next_attempt_at, delivered_at, last_error";

impl Store for SqliteStore {
    async fn record(&self, record: Record) -> Result<()> {
        self.with("record", move |conn| {
            let tx = conn.transaction()?;
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
            let now = Timestamp::now().0;
            for m in &record.messages {
                tx.execute(
                    "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)
                     ON CONFLICT (channel, key) DO NOTHING",
                    params![m.channel, m.key, m.payload, now],
                )?;
            }
            tx.commit()
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

    async fn oldest_undelivered(&self, channel: String) -> Result<Option<OutboxMessage>> {
        self.with("read outbox", move |conn| {
            conn.query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE delivered_at IS NULL AND channel = ?1 ORDER BY id LIMIT 1"),
                [channel],
                message_from_row,
            )
            .optional()
        })
        .await
    }

    async fn mark_delivered(&self, id: i64, at: Timestamp) -> Result<()> {
        self.with("mark delivered", move |conn| {
            conn.execute(
                "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1 AND delivered_at IS NULL",
                params![id, at.0],
            )
            .map(|_| ())
        })
        .await
    }

    async fn mark_failed(&self, id: i64, attempts: u32, next_attempt_at: Timestamp, error: String) -> Result<()> {
        self.with("mark failed", move |conn| {
            conn.execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
                params![id, attempts, next_attempt_at.0, error],
            )
            .map(|_| ())
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
            let mut stmt = conn.prepare(
                "SELECT target, at, ok, status, latency_ms, error, failed_conditions, timings, body_excerpt
                 FROM results WHERE target = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![target, limit as i64], |r| {
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
            })?;
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
        NewMessage { channel: channel.into(), key: key.into(), payload: format!("{{\"key\":\"{key}\"}}") }
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
        let head = s.oldest_undelivered("ops".into()).await.unwrap().unwrap();
        assert_eq!(head.key, "k1");
        assert_eq!(head.attempts, 0);

        let later = Timestamp(head.created_at.0 + 60_000);
        s.mark_failed(head.id, 1, later, "connection refused".into()).await.unwrap();
        let head = s.oldest_undelivered("ops".into()).await.unwrap().unwrap();
        assert_eq!((head.key.as_str(), head.attempts, head.next_attempt_at), ("k1", 1, later), "k1 stays at the head");
        assert_eq!(head.last_error.as_deref(), Some("connection refused"));

        s.mark_delivered(head.id, later).await.unwrap();
        s.mark_delivered(head.id, Timestamp(later.0 + 5)).await.unwrap();
        let head2 = s.oldest_undelivered("ops".into()).await.unwrap().unwrap();
        assert_eq!(head2.key, "k2", "k1 was enqueued once and delivered once");
        s.mark_delivered(head2.id, later).await.unwrap();
        assert_eq!(s.oldest_undelivered("ops".into()).await.unwrap(), None);
        assert_eq!(s.oldest_undelivered("team".into()).await.unwrap().unwrap().key, "k3");

        let all = s.messages(10).await.unwrap();
        let k1 = all.iter().find(|m| m.key == "k1").unwrap();
        assert_eq!(k1.delivered_at, Some(later), "a delivered message is never re-marked");
        assert_eq!(k1.attempts, 2);
        assert_eq!(all.len(), 3);
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
}
