//! Slack incoming webhooks: a Block Kit message (header, one section per alert with its reasons and probable
//! cause, a context line) and a plain `text` fallback for notifications. Text from targets and logs is escaped
//! (`&`, `<`, `>`), so it can neither mention `@channel` nor forge a link; Slack's limits (header 150
//! characters, section 3,000, 50 blocks) are respected by truncating.

use std::time::Duration;

use http::Uri;
use lookout_core::text::truncate;
use serde_json::{Value, json};

use crate::http_post::post_json;
use crate::{Delivery, Notification, Notifier, SendFuture};

pub struct Slack {
    name: String,
    url: Uri,
    timeout: Duration,
}

impl Slack {
    pub fn new(name: String, url: Uri, timeout: Duration) -> Self {
        Slack { name, url, timeout }
    }
}

/// Sections listing alerts one by one; the rest are counted.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;

/// Escapes text for Slack's mrkdwn: `&`, `<` and `>` are the characters Slack asks to escape.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn alert_section(n: &Notification) -> Value {
    let mark = if n.state == "firing" { "🔴" } else { "✅" };
    let mut text = format!("{mark} *{}*", escape(&n.summary));
    if !n.reasons.is_empty() && n.state == "firing" {
        text.push_str(&format!("\n*Why:* {}", escape(&n.reasons.join("; "))));
    }
    if let Some(d) = &n.diagnosis {
        text.push_str(&format!("\n*Probable cause:* {}", escape(d)));
    }
    if !n.affected.is_empty() {
        text.push_str(&format!("\n*Also failing (depend on it):* {}", escape(&n.affected.join(", "))));
    }
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, SECTION_MAX)}})
}

/// The Block Kit body of a delivery.
pub fn body(d: &Delivery) -> Value {
    let title = match d.notifications.as_slice() {
        [one] if one.state == "firing" => format!("🔴 FIRING: {}", one.summary),
        [one] => format!("✅ RESOLVED: {}", one.summary),
        _ => d.summary(),
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, HEADER_MAX), "emoji": true}}),
    ];
    for n in d.notifications.iter().take(crate::MAX_LISTED) {
        blocks.push(alert_section(n));
    }
    if d.notifications.len() > crate::MAX_LISTED {
        let rest = d.notifications.len() - crate::MAX_LISTED;
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("…and {rest} more alerts in this group.")}}));
    }
    let first = d.notifications.first();
    let mut context = Vec::new();
    if let Some(i) = first.and_then(|n| n.incident.as_deref()) {
        context.push(format!("incident `{}`", escape(i)));
    }
    if let Some(since) = first.and_then(|n| n.since.as_deref()) {
        context.push(format!("failing since {}", escape(since)));
    }
    context.push("lookout".into());
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context.join(" · ")}]}));
    let fallback = match d.notifications.as_slice() {
        [one] => one.summary.clone(),
        _ => d.summary(),
    };
    json!({"text": escape(&fallback), "blocks": blocks})
}

impl Notifier for Slack {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            post_json(&self.url, &[], body(d).to_string(), self.timeout).await?;
            Ok(None)
        })
    }
}
