//! What an event and its transitions become: the record of the event (result or log counts with the alert state)
//! and one outbox message per channel the routes choose.

use lookout_core::{Incident, IncidentStatus, LogBatch, Observation, Transition, TransitionKind};
use lookout_engine::Outcome;
use lookout_notify::{LastResult, Meta, Notification};
use lookout_store::{LogRecord, NewMessage, Record, ResultRow, Store};

use super::consume::Pipeline;

/// Characters of the response body kept with each stored result.
const BODY_EXCERPT: usize = 512;

impl<S: Store> Pipeline<S> {
    /// The notification of a transition, with what the pipeline knows beyond it (incident, group, labels).
    pub(super) fn notification(
        &self,
        t: &Transition,
        last: Option<LastResult>,
        incident: Option<&Incident>,
    ) -> Option<Notification> {
        let (group, alert) = self.meta.get(&t.target).cloned().unwrap_or_default();
        let meta = Meta {
            incident: incident.map(|i| i.id.clone()),
            incident_resolved: incident.is_some_and(|i| i.status == IncidentStatus::Resolved),
            group,
            severity: alert.severity,
            labels: alert.labels,
        };
        Notification::from_transition(t, last, meta)
    }

    /// One outbox message per channel the routes send it to, waiting its route's group_wait (or else its group's
    /// default).
    fn enqueue(&self, n: &Notification) -> Vec<NewMessage> {
        let Some(payload) = payload(n) else { return Vec::new() };
        lookout_notify::destinations(n, &self.routes, &self.channel_names)
            .into_iter()
            .map(|d| NewMessage {
                channel: d.channel,
                key: n.idempotency_key.clone(),
                payload: payload.clone(),
                group_key: n.group.clone(),
                wait: d.group_wait.unwrap_or_else(|| self.group_waits.get(&n.group).copied().unwrap_or_default()),
                sent: None,
            })
            .collect()
    }

    pub(super) fn messages_for(
        &self,
        t: &Transition,
        last: Option<LastResult>,
        incident: Option<&Incident>,
    ) -> Vec<NewMessage> {
        self.notification(t, last, incident).map(|n| self.enqueue(&n)).unwrap_or_default()
    }
}

/// The outbox payload of a notification (`None`, logged, if it cannot be written).
pub(super) fn payload(n: &Notification) -> Option<String> {
    serde_json::to_string(n).map_err(|e| tracing::error!(error = %e, "Cannot serialize a notification.")).ok()
}

/// A log batch's record: its counts and cursors go with the alert state, transitions and messages, in one
/// transaction. Returns the last result the messages carry.
pub(super) fn record_for_log(batch: &LogBatch, outcome: &Outcome) -> (Record, LastResult) {
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
            window: crate::log_source::window_write(outcome),
        }),
        readings: latency_readings(batch),
        ..Record::default()
    };
    (record, last)
}

/// What is kept of a body: its start; of an Apache status page, its scoreboard line (what the server page
/// draws), whole up to [`SCOREBOARD_MAX`] slots.
fn excerpt(obs: &Observation) -> String {
    let scoreboard = (obs.kind == lookout_core::ProbeKind::Status)
        .then(|| obs.body.lines().find(|l| l.starts_with("Scoreboard: ")))
        .flatten();
    match scoreboard {
        Some(line) => lookout_core::text::truncate(line, SCOREBOARD_MAX + "Scoreboard: ".len()),
        None => obs.body_excerpt(BODY_EXCERPT),
    }
}

/// Worker slots of an Apache scoreboard kept (event MPM's default is 400: 16 processes × 25 threads).
const SCOREBOARD_MAX: usize = 4096;

/// The request-duration percentiles of the minutes a batch closed, as the source's readings (`LATENCY_P50`, …,
/// in ms, at the minute's start): what the server page charts for an access log.
fn latency_readings(batch: &LogBatch) -> Vec<lookout_store::Reading> {
    let mut out = Vec::with_capacity(batch.latency.len() * 3);
    for m in &batch.latency {
        for (name, value) in [("LATENCY_P50", m.p50_ms), ("LATENCY_P95", m.p95_ms), ("LATENCY_P99", m.p99_ms)] {
            out.push(lookout_store::Reading {
                target: batch.target.clone(),
                at: lookout_core::Timestamp(m.minute * 1000),
                name: name.into(),
                value,
            });
        }
    }
    out
}

/// A probe result's record (the body as an excerpt) with the alert state. Returns the last result the messages
/// carry.
pub(super) fn record_for(obs: &Observation, outcome: &Outcome, keep_readings: bool) -> (Record, LastResult) {
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
        body_excerpt: (!obs.body.is_empty()).then(|| excerpt(obs)),
    };
    let last = LastResult {
        ok: v.ok,
        status: obs.status,
        latency_ms: obs.timings.total_ms,
        error: v.error.clone(),
        failed_conditions: v.failed_conditions.clone(),
    };
    // A status page's or the host's readings, for its charts (once per page: see `keep_readings`).
    let readings = obs
        .readings
        .iter()
        .filter(|_| keep_readings)
        .map(|(name, value)| lookout_store::Reading {
            target: obs.target.clone(),
            at: obs.at,
            name: name.clone(),
            value: *value,
        })
        .collect();
    let record = Record {
        result: Some(result),
        state: Some((obs.target.clone(), outcome.state.clone())),
        readings,
        ..Record::default()
    };
    (record, last)
}

pub(super) fn log_transition(t: &Transition) {
    match t.kind {
        // A firing is a warning; a resolve is good news, said as information.
        TransitionKind::Firing => {
            tracing::warn!(target = %t.target, alert = t.alert_id.as_deref().unwrap_or(""), reasons = %t.reasons.join("; "), "Alert firing.");
        }
        TransitionKind::Resolved => {
            tracing::info!(target = %t.target, alert = t.alert_id.as_deref().unwrap_or(""), "Alert resolved.");
        }
        _ => {
            tracing::info!(target = %t.target, transition = %t.kind, reasons = %t.reasons.join("; "), "Target {}.", t.kind)
        }
    }
}
