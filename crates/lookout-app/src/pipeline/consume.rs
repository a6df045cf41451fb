//! The pipeline proper: one event at a time through the engine, a diagnosis on firing, then everything the
//! event caused — result or log counts, alert state, transitions, incident changes, notifications — recorded in
//! one transaction, and announced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_config::{AlertMeta, DiagnoseSpec, Route};
use lookout_core::{AlertState, Event, IncidentChange, LogBatch, Transition};
use lookout_engine::{Engine, Outcome, Reminders};
use lookout_notify::{LastResult, OutboxWaker};
use lookout_store::{Record, Store, StoreError};
use tokio::sync::{mpsc, watch};

use super::messages::{log_transition, record_for, record_for_log};
use crate::activity::{Activity, ActivitySender};
use crate::incidents::ConflictRetry;
use crate::metrics::Metrics;

/// Events recorded in one transaction at most: a storm of thousands of alerts is written in a few commits, and
/// no batch holds the loop for long.
const BATCH: usize = 1000;

/// One event's record before its incident changes and messages are added.
pub(super) struct Item {
    pub(super) base: Record,
    pub(super) transitions: Vec<Transition>,
    pub(super) last: Option<LastResult>,
}

pub(super) struct Pipeline<S: Store> {
    pub(super) engine: Engine,
    pub(super) diagnose: HashMap<String, DiagnoseSpec>,
    /// HTTP targets' URLs, requested while tracing so the failing path runs.
    pub(super) urls: HashMap<String, http::Uri>,
    pub(super) store: Arc<S>,
    pub(super) channel_names: Vec<String>,
    pub(super) waker: OutboxWaker,
    pub(super) activity: Option<ActivitySender>,
    /// The engine's incident book may hold changes the store refused: reload it before the next use.
    pub(super) book_stale: bool,
    /// Each target's and log source's group and alert labels, for its messages.
    pub(super) meta: HashMap<String, (String, AlertMeta)>,
    pub(super) routes: Vec<Route>,
    /// Each group's wait for routes that set no `group_wait` ([`lookout_config::Config::default_group_waits`]).
    pub(super) group_waits: HashMap<String, Duration>,
    /// Targets whose per-target series `/metrics` leaves out (`metrics = false`).
    pub(super) without_metrics: std::collections::HashSet<String>,
    /// The targets whose readings are stored: one of each page or host part (a critical level reads what its
    /// warning level does, and storing both would double the readings' rows).
    pub(super) keep_readings: std::collections::HashSet<String>,
    /// Each target's parents (`depends_on`).
    pub(super) depends_on: HashMap<String, Vec<String>>,
    /// The same, as the outbox reads them: targets learnt while running add theirs.
    pub(super) parents: lookout_notify::Parents,
    /// The other agents' machines, learnt from the store (see [`super::machines`]).
    pub(super) machines: super::machines::Machines,
    /// The warning levels judged on each log source's batches (`NAME-warning`, see `LogSource::follows`).
    pub(super) followers: HashMap<String, Vec<String>>,
    /// The reminders enqueued so far, so a tick writes only new ones.
    pub(super) reminders: Reminders,
    pub(super) metrics: Arc<Metrics>,
    /// Several agents share the store, and only the leader decides (see [`super::relay`]).
    pub(super) relay: super::relay::Relay,
    /// Whether this agent leads now (`None`: it always does, as one machine).
    pub(super) leading: Option<watch::Receiver<bool>>,
}

impl<S: Store> Pipeline<S> {
    /// Forgets targets that left the configuration, closing their alerts if they were firing.
    pub(super) async fn retire(&mut self, retired: Vec<(String, AlertState)>) -> Result<(), StoreError> {
        for (target, state) in retired {
            let transitions: Vec<Transition> = self.engine.retire(&target, &state).into_iter().collect();
            for t in &transitions {
                tracing::warn!(%target, alert = t.alert_id.as_deref().unwrap_or("none"), "Closing the alert of a target no longer in the configuration.");
            }
            let base = Record { forget: vec![target], ..Record::default() };
            self.record_with_incidents(base, &transitions, None).await?;
        }
        self.waker.wake();
        Ok(())
    }

    /// Records `base` with the transitions, their incident changes and their messages in one transaction (see
    /// [`Pipeline::record_batch`]).
    pub(super) async fn record_with_incidents(
        &mut self,
        base: Record,
        transitions: &[Transition],
        last: Option<LastResult>,
    ) -> Result<Vec<IncidentChange>, StoreError> {
        let mut changes = self.record_batch(&[Item { base, transitions: transitions.to_vec(), last }]).await?;
        Ok(changes.pop().unwrap_or_default())
    }

