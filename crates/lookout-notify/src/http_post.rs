//! One POST for every HTTP channel, and one rule for what its answer means: 2xx delivered; 408, 425, 429 and
//! 5xx (and any transport error) worth retrying; any other status a refusal that retrying cannot fix.

use std::time::Duration;

use http::{Method, Uri};
use lookout_http::HttpRequest;

use crate::SendError;

/// POSTs `body` as JSON; returns the response body on 2xx.
pub(crate) async fn post_json(
    url: &Uri,
    headers: &[(String, String)],
    body: String,
    timeout: Duration,
) -> Result<String, SendError> {
    let mut all = headers.to_vec();
    all.push(("content-type".into(), "application/json".into()));
    let req = HttpRequest {
        url: url.clone(),
        method: Method::POST,
        headers: all,
        body: Some(body.into()),
        follow_redirects: false,
        verify_tls: true,
        timeout,
        max_body: 16 * 1024,
    };
    let obs = lookout_http::fetch(&req).await;
    if let Some(e) = &obs.error {
        return Err(SendError::Retry(e.to_string()));
    }
    let status = obs.status.unwrap_or(0);
    let text = obs.body.clone();
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let why = format!("receiver answered HTTP {status}: {}", obs.body_excerpt(200).replace(['\n', '\r'], " "));
    if status == 408 || status == 425 || status == 429 || status >= 500 {
        Err(SendError::Retry(why))
    } else {
        Err(SendError::Permanent(why))
    }
}
