//! The holding store: lookout keeps alerting when its store cannot be written.
//!
//! The pipeline's writes and the outbox's marks go through [`HoldingStore`]. While the store takes them it passes
//! them through. When a write fails for any reason but a conflict — a full disk, a read-only or corrupted file, a
//! lock another process holds — or has not finished after [`SLOW_WRITE`], the store is *held*:
//!
//! - that write and every later one go into an in-memory journal, in order, so no event waits for the disk;
//! - the journal's notifications get negative ids and the outbox sends them from memory, with their idempotency
//!   keys, as usual (reads of the store are still tried, with a time limit, so a firing message stored before the
//!   fault and its resolve held in memory still go out together);
//! - lookout fires an alert about itself on every channel ("cannot write its store since …: no space left on
//!   device"), reports it in [`Health`] (dashboard, `/api/v1/health`) and in `lookout_store_writable 0`;
//! - a writer task retries the journal's head every second; once the store takes it, it writes the rest in order,
//!   each message with what became of it in memory (a message delivered from memory is recorded as delivered and
//!   never sent again), then resolves the self-alert.
//!
//! Memory stays bounded: past [`MAX_HELD`] records, probe results whose target has a later record in the journal
//! are dropped (and counted); transitions, incident changes, messages and log cursors are always kept.
//!
//! A conflict met while writing the journal (someone changed an incident meanwhile) goes back to the pipeline,
//! which re-reads the incidents and applies the transitions again, as for any conflict.

mod outbox;
mod self_alert;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lookout_core::{AlertState, Timestamp};
use lookout_notify::OutboxWaker;
use lookout_store::{OutboxMessage, Record, SentFromMemory, Silence, Store, StoreError};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::health::{Health, StoreHealth};
use crate::metrics::Metrics;

/// A write that has not finished by then is treated as failing: the pipeline goes on and the write is finished
/// (or redone) in the background. SQLite waits up to 5 s for a lock; an event must not.
pub const SLOW_WRITE: Duration = Duration::from_secs(1);

/// How long a stop waits for a held journal to be written.
const LAST_DRAIN: Duration = Duration::from_secs(5);

/// How often the writer retries a held journal.
const RETRY: Duration = Duration::from_secs(1);

/// Records held before probe results are dropped to bound memory.
pub const MAX_HELD: usize = 100_000;

/// Held records written per transaction when the store takes writes again.
const DRAIN_BATCH: usize = 1000;

/// How long a message handed to a sender counts as being sent (a write of its record waits meanwhile).
const SENDING_LEASE: Duration = Duration::from_secs(60);

/// Reads of the store while it is held are given this long; past it, memory alone answers.
const READ_LIMIT: Duration = Duration::from_millis(500);

/// Why a write is held.
pub(super) enum Problem {
    /// The store answered with an error (full disk, read-only, corrupted, locked past its busy timeout).
    Refused(String),
    /// It has not answered within [`SLOW_WRITE`]; it may yet.
    Slow(String),
}

/// How long a store that is only slow (its writes land, late) is held before lookout alerts about it: a busy
/// machine that takes two seconds for a commit is not worth waking anyone, one that takes ten is.
const SLOW_ALERT_AFTER: Duration = Duration::from_secs(10);

/// One held write.
#[allow(clippy::large_enum_variant)] // few, and moved rarely: boxing each record would cost more
enum Entry {
    Record(Record),
    /// A write (of one transaction's records) that took longer than [`SLOW_WRITE`]: it may still land.
    InFlight(JoinHandle<lookout_store::Result<()>>, Vec<Record>),
    Mark(Mark),
}

/// What the writer does next with the journal's head.
enum Step {
    Write(Vec<Record>),
    Wait(JoinHandle<lookout_store::Result<()>>, Vec<Record>),
    Mark(Mark),
}

