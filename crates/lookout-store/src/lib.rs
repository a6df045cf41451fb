//! Persistence behind one trait, [`Store`]: probe results, alert state, transitions, incidents and the
//! notification outbox. [`open`] returns the backend `[store]` names; SQLite (WAL) is the embedded default,
//! PostgreSQL the store several agents share, and both pass the same conformance suite.
//!
//! The store records; it never decides. The invariant it upholds for the rest of the system: a transition,
//! the alert state after it and the notifications it causes are written in one transaction ([`Store::record`]),
//! so a crash can lose none of them without losing all of them.

mod codec;
#[cfg(test)]
mod conformance;
mod copy;
mod open;
mod postgres;
mod sql;
mod sqlite;
/// A real PostgreSQL server for tests (here, and in other crates' tests through the feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::future::Future;

use lookout_core::{AlertState, Incident, IncidentChange, LogCount, TimelineEntry, Timestamp, Timings, Transition};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use copy::{CopyOptions, CopyReport, Progress as CopyProgress, TableCount, copy};
pub use open::{AnyStore, open};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {message}; check the [store] path and its directory's permissions")]
    Open { path: String, message: String },
    /// The shared store's server cannot be reached or refused us (`url` is printed without its password).
    #[error(
        "cannot use the PostgreSQL store at {url}: {message}; check [store] url, that the server runs and that it accepts this user"
    )]
    Connect { url: String, message: String },
    #[error("store {op} failed: {message}")]
    Query { op: &'static str, message: String },
    /// Someone else changed the incident since it was read: read it again and redo the change.
    #[error("incident {incident} was changed by someone else meanwhile; read it again")]
    Conflict { incident: String },
    /// Another running agent beats under this agent's name: two would hold one lease and send twice.
    #[error(
        "another agent named {name:?} is running (it beat within the last 10 s): give each agent its own [agent] name or LOOKOUT_AGENT_NAME"
    )]
    NameTaken { name: String },
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

/// How long each form of probe results is kept, as cut-off times: the roll-up's instructions
/// ([`Store::roll_up`]). Why three: raw rows cost the most and are needed only for the recent past; failures are
/// what incidents and postmortems read; uptime and charts need only counts and latencies, for months.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Horizons {
    /// Raw successes older than this (by whole hours) are packed into per-hour blocks: still raw, a third of the
    /// bytes. `lookout run` packs what is older than an hour.
    pub pack: Timestamp,
    /// Raw results older than this are counted into 5-minute and per-hour aggregates and deleted, except
    /// failures and the first success after them.
    pub raw: Timestamp,
    /// The failures kept raw and the 5-minute aggregates older than this are deleted (by whole hours).
    pub detail: Timestamp,
    /// Per-hour aggregates older than this are deleted.
    pub hourly: Timestamp,
}

/// What one roll-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollUp {
    /// Raw results counted into aggregates.
    pub rolled: u64,
    /// Raw results deleted (rolled up, or failures past the detail horizon).
    pub deleted: u64,
    /// Raw results packed into per-hour blocks.
    pub packed: u64,
}

/// A slice of a target's results, counted by the store: what pages show without loading every result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultBucket {
    /// The slice's start (`from` + n × the slice length).
    pub start: Timestamp,
    pub total: u64,
    pub ok: u64,
    pub mean_latency_ms: f64,
}

/// A notification to enqueue: one per channel and transition.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NewMessage {
    pub channel: String,
    /// Idempotency key; enqueuing the same (channel, key) twice keeps the first.
    pub key: String,
    pub payload: String,
    /// Messages of one group on one channel are sent together.
    pub group_key: String,
    /// How long it waits for others of its group before it is first tried (the route's group_wait).
    pub wait: std::time::Duration,
    /// What became of it before it reached the store: set when it was sent (or tried, held back, refused) from
    /// memory while the store could not be written, so that recording it later never sends it again.
    pub sent: Option<SentFromMemory>,
}

/// The fate of a message handled in memory before the store took it (see [`NewMessage::sent`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SentFromMemory {
    pub created_at: Timestamp,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub abandoned_at: Option<Timestamp>,
    pub suppressed_at: Option<Timestamp>,
}

/// A silence to add.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSilence {
    pub matchers: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    /// A paused target (`target=NAME`): its probes stop too, until the silence is expired (resumed).
    pub pause: bool,
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
    pub expired_at: Option<Timestamp>,
    /// A paused target: see [`NewSilence::pause`].
    pub pause: bool,
}

