//! The shared store on PostgreSQL: what several agents write to and read from when one machine is not enough.
//!
//! Why these choices:
//! - tokio-postgres is async, so calls run on the runtime's own threads (no blocking pool as for SQLite); a small
//!   deadpool pool lets the pipeline write while the web side and the outbox read.
//! - Statements are plain prepared statements and locks are row locks or transaction-scoped advisory locks, never
//!   session state: behind PgBouncer in transaction pooling every transaction may run on another server session.
//! - Migrations are versioned like SQLite's (`lookout_schema.version` instead of `user_version`); agents starting
//!   together serialise on a transaction-scoped advisory lock, so each migration runs once.
//! - Times are the same BIGINT milliseconds and documents the same JSON text as in SQLite, so `lookout store copy`
//!   moves rows between the two without translating them.

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use lookout_core::{AlertState, Incident, LogCount, TimelineEntry, Timestamp, Transition};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{NewSilence, OutboxMessage, OutboxStore, Record, Result, ResultRow, Silence, Store, StoreError};

/// Migrations in order; `lookout_schema.version` records how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_core.sql"),
    include_str!("../migrations/postgres/0002_results.sql"),
    include_str!("../migrations/postgres/0003_agents.sql"),
    include_str!("../migrations/postgres/0004_checks.sql"),
    include_str!("../migrations/postgres/0005_diagnosis_requests.sql"),
    include_str!("../migrations/postgres/0006_readings.sql"),
    include_str!("../migrations/postgres/0007_agent_mounts.sql"),
    include_str!("../migrations/postgres/0008_silence_pause.sql"),
];

/// The key of the transaction-scoped advisory lock that serialises migrations ("lookout" in ASCII).
const MIGRATION_LOCK: i64 = 0x006c_6f6f_6b6f_7574;

/// Connections per agent: the pipeline's writes, the outbox's sender and a few page reads at once.
const POOL_SIZE: usize = 8;

/// How long a call waits for a connection (from the pool or a new one) before it fails, so that a store that is
/// away turns into an error the holding store handles (alerts keep flowing from memory) rather than a hang.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The URL without its password, for messages.
    name: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.name)
    }
}

/// Maps a database error to a store error that says what failed (never the URL: it may carry a password).
pub(super) fn q(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Query { op, message: describe(&e) }
}

/// The server's own words for a database error (`ERROR: relation … does not exist`), else the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        // The client's words are general ("error connecting to server"); the cause says what happened.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A value read from the store that is not what lookout wrote (damaged or written by something else).
pub(super) fn bad(op: &'static str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Query { op, message: format!("unreadable value in the store: {what}") }
}

pub(super) fn to_json<T: serde::Serialize>(op: &'static str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| bad(op, e))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(op: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| bad(op, e))
}

/// Column `i` of a row, or a store error naming the operation.
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(op: &'static str, row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(q(op))
}

impl PgStore {
    /// Connects to the server `url` names and runs pending migrations.
    pub async fn open(url: &str) -> Result<PgStore> {
        let name = lookout_config::redact_url(url);
        let fail = |message: String| StoreError::Connect { url: name.clone(), message };
        // sslmode and sslrootcert are lookout's to read (tokio-postgres knows neither verify-* nor sslrootcert).
        let split = tls::split_url(url).map_err(&fail)?;
        let mut config: tokio_postgres::Config =
            split.url.parse().map_err(|e| fail(format!("not a PostgreSQL URL ({e})")))?;
        let tls = split.options(config.get_ssl_mode()).map_err(&fail)?;
        config.ssl_mode(tls.client_mode());
        // libpq's PGPASSWORD, so the password need not be in the config file or the URL.
        if config.get_password().is_none()
            && let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty())
        {
            config.password(password.as_encoded_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("lookout");
        }
        let connector = tls.connector().map_err(&fail)?;
        let manager =
            Manager::from_config(config, connector, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let store = PgStore { pool, name: name.clone() };
        store.migrate().await.map_err(|e| match e {
            StoreError::Query { message, .. } => fail(message),
            other => other,
        })?;
        Ok(store)
    }

    /// A connection from the pool.
    pub(super) async fn client(&self, op: &'static str) -> Result<Object> {
        self.pool.get().await.map_err(|e| StoreError::Query { op, message: pool_error(e) })
    }

    async fn migrate(&self) -> Result<()> {
        const OP: &str = "migrate";
        let known = MIGRATIONS.len() as i64;
        let mut client = self.client(OP).await?;
        loop {
            let tx = client.transaction().await.map_err(q(OP))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(q(OP))?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS lookout_schema (version INTEGER NOT NULL)")
                .await
                .map_err(q(OP))?;
            let version: i64 = match tx.query_opt("SELECT version FROM lookout_schema", &[]).await.map_err(q(OP))? {
                Some(row) => i64::from(get::<i32>(OP, &row, 0)?),
                None => {
                    tx.execute("INSERT INTO lookout_schema (version) VALUES (0)", &[]).await.map_err(q(OP))?;
                    0
                }
            };
            if version > known {
                return Err(StoreError::TooNew { found: version, known });
            }
            let Some(sql) = MIGRATIONS.get(version.max(0) as usize) else { break };
            tx.batch_execute(sql).await.map_err(q(OP))?;
            tx.execute("UPDATE lookout_schema SET version = $1", &[&(version as i32 + 1)]).await.map_err(q(OP))?;
            tx.commit().await.map_err(q(OP))?;
        }
        Ok(())
    }

    /// Runs one query and maps each row.
    async fn rows<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        f: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let client = self.client(op).await?;
        let stmt = client.prepare_cached(sql).await.map_err(q(op))?;
        client.query(&stmt, params).await.map_err(q(op))?.iter().map(f).collect()
    }