/// An outbox mark of a stored message (positive id) that the store refused.
#[derive(Clone, Debug)]
enum Mark {
    Attempted(Vec<i64>),
    Delivered(Vec<i64>, Timestamp, Option<String>),
    Abandoned(Vec<i64>, Timestamp, String),
    Suppressed(Vec<i64>, Timestamp, String),
    Failed(Vec<i64>, Timestamp, String),
}

/// A notification known only to memory so far.
#[derive(Clone, Debug)]
struct MemMessage {
    msg: OutboxMessage,
    /// Handed to a sender until then: its record is not written meanwhile, so a delivery is never recorded as
    /// pending (and sent again).
    sending_until: Option<tokio::time::Instant>,
    /// Its record is being written: no sender is handed it meanwhile. Once the write commits, the store has it
    /// pending too, and until this copy is forgotten a sender could be handed both and send it twice (seen in CI:
    /// the self-alert's resolve delivered twice, 7 ms apart).
    writing: bool,
}

#[derive(Default)]
struct Held {
    /// False from the first refused write until the journal is written.
    holding: bool,
    since: Option<Timestamp>,
    error: Option<String>,
    journal: VecDeque<Entry>,
    messages: Vec<MemMessage>,
    next_id: i64,
    /// Marks on stored messages the store has not taken yet, by id: what the outbox must not send again.
    marked: HashMap<i64, Mark>,
    /// Stored messages seen while holding, by id (for their keys).
    seen: HashMap<i64, OutboxMessage>,
    /// Alert states of held records, newest last.
    states: HashMap<String, AlertState>,
    dropped_results: u64,
    /// lookout's alert about its store, from when it fires until holding ends.
    self_alert: Option<SelfAlert>,
    /// Last good answers, for when the store cannot be read either.
    silences: Vec<Silence>,
    alert_states: Vec<(String, AlertState)>,
}

/// The self-alert of one spell of holding.
#[derive(Debug)]
struct SelfAlert {
    id: String,
    since: Timestamp,
    /// The journal is written and the resolve is on its way: holding lasts until the resolve itself is written,
    /// and meanwhile the alert must not fire again (CI saw the same firing message made anew by the slow-store
    /// escalation, sent after its resolve on one channel and suppressed with it as a flap on the other).
    resolving: bool,
}

/// See the module documentation.
pub struct HoldingStore<S: Store> {
    inner: Arc<S>,
    held: Mutex<Held>,
    wake_writer: Notify,
    waker: Mutex<Option<OutboxWaker>>,
    channels: Mutex<Vec<String>>,
    health: Health,
    metrics: Arc<Metrics>,
    /// Records refused for a conflict while the journal was written: the pipeline redoes them.
    redo: mpsc::UnboundedSender<Record>,
}

impl<S: Store> HoldingStore<S> {
    /// The store and the receiver of records the pipeline must redo (conflicts met while writing the journal).
    pub fn new(inner: Arc<S>, health: Health, metrics: Arc<Metrics>) -> (Arc<Self>, mpsc::UnboundedReceiver<Record>) {
        let (redo, redo_rx) = mpsc::unbounded_channel();
        let store = HoldingStore {
            inner,
            held: Mutex::new(Held { next_id: -1, ..Held::default() }),
            wake_writer: Notify::new(),
            waker: Mutex::new(None),
            channels: Mutex::new(Vec::new()),
            health,
            metrics,
            redo,
        };
        (Arc::new(store), redo_rx)
    }

    /// The store underneath, for reads that need no overlay.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The outbox to wake when messages appear, and the channels the self-alert goes to.
    pub fn connect(&self, waker: OutboxWaker, channels: Vec<String>) {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
        *self.channels.lock().unwrap_or_else(PoisonError::into_inner) = channels;
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_outbox(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            w.wake();
        }
    }

    pub fn is_holding(&self) -> bool {
        self.held().holding
    }

    /// Writes `record`, or holds it (see [`HoldingStore::record_all`]).
    pub async fn record(&self, record: Record) -> lookout_store::Result<()> {
        self.record_all(vec![record]).await
    }

