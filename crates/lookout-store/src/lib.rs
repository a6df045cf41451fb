//! Persistence behind one trait, [`Store`]: probe results, alert state, transitions, incidents and the
//! notification outbox. SQLite (WAL) is the embedded default; PostgreSQL will implement the same trait and pass the same
//! tests.
//!
//! The store records; it never decides. The invariant it upholds for the rest of the system: a transition,
//! the alert state after it and the notifications it causes are written in one transaction ([`Store::record`]),
//! so a crash can lose none of them without losing all of them.

mod sqlite;

use std::future::Future;

use lookout_core::{AlertState, Incident, IncidentChange, LogCount, TimelineEntry, Timestamp, Timings, Transition};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use sqlite::SqliteStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {message}; check the [store] path and its directory's permissions")]
    Open { path: String, message: String },
    #[error("store {op} failed: {message}")]
    Query { op: &'static str, message: String },
    /// Someone else changed the incident since it was read: read it again and redo the change.
    #[error("incident {incident} was changed by someone else meanwhile; read it again")]
    Conflict { incident: String },
    #[error("the store was written by a newer lookout (schema {found}, this build knows {known}); upgrade lookout")]
    TooNew { found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One probe result as stored (the body only as an excerpt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub target: String,
    pub at: Timestamp,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub failed_conditions: Vec<String>,
    pub timings: Timings,
    pub body_excerpt: Option<String>,
}

/// A notification to enqueue: one per channel and transition.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub channel: String,
    /// Idempotency key; enqueuing the same (channel, key) twice keeps the first.
    pub key: String,
    pub payload: String,
}

/// A notification in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub key: String,
    pub payload: String,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// Why the last attempt failed; for a delivered message, a note the channel left (e.g. a template fallback).
    pub last_error: Option<String>,
    /// Set when the channel refused the message for good (never retried).
    pub abandoned_at: Option<Timestamp>,
}

/// Everything one event produced, written atomically.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub result: Option<ResultRow>,
    /// The target's alert state after the event.
    pub state: Option<(String, AlertState)>,
    pub transitions: Vec<Transition>,
    pub messages: Vec<NewMessage>,
    /// Targets whose saved alert state is deleted (no longer configured).
    pub forget: Vec<String>,
    /// Log cursors and counts of a log source.
    pub log: Option<LogRecord>,
    /// Incidents opened, joined or resolved; written only if none changed meanwhile, else the whole record is
    /// refused with [`StoreError::Conflict`].
    pub incidents: Vec<IncidentChange>,
}

/// What a log batch persists: counts and where reading stands, together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    pub source: String,
    /// (`access` | `error`, cursor JSON).
    pub cursors: Vec<(String, String)>,
    pub counts: Vec<LogCount>,
}

/// What lookout persists. Implementations must make [`Store::record`] atomic.
pub trait Store: Send + Sync + 'static {
    /// Writes a result, alert state, transitions and outbox messages in one transaction.
    fn record(&self, record: Record) -> impl Future<Output = Result<()>> + Send;

    /// Every target's saved alert state, to resume after a restart.
    fn alert_states(&self) -> impl Future<Output = Result<Vec<(String, AlertState)>>> + Send;

    /// The oldest message of a channel neither delivered nor abandoned: channels deliver in order, one at a time, so a resolve
    /// never overtakes the firing message it answers.
    fn oldest_undelivered(&self, channel: String) -> impl Future<Output = Result<Option<OutboxMessage>>> + Send;

    /// `note`: something the channel reported with the delivery (kept in `last_error`).
    fn mark_delivered(&self, id: i64, at: Timestamp, note: Option<String>) -> impl Future<Output = Result<()>> + Send;

    /// The channel refused the message for good: it is kept with the reason and never selected again.
    fn mark_abandoned(&self, id: i64, at: Timestamp, error: String) -> impl Future<Output = Result<()>> + Send;

    fn mark_failed(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: String,
    ) -> impl Future<Output = Result<()>> + Send;

    /// All outbox messages, newest first (for status and tests).
    fn messages(&self, limit: usize) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// The latest results of a target, newest first.
    fn recent_results(&self, target: String, limit: usize) -> impl Future<Output = Result<Vec<ResultRow>>> + Send;

    /// Transitions of a target (or all targets), oldest first.
    fn transitions(&self, target: Option<String>) -> impl Future<Output = Result<Vec<Transition>>> + Send;

    /// The saved cursor (JSON) of a log source's file (`access` or `error`).
    fn log_cursor(&self, source: String, file: String) -> impl Future<Output = Result<Option<String>>> + Send;

    /// A log source's counts summed over all minutes (`minute` is 0).
    fn log_totals(&self, source: String) -> impl Future<Output = Result<LogCount>> + Send;

    /// Deletes results older than `before`; returns how many.
    fn prune_results(&self, before: Timestamp) -> impl Future<Output = Result<usize>> + Send;

    /// Incidents, newest first.
    fn incidents(&self, limit: usize) -> impl Future<Output = Result<Vec<Incident>>> + Send;

    fn incident(&self, id: String) -> impl Future<Output = Result<Option<Incident>>> + Send;

    /// The incidents `lookout run` works on (open, or with an alert still firing) and the last sequence number of
    /// every (day, group), to resume after a restart or a conflict.
    #[allow(clippy::type_complexity)]
    fn live_incidents(&self) -> impl Future<Output = Result<(Vec<Incident>, Vec<(String, String, u32)>)>> + Send;

    /// An incident's stored timeline, oldest first (notifications are in the outbox: [`Store::alert_messages`]).
    fn timeline(&self, id: String) -> impl Future<Output = Result<Vec<TimelineEntry>>> + Send;

    /// The outbox messages of one alert, oldest first.
    fn alert_messages(&self, alert_id: String) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// A target's probe results from `from` to `to` inclusive, oldest first.
    fn results_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<ResultRow>>> + Send;

    /// A log source's per-minute counts for the minutes from `from` to `to`.
    fn log_counts_between(
        &self,
        source: String,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<LogCount>>> + Send;
}
