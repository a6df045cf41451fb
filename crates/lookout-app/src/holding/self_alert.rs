//! lookout's alert about itself: "cannot write its store since …", on every channel, resolved once everything held
//! was written. It is an ordinary notification (same payload, keys and outbox), for the target `lookout` in the
//! group `lookout`, so receivers, routes' silences and dedupe treat it like any other; it opens no incident,
//! since incidents live in the store that is failing.

use lookout_core::{Timestamp, TransitionKind, key};
use lookout_notify::Notification;
use lookout_store::{NewMessage, Record};

/// The target name the self-alert is about.
pub const TARGET: &str = "lookout";

/// The firing self-alert's id and its messages, one per channel.
pub(super) fn firing(since: Timestamp, error: &str, channels: &[String]) -> (String, Vec<NewMessage>) {
    let alert_id = format!("{TARGET}-store@{}", since.as_millis());
    let reason = format!("cannot write its store since {}: {error}", since.to_rfc3339_seconds());
    let mut n =
        notification(&alert_id, TransitionKind::Firing, since, since, format!("lookout {reason}"), vec![reason]);
    // The failed check is the store's write.
    n.last_result = Some(lookout_notify::LastResult {
        ok: false,
        status: None,
        latency_ms: 0.0,
        error: Some(error.to_string()),
        failed_conditions: Vec::new(),
    });
    let messages = messages(&n, channels);
    (alert_id, messages)
}

/// The resolve of the self-alert `alert_id`, fired at `since`.
pub(super) fn resolved(alert_id: &str, since: Timestamp, channels: &[String]) -> Record {
    let now = Timestamp::now();
    let secs = now.since(since).as_secs();
    let summary = format!("lookout writes its store again (it could not for {secs} s; nothing held was lost)");
    let mut n = notification(alert_id, TransitionKind::Resolved, now, since, summary, Vec::new());
    n.duration_seconds = Some(secs);
    Record { messages: messages(&n, channels), ..Record::default() }
}

fn notification(
    alert_id: &str,
    kind: TransitionKind,
    at: Timestamp,
    since: Timestamp,
    summary: String,
    reasons: Vec<String>,
) -> Notification {
    Notification {
        version: 1,
        idempotency_key: key::transition(alert_id, kind),
        alert_id: alert_id.to_string(),
        target: TARGET.into(),
        state: kind.as_str().to_string(),
        at: at.to_rfc3339(),
        since: Some(since.to_rfc3339()),
        duration_seconds: None,
        summary,
        reasons,
        diagnosis: None,
        incident: None,
        incident_resolved: false,
        group: TARGET.into(),
        severity: "critical".into(),
        labels: Default::default(),
        reminder: None,
        affected: Vec::new(),
        last_result: None,
    }
}

fn messages(n: &Notification, channels: &[String]) -> Vec<NewMessage> {
    let Ok(payload) = serde_json::to_string(n) else { return Vec::new() };
    channels
        .iter()
        .map(|c| NewMessage {
            channel: c.clone(),
            key: n.idempotency_key.clone(),
            payload: payload.clone(),
            group_key: n.group.clone(),
            wait: std::time::Duration::ZERO,
            sent: None,
        })
        .collect()
}
