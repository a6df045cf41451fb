//! Generic webhook: POSTs the notification JSON with an `Idempotency-Key` header, or a body rendered from a
//! minijinja template (for Teams, Discord, Mattermost and the like). A template that fails to render falls back
//! to the JSON body, and the failure is recorded with the delivery.

use std::time::Duration;

use http::Uri;
use serde_json::Value;

use crate::http_post::post_json;
use crate::{Delivery, Notifier, SendError, SendFuture};

pub struct Webhook {
    name: String,
    url: Uri,
    headers: Vec<(String, String)>,
    template: Option<String>,
    timeout: Duration,
}

impl Webhook {
    pub fn new(
        name: String,
        url: Uri,
        headers: Vec<(String, String)>,
        template: Option<String>,
        timeout: Duration,
    ) -> Self {
        Webhook { name, url, headers, template, timeout }
    }
}

/// The default body: the first alert's notification (schema version 1), with every alert of the delivery under
/// `alerts` and, for several, a summary of them all.
pub fn default_body(d: &Delivery) -> Result<Value, SendError> {
    let first = d.notifications.first().ok_or_else(|| SendError::Permanent("nothing to send".into()))?;
    let mut body = serde_json::to_value(first).map_err(|e| SendError::Permanent(e.to_string()))?;
    let alerts = serde_json::to_value(&d.notifications).map_err(|e| SendError::Permanent(e.to_string()))?;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("idempotency_key".into(), Value::String(d.key.clone()));
        if d.notifications.len() > 1 {
            obj.insert("summary".into(), Value::String(d.summary()));
        }
        obj.insert("alerts".into(), alerts);
    }
    Ok(body)
}

/// Renders the template with the default body's fields (and `alerts`) as its context.
pub fn render_template(template: &str, d: &Delivery) -> Result<String, String> {
    let context = default_body(d).map_err(|e| e.to_string())?;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("body", template).map_err(|e| e.to_string())?;
    let t = env.get_template("body").map_err(|e| e.to_string())?;
    t.render(context).map_err(|e| e.to_string())
}

impl Notifier for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            let default = || -> Result<String, SendError> { Ok(default_body(d)?.to_string()) };
            let (body, note) = match &self.template {
                None => (default()?, None),
                Some(t) => match render_template(t, d) {
                    Ok(body) => (body, None),
                    Err(e) => (default()?, Some(format!("template failed, sent the default body: {e}"))),
                },
            };
            let mut headers = self.headers.clone();
            headers.push(("idempotency-key".into(), d.key.clone()));
            post_json(&self.url, &headers, body, self.timeout).await?;
            Ok(note)
        })
    }
}
