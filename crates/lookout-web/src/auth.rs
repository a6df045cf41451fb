//! What every request passes before any handler or extractor sees it (`guard`), and what every error looks like
//! (`json_errors`).
//!
//! Order, and why: the `Host` is checked first (a DNS-rebinding page names its own domain, never an IP literal or
//! a configured name); then the token, before a byte of the body or a query parameter is parsed — so a client
//! without a token costs a header's worth of work and memory, whatever it sends; then the declared body length
//! (at most [`BODY_LIMIT`], and the extractors stop at the same limit when none is declared); then a time limit.
//!
//! Tokens are compared as SHA-256 digests, every configured token every time: the time taken depends neither on
//! where a guess differs nor on its length, nor on which token matched.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use lookout_config::{Secret, WebConfig};
use lookout_store::Store;
use serde_json::json;

use crate::server::{BODY_LIMIT, REQUEST_TIMEOUT};
use crate::{ApiError, SafeJson, WebState, err};

/// Event streams open at once (each holds a connection for as long as a page is open).
pub(crate) const MAX_EVENT_STREAMS: usize = 64;

/// What the router's layers share besides the state.
#[derive(Clone, Default)]
pub(crate) struct Limits {
    pub event_streams: Arc<AtomicUsize>,
}

/// Who may do what at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// The status page, its assets, the API description.
    Public,
    /// Dashboard, API GETs, `/metrics`, `/events`: a token when `public_reads = false`.
    Read,
    /// Anything else than GET/HEAD: always a token.
    Change,
}

fn access(method: &Method, path: &str) -> Access {
    if method != Method::GET && method != Method::HEAD {
        return Access::Change;
    }
    if path == "/status" || path.starts_with("/assets/") || path == "/api/v1/openapi.json" {
        Access::Public
    } else {
        Access::Read
    }
}

/// The token of `Authorization: Bearer <token>`; the scheme in any case (RFC 9110: schemes are case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Whether `given` is one of `tokens`: fixed-length digests compared without branching, over every token.
fn token_matches(tokens: &[Secret<String>], given: &str) -> bool {
    let given = sha256(given.as_bytes());
    let mut found = 0u8;
    for t in tokens {
        let want = sha256(t.expose().as_bytes());
        let diff = want.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found |= u8::from(std::hint::black_box(diff) == 0);
    }
    found != 0
}