    /// Records each item — its base record with its transitions, their incident changes and their messages — all
    /// in one transaction, and returns each item's incident changes. When an incident changed meanwhile
    /// (acknowledged or resolved from the CLI, or by another agent), reloads the live incidents from the store and
    /// applies the transitions again.
    pub(super) async fn record_batch(&mut self, items: &[Item]) -> Result<Vec<Vec<IncidentChange>>, StoreError> {
        if self.book_stale {
            let (live, seqs) = self.store.live_incidents().await?;
            self.engine.incidents_mut().restore(live, seqs);
            self.book_stale = false;
        }
        // Facts for the resolution entries, looked at once however often the write is redone.
        let mut exists: HashMap<String, bool> = HashMap::new();
        let mut retry = ConflictRetry::default();
        loop {
            let mut records = Vec::with_capacity(items.len());
            let mut all_changes = Vec::with_capacity(items.len());
            for item in items {
                let mut changes = self.engine.track(&item.transitions);
                for path in lookout_engine::resolution::files_to_look_at(&changes) {
                    exists.entry(path).or_insert_with_key(|p| std::path::Path::new(p).exists());
                }
                lookout_engine::resolution::observe_resolutions(&mut changes, &exists);
                let mut record = item.base.clone();
                record.transitions = item.transitions.clone();
                for t in &item.transitions {
                    let incident = changes
                        .iter()
                        .find(|c| c.incident.alerts.iter().any(|a| Some(&a.alert_id) == t.alert_id.as_ref()))
                        .map(|c| &c.incident);
                    record.messages.extend(self.messages_for(t, item.last.clone(), incident));
                }
                for c in &changes {
                    tracing::info!(incident = %c.incident.id, status = %c.incident.status, entries = c.entries.len(), "Incident updated.");
                }
                record.incidents = changes.clone();
                records.push(record);
                all_changes.push(changes);
            }
            let Err(e) = self.store.record_all(records).await else { return Ok(all_changes) };
            // The book took changes the store did not: it goes back to the store's copy before anything is
            // computed from it again (here, or on the caller's retry).
            match self.store.live_incidents().await {
                Ok((live, seqs)) => self.engine.incidents_mut().restore(live, seqs),
                Err(_) => self.book_stale = true,
            }
            retry.again(e)?;
        }
    }

    /// Runs events through until every source has stopped after `shutdown` (their channel closes), or `drain`
    /// after it: the results of probes in flight at a stop are recorded, not dropped.
    pub(super) async fn consume(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut redo: mpsc::UnboundedReceiver<Record>,
        mut shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) {
        let mut reminders = tokio::time::interval(Duration::from_secs(1));
        reminders.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut relay = tokio::time::interval(super::relay::POLL);
        relay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = self.relay.shared;
        // Set at shutdown: the time by which what is still coming must have been recorded.
        let mut stop_by: Option<tokio::time::Instant> = None;
        loop {
            let deadline = stop_by.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            let event = tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => {
                        if stop_by.is_some() {
                            tracing::info!("Every result in flight at the stop is recorded.");
                        }
                        return;
                    }
                },
                _ = reminders.tick(), if stop_by.is_none() => {
                    if self.leads().await {
                        self.remind().await;
                    }
                    continue;
                }
                _ = relay.tick(), if shared => {
                    self.serve_diagnoses().await;
                    if self.leads().await {
                        let (events, consumed) = self.take_forwarded().await;
                        let nothing = events.is_empty() && consumed.is_empty();
                        if !nothing && !self.handle(events, consumed, stop_by, &mut shutdown).await {
                            return;
                        }
                    } else {
                        self.flush_forward().await;
                    }
                    continue;
                }
                Some(record) = redo.recv() => {
                    self.redo(record).await;
                    continue;
                }
                _ = shutdown.changed(), if stop_by.is_none() => {
                    stop_by = Some(tokio::time::Instant::now() + drain);
                    tracing::info!(within = %lookout_core::format_duration(drain), "Stopping: recording the results of probes in flight.");
                    continue;
                }
                _ = tokio::time::sleep_until(deadline), if stop_by.is_some() => {
                    tracing::warn!(after = %lookout_core::format_duration(drain), "Stopped before every source finished; their last results are not recorded.");
                    return;
                }
            };
            // Whatever else has arrived goes along: one transaction for all of it.
            let mut events = vec![event];
            while events.len() < BATCH {
                match rx.try_recv() {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            if !self.leads().await {
                self.forward(events).await;
                continue;
            }
            if !self.handle(events, Vec::new(), stop_by, &mut shutdown).await {
                return;
            }
        }
    }