impl Silence {
    /// In force at `now`: started, not ended, not expired by hand.
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at && self.expired_at.is_none_or(|e| now < e)
    }
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
    pub group_key: String,
    /// Set when it was deliberately not sent (the reason is in `last_error`).
    pub suppressed_at: Option<Timestamp>,
}

/// One reading of a status page or the host, for its charts. Kept raw for `raw_retention`, then as per-minute
/// aggregates until `retention`, then per hour (like probe results' roll-ups: [`Store::roll_up`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub target: String,
    pub at: Timestamp,
    pub name: String,
    pub value: f64,
}

/// A target's readings of one name in one slice of time ([`Store::readings_between`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadingBucket {
    pub name: String,
    /// The slice's start (`from` + n × the slice length).
    pub start: Timestamp,
    /// Readings in it.
    pub n: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Everything one event produced, written atomically.
#[derive(Clone, Debug, Default)]
pub struct Record {
    pub result: Option<ResultRow>,
    /// The target's alert state after the event.
    pub state: Option<(String, AlertState)>,
    pub transitions: Vec<Transition>,
    pub messages: Vec<NewMessage>,
    /// Targets whose saved alert state is deleted (no longer configured), with their location states and check
    /// leases.
    pub forget: Vec<String>,
    /// Log cursors and counts of a log source.
    pub log: Option<LogRecord>,
    /// Incidents opened, joined or resolved; written only if none changed meanwhile, else the whole record is
    /// refused with [`StoreError::Conflict`].
    pub incidents: Vec<IncidentChange>,
    /// Each location's view of a target after the event, upserted by (target, location): what quorum and
    /// per-location pages read back ([`Store::location_states`]).
    pub locations: Vec<LocationState>,
    /// Readings of a status page or the host (`[[status]]`, `[host]`): kept for charts.
    pub readings: Vec<Reading>,
    /// Ids of forwarded events ([`Store::forwarded`]) this record handles: deleted with it, in its transaction, so
    /// an agent's observation is handled exactly once even if the leader dies half-way (a record refused, for a
    /// conflict too, leaves them for the next try).
    pub consumed: Vec<i64>,
}

/// One location's view of a target: its alert state there and its latest check (quorum, per-location pages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocationState {
    pub target: String,
    pub location: String,
    pub state: AlertState,
    /// The latest check from this location.
    pub at: Timestamp,
    pub ok: bool,
    pub latency_ms: f64,
    pub status: Option<u16>,
    pub reason: Option<String>,
}

/// An event an agent handed to the leader ([`Store::forward`]): JSON, opaque to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// Increasing and never reused (a later event has a larger id), so the oldest come first.
    pub id: i64,
    pub agent: String,
    pub body: String,
}

/// What an agent asks of the check leases each heartbeat ([`Store::claim_checks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckClaim {
    pub agent: String,
    pub location: String,
    /// The targets this agent knows and would probe at its location (an agent never gets a target it does not know).
    pub targets: Vec<String>,
    /// How many checks it should hold: its fair share of the location's checks.
    pub want: usize,
    pub ttl: std::time::Duration,
}

/// A diagnosis the leader asked an agent for ([`Store::request_diagnosis`]): the target's processes and error log
/// are on that agent's machine, so only it can look at them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagnosisRequest {
    pub id: i64,
    pub target: String,
    /// When the target began failing (evidence older than this is not looked at), if known.
    pub since: Option<Timestamp>,
}

/// What a log batch persists: counts and where reading stands, together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    pub source: String,
    /// (`access` | `error`, cursor JSON).
    pub cursors: Vec<(String, String)>,
    pub counts: Vec<LogCount>,
    /// What the batch changed in the source's sliding window, so that a restart restores the window.
    pub window: Option<LogWindowWrite>,
}

/// A log batch's change to its source's persisted window: the entry it added (the engine's second and the entry
/// as JSON, opaque to the store) and the second before which entries have slid out and are deleted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogWindowWrite {
    pub entry: Option<(i64, String)>,
    pub keep_from: i64,
}

/// What an agent says about itself when it beats ([`Store::heartbeat`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    pub name: String,
    pub location: String,
    /// Lookout's version.
    pub version: String,
    /// A digest of the targets (and what decides about them) it was configured with: agents that disagree show it.
    pub config_hash: String,
    pub started_at: Timestamp,
    /// Its machine's mounted data filesystems, watched by `[host]`: what the leader needs to judge them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
}

/// An agent's mounts as stored (a JSON array of paths).
pub(crate) fn mounts_json(mounts: &[String]) -> String {
    serde_json::to_string(mounts).unwrap_or_else(|_| "[]".into())
}