    /// Runs one statement; returns the rows it changed.
    async fn exec(&self, op: &'static str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client(op).await?;
        let stmt = client.prepare_cached(sql).await.map_err(q(op))?;
        client.execute(&stmt, params).await.map_err(q(op))
    }

    /// Runs one outbox update (`$1` the ids, `$2` a time, `$3` a text) for the messages, in one statement.
    async fn update_messages(
        &self,
        op: &'static str,
        sql: &str,
        ids: Vec<i64>,
        at: Timestamp,
        text: Option<String>,
    ) -> Result<()> {
        self.exec(op, sql, &[&ids, &at.0, &text]).await.map(drop)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(&e),
        deadpool_postgres::PoolError::Timeout(_) => {
            format!("no connection to PostgreSQL within {} s", CONNECT_TIMEOUT.as_secs())
        }
        other => other.to_string(),
    }
}

fn message_from_row(r: &Row) -> Result<OutboxMessage> {
    const OP: &str = "read outbox";
    let at = |i: usize| get::<Option<i64>>(OP, r, i).map(|t| t.map(Timestamp));
    Ok(OutboxMessage {
        id: get(OP, r, 0)?,
        channel: get(OP, r, 1)?,
        key: get(OP, r, 2)?,
        payload: get(OP, r, 3)?,
        created_at: Timestamp(get(OP, r, 4)?),
        attempts: get::<i32>(OP, r, 5)?.max(0) as u32,
        next_attempt_at: Timestamp(get(OP, r, 6)?),
        delivered_at: at(7)?,
        last_error: get(OP, r, 8)?,
        abandoned_at: at(9)?,
        group_key: get(OP, r, 10)?,
        suppressed_at: at(11)?,
    })
}

use crate::sql::{MESSAGE_COLUMNS, PENDING};

fn silence_from_row(r: &Row) -> Result<Silence> {
    const OP: &str = "read silences";
    Ok(Silence {
        id: get(OP, r, 0)?,
        matchers: from_json(OP, get(OP, r, 1)?)?,
        starts_at: Timestamp(get(OP, r, 2)?),
        ends_at: Timestamp(get(OP, r, 3)?),
        created_by: get(OP, r, 4)?,
        comment: get(OP, r, 5)?,
        created_at: Timestamp(get(OP, r, 6)?),
        expired_at: get::<Option<i64>>(OP, r, 7)?.map(Timestamp),
        pause: get(OP, r, 8)?,
    })
}

fn log_count_from_row(op: &'static str, r: &Row, minute: i64, first: usize) -> Result<LogCount> {
    let n = |i: usize| get::<i64>(op, r, first + i).map(|v| v.max(0) as u64);
    Ok(LogCount { minute, requests: n(0)?, classes: [n(1)?, n(2)?, n(3)?, n(4)?, n(5)?], malformed: n(6)? })
}

