//! The canonical notification: what happened to which target, since when, and why. Stored in the outbox as
//! JSON and posted as-is by the webhook channel (schema `version` 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use lookout_core::{Transition, TransitionKind, format_duration};

/// The last observation behind a transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub failed_conditions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub version: u32,
    /// Receivers dedupe on this; also sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub alert_id: String,
    pub target: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// When the transition happened (RFC 3339, UTC).
    pub at: String,
    /// First failing observation of this alert (RFC 3339, UTC).
    pub since: Option<String>,
    /// For resolved alerts: how long the target was failing.
    pub duration_seconds: Option<u64>,
    /// One line for humans.
    pub summary: String,
    /// Why the target failed (failed conditions or the probe error).
    pub reasons: Vec<String>,
    /// The probable root cause, when lookout could find one (firing messages only).
    pub diagnosis: Option<String>,
    /// The incident this alert belongs to (`lookout incidents show ID`).
    #[serde(default)]
    pub incident: Option<String>,
    /// Whether that incident is resolved after this transition (its last alert resolved).
    #[serde(default)]
    pub incident_resolved: bool,
    /// The target's incident group.
    #[serde(default)]
    pub group: String,
    /// `critical`, `error`, `warning` or `info`.
    #[serde(default = "critical")]
    pub severity: String,
    /// The target's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// For a reminder of a still-firing alert: its number (1, 2, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<u32>,
    /// Targets that depend on this one and are failing too (their own alerts are held back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<String>,
    pub last_result: Option<LastResult>,
}

fn critical() -> String {
    "critical".into()
}

/// What the pipeline knows about an alert beyond its transition: its incident, group and labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub incident: Option<String>,
    pub incident_resolved: bool,
    pub group: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
}

impl Notification {
    /// The `n`-th reminder of a firing alert, at `now`: same alert, its own idempotency key.
    pub fn reminder(&self, n: u32, now: lookout_core::Timestamp) -> Notification {
        let since = self.since.clone().unwrap_or_else(|| self.at.clone());
        let mut r = self.clone();
        r.reminder = Some(n);
        r.idempotency_key = lookout_core::key::reminder(&self.alert_id, n);
        r.at = now.to_rfc3339();
        r.summary = format!(
            "{} is still DOWN (since {since}): {}",
            self.target,
            self.reasons.first().map_or("failing", String::as_str)
        );
        r
    }

    /// The message for a transition that notifies (`Firing`/`Resolved`); `None` otherwise.
    pub fn from_transition(t: &Transition, last: Option<LastResult>, meta: Meta) -> Option<Notification> {
        if !t.notifies() {
            return None;
        }
        let key = t.idempotency_key()?;
        let alert_id = t.alert_id.clone()?;
        let duration = t.failing_since.map(|s| t.at.since(s));
        let summary = match t.kind {
            TransitionKind::Firing => {
                format!("{} is DOWN: {}", t.target, t.reasons.first().map_or("failing", String::as_str))
            }
            _ if !t.reasons.is_empty() => format!("{} alert closed: {}", t.target, t.reasons.join("; ")),
            _ => match duration {
                Some(d) => format!("{} is back UP after {}", t.target, format_duration(d)),
                None => format!("{} is back UP", t.target),
            },
        };
        Some(Notification {
            version: 1,
            idempotency_key: key,
            alert_id,
            target: t.target.clone(),
            state: t.kind.as_str().to_string(),
            at: t.at.to_rfc3339(),
            since: t.failing_since.map(|s| s.to_rfc3339()),
            duration_seconds: (t.kind == TransitionKind::Resolved).then(|| duration.map(|d| d.as_secs())).flatten(),
            summary,
            reasons: t.reasons.clone(),
            diagnosis: t.diagnosis.as_ref().map(|d| d.verdict.clone()),
            incident: meta.incident,
            incident_resolved: meta.incident_resolved,
            group: if meta.group.is_empty() { t.target.clone() } else { meta.group },
            severity: if meta.severity.is_empty() { critical() } else { meta.severity },
            labels: meta.labels,
            reminder: None,
            affected: Vec::new(),
            last_result: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_core::Timestamp;

    fn transition(kind: TransitionKind) -> Transition {
        Transition {
            target: "site".into(),
            kind,
            at: Timestamp(1_795_617_382_000),
            alert_id: Some("site@1795617322000".into()),
            failing_since: Some(Timestamp(1_795_617_302_000)),
            reasons: if kind == TransitionKind::Firing { vec!["[STATUS] (500) == 200".into()] } else { vec![] },
            consecutive: 3,
            diagnosis: None,
        }
    }

    #[test]
    fn firing_message_has_every_field() {
        let last = LastResult {
            ok: false,
            status: Some(500),
            latency_ms: 3.0,
            error: None,
            failed_conditions: vec!["[STATUS] (500) == 200".into()],
        };
        let meta = Meta {
            incident: Some("2026-11-25-site-1".into()),
            group: "shop".into(),
            labels: [("team".to_string(), "web".to_string())].into(),
            ..Meta::default()
        };
        let n = Notification::from_transition(&transition(TransitionKind::Firing), Some(last), meta).unwrap();
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "version": 1,
                "idempotency_key": "lookout/site@1795617322000/firing",
                "alert_id": "site@1795617322000",
                "target": "site",
                "state": "firing",
                "at": "2026-11-25T14:36:22.000Z",
                "since": "2026-11-25T14:35:02.000Z",
                "duration_seconds": null,
                "summary": "site is DOWN: [STATUS] (500) == 200",
                "reasons": ["[STATUS] (500) == 200"],
                "diagnosis": null,
                "incident": "2026-11-25-site-1",
                "incident_resolved": false,
                "group": "shop",
                "severity": "critical",
                "labels": {"team": "web"},
                "last_result": {"ok": false, "status": 500, "latency_ms": 3.0, "error": null, "failed_conditions": ["[STATUS] (500) == 200"]}
            })
        );
    }

    #[test]
    fn resolved_message_says_how_long() {
        let n = Notification::from_transition(&transition(TransitionKind::Resolved), None, Meta::default()).unwrap();
        assert_eq!(n.summary, "site is back UP after 1m20s");
        assert_eq!(n.duration_seconds, Some(80));
        assert_eq!(n.idempotency_key, "lookout/site@1795617322000/resolved");
        assert!(Notification::from_transition(&transition(TransitionKind::Pending), None, Meta::default()).is_none());
    }
}
