//! `lookout run`'s machinery: probe loops feed events into the engine; the engine's transitions are recorded
//! with their notifications in one store transaction; the outbox delivers them.
//!
//! ```text
//! probe tasks ──Event──► engine task ──Record──► store ──► outbox senders ──► channels
//!                              └──Activity──► broadcast (demo narration, later the dashboard)
//! ```
//!
//! Each transition's incident changes (open, join, resolve) go into the same record; a change refused because
//! someone changed the incident meanwhile is recomputed from the store's copy (see `record_with_incidents`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::collections::HashMap;

use lookout_config::{Config, DiagnoseSpec, Target};
use lookout_core::{
    Diagnosis, EntryKind, Event, IncidentChange, LogBatch, Observation, SystemClock, TimelineEntry, Timestamp,
    Transition,
};
use lookout_engine::{Engine, Outcome};
use lookout_notify::{Backoff, LastResult, Meta, Notification, Outbox, OutboxWaker};
use lookout_store::{AnyStore, LogRecord, NewMessage, Record, ResultRow, Store};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

/// Characters of the response body kept with each stored result.
const BODY_EXCERPT: usize = 512;

/// What the runtime did, for anyone who wants to watch (the demo narrates it).
#[derive(Clone, Debug)]
pub enum Activity {
    Checked {
        target: String,
        ok: bool,
        status: Option<u16>,
        latency_ms: f64,
        reason: Option<String>,
    },
    Transition(Transition),
    /// An incident was opened, joined or resolved: its id, status and the timeline entries the change added.
    Incident {
        id: String,
        /// Whether this change opened it.
        opened: bool,
        status: lookout_core::IncidentStatus,
        entries: Vec<TimelineEntry>,
    },
}