impl OutboxStore for PgStore {
    async fn next_pending(&self, channel: String) -> Result<Option<OutboxMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {PENDING} AND channel = $1 ORDER BY next_attempt_at, id LIMIT 1"
        );
        Ok(self.rows("read outbox", &sql, &[&channel], message_from_row).await?.pop())
    }

    async fn pending_in_group(&self, channel: String, group_key: String) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE {PENDING} AND channel = $1 AND group_key = $2 ORDER BY id"
        );
        self.rows("read outbox", &sql, &[&channel, &group_key], message_from_row).await
    }

    async fn mark_attempted(&self, ids: Vec<i64>) -> Result<()> {
        let sql = "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)";
        self.exec("mark attempted", sql, &[&ids]).await.map(drop)
    }

    async fn mark_delivered(&self, ids: Vec<i64>, at: Timestamp, note: Option<String>) -> Result<()> {
        let sql = "UPDATE outbox SET delivered_at = $2, last_error = $3 WHERE id = ANY($1) AND delivered_at IS NULL";
        self.update_messages("mark delivered", sql, ids, at, note).await
    }

    async fn mark_abandoned(&self, ids: Vec<i64>, at: Timestamp, error: String) -> Result<()> {
        let sql = "UPDATE outbox SET abandoned_at = $2, last_error = $3 WHERE id = ANY($1) AND delivered_at IS NULL";
        self.update_messages("mark abandoned", sql, ids, at, Some(error)).await
    }

    async fn mark_suppressed(&self, ids: Vec<i64>, at: Timestamp, reason: String) -> Result<()> {
        let sql = "UPDATE outbox SET suppressed_at = $2, last_error = $3 WHERE id = ANY($1) AND delivered_at IS NULL";
        self.update_messages("mark suppressed", sql, ids, at, Some(reason)).await
    }

    async fn mark_failed(&self, ids: Vec<i64>, next_attempt_at: Timestamp, error: String) -> Result<()> {
        let sql = "UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = ANY($1)";
        self.update_messages("mark failed", sql, ids, next_attempt_at, Some(error)).await
    }

    async fn was_delivered(&self, channel: String, prefix: String) -> Result<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM outbox WHERE channel = $1 AND left(key, length($2)) = $2
                   AND delivered_at IS NOT NULL)";
        let found = self.rows("read outbox", sql, &[&channel, &prefix], |r| get::<bool>("read outbox", r, 0)).await?;
        Ok(found.first().copied().unwrap_or(false))
    }

    async fn silences(&self, include_ended: bool, now: Timestamp) -> Result<Vec<Silence>> {
        let sql =
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at, pause FROM silences
                   WHERE $1 OR (ends_at > $2 AND expired_at IS NULL) ORDER BY id DESC";
        self.rows("read silences", sql, &[&include_ended, &now.0], silence_from_row).await
    }

    async fn alert_states(&self) -> Result<Vec<(String, AlertState)>> {
        const OP: &str = "load alert state";
        let sql = "SELECT target, state FROM alert_state ORDER BY target";
        self.rows(OP, sql, &[], |r| Ok((get(OP, r, 0)?, from_json(OP, get(OP, r, 1)?)?))).await
    }
}

impl Store for PgStore {
    async fn record_all(&self, records: Vec<Record>) -> Result<()> {
        const OP: &str = "record";
        let mut client = self.client(OP).await?;
        let tx = client.transaction().await.map_err(q(OP))?;
        for record in &records {
            // A conflict drops `tx`, which rolls back everything written so far.
            record::write(&tx, record).await?;
        }
        let results: Vec<&ResultRow> = records.iter().filter_map(|r| r.result.as_ref()).collect();
        if !results.is_empty() {
            results::insert_all(&tx, &results).await?;
        }
        let readings: Vec<&crate::Reading> = records.iter().flat_map(|r| &r.readings).collect();
        if !readings.is_empty() {
            readings::insert_all(&tx, &readings).await?;
        }
        tx.commit().await.map_err(q(OP))
    }

    async fn add_silence(&self, s: NewSilence) -> Result<i64> {
        const OP: &str = "add silence";
        let sql = "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at, pause)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        let matchers = to_json(OP, &s.matchers)?;
        let params: [&(dyn ToSql + Sync); 7] =
            [&matchers, &s.starts_at.0, &s.ends_at.0, &s.created_by, &s.comment, &Timestamp::now().0, &s.pause];
        let ids = self.rows(OP, sql, &params, |r| get::<i64>(OP, r, 0)).await?;
        ids.first().copied().ok_or_else(|| bad(OP, "no id returned"))
    }

    async fn expire_silence(&self, id: i64, at: Timestamp) -> Result<bool> {
        let sql = "UPDATE silences SET expired_at = $2 WHERE id = $1 AND expired_at IS NULL AND ends_at > $2";
        Ok(self.exec("expire silence", sql, &[&id, &at.0]).await? > 0)
    }

