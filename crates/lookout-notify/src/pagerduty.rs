//! PagerDuty Events API v2: one event per incident. The `dedup_key` is lookout's incident id (the alert id for
//! alerts without one), so every alert of an incident lands in one PagerDuty alert: `trigger` while any fires,
//! `resolve` when lookout resolves the incident. Resolving one alert of an incident that still has others
//! firing sends nothing.

use std::time::Duration;

use http::Uri;
use serde_json::{Value, json};

use crate::http_post::post_json;
use crate::{Delivery, Notification, Notifier, SendFuture};

pub struct PagerDuty {
    name: String,
    url: Uri,
    routing_key: String,
    timeout: Duration,
}

impl PagerDuty {
    pub fn new(name: String, url: Uri, routing_key: String, timeout: Duration) -> Self {
        PagerDuty { name, url, routing_key, timeout }
    }
}

/// PagerDuty's `payload.summary` limit.
const SUMMARY_MAX: usize = 1024;

pub fn dedup_key(n: &Notification) -> String {
    match &n.incident {
        Some(i) => format!("lookout/{i}"),
        None => format!("lookout/{}", n.alert_id),
    }
}

/// The events a delivery makes, in order: per dedup key, a `resolve` if its incident (or alert) is resolved by
/// the last message, else a `trigger` describing the firing alerts.
pub fn events(routing_key: &str, d: &Delivery) -> Vec<Value> {
    let mut keys: Vec<String> = Vec::new();
    for n in &d.notifications {
        let k = dedup_key(n);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = Vec::new();
    for key in keys {
        let of_key: Vec<&Notification> = d.notifications.iter().filter(|n| dedup_key(n) == key).collect();
        let Some(last) = of_key.last() else { continue };
        let closes = if last.incident.is_some() { last.incident_resolved } else { last.state == "resolved" };
        if closes {
            out.push(json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}));
            continue;
        }
        let firing: Vec<&&Notification> = of_key.iter().filter(|n| n.state == "firing").collect();
        let Some(first) = firing.first() else { continue };
        let summary = if firing.len() == 1 {
            first.summary.clone()
        } else {
            let names: Vec<&str> = firing.iter().map(|n| n.target.as_str()).collect();
            format!("{} alerts firing in {}: {}", firing.len(), first.group, names.join(", "))
        };
        let summary: String = summary.chars().take(SUMMARY_MAX).collect();
        let severity = if ["critical", "error", "warning", "info"].contains(&first.severity.as_str()) {
            first.severity.as_str()
        } else {
            "critical"
        };
        let alerts: Vec<Value> = firing
            .iter()
            .map(|n| json!({"target": n.target, "summary": n.summary, "reasons": n.reasons, "diagnosis": n.diagnosis, "since": n.since}))
            .collect();
        out.push(json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "client": "lookout",
            "payload": {
                "summary": summary,
                "source": first.target,
                "severity": severity,
                "timestamp": first.at,
                "component": first.target,
                "group": first.group,
                "class": "availability",
                "custom_details": {
                    "incident": first.incident,
                    "diagnosis": first.diagnosis,
                    "reasons": first.reasons,
                    "labels": first.labels,
                    "affected": first.affected,
                    "alerts": alerts,
                }
            }
        }));
    }
    out
}

impl Notifier for PagerDuty {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            let events = events(&self.routing_key, d);
            if events.is_empty() {
                return Ok(Some("nothing to send: the incident still has firing alerts".into()));
            }
            // Re-sending an event after a partial failure is harmless: PagerDuty dedups on dedup_key.
            for e in events {
                post_json(&self.url, &[], e.to_string(), self.timeout).await?;
            }
            Ok(None)
        })
    }
}