/// Runs probes, engine, store and outbox until `shutdown` turns true.
pub async fn run(
    config: Config,
    shutdown: watch::Receiver<bool>,
    activity: Option<broadcast::Sender<Activity>>,
) -> anyhow::Result<()> {
    let store = Arc::new(lookout_store::open(&config.store)?);
    // Live pages follow what the runtime does.
    let activity = activity.or_else(|| config.web.enabled.then(|| broadcast::channel(1024).0));
    tracing::info!(store = %config.store.backend, targets = config.targets.len(), channels = config.notify.len(), "Lookout starting.");

    if config.targets.is_empty() && config.logs.is_empty() {
        tracing::warn!(config = %config.source.display(), "No [[target]] or [[log]] configured: nothing to monitor.");
    }
    if config.notify.is_empty() {
        tracing::warn!(config = %config.source.display(), "No [[notify]] channel configured: alerts are only logged and stored.");
    }
    let mut engine = Engine::new(Arc::new(SystemClock));
    for t in &config.targets {
        engine.add_target(&t.name, t.conditions.clone(), t.policy);
        engine.set_group(&t.name, &t.group);
    }
    for l in &config.logs {
        engine.add_log(&l.name, l.rules.clone(), l.policy);
        engine.set_group(&l.name, &l.group);
    }
    let (live, seqs) = store.live_incidents().await.context("cannot load the live incidents")?;
    for i in &live {
        tracing::info!(incident = %i.id, status = %i.status, "Resuming incident.");
    }
    engine.incidents_mut().restore(live, seqs);
    let saved = store.alert_states().await.context("cannot load alert state")?;
    let mut retired = Vec::new();
    for (target, state) in saved {
        if config.target(&target).is_some() || config.logs.iter().any(|l| l.name == target) {
            if state.phase != lookout_core::Phase::Ok {
                tracing::info!(%target, phase = %state.phase, "Resuming alert state.");
            }
            engine.restore(&target, state);
        } else {
            retired.push((target, state));
        }
    }

    let channels = config
        .notify
        .iter()
        .map(|n| (lookout_notify::from_config(n), Backoff { initial: n.retry_initial, max: n.retry_max }))
        .collect();
    let policy = lookout_notify::Policy {
        maintenance: config.maintenance.clone(),
        depends_on: config
            .targets
            .iter()
            .filter(|t| !t.depends_on.is_empty())
            .map(|t| (t.name.clone(), t.depends_on.clone()))
            .collect(),
    };
    let metrics = Arc::new(crate::metrics::Metrics::new());
    // Alerts resumed from the store are firing from the first scrape on.
    metrics.set_firing(engine.states().filter(|(_, s)| s.phase == lookout_core::Phase::Firing).count());
    let observed = metrics.clone();
    let outbox = Outbox::new(store.clone(), channels, policy)
        .with_observer(Arc::new(move |channel, result, n| observed.notification(channel, result, n)));
    let channel_names = outbox.channel_names();
    let waker = outbox.waker();

    let mut diagnose: HashMap<String, DiagnoseSpec> =
        config.targets.iter().filter_map(|t| Some((t.name.clone(), t.diagnose.clone()?))).collect();
    for l in &config.logs {
        if let Some(error_log) = &l.error {
            diagnose.insert(
                l.name.clone(),
                DiagnoseSpec {
                    error_log: Some(error_log.clone()),
                    error_format: l.error_format,
                    processes: Vec::new(),
                    pid_file: None,
                    duration: Duration::from_secs(2),
                },
            );
        }
    }
    let urls: HashMap<String, http::Uri> = config
        .targets
        .iter()
        .filter_map(|t| match &t.check {
            lookout_config::Check::Http(h) => Some((t.name.clone(), h.url.clone())),
            _ => None,
        })
        .collect();
    let meta = config
        .targets
        .iter()
        .map(|t| (t.name.clone(), (t.group.clone(), t.alert.clone())))
        .chain(config.logs.iter().map(|l| (l.name.clone(), (l.group.clone(), l.alert.clone()))))
        .collect();
    let mut pipeline = Pipeline {
        engine,
        diagnose,
        urls,
        store: store.clone(),
        channel_names,
        waker,
        activity: activity.clone(),
        book_stale: false,
        meta,
        routes: config.routes.clone(),
        depends_on: config.targets.iter().map(|t| (t.name.clone(), t.depends_on.clone())).collect(),
        reminded: HashMap::new(),
        metrics: metrics.clone(),
    };
    pipeline.retire(retired).await?;

    let mut tasks = JoinSet::new();
    if config.web.enabled {
        let state = crate::web::WebState {
            store: store.clone(),
            config: Arc::new(config.clone()),
            metrics,
            events: activity.clone(),
        };
        tasks.spawn(crate::web::serve(state, shutdown.clone()));
    }
    tasks.spawn(outbox.run(shutdown.clone()));
    tasks.spawn(prune_loop(store.clone(), config.store.retention, shutdown.clone()));
    let (tx, rx) = mpsc::channel::<Event>(1024);
    for target in config.targets.iter().cloned() {
        tasks.spawn(probe_loop(target, tx.clone(), shutdown.clone()));
    }
    for source in config.logs.iter().cloned() {
        tasks.spawn(crate::log_source::run(source, store.clone(), tx.clone(), shutdown.clone()));
    }
    drop(tx);

    pipeline.consume(rx, shutdown).await;
    while tasks.join_next().await.is_some() {}
    tracing::info!("Lookout stopped.");
    Ok(())
}

/// Probes one target every `interval` (first run after a random fraction of it, so targets spread out).
async fn probe_loop(target: Target, tx: mpsc::Sender<Event>, mut shutdown: watch::Receiver<bool>) {
    let first = target.interval.mul_f64(fastrand::f64() * 0.1);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let obs = tokio::select! {
            o = lookout_probe::probe(&target) => o,
            _ = shutdown.changed() => return,
        };
        if tx.send(Event::Probe(obs)).await.is_err() {
            return;
        }
    }
}