    async fn messages(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM outbox ORDER BY id DESC LIMIT $1");
        self.rows("read outbox", &sql, &[&(limit as i64)], message_from_row).await
    }

    async fn recent_results(&self, target: String, limit: usize) -> Result<Vec<ResultRow>> {
        results::recent(&self.pool, &target, limit).await
    }

    async fn transitions(&self, target: Option<String>) -> Result<Vec<Transition>> {
        const OP: &str = "read transitions";
        let sql = "SELECT detail FROM transitions WHERE $1::TEXT IS NULL OR target = $1 ORDER BY at, id";
        self.rows(OP, sql, &[&target], |r| from_json(OP, get(OP, r, 0)?)).await
    }

    async fn log_cursor(&self, source: String, file: String) -> Result<Option<String>> {
        const OP: &str = "read log cursor";
        let sql = "SELECT cursor FROM log_cursors WHERE source = $1 AND file = $2";
        Ok(self.rows(OP, sql, &[&source, &file], |r| get::<String>(OP, r, 0)).await?.pop())
    }

    async fn log_window(&self, source: String, from_sec: i64) -> Result<Vec<String>> {
        const OP: &str = "read log window";
        let sql = "SELECT entry FROM log_window WHERE source = $1 AND sec >= $2 ORDER BY sec, id";
        self.rows(OP, sql, &[&source, &from_sec], |r| get(OP, r, 0)).await
    }

    async fn log_totals(&self, source: String) -> Result<LogCount> {
        const OP: &str = "read log counts";
        let sql = "SELECT COALESCE(SUM(requests), 0)::BIGINT, COALESCE(SUM(s1xx), 0)::BIGINT,
                          COALESCE(SUM(s2xx), 0)::BIGINT, COALESCE(SUM(s3xx), 0)::BIGINT,
                          COALESCE(SUM(s4xx), 0)::BIGINT, COALESCE(SUM(s5xx), 0)::BIGINT,
                          COALESCE(SUM(malformed), 0)::BIGINT
                   FROM log_counts WHERE source = $1";
        let mut rows = self.rows(OP, sql, &[&source], |r| log_count_from_row(OP, r, 0, 0)).await?;
        rows.pop().ok_or_else(|| bad(OP, "no totals returned"))
    }

    async fn prune_results(&self, before: Timestamp) -> Result<usize> {
        results::prune(&self.pool, before.0).await
    }

    async fn roll_up(&self, horizons: crate::Horizons) -> Result<crate::RollUp> {
        let done = results::roll_up(&self.pool, &horizons).await?;
        readings::roll_up(&self.pool, &horizons).await?;
        Ok(done)
    }