    /// Writes `records` in one transaction, or holds them, in order. Only a conflict is returned as an error (the
    /// caller redoes the change; nothing of the batch was written); every other failure holds the records and
    /// returns `Ok`.
    pub async fn record_all(&self, records: Vec<Record>) -> lookout_store::Result<()> {
        let records: Vec<Record> = {
            let mut held = self.held();
            if held.holding {
                for r in records {
                    self.hold(&mut held, Entry::Record(r), None);
                }
                return Ok(());
            }
            let records: Vec<Record> = records.into_iter().map(|r| with_fates(&held, r)).collect();
            for r in &records {
                flag_writing(&mut held, r, true);
            }
            records
        };
        let inner = self.inner.clone();
        let attempt = records.clone();
        let mut write = tokio::spawn(async move { inner.record_all(attempt).await });
        let outcome = tokio::time::timeout(SLOW_WRITE, &mut write).await;
        let mut held = self.held();
        let error = match outcome {
            Ok(Ok(Ok(()))) => {
                for r in &records {
                    forget_messages(&mut held, r);
                }
                return Ok(());
            }
            Ok(Ok(Err(e @ StoreError::Conflict { .. }))) => {
                for r in &records {
                    flag_writing(&mut held, r, false);
                }
                return Err(e);
            }
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) => format!("the write failed: {e}"),
            Err(_) => {
                // Still being written: its copies stay out of the senders' hands until the drain knows its fate.
                let why = format!("a write took longer than {} s (is the store locked?)", SLOW_WRITE.as_secs());
                self.hold(&mut held, Entry::InFlight(write, records), Some(Problem::Slow(why)));
                return Ok(());
            }
        };
        for r in records {
            flag_writing(&mut held, &r, false);
            self.hold(&mut held, Entry::Record(r), Some(Problem::Refused(error.clone())));
        }
        Ok(())
    }

    /// Appends to the journal; the first write that failed or was slow turns holding on, and a refused one fires
    /// the self-alert (a slow one only if holding lasts [`SLOW_ALERT_AFTER`]).
    fn hold(&self, held: &mut Held, entry: Entry, problem: Option<Problem>) {
        let refused = matches!(problem, Some(Problem::Refused(_)));
        if let Some(Problem::Refused(e) | Problem::Slow(e)) = problem {
            if !held.holding {
                tracing::error!(error = %e, "Cannot write the store: alerting goes on from memory until it can.");
            }
            held.error = Some(e);
        }
        // A write still in flight may yet land: its messages are sent from memory only once it failed (else the
        // store would have them pending too, and send them again).
        if let Entry::Record(r) = &entry {
            remember(held, r);
        }
        held.journal.push_back(entry);
        if !held.holding {
            held.holding = true;
            held.since = Some(Timestamp::now());
        }
        if refused {
            self.fire_self_alert(held);
        }
        if held.journal.len() > MAX_HELD {
            bound(held);
        }
        self.report(held);
        self.wake_outbox();
        self.wake_writer.notify_one();
    }

    /// Fires the self-alert, once per spell of holding. If the store refuses a write again while the resolve of
    /// the last one is on its way, that is a new spell: a new alert, since now.
    fn fire_self_alert(&self, held: &mut Held) {
        if !held.holding {
            return;
        }
        match &held.self_alert {
            Some(a) if !a.resolving => return,
            Some(_) => held.since = Some(Timestamp::now()),
            None => {}
        }
        let since = held.since.unwrap_or_else(Timestamp::now);
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let error = held.error.clone().unwrap_or_default();
        let (id, messages) = self_alert::firing(since, &error, &channels);
        held.self_alert = Some(SelfAlert { id, since, resolving: false });
        self.hold_messages(held, Record { messages, ..Record::default() });
        self.wake_outbox();
    }

    /// A store that has only been slow is worth an alert once it stays so for [`SLOW_ALERT_AFTER`].
    fn escalate(&self) {
        let mut held = self.held();
        if held.holding
            && held.self_alert.is_none()
            && held.since.is_some_and(|s| Timestamp::now().since(s) >= SLOW_ALERT_AFTER)
        {
            self.fire_self_alert(&mut held);
            self.report(&held);
        }
    }

    /// Holds a record of messages only (the self-alert's).
    fn hold_messages(&self, held: &mut Held, record: Record) {
        remember(held, &record);
        held.journal.push_back(Entry::Record(record));
    }

    fn report(&self, held: &Held) {
        let health = StoreHealth {
            writable: !held.holding,
            unwritable_since: held.since.filter(|_| held.holding),
            error: held.error.clone().filter(|_| held.holding),
            held_records: held.journal.len(),
            held_messages: held.messages.len(),
            dropped_results: held.dropped_results,
        };
        self.metrics.set_store(health.writable, health.held_records);
        self.health.set_store(health);
    }

    /// Writes the journal whenever it holds something, until `shutdown`; then tries once more, for a while, and
    /// says what could not be written.
    pub async fn write_held(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.wake_writer.notified() => {}
                _ = tokio::time::sleep(RETRY) => {}
                _ = shutdown.changed() => break,
            }
            self.escalate();
            // Give a failing store a moment before the first retry.
            if self.is_holding() {
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.changed() => break,
                }
            }
            self.drain().await;
        }
        if self.is_holding() {
            let _ = tokio::time::timeout(LAST_DRAIN, self.drain()).await;
            let held = self.held();
            if held.holding {
                tracing::error!(
                    records = held.journal.len(),
                    error = held.error.as_deref().unwrap_or(""),
                    "Stopping with records the store never took; they are lost (notifications were sent from memory)."
                );
            }
        }
    }

    /// Writes held entries in order until the journal is empty (then holding ends) or one fails. Consecutive
    /// records go in one transaction (up to [`DRAIN_BATCH`]), so a long journal is written in seconds.
    async fn drain(&self) {
        // Whether the store took a write in this pass: only then are the copies in memory kept from the senders
        // while their records are written (see [`MemMessage::writing`]). Before that, a write may block for the
        // store's busy timeout and fail, and the copies must stay sendable meanwhile: alerts keep flowing.
        let mut proven = false;
        loop {
            let step = {
                let mut held = self.held();
                if !held.holding {
                    return;
                }
                let Some(head) = held.journal.pop_front() else {
                    self.recovered(&mut held);
                    if held.holding {
                        continue; // the self-alert's resolve, written in this same pass
                    }
                    return;
                };
                match head {
                    Entry::Record(r) if record_is_being_sent(&held, &r) => {
                        held.journal.push_front(Entry::Record(r));
                        return;
                    }
                    Entry::Record(r) => {
                        let mut batch = vec![with_fates(&held, r)];
                        flag_writing(&mut held, &batch[0], proven);
                        while batch.len() < DRAIN_BATCH {
                            match held.journal.pop_front() {
                                Some(Entry::Record(r)) if !record_is_being_sent(&held, &r) => {
                                    let r = with_fates(&held, r);
                                    flag_writing(&mut held, &r, proven);
                                    batch.push(r);
                                }
                                Some(other) => {
                                    held.journal.push_front(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                        Step::Write(batch)
                    }
                    Entry::InFlight(handle, batch) => Step::Wait(handle, batch),
                    Entry::Mark(m) => Step::Mark(m),
                }
            };
            let (result, records, mark) = match step {
                Step::Write(batch) => (self.inner.record_all(batch.clone()).await, batch, None),
                Step::Wait(handle, batch) => {
                    let result = match handle.await {
                        Ok(result) => result,
                        Err(e) => Err(StoreError::Query { op: "record", message: format!("worker failed: {e}") }),
                    };
                    // A failed in-flight write is retried as ordinary held records.
                    (result, batch, None)
                }
                Step::Mark(m) => (self.write_mark(m.clone()).await, Vec::new(), Some(m)),
            };
            let failed = match result {
                Ok(()) => {
                    proven = true;
                    let mut held = self.held();
                    for r in &records {
                        forget_messages(&mut held, r);
                    }
                    self.report(&held);
                    continue;
                }
                // Which record met a newer incident change is not known: write them one at a time, so that only
                // that one goes back to the pipeline.
                Err(StoreError::Conflict { .. }) if records.len() > 1 => self.write_one_by_one(records).await,
                Err(StoreError::Conflict { incident }) => {
                    tracing::warn!(%incident, "A held incident change met a newer one; the pipeline redoes it.");
                    let mut held = self.held();
                    for r in &records {
                        flag_writing(&mut held, r, false);
                    }
                    drop(held);
                    for r in records {
                        let _ = self.redo.send(r);
                    }
                    None
                }
                Err(e) => Some((e, records, mark)),
            };
            let mut held = self.held();
            if let Some((e, records, mark)) = failed {
                self.wake_outbox();
                for r in records.into_iter().rev() {
                    flag_writing(&mut held, &r, false);
                    remember(&mut held, &r);
                    held.journal.push_front(Entry::Record(r));
                }
                if let Some(m) = mark {
                    held.journal.push_front(Entry::Mark(m));
                }
                held.error = Some(e.to_string());
                // Refused, not just slow: say so now.
                self.fire_self_alert(&mut held);
                self.report(&held);
                return;
            }
            self.report(&held);
        }
    }

    /// Writes records one transaction each: a conflicting one goes back to the pipeline; at another failure, it
    /// and the rest are returned (to go back to the journal's head).
    #[allow(clippy::type_complexity)]
    async fn write_one_by_one(&self, records: Vec<Record>) -> Option<(StoreError, Vec<Record>, Option<Mark>)> {
        let mut rest = records.into_iter();
        while let Some(r) = rest.next() {
            match self.inner.record(r.clone()).await {
                Ok(()) => forget_messages(&mut self.held(), &r),
                Err(StoreError::Conflict { incident }) => {
                    tracing::warn!(%incident, "A held incident change met a newer one; the pipeline redoes it.");
                    flag_writing(&mut self.held(), &r, false);
                    let _ = self.redo.send(r);
                }
                Err(e) => return Some((e, std::iter::once(r).chain(rest).collect(), None)),
            }
        }
        None
    }

    async fn write_mark(&self, mark: Mark) -> lookout_store::Result<()> {
        let store = &self.inner;
        match mark {
            Mark::Attempted(ids) => store.mark_attempted(ids).await,
            Mark::Delivered(ids, at, note) => store.mark_delivered(ids, at, note).await,
            Mark::Abandoned(ids, at, e) => store.mark_abandoned(ids, at, e).await,
            Mark::Suppressed(ids, at, why) => store.mark_suppressed(ids, at, why).await,
            Mark::Failed(ids, next, e) => store.mark_failed(ids, next, e).await,
        }
    }

    /// The journal is written. The self-alert's resolve goes in first (holding stays on until it is written);
    /// then holding ends and the outbox reads the store again.
    fn recovered(&self, held: &mut Held) {
        if let Some(alert) = held.self_alert.as_mut().filter(|a| !a.resolving) {
            alert.resolving = true;
            let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let record = self_alert::resolved(&alert.id, alert.since, &channels);
            self.hold_messages(held, record);
            self.wake_outbox();
            return;
        }
        held.self_alert = None;
        held.holding = false;
        held.marked.clear();
        held.seen.clear();
        held.states.clear();
        held.error = None;
        let since = held.since.take();
        tracing::warn!(
            since = since.map(Timestamp::to_rfc3339).unwrap_or_default(),
            "The store takes writes again; everything held was written."
        );
        self.report(held);
        self.wake_outbox();
    }
}

/// Whether a sender holds one of the record's messages now.
fn record_is_being_sent(held: &Held, record: &Record) -> bool {
    let now = tokio::time::Instant::now();
    record.messages.iter().any(|m| {
        held.messages
            .iter()
            .any(|x| x.msg.channel == m.channel && x.msg.key == m.key && x.sending_until.is_some_and(|t| t > now))
    })
}

/// The record's messages with what became of them in memory, so that writing it never sends one again.
fn with_fates(held: &Held, mut record: Record) -> Record {
    if held.messages.is_empty() {
        return record;
    }
    for m in &mut record.messages {
        if let Some(x) = held.messages.iter().find(|x| x.msg.channel == m.channel && x.msg.key == m.key) {
            let o = &x.msg;
            m.payload = o.payload.clone();
            m.sent = Some(SentFromMemory {
                created_at: o.created_at,
                attempts: o.attempts,
                next_attempt_at: o.next_attempt_at,
                delivered_at: o.delivered_at,
                last_error: o.last_error.clone(),
                abandoned_at: o.abandoned_at,
                suppressed_at: o.suppressed_at,
            });
        }
    }
    record
}

/// The store has the record: its messages are the store's to send from now on.
/// Marks (or unmarks) the in-memory copies of a record's messages as being written: see [`MemMessage::writing`].
fn flag_writing(held: &mut Held, record: &Record, writing: bool) {
    for x in held.messages.iter_mut() {
        if record.messages.iter().any(|m| m.channel == x.msg.channel && m.key == x.msg.key) {
            x.writing = writing;
        }
    }
}

fn forget_messages(held: &mut Held, record: &Record) {
    if held.messages.is_empty() {
        return;
    }
    held.messages.retain(|x| !record.messages.iter().any(|m| m.channel == x.msg.channel && m.key == x.msg.key));
}

/// Makes a held record's messages sendable from memory and remembers its alert state.
fn remember(held: &mut Held, record: &Record) {
    if let Some((target, state)) = &record.state {
        held.states.insert(target.clone(), state.clone());
    }
    let now = Timestamp::now();
    for m in &record.messages {
        if held.messages.iter().any(|x| x.msg.channel == m.channel && x.msg.key == m.key) {
            continue;
        }
        let id = held.next_id;
        held.next_id -= 1;
        held.messages.push(MemMessage {
            msg: OutboxMessage {
                id,
                channel: m.channel.clone(),
                key: m.key.clone(),
                payload: m.payload.clone(),
                created_at: now,
                attempts: 0,
                next_attempt_at: now.plus(m.wait),
                delivered_at: None,
                last_error: None,
                abandoned_at: None,
                suppressed_at: None,
                group_key: m.group_key.clone(),
            },
            sending_until: None,
            writing: false,
        });
    }
}

/// Drops probe results of records superseded by a later record of the same target, oldest first, until the
/// journal is back to half of [`MAX_HELD`] or nothing more can go.
fn bound(held: &mut Held) {
    let mut later: std::collections::HashSet<String> = std::collections::HashSet::new();
    let target = MAX_HELD / 2;
    let mut excess = held.journal.len().saturating_sub(target);
    let mut keep = vec![true; held.journal.len()];
    for (i, entry) in held.journal.iter().enumerate().rev() {
        let Entry::Record(r) = entry else { continue };
        let Some((t, _)) = &r.state else { continue };
        let only_a_result = r.transitions.is_empty()
            && r.messages.is_empty()
            && r.incidents.is_empty()
            && r.log.is_none()
            && r.forget.is_empty()
            && r.consumed.is_empty();
        if only_a_result && later.contains(t) && excess > 0 {
            keep[i] = false;
            excess -= 1;
        }
        later.insert(t.clone());
    }
    let before = held.journal.len();
    let mut i = 0;
    held.journal.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
    let dropped = (before - held.journal.len()) as u64;
    if dropped > 0 {
        held.dropped_results += dropped;
        tracing::warn!(
            dropped,
            total = held.dropped_results,
            "Store still not writable: dropped held probe results to bound memory."
        );
    }
}

#[cfg(test)]
mod tests;