    /// Runs events through the engine, records what they caused in one transaction (retrying while the store
    /// refuses; nothing may be lost) and announces it. `consumed`: the forwarded rows they came from, deleted in
    /// the same transaction. False when a stop cut the retries short.
    pub(super) async fn handle(
        &mut self,
        events: Vec<Event>,
        consumed: Vec<i64>,
        stop_by: Option<tokio::time::Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let events = self.with_followers(events);
        let mut items = Vec::with_capacity(events.len());
        let mut handled = Vec::with_capacity(events.len());
        for event in events {
            if self.unknown_machine(&event) {
                self.learn_machines(false).await;
            }
            let Some(mut outcome) = self.engine.observe(&event) else {
                continue;
            };
            match &event {
                Event::Probe(obs) if self.without_metrics.contains(&obs.target) => {}
                Event::Probe(obs) => self.metrics.observe_probe(obs, outcome.verdict.ok),
                Event::Log(batch) if self.is_follower(&batch.target) => {}
                Event::Log(batch) => self.metrics.observe_log(batch),
            }
            if !outcome.transitions.is_empty() {
                self.metrics.set_firing(self.engine.firing().count());
            }
            // No trace at a stop: it would hold the stop up for seconds.
            if stop_by.is_none() {
                self.attach_diagnosis(&mut outcome.transitions).await;
            }
            let (mut base, last) = match &event {
                Event::Probe(obs) => record_for(obs, &outcome, self.keep_readings.contains(&obs.target)),
                Event::Log(batch) => record_for_log(batch, &outcome),
            };
            if let (true, Event::Probe(obs), Some((location, state))) = (self.relay.shared, &event, &outcome.location) {
                base.locations.push(super::relay::location_state(obs, location, state, &outcome.verdict));
            }
            for t in &outcome.transitions {
                log_transition(t);
            }
            items.push(Item { base, transitions: outcome.transitions.clone(), last: Some(last) });
            handled.push((event, outcome));
        }
        if let Some(first) = items.first_mut() {
            first.base.consumed = consumed;
        } else if !consumed.is_empty() {
            // Only events the engine does not know (an agent with another config): consumed all the same.
            items.push(Item { base: Record { consumed, ..Record::default() }, transitions: Vec::new(), last: None });
        } else {
            return true;
        }
        let has_messages = items.iter().flat_map(|i| &i.transitions).any(Transition::notifies);
        // A store that cannot write holds the records in memory (`holding`), so only incident conflicts that
        // kept recurring come back here; nothing may be lost: retry them (events queue up meanwhile).
        let mut delay = Duration::from_millis(100);
        let changes = loop {
            match self.record_batch(&items).await {
                Ok(changes) => break changes,
                Err(e) => tracing::error!(error = %e, events = items.len(), "Cannot record; retrying."),
            }
            if stop_by.is_some_and(|t| tokio::time::Instant::now() + delay > t) {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed(), if stop_by.is_none() => return false,
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        };
        if has_messages {
            self.waker.wake();
        }
        for ((event, outcome), changes) in handled.iter().zip(&changes) {
            self.publish(event, outcome, changes);
        }
        true
    }

    /// Each log batch followed by a copy for each of its source's warning levels: the same requests and error
    /// lines, judged over their own window; the counts, cursors and latency readings stay the source's (stored
    /// once).
    fn with_followers(&self, events: Vec<Event>) -> Vec<Event> {
        if self.followers.is_empty() {
            return events;
        }
        let mut out = Vec::with_capacity(events.len() * 2);
        for event in events {
            let copies = match &event {
                Event::Log(batch) => self.followers.get(&batch.target).map(|names| {
                    let names = names.clone();
                    let copy =
                        LogBatch { counts: Vec::new(), cursors: Vec::new(), latency: Vec::new(), ..batch.clone() };
                    (names, copy)
                }),
                Event::Probe(_) => None,
            };
            out.push(event);
            if let Some((names, copy)) = copies {
                out.extend(names.into_iter().map(|target| Event::Log(LogBatch { target, ..copy.clone() })));
            }
        }
        out
    }

    fn is_follower(&self, name: &str) -> bool {
        self.followers.values().any(|f| f.iter().any(|n| n == name))
    }

    /// A record held while the store could not be written met a newer incident change when it was written at
    /// last: its transitions are applied again to the incidents as stored.
    async fn redo(&mut self, record: Record) {
        self.book_stale = true;
        let transitions = record.transitions.clone();
        let base = Record { transitions: Vec::new(), messages: Vec::new(), incidents: Vec::new(), ..record };
        if let Err(e) = self.record_with_incidents(base, &transitions, None).await {
            tracing::error!(error = %e, "Cannot redo a held record's incident changes.");
        }
        self.waker.wake();
    }

    fn publish(&self, event: &Event, outcome: &Outcome, changes: &[IncidentChange]) {
        let Some(tx) = &self.activity else { return };
        if let Event::Probe(obs) = event {
            let _ = tx.send(Activity::Checked {
                target: obs.target.clone(),
                ok: outcome.verdict.ok,
                status: obs.status,
                latency_ms: obs.timings.total_ms,
                reason: outcome.verdict.reason(),
            });
        }
        // Incidents first: whoever waits for a transition has seen its incident by then.
        for c in changes {
            let _ = tx.send(Activity::Incident {
                id: c.incident.id.clone(),
                opened: c.expected_revision.is_none(),
                status: c.incident.status,
                entries: c.entries.clone(),
            });
        }
        for t in &outcome.transitions {
            let _ = tx.send(Activity::Transition(t.clone()));
        }
    }
}