async fn prune_loop(store: Arc<AnyStore>, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let before = Timestamp(Timestamp::now().as_millis() - retention.as_millis() as i64);
        match store.prune_results(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "Pruned old probe results."),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Cannot prune old probe results."),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Error-log lines this long before the first failure still count as evidence (and the server's clock may differ).
const DIAGNOSIS_LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Bytes of the error log's end read for a diagnosis.
const DIAGNOSIS_TAIL_BYTES: u64 = 4 << 20;

struct Pipeline {
    engine: Engine,
    diagnose: HashMap<String, DiagnoseSpec>,
    /// HTTP targets' URLs, requested while tracing so the failing path runs.
    urls: HashMap<String, http::Uri>,
    store: Arc<AnyStore>,
    channel_names: Vec<String>,
    waker: OutboxWaker,
    activity: Option<broadcast::Sender<Activity>>,
    /// The engine's incident book may hold changes the store refused: reload it before the next use.
    book_stale: bool,
    /// Each target's and log source's group and alert labels, for its messages.
    meta: HashMap<String, (String, lookout_config::AlertMeta)>,
    routes: Vec<lookout_config::Route>,
    /// Each target's parents (`depends_on`).
    depends_on: HashMap<String, Vec<String>>,
    /// The last reminder enqueued per (alert, channel), so a tick writes only new ones.
    reminded: HashMap<(String, String), u32>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Pipeline {
    /// Looks for the root cause of each firing alert whose target says where (its error log), so the verdict
    /// rides on the firing notification and is stored with the transition. Bounded: the log's tail only, 2 s.
    async fn attach_diagnosis(&self, transitions: &mut [Transition]) {
        for t in transitions.iter_mut().filter(|t| t.kind == lookout_core::TransitionKind::Firing) {
            let Some(spec) = self.diagnose.get(&t.target).cloned() else { continue };
            let url = self.urls.get(&t.target).cloned();
            if let Some(d) = trace_diagnosis(&t.target, &spec, url).await {
                tracing::warn!(target = %t.target, diagnosis = %d.verdict, "Diagnosed by tracing.");
                t.diagnosis = Some(d);
                continue;
            }
            let Some(error_log) = spec.error_log.clone() else { continue };
            let since = t.failing_since.map(|s| s.as_millis() - DIAGNOSIS_LOOKBACK_MS);
            let job = tokio::task::spawn_blocking(move || {
                lookout_diagnose::diagnose_tail(&error_log, spec.error_format, since, DIAGNOSIS_TAIL_BYTES)
            });
            match tokio::time::timeout(Duration::from_secs(2), job).await {
                Ok(Ok(Ok(findings))) => {
                    if let Some(f) = findings.first() {
                        tracing::warn!(target = %t.target, diagnosis = %f.summary, "Diagnosed.");
                        t.diagnosis = Some(f.diagnosis());
                    }
                }
                Ok(Ok(Err(e))) => {
                    tracing::warn!(target = %t.target, error = %e, "Cannot read the error log to diagnose.")
                }
                Ok(Err(e)) => tracing::warn!(target = %t.target, error = %e, "The diagnosis failed."),
                Err(_) => tracing::warn!(target = %t.target, "The diagnosis took longer than 2 s; sent without it."),
            }
        }
    }

    /// Forgets targets that left the configuration, closing their alerts if they were firing.
    async fn retire(&mut self, retired: Vec<(String, lookout_core::AlertState)>) -> anyhow::Result<()> {
        for (target, state) in retired {
            let transitions: Vec<Transition> = self.engine.retire(&target, &state).into_iter().collect();
            for t in &transitions {
                tracing::warn!(%target, alert = ?t.alert_id, "Closing the alert of a target no longer in the configuration.");
            }
            let base = Record { forget: vec![target], ..Record::default() };
            self.record_with_incidents(base, &transitions, None).await.context("cannot record a retired target")?;
        }
        self.waker.wake();
        Ok(())
    }

    /// Records `base` with the transitions, their incident changes and their messages in one transaction. When
    /// an incident changed meanwhile (acknowledged or resolved from the CLI, or by another agent), reloads the
    /// live incidents from the store and applies the transitions to them again.
    async fn record_with_incidents(
        &mut self,
        base: Record,
        transitions: &[Transition],
        last: Option<LastResult>,
    ) -> lookout_store::Result<Vec<IncidentChange>> {
        if self.book_stale {
            let (live, seqs) = self.store.live_incidents().await?;
            self.engine.incidents_mut().restore(live, seqs);
            self.book_stale = false;
        }
        for attempt in 0.. {
            let mut changes = self.engine.track(transitions);
            observe_resolutions(&mut changes);
            let mut record = base.clone();
            record.transitions = transitions.to_vec();
            for t in transitions {
                let incident = changes
                    .iter()
                    .find(|c| c.incident.alerts.iter().any(|a| Some(&a.alert_id) == t.alert_id.as_ref()))
                    .map(|c| &c.incident);
                record.messages.extend(self.messages_for(t, last.clone(), incident));
            }
            for c in &changes {
                tracing::info!(incident = %c.incident.id, status = %c.incident.status, entries = c.entries.len(), "Incident updated.");
            }
            record.incidents = changes.clone();
            let Err(e) = self.store.record(record).await else { return Ok(changes) };
            // The book took changes the store did not: it goes back to the store's copy before anything is
            // computed from it again (here, or on the caller's retry).
            match self.store.live_incidents().await {
                Ok((live, seqs)) => self.engine.incidents_mut().restore(live, seqs),
                Err(_) => self.book_stale = true,
            }
            match e {
                lookout_store::StoreError::Conflict { incident } if attempt < 5 => {
                    tracing::info!(%incident, "The incident changed meanwhile; applying the transitions again.");
                }
                other => return Err(other),
            }
        }
        unreachable!("the loop returns")
    }

    /// The notification of a transition, with what the runtime knows beyond it (incident, group, labels).
    fn notification(
        &self,
        t: &Transition,
        last: Option<LastResult>,
        incident: Option<&lookout_core::Incident>,
    ) -> Option<Notification> {
        let (group, alert) = self.meta.get(&t.target).cloned().unwrap_or_default();
        let meta = Meta {
            incident: incident.map(|i| i.id.clone()),
            incident_resolved: incident.is_some_and(|i| i.status == lookout_core::IncidentStatus::Resolved),
            group,
            severity: alert.severity,
            labels: alert.labels,
        };
        Notification::from_transition(t, last, meta)
    }

    /// One outbox message per channel the routes send it to, waiting its route's group_wait.
    fn enqueue(&self, n: &Notification) -> Vec<NewMessage> {
        let payload = match serde_json::to_string(n) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "Cannot serialize a notification.");
                return Vec::new();
            }
        };
        lookout_notify::destinations(n, &self.routes, &self.channel_names)
            .into_iter()
            .map(|d| NewMessage {
                channel: d.channel,
                key: n.idempotency_key.clone(),
                payload: payload.clone(),
                group_key: n.group.clone(),
                wait: d.group_wait,
            })
            .collect()
    }

    fn messages_for(
        &self,
        t: &Transition,
        last: Option<LastResult>,
        incident: Option<&lookout_core::Incident>,
    ) -> Vec<NewMessage> {
        self.notification(t, last, incident).map(|n| self.enqueue(&n)).unwrap_or_default()
    }

    /// Reminders of alerts still firing, every route's `repeat_interval` after they fired. Keys are numbered from
    /// the firing time, so a restart re-enqueues nothing already enqueued.
    async fn remind(&mut self) {
        let now = Timestamp::now();
        let mut messages = Vec::new();
        let mut sent = Vec::new();
        let firing: Vec<(String, lookout_core::AlertState)> = self
            .engine
            .states()
            .filter(|(_, s)| s.phase == lookout_core::Phase::Firing)
            .map(|(t, s)| (t.clone(), s.clone()))
            .collect();
        for (target, state) in &firing {
            let Some(alert_id) = &state.alert_id else { continue };
            let t = Transition {
                target: target.clone(),
                kind: lookout_core::TransitionKind::Firing,
                at: state.since,
                alert_id: Some(alert_id.clone()),
                failing_since: state.failing_since,
                reasons: state.last_reason.clone().into_iter().collect(),
                consecutive: state.consecutive_failures,
                diagnosis: None,
            };
            let incident =
                self.engine.incidents().live().iter().find(|i| i.alerts.iter().any(|a| &a.alert_id == alert_id));
            let Some(base) = self.notification(&t, None, incident) else { continue };
            // A target held back while a parent was down is announced once the parents are up again (reminder 0).
            let parents = self.depends_on.get(target.as_str()).cloned().unwrap_or_default();
            let parents_up = !parents.is_empty()
                && parents.iter().all(|p| self.engine.state(p).is_none_or(|s| s.phase != lookout_core::Phase::Firing));
            for d in lookout_notify::destinations(&base, &self.routes, &self.channel_names) {
                let mut n = (now.since(state.since).as_millis() / d.repeat_interval.as_millis().max(1)) as u32;
                let key = (alert_id.clone(), d.channel.clone());
                if n == 0 && parents_up && !self.reminded.contains_key(&key) {
                    let prefix = format!("lookout/{alert_id}/firing");
                    let told = self.store.was_delivered(d.channel.clone(), prefix.clone()).await.unwrap_or(true);
                    let waiting = self
                        .store
                        .pending_in_group(d.channel.clone(), base.group.clone())
                        .await
                        .map_or(true, |p| p.iter().any(|m| m.key.starts_with(&prefix)));
                    if told {
                        self.reminded.insert(key.clone(), 0);
                    }
                    if told || waiting {
                        continue;
                    }
                    n = 0;
                } else if n == 0 || self.reminded.get(&key).is_some_and(|k| *k >= n) {
                    continue;
                }
                let reminder = base.reminder(n, now);
                if let Ok(payload) = serde_json::to_string(&reminder) {
                    messages.push(NewMessage {
                        channel: d.channel.clone(),
                        key: reminder.idempotency_key.clone(),
                        payload,
                        group_key: reminder.group.clone(),
                        wait: std::time::Duration::ZERO,
                    });
                    sent.push((key, n));
                }
            }
        }
        if messages.is_empty() {
            return;
        }
        let count = messages.len();
        match self.store.record(Record { messages, ..Record::default() }).await {
            Ok(()) => {
                tracing::info!(count, "Reminders of firing alerts enqueued.");
                self.reminded.extend(sent);
                self.waker.wake();
            }
            Err(e) => tracing::warn!(error = %e, "Cannot enqueue reminders; trying again on the next tick."),
        }
    }

    async fn consume(mut self, mut rx: mpsc::Receiver<Event>, mut shutdown: watch::Receiver<bool>) {
        let mut reminders = tokio::time::interval(Duration::from_secs(1));
        reminders.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                e = rx.recv() => match e { Some(e) => e, None => return },
                _ = reminders.tick() => {
                    self.remind().await;
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let Some(mut outcome) = self.engine.observe(&event) else {
                continue;
            };
            match &event {
                Event::Probe(obs) => self.metrics.observe_probe(obs, outcome.verdict.ok),
                Event::Log(batch) => self.metrics.observe_log(batch),
            }
            if !outcome.transitions.is_empty() {
                let firing = self.engine.states().filter(|(_, s)| s.phase == lookout_core::Phase::Firing).count();
                self.metrics.set_firing(firing);
            }
            self.attach_diagnosis(&mut outcome.transitions).await;
            let (record, last) = match &event {
                Event::Probe(obs) => record_for(obs, &outcome),
                Event::Log(batch) => record_for_log(batch, &outcome),
            };
            for t in &outcome.transitions {
                log_transition(t);
            }
            let has_messages = outcome.transitions.iter().any(Transition::notifies);
            // Nothing may be lost: keep retrying until the store takes it (events queue up meanwhile).
            let mut delay = Duration::from_millis(100);
            let changes = loop {
                match self.record_with_incidents(record.clone(), &outcome.transitions, Some(last.clone())).await {
                    Ok(changes) => break changes,
                    Err(e) => tracing::error!(error = %e, target = %event.target(), "Cannot record; retrying."),
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            };
            if has_messages {
                self.waker.wake();
            }
            self.publish(&event, &outcome, &changes);
        }
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

/// A log batch's record: its counts and cursors go with the alert state, transitions and messages, in one
/// transaction. Returns the last result the messages carry.
fn record_for_log(batch: &LogBatch, outcome: &Outcome) -> (Record, LastResult) {
    let last = LastResult {
        ok: outcome.verdict.ok,
        status: None,
        latency_ms: 0.0,
        error: None,
        failed_conditions: outcome.verdict.failed_conditions.clone(),
    };
    let record = Record {
        state: Some((batch.target.clone(), outcome.state.clone())),
        log: Some(LogRecord {
            source: batch.target.clone(),
            cursors: batch.cursors.clone(),
            counts: batch.counts.clone(),
        }),
        ..Record::default()
    };
    (record, last)
}

fn record_for(obs: &Observation, outcome: &Outcome) -> (Record, LastResult) {
    let v = &outcome.verdict;
    let result = ResultRow {
        target: obs.target.clone(),
        at: obs.at,
        ok: v.ok,
        status: obs.status,
        latency_ms: obs.timings.total_ms,
        error: v.error.clone(),
        failed_conditions: v.failed_conditions.clone(),
        timings: obs.timings.clone(),
        body_excerpt: (!obs.body.is_empty()).then(|| obs.body_excerpt(BODY_EXCERPT)),
    };
    let last = LastResult {
        ok: v.ok,
        status: obs.status,
        latency_ms: obs.timings.total_ms,
        error: v.error.clone(),
        failed_conditions: v.failed_conditions.clone(),
    };
    let record =
        Record { result: Some(result), state: Some((obs.target.clone(), outcome.state.clone())), ..Record::default() };
    (record, last)
}

/// When an incident closes, looks again at what its diagnosis named, so the timeline says what changed: the
/// missing file exists now, or it still does not (then the code stopped requiring it).
fn observe_resolutions(changes: &mut [IncidentChange]) {
    for c in changes.iter_mut() {
        let Some(at) = c.incident.resolved_at.filter(|_| c.entries.iter().any(|e| e.kind == EntryKind::Resolved))
        else {
            continue;
        };
        let mut seen = std::collections::HashSet::new();
        for (_, d) in c.incident.diagnoses() {
            let Some(path) = d.path.as_deref().filter(|p| seen.insert(p.to_string())) else { continue };
            let exists = std::path::Path::new(path).exists();
            let text = match (d.cause.as_deref(), exists) {
                (Some("missing"), true) => format!("{path} exists now: the missing file was restored"),
                (Some("missing"), false) => {
                    format!("{path} still does not exist: the code that required it must have changed")
                }
                (_, true) => format!("{path} exists"),
                (_, false) => format!("{path} does not exist"),
            };
            c.entries.push(TimelineEntry { at, kind: EntryKind::Observed, text, by: None });
        }
    }
}

fn log_transition(t: &Transition) {
    match t.kind {
        lookout_core::TransitionKind::Firing | lookout_core::TransitionKind::Resolved => {
            tracing::warn!(target = %t.target, transition = %t.kind, alert = ?t.alert_id, reasons = ?t.reasons, "Alert {}.", t.kind);
        }
        _ => tracing::info!(target = %t.target, transition = %t.kind, reasons = ?t.reasons, "Target {}.", t.kind),
    }
}

/// Traces the target's server (by pid file or process names) for `spec.duration` while requesting its URL, and
/// returns the diagnosis when a failing path explains the failing requests. `None` when there is nothing to trace,
/// tracing is not possible (logged), or no candidate was found — the error log is the fallback.
async fn trace_diagnosis(target: &str, spec: &DiagnoseSpec, url: Option<http::Uri>) -> Option<Diagnosis> {
    let mut pids: Vec<i32> = Vec::new();
    if let Some(file) = &spec.pid_file {
        match std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            Some(pid) => pids.extend(lookout_diagnose::trace::with_children(pid)),
            None => tracing::warn!(%target, pid_file = %file.display(), "Cannot read a pid from the pid file."),
        }
    }
    for name in &spec.processes {
        pids.extend(lookout_diagnose::trace::pids_by_name(name));
    }
    if pids.is_empty() {
        return None;
    }
    let label = crate::diagnose_cmd::process_label(pids[0]).unwrap_or_else(|| "server".into());
    let urls: Vec<http::Uri> = url.into_iter().collect();
    let (joined, _) = match crate::diagnose_cmd::trace_while_requesting(pids, spec.duration, &urls, 5).await {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(%target, error = %e, "The trace failed; diagnosing from the error log instead.");
            return None;
        }
    };
    match joined {
        Ok(events) => lookout_diagnose::correlate::correlate(&events).diagnosis(&label),
        Err(e) => {
            tracing::warn!(%target, error = %e, "Cannot trace; diagnosing from the error log instead.");
            None
        }
    }
}

/// A shutdown signal that turns true on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down."),
            _ = term => tracing::info!("SIGTERM: shutting down."),
        }
        let _ = tx.send(true);
    });
    rx
}
