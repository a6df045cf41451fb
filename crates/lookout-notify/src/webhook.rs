//! Generic webhook: POSTs the notification JSON with an `Idempotency-Key` header; any 2xx is success.

use std::time::Duration;

use http::{Method, Uri};
use lookout_probe::HttpRequest;

use crate::{Notifier, SendError, SendFuture};

pub struct Webhook {
    name: String,
    url: Uri,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Webhook {
    pub fn new(name: String, url: Uri, headers: Vec<(String, String)>, timeout: Duration) -> Self {
        Webhook { name, url, headers, timeout }
    }
}

impl Notifier for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, key: &'a str, payload: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            let mut headers = self.headers.clone();
            headers.push(("content-type".into(), "application/json".into()));
            headers.push(("idempotency-key".into(), key.to_string()));
            let req = HttpRequest {
                url: self.url.clone(),
                method: Method::POST,
                headers,
                body: Some(payload.to_string().into()),
                follow_redirects: false,
                verify_tls: true,
                timeout: self.timeout,
                max_body: 4096,
            };
            let obs = lookout_probe::fetch(&req).await;
            match (obs.status, &obs.error) {
                (_, Some(e)) => Err(SendError(e.to_string())),
                (Some(s), None) if (200..300).contains(&s) => Ok(()),
                (s, None) => Err(SendError(format!(
                    "receiver answered HTTP {}: {}",
                    s.map_or_else(|| "?".to_string(), |s| s.to_string()),
                    obs.body_excerpt(200).replace(['\n', '\r'], " ")
                ))),
            }
        })
    }
}
