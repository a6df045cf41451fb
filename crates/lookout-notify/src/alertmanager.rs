//! Alertmanager: `POST {url}/api/v2/alerts` with every alert of the delivery. Labels identify an alert
//! (`alertname` is the target, plus `group`, `severity` and the target's labels); annotations carry the summary,
//! reasons, probable cause and incident. A firing alert's `endsAt` lies `firing_ttl` ahead (Alertmanager resolves
//! an alert nobody refreshes); a resolved one's is the resolution time.

use std::time::Duration;

use http::Uri;
use lookout_core::Timestamp;
use serde_json::{Map, Value, json};

use crate::http_post::post_json;
use crate::{Delivery, Notification, Notifier, SendError, SendFuture};

pub struct Alertmanager {
    name: String,
    endpoint: Uri,
    headers: Vec<(String, String)>,
    firing_ttl: Duration,
    timeout: Duration,
}

impl Alertmanager {
    pub fn new(
        name: String,
        url: Uri,
        headers: Vec<(String, String)>,
        firing_ttl: Duration,
        timeout: Duration,
    ) -> Self {
        let base = url.to_string();
        let endpoint = format!("{}/api/v2/alerts", base.trim_end_matches('/')).parse().unwrap_or(url);
        Alertmanager { name, endpoint, headers, firing_ttl, timeout }
    }
}

/// The labels that identify an alert at Alertmanager.
pub fn labels(n: &Notification) -> Map<String, Value> {
    let mut labels: Map<String, Value> = n.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    labels.insert("alertname".into(), Value::String(n.target.clone()));
    labels.insert("group".into(), Value::String(n.group.clone()));
    labels.insert("severity".into(), Value::String(n.severity.clone()));
    labels.insert("source".into(), Value::String("lookout".into()));
    labels
}

/// The `postableAlerts` body of a delivery, at `now`.
pub fn body(d: &Delivery, firing_ttl: Duration, now: Timestamp) -> Value {
    let alerts: Vec<Value> = d
        .notifications
        .iter()
        .map(|n| {
            let mut annotations = Map::new();
            annotations.insert("summary".into(), Value::String(n.summary.clone()));
            if !n.reasons.is_empty() {
                annotations.insert("description".into(), Value::String(n.reasons.join("; ")));
            }
            if let Some(d) = &n.diagnosis {
                annotations.insert("diagnosis".into(), Value::String(d.clone()));
            }
            if let Some(i) = &n.incident {
                annotations.insert("incident".into(), Value::String(i.clone()));
            }
            if !n.affected.is_empty() {
                annotations.insert("affected".into(), Value::String(n.affected.join(", ")));
            }
            let ends = if n.state == "resolved" { n.at.clone() } else { now.plus(firing_ttl).to_rfc3339() };
            json!({
                "labels": labels(n),
                "annotations": annotations,
                "startsAt": n.since.clone().unwrap_or_else(|| n.at.clone()),
                "endsAt": ends,
            })
        })
        .collect();
    Value::Array(alerts)
}

impl Notifier for Alertmanager {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            if d.notifications.is_empty() {
                return Err(SendError::Permanent("nothing to send".into()));
            }
            let body = body(d, self.firing_ttl, Timestamp::now());
            post_json(&self.endpoint, &self.headers, body.to_string(), self.timeout).await?;
            Ok(None)
        })
    }
}
