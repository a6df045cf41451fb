//! The store chosen at start-up: [`open`] reads `[store]` and returns the backend it names, as one type every
//! caller works through ([`AnyStore`], which implements [`Store`]).
//!
//! Why an enum and not a generic parameter chosen in `main`: the pipeline, the web side and every command are
//! compiled once, not once per backend (CI builds on two cores), and a command opens its store in one line. A
//! `match` per call costs nothing next to the IO behind it. Adding a backend is one variant here, one arm in
//! [`open`] and one line in the delegation macro, plus one invocation of the conformance suite
//! (`conformance::suite!`) with a harness that opens it.

use std::future::Future;

use lookout_config::{StoreBackend, StoreConfig};
use lookout_core::{AlertState, Incident, LogCount, TimelineEntry, Timestamp, Transition};

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{NewSilence, OutboxMessage, OutboxStore, Record, Result, ResultRow, Silence, Store};

/// Whichever backend `[store]` names.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Opens (creating and migrating if needed) the store `[store]` names. Async because PostgreSQL's is a
/// connection to a server; SQLite's is a file opened at once.
pub async fn open(config: &StoreConfig) -> Result<AnyStore> {
    match &config.backend {
        StoreBackend::Sqlite { path } => Ok(AnyStore::Sqlite(SqliteStore::open(path)?)),
        StoreBackend::Postgres { url } => Ok(AnyStore::Postgres(PgStore::open(url).await?)),
    }
}

impl AnyStore {
    /// A fresh, empty in-memory store (SQLite), for tests and one-shot work.
    pub fn in_memory() -> Result<AnyStore> {
        Ok(AnyStore::Sqlite(SqliteStore::in_memory()?))
    }

    /// The SQLite file at `path`, opened at once (no server to reach): for tests and tools that hold a path.
    pub fn sqlite(path: &std::path::Path) -> Result<AnyStore> {
        Ok(AnyStore::Sqlite(SqliteStore::open(path)?))
    }
}

/// Each method forwards to the backend.
macro_rules! delegate {
    ($( $(#[$attr:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $(
            $(#[$attr])*
            fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = Result<$ret>> + Send {
                async move {
                    match self {
                        AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                        AnyStore::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            }
        )*
    };
}

impl OutboxStore for AnyStore {
    delegate! {
        fn next_pending(&self, channel: String) -> Option<OutboxMessage>;
        fn pending_in_group(&self, channel: String, group_key: String) -> Vec<OutboxMessage>;
        fn mark_attempted(&self, ids: Vec<i64>) -> ();
        fn mark_delivered(&self, ids: Vec<i64>, at: Timestamp, note: Option<String>) -> ();
        fn mark_abandoned(&self, ids: Vec<i64>, at: Timestamp, error: String) -> ();
        fn mark_suppressed(&self, ids: Vec<i64>, at: Timestamp, reason: String) -> ();
        fn mark_failed(&self, ids: Vec<i64>, next_attempt_at: Timestamp, error: String) -> ();
        fn was_delivered(&self, channel: String, prefix: String) -> bool;
        fn silences(&self, include_ended: bool, now: Timestamp) -> Vec<Silence>;
        fn alert_states(&self) -> Vec<(String, AlertState)>;
    }
}

impl Store for AnyStore {
    fn is_shared(&self) -> bool {
        matches!(self, AnyStore::Postgres(_))
    }

    delegate! {
        fn record_all(&self, records: Vec<Record>) -> ();
        fn add_silence(&self, silence: NewSilence) -> i64;
        fn expire_silence(&self, id: i64, at: Timestamp) -> bool;
        fn messages(&self, limit: usize) -> Vec<OutboxMessage>;
        fn recent_results(&self, target: String, limit: usize) -> Vec<ResultRow>;
        fn transitions(&self, target: Option<String>) -> Vec<Transition>;
        fn log_cursor(&self, source: String, file: String) -> Option<String>;
        fn log_totals(&self, source: String) -> LogCount;
        fn log_window(&self, source: String, from_sec: i64) -> Vec<String>;
        fn prune_results(&self, before: Timestamp) -> usize;
        fn roll_up(&self, horizons: crate::Horizons) -> crate::RollUp;
        fn incidents(&self, limit: usize) -> Vec<Incident>;
        fn incident(&self, id: String) -> Option<Incident>;
        fn open_incidents(&self, limit: usize) -> Vec<Incident>;
        fn open_incident_groups(&self) -> Vec<String>;
        #[allow(clippy::type_complexity)]
        fn live_incidents(&self) -> (Vec<Incident>, Vec<(String, String, u32)>);
        fn timeline(&self, id: String) -> Vec<TimelineEntry>;
        fn alert_messages(&self, alert_id: String) -> Vec<OutboxMessage>;
        fn incident_messages(&self, id: String) -> Vec<OutboxMessage>;
        fn results_between(&self, target: String, from: Timestamp, to: Timestamp) -> Vec<ResultRow>;
        fn daily_uptime(&self, target: String, from: Timestamp) -> Vec<(i64, u64, u64)>;
        fn log_counts_between(&self, source: String, from: Timestamp, to: Timestamp) -> Vec<LogCount>;
        fn result_buckets(&self, target: String, from: Timestamp, to: Timestamp, bucket_ms: i64) -> Vec<crate::ResultBucket>;
        fn latency_percentiles(&self, target: String, from: Timestamp, to: Timestamp, qs: Vec<f64>) -> Vec<Option<f64>>;
        fn readings_between(&self, target: String, from: Timestamp, to: Timestamp, bucket_ms: i64) -> Vec<crate::ReadingBucket>;
        fn heartbeat(&self, agent: crate::AgentInfo) -> ();
        fn agents(&self) -> Vec<crate::AgentRow>;
        fn acquire_lease(&self, name: String, holder: String, ttl: std::time::Duration) -> crate::Lease;
        fn release_lease(&self, name: String, holder: String) -> ();
        fn leave(&self, agent: crate::AgentInfo) -> ();
        fn location_states(&self) -> Vec<crate::LocationState>;
        fn forward(&self, agent: String, bodies: Vec<String>) -> ();
        fn forwarded(&self, limit: usize) -> Vec<crate::Forwarded>;
        fn claim_checks(&self, claim: crate::CheckClaim) -> Vec<String>;
        fn release_checks(&self, agent: String, location: String) -> ();
        fn check_holders(&self) -> Vec<(String, String, String)>;
        fn request_diagnosis(&self, agent: String, target: String, since: Option<Timestamp>) -> i64;
        fn take_diagnosis_requests(&self, agent: String) -> Vec<crate::DiagnosisRequest>;
        fn answer_diagnosis(&self, id: i64, answer: String) -> ();
        fn diagnosis_answer(&self, id: i64) -> Option<String>;
    }
}
