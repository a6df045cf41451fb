//! One incident as people read it (`lookout incidents show`, the postmortem, the incident page): the incident,
//! its whole timeline — stored entries and the notifications from the outbox — and its measured impact.

use lookout_config::Config;
use lookout_core::{EntryKind, Incident, TimelineEntry, Timestamp};
use std::collections::HashMap;

use lookout_store::{OutboxMessage, Store, StoreError};
use serde::Serialize;

use crate::impact::{self, Impact};

#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    pub incident: Incident,
    pub timeline: Vec<TimelineEntry>,
    pub impact: Impact,
    /// What the server's readings said in the incident's window (from 10 minutes before the first failure): one
    /// sentence per saturation or resource curve that reached its warning level.
    pub server: Vec<String>,
    /// Those curves' points, for charts.
    #[serde(skip)]
    pub curves: Vec<crate::server_curves::Curve>,
}

/// Reads an incident with its timeline and measures its impact; `None` if there is no such incident.
pub async fn load<S: Store>(
    store: &S,
    config: &Config,
    id: &str,
    now: Timestamp,
) -> Result<Option<IncidentView>, StoreError> {
    let Some(incident) = store.incident(id.to_string()).await? else {
        return Ok(None);
    };
    let timeline = timeline(store, &incident).await?;
    let impact = impact::measure(store, config, &incident, now).await;
    let from = Timestamp(incident.first_failure_at.0 - 600_000);
    let to = incident.resolved_at.unwrap_or(now).max(from);
    let mut targets = reading_targets(config);
    // Another agent's machine's targets, on a shared store (that machine's incident reads its curves).
    if store.is_shared() {
        targets.extend(crate::host::others(config, &store.agents().await?));
    }
    let curves = crate::server_curves::notable(store, &targets, from, to).await?;
    let server = curves.iter().map(|c| c.sentence.clone()).collect();
    Ok(Some(IncidentView { incident, timeline, impact, server, curves }))
}

/// The targets whose readings are looked at: the configuration's, with the host's when `lookout run` added them
/// (the web's configuration) or would add them (a command reading the store it wrote).
fn reading_targets(config: &Config) -> Vec<lookout_config::Target> {
    use lookout_config::{Check, HostCheck};
    let mut targets = config.targets.clone();
    let has_host = targets.iter().any(|t| matches!(&t.check, Check::Host(h) if !matches!(h, HostCheck::Process(_))));
    if !has_host {
        targets.extend(config.host.targets(&lookout_probe::host::mounts()));
    }
    targets
}

/// The stored timeline plus one entry per notification of its alerts (delivered, or still trying), by time.
pub async fn timeline<S: Store>(store: &S, incident: &Incident) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut entries = store.timeline(incident.id.clone()).await?;
    // Every alert's messages in one read (an incident of a storm has thousands of alerts).
    let mut by_alert: HashMap<String, Vec<OutboxMessage>> = HashMap::new();
    for m in store.incident_messages(incident.id.clone()).await? {
        if let Some(alert) = lookout_core::key::alert_of(&m.key) {
            by_alert.entry(alert.to_string()).or_default().push(m);
        }
    }
    for alert in &incident.alerts {
        for m in by_alert.remove(&alert.alert_id).unwrap_or_default() {
            let kind = lookout_core::key::describe(&m.key);
            let (at, text) = match (m.delivered_at, m.abandoned_at.or(m.suppressed_at)) {
                (None, Some(at)) if m.suppressed_at.is_some() => (
                    at,
                    format!(
                        "{} {kind} notification to {} held back: {}",
                        alert.target,
                        m.channel,
                        m.last_error.as_deref().unwrap_or("suppressed")
                    ),
                ),
                (None, Some(at)) => (
                    at,
                    format!(
                        "{} {kind} notification to {} abandoned after {} attempt{}: {}",
                        alert.target,
                        m.channel,
                        m.attempts,
                        if m.attempts == 1 { "" } else { "s" },
                        m.last_error.as_deref().unwrap_or("refused")
                    ),
                ),
                (Some(at), _) => (
                    at,
                    format!(
                        "{} {kind} notification delivered to {} ({} attempt{})",
                        alert.target,
                        m.channel,
                        m.attempts,
                        if m.attempts == 1 { "" } else { "s" }
                    ),
                ),
                (None, None) => (
                    m.created_at,
                    format!(
                        "{} {kind} notification to {} not delivered yet ({} attempts{})",
                        alert.target,
                        m.channel,
                        m.attempts,
                        m.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                    ),
                ),
            };
            entries.push(TimelineEntry { at, kind: EntryKind::Notified, text, by: None });
        }
    }
    // Stable: entries of one instant keep the order they were written in.
    entries.sort_by_key(|e| e.at);
    Ok(entries)
}