    async fn incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        incidents::read(self, "ORDER BY opened_at DESC, id DESC LIMIT $1", &[&(limit as i64)]).await
    }

    async fn incident(&self, id: String) -> Result<Option<Incident>> {
        Ok(incidents::read(self, "WHERE id = $1", &[&id]).await?.pop())
    }

    async fn open_incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        let sql = "WHERE status = 'open' ORDER BY opened_at DESC, id DESC LIMIT $1";
        incidents::read(self, sql, &[&(limit as i64)]).await
    }

    async fn open_incident_groups(&self) -> Result<Vec<String>> {
        const OP: &str = "read open incidents";
        let sql = "SELECT grp FROM incidents WHERE status = 'open' ORDER BY grp";
        self.rows(OP, sql, &[], |r| get(OP, r, 0)).await
    }

    async fn live_incidents(&self) -> Result<(Vec<Incident>, Vec<(String, String, u32)>)> {
        const OP: &str = "read live incidents";
        let live = incidents::read(self, "WHERE live ORDER BY opened_at", &[]).await?;
        let sql = "SELECT day, grp, MAX(seq) FROM incidents GROUP BY day, grp";
        let seqs = self
            .rows(OP, sql, &[], |r| Ok((get(OP, r, 0)?, get(OP, r, 1)?, get::<i32>(OP, r, 2)?.max(0) as u32)))
            .await?;
        Ok((live, seqs))
    }

    async fn timeline(&self, id: String) -> Result<Vec<TimelineEntry>> {
        const OP: &str = "read timeline";
        let sql = "SELECT detail FROM incident_timeline WHERE incident = $1 ORDER BY at, id";
        self.rows(OP, sql, &[&id], |r| from_json(OP, get(OP, r, 0)?)).await
    }

    async fn alert_messages(&self, alert_id: String) -> Result<Vec<OutboxMessage>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY id");
        self.rows("read outbox", &sql, &[&alert_id], message_from_row).await
    }

    async fn incident_messages(&self, id: String) -> Result<Vec<OutboxMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox
             WHERE alert_id IN (SELECT alert_id FROM incident_alerts WHERE incident = $1) ORDER BY id"
        );
        self.rows("read outbox", &sql, &[&id], message_from_row).await
    }

    async fn results_between(&self, target: String, from: Timestamp, to: Timestamp) -> Result<Vec<ResultRow>> {
        results::between(&self.pool, &target, from.0, to.0).await
    }

    async fn daily_uptime(&self, target: String, from: Timestamp) -> Result<Vec<(i64, u64, u64)>> {
        results::daily_uptime(&self.pool, &target, from.0).await
    }

    async fn result_buckets(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<crate::ResultBucket>> {
        results::buckets(&self.pool, &target, from.0, to.0, bucket_ms.max(1)).await
    }

    async fn readings_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<crate::ReadingBucket>> {
        readings::between(&self.pool, &target, from.0, to.0, bucket_ms.max(1)).await
    }

    async fn latency_percentiles(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        qs: Vec<f64>,
    ) -> Result<Vec<Option<f64>>> {
        results::percentiles(&self.pool, &target, from.0, to.0, &qs).await
    }

    async fn heartbeat(&self, agent: crate::AgentInfo) -> Result<()> {
        agents::heartbeat(self, &agent).await
    }

    async fn agents(&self) -> Result<Vec<crate::AgentRow>> {
        agents::agents(self).await
    }

    async fn acquire_lease(&self, name: String, holder: String, ttl: std::time::Duration) -> Result<crate::Lease> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        agents::acquire(self, &name, &holder, ttl_ms).await
    }

    async fn release_lease(&self, name: String, holder: String) -> Result<()> {
        agents::release(self, &name, &holder).await
    }

    async fn leave(&self, agent: crate::AgentInfo) -> Result<()> {
        agents::leave(self, &agent).await
    }

    async fn location_states(&self) -> Result<Vec<crate::LocationState>> {
        checks::location_states(self).await
    }

    async fn forward(&self, agent: String, bodies: Vec<String>) -> Result<()> {
        checks::forward(self, &agent, &bodies).await
    }

    async fn forwarded(&self, limit: usize) -> Result<Vec<crate::Forwarded>> {
        checks::forwarded(self, limit).await
    }

    async fn claim_checks(&self, claim: crate::CheckClaim) -> Result<Vec<String>> {
        let ttl_ms = i64::try_from(claim.ttl.as_millis()).unwrap_or(i64::MAX / 2);
        checks::claim(self, &claim, ttl_ms).await
    }

    async fn release_checks(&self, agent: String, location: String) -> Result<()> {
        checks::release(self, &agent, &location).await
    }

    async fn check_holders(&self) -> Result<Vec<(String, String, String)>> {
        checks::holders(self).await
    }

    async fn request_diagnosis(&self, agent: String, target: String, since: Option<Timestamp>) -> Result<i64> {
        diagnosis::request(self, &agent, &target, since).await
    }

    async fn take_diagnosis_requests(&self, agent: String) -> Result<Vec<crate::DiagnosisRequest>> {
        diagnosis::take(self, &agent).await
    }

    async fn answer_diagnosis(&self, id: i64, answer: String) -> Result<()> {
        diagnosis::answer(self, id, &answer).await
    }

    async fn diagnosis_answer(&self, id: i64) -> Result<Option<String>> {
        diagnosis::answer_of(self, id).await
    }

    async fn log_counts_between(&self, source: String, from: Timestamp, to: Timestamp) -> Result<Vec<LogCount>> {
        const OP: &str = "read log counts";
        let sql = "SELECT minute, requests, s1xx, s2xx, s3xx, s4xx, s5xx, malformed FROM log_counts
                   WHERE source = $1 AND minute >= $2 AND minute <= $3 ORDER BY minute";
        let (first, last) = (from.0.div_euclid(60_000) * 60, to.0.div_euclid(1000));
        self.rows(OP, sql, &[&source, &first, &last], |r| log_count_from_row(OP, r, get(OP, r, 0)?, 1)).await
    }
}

mod agents;
mod checks;
mod diagnosis;
mod incidents;
mod readings;
mod record;
mod results;
mod rows;
/// TLS over rustls, and libpq's sslmode / sslrootcert.
mod tls;

#[cfg(test)]
mod tests;