/// An agent's mounts read back; a value that is not a list of paths (written by hand) is no mounts.
pub(crate) fn mounts_of_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// An agent as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    #[serde(flatten)]
    pub info: AgentInfo,
    /// Its last heartbeat, by the store's clock.
    pub last_seen: Timestamp,
    /// Whether it holds the leader lease now.
    pub leader: bool,
}

/// Who holds a lease after an attempt to take it ([`Store::acquire_lease`]), until when (the store's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub expires_at: Timestamp,
}

/// The name of the lease whose holder leads: it alone runs the decisions that must be single (sending
/// notifications, the roll-up).
pub const LEADER_LEASE: &str = "leader";

/// The part of [`Store`] the notification outbox needs: pending messages, marking what became of them, and what
/// decides whether one is held back (silences, alert states).
///
/// Why a trait of its own: a narrow user sees only what it needs. The outbox's sender is generic over
/// `S: OutboxStore`, so its bound says exactly what it reads and writes, and a test double for it implements ten
/// methods rather than all of [`Store`]. It is a supertrait of [`Store`], so every `Store` is an `OutboxStore` and
/// callers that hold a `Store` pass it unchanged; a backend implements both traits (the methods are split between
/// them, none is declared twice). Code that calls these methods on [`AnyStore`] imports this trait.
pub trait OutboxStore: Send + Sync + 'static {
    /// The pending message of a channel (neither delivered, abandoned nor suppressed) that is due first.
    fn next_pending(&self, channel: String) -> impl Future<Output = Result<Option<OutboxMessage>>> + Send;

    /// Every pending message of one group on a channel, oldest first: they are sent together, so a resolve is
    /// never sent before the firing message it answers.
    fn pending_in_group(
        &self,
        channel: String,
        group_key: String,
    ) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// An attempt is about to be made: counted before the send, so a message whose send was cut by a crash counts
    /// as tried (its receiver may have it).
    fn mark_attempted(&self, ids: Vec<i64>) -> impl Future<Output = Result<()>> + Send;

    /// `note`: something the channel reported with the delivery (kept in `last_error`).
    fn mark_delivered(
        &self,
        ids: Vec<i64>,
        at: Timestamp,
        note: Option<String>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The channel refused the messages for good: kept with the reason and never selected again.
    fn mark_abandoned(&self, ids: Vec<i64>, at: Timestamp, error: String) -> impl Future<Output = Result<()>> + Send;

    /// Deliberately not sent (silenced, in maintenance, a parent down, flapped): kept with the reason.
    fn mark_suppressed(&self, ids: Vec<i64>, at: Timestamp, reason: String) -> impl Future<Output = Result<()>> + Send;

    /// A failed attempt: the next one is not before `next_attempt_at`.
    fn mark_failed(
        &self,
        ids: Vec<i64>,
        next_attempt_at: Timestamp,
        error: String,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Whether a message whose key starts with `prefix` was delivered on this channel.
    fn was_delivered(&self, channel: String, prefix: String) -> impl Future<Output = Result<bool>> + Send;

    /// Silences, newest first; with `include_ended`, also those that ended or were expired.
    fn silences(&self, include_ended: bool, now: Timestamp) -> impl Future<Output = Result<Vec<Silence>>> + Send;

    /// Every target's saved alert state, to resume after a restart (the outbox reads which targets are firing).
    fn alert_states(&self) -> impl Future<Output = Result<Vec<(String, AlertState)>>> + Send;
}

/// What lookout persists. Implementations must make [`Store::record`] atomic. The outbox's queries and marks are
/// in the supertrait [`OutboxStore`]; a backend implements both.
pub trait Store: OutboxStore {
    /// Whether several agents may share this store (PostgreSQL): then they elect a leader by lease. A store only
    /// this machine writes (SQLite) is a cluster of one whose agent leads without asking it.
    fn is_shared(&self) -> bool {
        false
    }

    /// Writes a result, alert state, transitions and outbox messages in one transaction.
    fn record(&self, record: Record) -> impl Future<Output = Result<()>> + Send {
        self.record_all(vec![record])
    }

    /// Writes many records, in order, in one transaction: all of them or (on any error, a conflict included) none.
    /// The pipeline writes what arrived together this way, so a storm of alerts costs one commit, not one each.
    fn record_all(&self, records: Vec<Record>) -> impl Future<Output = Result<()>> + Send;

    fn add_silence(&self, silence: NewSilence) -> impl Future<Output = Result<i64>> + Send;

    /// Ends a silence now; false if there is no such silence in force.
    fn expire_silence(&self, id: i64, at: Timestamp) -> impl Future<Output = Result<bool>> + Send;

    /// All outbox messages, newest first (for status and tests).
    fn messages(&self, limit: usize) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// The latest results of a target, newest first.
    fn recent_results(&self, target: String, limit: usize) -> impl Future<Output = Result<Vec<ResultRow>>> + Send;

    /// Transitions of a target (or all targets), oldest first.
    fn transitions(&self, target: Option<String>) -> impl Future<Output = Result<Vec<Transition>>> + Send;

    /// The saved cursor (JSON) of a log source's file (`access` or `error`).
    fn log_cursor(&self, source: String, file: String) -> impl Future<Output = Result<Option<String>>> + Send;

    /// A log source's window entries (JSON, as written with [`LogWindowWrite`]) of seconds from `from_sec` on,
    /// oldest first: what `lookout run` puts back into the window at start.
    fn log_window(&self, source: String, from_sec: i64) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// A log source's counts summed over all minutes (`minute` is 0).
    fn log_totals(&self, source: String) -> impl Future<Output = Result<LogCount>> + Send;

    /// Deletes results older than `before` (raw rows and aggregates); returns how many raw rows.
    fn prune_results(&self, before: Timestamp) -> impl Future<Output = Result<usize>> + Send;

    /// Rolls raw results up into aggregates and applies the retention of each form ([`Horizons`]); idempotent and
    /// safe to repeat after a crash (each target's counting and deleting is one transaction). The reads
    /// (`daily_uptime`, `result_buckets`, `latency_percentiles`) answer the same before and after it.
    fn roll_up(&self, horizons: Horizons) -> impl Future<Output = Result<RollUp>> + Send;

    /// Incidents, newest first.
    fn incidents(&self, limit: usize) -> impl Future<Output = Result<Vec<Incident>>> + Send;

    fn incident(&self, id: String) -> impl Future<Output = Result<Option<Incident>>> + Send;

    /// Open incidents, newest first, at most `limit`: the dashboard's list, which must not lose an old open one
    /// behind newer resolved ones (as the newest `incidents` would).
    fn open_incidents(&self, limit: usize) -> impl Future<Output = Result<Vec<Incident>>> + Send;

    /// The groups with an open incident, in name order (one incident each, by the store's constraint): what the
    /// public status page must know however many newer incidents there are. Cheap: the open ones are indexed.
    fn open_incident_groups(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// The incidents `lookout run` works on (open, or with an alert still firing) and the last sequence number of
    /// every (day, group), to resume after a restart or a conflict.
    #[allow(clippy::type_complexity)]
    fn live_incidents(&self) -> impl Future<Output = Result<(Vec<Incident>, Vec<(String, String, u32)>)>> + Send;

    /// An incident's stored timeline, oldest first (notifications are in the outbox: [`Store::alert_messages`]).
    fn timeline(&self, id: String) -> impl Future<Output = Result<Vec<TimelineEntry>>> + Send;

    /// The outbox messages of one alert, oldest first.
    fn alert_messages(&self, alert_id: String) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// The outbox messages of every alert of an incident, oldest first: one read however many alerts it has.
    fn incident_messages(&self, id: String) -> impl Future<Output = Result<Vec<OutboxMessage>>> + Send;

    /// A target's probe results from `from` to `to` inclusive, oldest first: all of them inside the raw window;
    /// beyond it (see [`Store::roll_up`]) the failures and the first success after each run of them.
    fn results_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<ResultRow>>> + Send;

    /// A target's probe results per UTC day since `from`: (day as Unix days, passed, total), oldest first.
    fn daily_uptime(
        &self,
        target: String,
        from: Timestamp,
    ) -> impl Future<Output = Result<Vec<(i64, u64, u64)>>> + Send;

    /// A target's results from `from` to `to` inclusive, counted per slice of `bucket_ms` (slices without results
    /// are left out), oldest first. Computed by the store, so a page's cost does not grow with the results kept.
    fn result_buckets(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> impl Future<Output = Result<Vec<ResultBucket>>> + Send;

    /// A target's readings from `from` to `to` inclusive, per name and slice of `bucket_ms` (slices without
    /// readings are left out), by name then oldest first; from raw readings and roll-ups alike.
    fn readings_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> impl Future<Output = Result<Vec<ReadingBucket>>> + Send;

    /// Latency percentiles (each `q` from 0 to 1, nearest rank: the result at `round((n - 1) × q)` by latency) of a
    /// target's results from `from` to `to` inclusive, computed by the store; `None` for each when there are none.
    fn latency_percentiles(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        qs: Vec<f64>,
    ) -> impl Future<Output = Result<Vec<Option<f64>>>> + Send;

    /// An agent is alive: its row is written (or refreshed) with `last_seen` = the store's clock now. The store's
    /// clock, not the agent's, so that agents whose clocks disagree still judge each other fairly.
    fn heartbeat(&self, agent: AgentInfo) -> impl Future<Output = Result<()>> + Send;

    /// Every agent that ever beat, by name, with whether it leads now.
    fn agents(&self) -> impl Future<Output = Result<Vec<AgentRow>>> + Send;

    /// Takes the lease `name` for `holder` until the store's now + `ttl` if it is free, expired or already
    /// `holder`'s (then it is renewed); one statement, so two agents trying at once cannot both get it. Returns
    /// whoever holds it afterwards.
    fn acquire_lease(
        &self,
        name: String,
        holder: String,
        ttl: std::time::Duration,
    ) -> impl Future<Output = Result<Lease>> + Send;

    /// Gives the lease up if `holder` has it (a clean stop hands leadership over at once, not after the ttl).
    fn release_lease(&self, name: String, holder: String) -> impl Future<Output = Result<()>> + Send;

    /// An agent stops cleanly: it shows as gone, and its name is free at once for the next process (a restart
    /// need not wait the 10 s a crashed agent's name stays held). Only the process that beat (same start) leaves.
    fn leave(&self, agent: AgentInfo) -> impl Future<Output = Result<()>> + Send;

    /// A log source's per-minute counts for the minutes from `from` to `to`.
    fn log_counts_between(
        &self,
        source: String,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<LogCount>>> + Send;

    /// Every location's view of every target (written with [`Record::locations`]), ordered by target, location.
    fn location_states(&self) -> impl Future<Output = Result<Vec<LocationState>>> + Send;

    /// An agent hands events (JSON bodies, opaque here) to the leader: all of them in one transaction, stamped with
    /// the store's clock. The leader reads them with [`Store::forwarded`] and deletes them with the record that
    /// handles them ([`Record::consumed`]).
    fn forward(&self, agent: String, bodies: Vec<String>) -> impl Future<Output = Result<()>> + Send;

    /// The oldest `limit` forwarded events, by id. No locking: one leader reads them.
    fn forwarded(&self, limit: usize) -> impl Future<Output = Result<Vec<Forwarded>>> + Send;

    /// An agent's heartbeat on the check leases, in one transaction, so that each target is probed by exactly one
    /// agent per location: every target of `claim.targets` gets a lease row at the location if it has none; the
    /// agent gives up those it holds but no longer knows, renews the rest until the store's now + `ttl`, gives up
    /// its surplus over `want` (the greatest target names), and takes expired or free ones it knows, by target
    /// name, up to `want` — never one another agent is taking at the same moment (PostgreSQL: `SKIP LOCKED`, so
    /// agents claiming together neither wait for nor double up with each other). Returns the targets it holds
    /// afterwards, sorted.
    fn claim_checks(&self, claim: CheckClaim) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Gives up every check lease `agent` holds at `location` (a clean stop: others take them at once).
    fn release_checks(&self, agent: String, location: String) -> impl Future<Output = Result<()>> + Send;

    /// Who probes what now: (target, location, holder) of every unexpired check lease, ordered by target, location.
    fn check_holders(&self) -> impl Future<Output = Result<Vec<(String, String, String)>>> + Send;

    /// The leader asks `agent` to diagnose `target` on its machine (where the target's processes and error log
    /// are): a request stamped with the store's clock, whose id the leader then polls with
    /// [`Store::diagnosis_answer`]. In the same transaction, requests older than an hour are deleted (answered or
    /// given up long ago), so the table stays a handful of rows.
    fn request_diagnosis(
        &self,
        agent: String,
        target: String,
        since: Option<Timestamp>,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// `agent`'s requests not yet taken, oldest first, marked taken in the same statement, so that two polls (two
    /// processes by one name, or a retry) never both get one (PostgreSQL: `FOR UPDATE SKIP LOCKED`). A request
    /// older than 60 s that nobody took is not returned: the leader has given up waiting for it.
    fn take_diagnosis_requests(&self, agent: String) -> impl Future<Output = Result<Vec<DiagnosisRequest>>> + Send;

    /// The agent's answer to request `id`: JSON, opaque to the store (`null`: nothing found). A request already
    /// deleted (older than an hour) is answered into the void without an error: nobody waits for it any more.
    fn answer_diagnosis(&self, id: i64, answer: String) -> impl Future<Output = Result<()>> + Send;

    /// The answer to request `id` once given; `None` before, or for a request the store does not have.
    fn diagnosis_answer(&self, id: i64) -> impl Future<Output = Result<Option<String>>> + Send;
}