/// A token that may read and change: 401 without one, 403 with a wrong one (or when none are configured).
pub(crate) fn authorize(web: &WebConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(given) = bearer(headers) else {
        return Err(err(StatusCode::UNAUTHORIZED, "this needs a token: send Authorization: Bearer <token>"));
    };
    if web.tokens.is_empty() {
        return Err(err(StatusCode::FORBIDDEN, "changes are disabled: no [web] tokens_env is configured"));
    }
    if token_matches(&web.tokens, given) {
        Ok(())
    } else {
        Err(err(StatusCode::FORBIDDEN, "this token may not read or change anything here"))
    }
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]:port`), lower case, without a trailing dot.
fn host_name(value: &str) -> String {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        return format!("[{}]", rest.split(']').next().unwrap_or("")).to_ascii_lowercase();
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => v,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the web side answers to `host`: IP literals (a rebinding page's origin is always a name, so an IP
/// literal can only be reached on purpose), `localhost` and `[web] allowed_hosts`.
fn host_allowed(web: &WebConfig, host: &str) -> bool {
    let name = host_name(host);
    if name.starts_with('[') {
        return name.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>().is_ok();
    }
    name.parse::<std::net::Ipv4Addr>().is_ok() || name == "localhost" || web.allowed_hosts.contains(&name)
}

fn check_host(web: &WebConfig, req: &Request) -> Result<(), ApiError> {
    let named = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| req.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned()));
    match named {
        // No Host at all: no browser sends that, so it cannot be a rebinding page.
        None => Ok(()),
        Some(h) if host_allowed(web, &h) => Ok(()),
        Some(h) => Err(err(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the host {:?}; add the name to [web] allowed_hosts if it is yours",
                lookout_core::text::truncate(&h, 100)
            ),
        )),
    }
}

/// Host check, authentication, declared body length and a time limit, in that order, before anything is parsed.
pub(crate) async fn guard<S: Store>(State(state): State<WebState<S>>, req: Request, next: Next) -> Response {
    let web = &state.config.web;
    if let Err(e) = check_host(web, &req) {
        return e.into_response();
    }
    let need = access(req.method(), req.uri().path());
    let needs_token = need == Access::Change || (need == Access::Read && !web.public_reads);
    if needs_token && let Err(e) = authorize(web, req.headers()) {
        if is_page(&req) {
            return sign_in_page(e.0);
        }
        return e.into_response();
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return err(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {} KiB", BODY_LIMIT / 1024))
            .into_response();
    }
    if req.uri().path() == "/events" {
        return next.run(req).await;
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => err(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {} s", REQUEST_TIMEOUT.as_secs()),
        )
        .into_response(),
    }
}

/// A browser opening a page (not a script asking for data).
fn is_page(req: &Request) -> bool {
    let path = req.uri().path();
    let html = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    html && req.method() == Method::GET && (path == "/" || path == "/incidents" || path.starts_with("/incidents/"))
}

/// With private reads, a page opened without a token is this shell (no data in it): the page's script asks for
/// the token once, keeps it in localStorage and loads the page again with it in the Authorization header — a
/// navigation cannot carry that header, and a cookie would be an ambient credential a cross-site request could use.
fn sign_in_page(status: StatusCode) -> Response {
    let html = crate::pages::render_sign_in().unwrap_or_else(|_| "This page needs a token.".to_string());
    let mut r = (status, Html(html)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    r
}

/// Every error as `{"error": "..."}`: rejections of axum's extractors (bad query, bad path parameter, body too
/// large) and routing (404, 405) come as plain text; pages (HTML) and JSON pass unchanged.
pub(crate) async fn json_errors(r: Response) -> Response {
    let status = r.status();
    if !status.is_client_error() && !status.is_server_error() {
        return r;
    }
    let kind = r.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if kind.starts_with("application/json") || kind.starts_with("text/html") || kind.starts_with("text/markdown") {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut out = (status, SafeJson(json!({ "error": text }))).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// A route that does not exist, as JSON.
pub(crate) async fn no_route(req: Request<Body>) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        format!("no route {} {}", req.method(), lookout_core::text::truncate(req.uri().path(), 200)),
    )
}

/// Counts an open event stream; `None` when [`MAX_EVENT_STREAMS`] are open.
pub(crate) struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    pub(crate) fn take(limits: &Limits) -> Option<StreamSlot> {
        let n = limits.event_streams.fetch_add(1, Ordering::AcqRel);
        let slot = StreamSlot(limits.event_streams.clone());
        (n < MAX_EVENT_STREAMS).then_some(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(hosts: &[&str]) -> WebConfig {
        WebConfig {
            enabled: true,
            listen: "127.0.0.1:9898".parse().unwrap(),
            tokens: vec![Secret("alpha-token".into()), Secret("beta".into())],
            public_reads: true,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            max_connections: None,
        }
    }

    #[test]
    fn bearer_is_case_insensitive_and_needs_a_token() {
        let mut h = HeaderMap::new();
        for (value, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER   abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearerabc", None),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&h), want, "{value:?}");
        }
    }

    #[test]
    fn every_token_matches_and_nothing_else() {
        let w = web(&[]);
        assert!(token_matches(&w.tokens, "alpha-token"));
        assert!(token_matches(&w.tokens, "beta"));
        for wrong in ["", "alpha", "alpha-token ", "alpha-tokenx", "bet", "betaa", "ALPHA-TOKEN"] {
            assert!(!token_matches(&w.tokens, wrong), "{wrong:?}");
        }
        assert!(!token_matches(&[], "beta"));
    }

    #[test]
    fn hosts_are_ip_literals_localhost_or_configured() {
        let w = web(&["lookout.example.com"]);
        for ok in [
            "127.0.0.1:9898",
            "127.0.0.1",
            "[::1]:9898",
            "[::1]",
            "localhost:9898",
            "LOCALHOST",
            "localhost.",
            "10.1.2.3:80",
            "lookout.example.com",
            "Lookout.Example.com:443",
        ] {
            assert!(host_allowed(&w, ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:9898", "127.0.0.1.evil.example", "[not-ip]", "localhost.evil", ""] {
            assert!(!host_allowed(&w, bad), "{bad}");
        }
    }

    #[test]
    fn only_reads_of_the_status_page_and_assets_are_public() {
        assert_eq!(access(&Method::GET, "/status"), Access::Public);
        assert_eq!(access(&Method::GET, "/assets/app.js"), Access::Public);
        assert_eq!(access(&Method::POST, "/status"), Access::Change);
        assert_eq!(access(&Method::GET, "/"), Access::Read);
        assert_eq!(access(&Method::GET, "/events"), Access::Read);
        assert_eq!(access(&Method::GET, "/api/v1/incidents"), Access::Read);
        assert_eq!(access(&Method::DELETE, "/api/v1/silences/1"), Access::Change);
        assert_eq!(access(&Method::OPTIONS, "/api/v1/silences"), Access::Change);
    }
}
