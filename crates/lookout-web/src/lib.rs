//! The HTTP side of `lookout run` (axum): the JSON API under `/api/v1`, the server-rendered pages with their live
//! updates (`pages`), and `/metrics`. Generic over the store: it works with whichever backend the binary opened.
//! It reads the store and
//! changes incidents and silences the same way the CLI does (revision-checked writes) — it never decides whether
//! something is down.
//!
//! Security: it binds 127.0.0.1 unless configured; every change needs `Authorization: Bearer <token>` with one of
//! the `[web] tokens_env` tokens (none configured: every change is refused); reads are public unless
//! `public_reads = false`. The token, the `Host` and the body's size are checked before anything is parsed
//! (`auth`); connections are limited and timed (`server`). Responses are JSON, so text from logs and servers
//! arrives as JSON strings, never markup — errors included.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lookout_app::activity::ActivitySender;
use lookout_app::health::Health;
use lookout_app::incidents::{ChangeError, change};
use lookout_app::metrics::Metrics;
use lookout_app::silences;
use lookout_config::Config;
use lookout_core::{IncidentChange, Timestamp};
use lookout_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

mod auth;
#[cfg(test)]
mod guard_tests;
mod locations;
#[cfg(test)]
mod old_incident_tests;
mod pages;
mod pause;
mod server;
mod server_page;
mod status;

pub use server::{BODY_LIMIT, HEADER_TIMEOUT, REQUEST_TIMEOUT, connection_limit, raise_descriptor_limit};

/// What every handler reads: the store (any backend), the config, the metrics and the pipeline's activity.
pub struct WebState<S> {
    pub store: Arc<S>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// What the pipeline does, for live pages (server-sent events).
    pub events: Option<ActivitySender>,
    /// Whether the store takes writes (`/api/v1/health`, the dashboard's banner).
    pub health: Health,
    /// Where `POST /-/reload` asks `lookout run` to read its configuration again (`None`: it cannot).
    pub reload: Option<lookout_app::reload::Sender>,
}

// Not derived: the store itself need not be `Clone`, only its `Arc`.
impl<S> Clone for WebState<S> {
    fn clone(&self) -> Self {
        WebState {
            store: self.store.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            health: self.health.clone(),
            reload: self.reload.clone(),
        }
    }
}

/// Headers on every response: a strict Content-Security-Policy (only this origin's scripts and styles, no
/// framing), no MIME sniffing, no referrer.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    r
}

/// JSON with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026` (as Go's encoding/json does): text from
/// logs and servers stays inert even if a client pastes a response into a page.
pub struct SafeJson<T>(pub T);

impl<T: Serialize> IntoResponse for SafeJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_string(&self.0) {
            Ok(text) => {
                let safe = text.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
                ([(header::CONTENT_TYPE, "application/json")], safe).into_response()
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

/// An error as the API answers it: a status and `{"error": "..."}`, with `"field"` naming the request's field at
/// fault when one is (`comment`, `matchers[0]`), so a client can point at it.
pub struct ApiError(StatusCode, String, Option<String>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.2 {
            Some(field) => json!({ "error": self.1, "field": field }),
            None => json!({ "error": self.1 }),
        };
        let mut r = (self.0, SafeJson(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl<E: std::fmt::Display> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None)
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn err(status: StatusCode, text: impl Into<String>) -> ApiError {
    ApiError(status, text.into(), None)
}

/// A 422 about one field of the request.
fn invalid(field: &str, text: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, text.into(), Some(field.to_string()))
}

/// Every route behind the same layers, outermost first: security headers, errors as JSON, then `auth::guard`
/// (host, token, body length, time limit) before any extractor runs, and the body limit for extractors.
pub fn router<S: Store>(state: WebState<S>) -> axum::Router {
    axum::Router::new()
        .route("/", get(pages::dashboard::<S>))
        .route("/incidents", get(pages::incidents::<S>))
        .route("/incidents/{id}", get(pages::incident::<S>))
        .route("/server", get(server_page::server::<S>))
        .route("/status", get(status::status::<S>))
        .route("/events", get(pages::events::<S>))
        .route("/assets/{name}", get(pages::asset))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/health", get(health::<S>))
        .route("/api/v1/targets", get(targets::<S>))
        .route("/api/v1/targets/{name}/results", get(results::<S>))
        .route("/api/v1/targets/{name}/pause", post(pause::pause::<S>))
        .route("/api/v1/targets/{name}/resume", post(pause::resume::<S>))
        .route("/api/v1/incidents", get(incidents::<S>))
        .route("/api/v1/incidents/{id}", get(incident::<S>))
        .route("/api/v1/incidents/{id}/postmortem", get(postmortem::<S>))
        .route("/api/v1/incidents/{id}/ack", post(ack::<S>))
        .route("/api/v1/incidents/{id}/note", post(note::<S>))
        .route("/api/v1/incidents/{id}/resolve", post(resolve::<S>))
        .route("/api/v1/agents", get(agents::<S>))
        .route("/api/v1/silences", get(silences::<S>).post(add_silence::<S>))
        .route("/api/v1/silences/{id}", axum::routing::delete(expire_silence::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/-/reload", post(reload::<S>))
        .fallback(auth::no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::Extension(auth::Limits::default()))
        .layer(axum::Extension(pages::DashboardCache::default()))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard::<S>))
        .layer(axum::middleware::map_response(auth::json_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves until `shutdown` turns true, within the limits of [`server`]. A port that cannot be bound is logged, and
/// monitoring goes on without the web side: being told of an outage matters more than looking at it.
pub async fn serve<S: Store>(state: WebState<S>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let addr = state.config.web.listen;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "Cannot serve the web API and /metrics; monitoring goes on without them. Set [web] listen.");
            return;
        }
    };
    let limit = connection_limit(state.config.web.max_connections);
    let at = listener.local_addr().unwrap_or(addr);
    tracing::info!(max_connections = limit, "Dashboard at http://{at}/ (API under /api/v1, Prometheus at /metrics).");
    server::serve_with_limits(listener, router(state), limit, shutdown).await;
}

#[derive(Serialize)]
struct TargetView {
    name: String,
    kind: &'static str,
    group: String,
    severity: String,
    state: String,
    since: Option<Timestamp>,
    alert_id: Option<String>,
    reason: Option<String>,
    last: Option<lookout_store::ResultRow>,
    /// Each location's state and latest check (several agents; empty on one machine).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<locations::LocationView>,
    /// Where it fails below its quorum (`degraded in l2`): shown, not paged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    degraded: Vec<String>,
    /// The pause's silence while the target is paused (`POST …/pause`): who, since when, why.
    paused: Option<lookout_store::Silence>,
}

async fn targets<S: Store>(State(state): State<WebState<S>>) -> ApiResult<SafeJson<Vec<TargetView>>> {
    let states: HashMap<String, lookout_core::AlertState> = state.store.alert_states().await?.into_iter().collect();
    let mut by_location = locations::by_target(state.store.as_ref(), &state.config).await?;
    let mut out = Vec::new();
    let view = |name: &str, kind: &'static str, group: &str, severity: &str| {
        let s = states.get(name).cloned().unwrap_or_default();
        TargetView {
            locations: Vec::new(),
            degraded: Vec::new(),
            name: name.to_string(),
            kind,
            group: group.to_string(),
            severity: severity.to_string(),
            state: s.status().to_string(),
            since: (s.since.as_millis() > 0).then_some(s.since),
            alert_id: s.alert_id,
            reason: s.last_reason,
            last: None,
            paused: None,
        }
    };
    let now = Timestamp::now();
    let mut pauses = lookout_app::pause::paused(&state.store.silences(false, now).await?, now);
    let others = other_machines(&state).await?;
    for t in state.config.targets.iter().chain(&others) {
        let kind = t.check.kind_name();
        let mut v = view(&t.name, kind, &t.group, &t.alert.severity);
        v.last = state.store.recent_results(t.name.clone(), 1).await?.into_iter().next();
        v.locations = by_location.remove(&t.name).unwrap_or_default();
        let phase = states.get(&t.name).map(|s| s.phase).unwrap_or_default();
        v.degraded = locations::degraded(phase, &v.locations);
        v.paused = pauses.remove(&t.name);
        out.push(v);
    }
    for l in &state.config.logs {
        out.push(view(&l.name, "log", &l.group, &l.alert.severity));
    }
    Ok(SafeJson(out))
}

#[derive(Deserialize)]
struct Range {
    /// Milliseconds since the epoch; default: the last hour.
    from: Option<i64>,
    to: Option<i64>,
}

/// `POST /-/reload` (a token, as every change): `lookout run` reads its configuration file again. 200 with what
/// changed once the new one is in place; 422 with the error when it does not load (the old one runs on); 503 when
/// this process cannot reload (lookout embedded in a test or the demo).
async fn reload<S: Store>(State(state): State<WebState<S>>) -> ApiResult<SafeJson<serde_json::Value>> {
    let Some(tx) = &state.reload else {
        return Err(err(StatusCode::SERVICE_UNAVAILABLE, "this lookout cannot reload its configuration"));
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.send(lookout_app::reload::Request { reply: Some(reply) })
        .await
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "lookout is stopping"))?;
    match answer.await {
        Ok(Ok(changes)) => Ok(SafeJson(json!({ "reloaded": true, "changes": changes }))),
        Ok(Err(why)) => Err(err(StatusCode::UNPROCESSABLE_ENTITY, why)),
        Err(_) => Err(err(StatusCode::SERVICE_UNAVAILABLE, "lookout stopped before answering")),
    }
}

/// The other agents' machine targets (several agents on one store: see `lookout_app::host`); none on one machine,
/// without asking the store.
pub(crate) async fn other_machines<S: Store>(state: &WebState<S>) -> ApiResult<Vec<lookout_config::Target>> {
    if !state.store.is_shared() {
        return Ok(Vec::new());
    }
    Ok(lookout_app::host::others(&state.config, &state.store.agents().await?))
}

async fn results<S: Store>(
    State(state): State<WebState<S>>,
    Path(name): Path<String>,
    Query(range): Query<Range>,
) -> ApiResult<SafeJson<Vec<lookout_store::ResultRow>>> {
    if state.config.target(&name).is_none() && !other_machines(&state).await?.iter().any(|t| t.name == name) {
        return Err(err(StatusCode::NOT_FOUND, format!("no target {name:?}")));
    }
    let to = range.to.map_or_else(Timestamp::now, Timestamp::from_millis);
    let from = range.from.map_or(Timestamp::from_millis(to.as_millis() - 3_600_000), Timestamp::from_millis);
    Ok(SafeJson(state.store.results_between(name, from, to).await?))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn incidents<S: Store>(
    State(state): State<WebState<S>>,
    Query(q): Query<Limit>,
) -> ApiResult<SafeJson<Vec<lookout_core::Incident>>> {
    Ok(SafeJson(state.store.incidents(q.limit.unwrap_or(50).min(1000)).await?))
}

async fn view_of<S: Store>(state: &WebState<S>, id: &str) -> ApiResult<lookout_app::incidents::IncidentView> {
    lookout_app::incidents::load(state.store.as_ref(), &state.config, id, Timestamp::now())
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("no incident {id:?}")))
}

async fn incident<S: Store>(
    State(state): State<WebState<S>>,
    Path(id): Path<String>,
) -> ApiResult<SafeJson<lookout_app::incidents::IncidentView>> {
    Ok(SafeJson(view_of(&state, &id).await?))
}

async fn postmortem<S: Store>(State(state): State<WebState<S>>, Path(id): Path<String>) -> ApiResult<Response> {
    let view = view_of(&state, &id).await?;
    let markdown = lookout_app::postmortem::from_incident::render(&view);
    Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], markdown).into_response())
}

#[derive(Deserialize, Default)]
struct Who {
    by: Option<String>,
    text: Option<String>,
    note: Option<String>,
}

async fn apply<S: Store>(
    state: &WebState<S>,
    id: &str,
    f: impl Fn(&lookout_core::Incident) -> Result<IncidentChange, lookout_engine::IncidentError>,
) -> ApiResult<SafeJson<lookout_core::Incident>> {
    match change(state.store.as_ref(), id, f).await {
        Ok(c) => Ok(SafeJson(c.incident)),
        Err(ChangeError::NotFound(id)) => Err(err(StatusCode::NOT_FOUND, format!("no incident {id:?}"))),
        Err(e @ ChangeError::Refused(lookout_engine::IncidentError::EmptyNote)) => Err(invalid("text", e.to_string())),
        Err(e @ (ChangeError::Refused(_) | ChangeError::KeptChanging(_))) => {
            Err(err(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e @ ChangeError::Store(_)) => Err(e.into()),
    }
}

/// A JSON body: 400 when it is not JSON, 422 when it is JSON of the wrong shape. The content type is not required:
/// the token already proves the caller means it (there is no ambient credential a form post could ride on).
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = format!("the body is not JSON like {example}: {inner}");
        match inner.classify() {
            serde_json::error::Category::Data => {
                // A missing field is reported at its parent (`.`): name it from serde's message.
                let missing = inner.to_string().split('`').nth(1).filter(|_| path == ".").map(str::to_string);
                ApiError(StatusCode::UNPROCESSABLE_ENTITY, message, missing.or(Some(path)).filter(|p| p != "."))
            }
            _ => err(StatusCode::BAD_REQUEST, message),
        }
    })
}

/// The optional JSON body of an incident change (an empty body is `{}`).
fn who(body: &[u8]) -> ApiResult<Who> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Who::default());
    }
    json_body(body, r#"{"by": "alice"}"#)
}

impl Who {
    fn by(&self) -> String {
        self.by.clone().filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "api".into())
    }
}

async fn ack<S: Store>(
    State(state): State<WebState<S>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<SafeJson<lookout_core::Incident>> {
    let w = who(&body)?;
    let by = w.by();
    apply(&state, &id, |i| lookout_engine::incident::acknowledge(i, &by, Timestamp::now())).await
}

async fn note<S: Store>(
    State(state): State<WebState<S>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<SafeJson<lookout_core::Incident>> {
    let w = who(&body)?;
    let (by, text) = (w.by(), w.text.clone().unwrap_or_default());
    if text.trim().is_empty() {
        return Err(invalid("text", r#"a note needs some text: send {"text": "..."}"#));
    }
    apply(&state, &id, |i| lookout_engine::incident::note(i, &by, &text, Timestamp::now())).await
}

async fn resolve<S: Store>(
    State(state): State<WebState<S>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<SafeJson<lookout_core::Incident>> {
    let w = who(&body)?;
    let (by, text) = (w.by(), w.note.clone());
    apply(&state, &id, |i| lookout_engine::incident::resolve_by_hand(i, &by, text.as_deref(), Timestamp::now())).await
}

#[derive(Deserialize)]
struct All {
    all: Option<bool>,
}

/// The agents sharing the store, with the leader marked (see `lookout_app::cluster`).
async fn agents<S: Store>(State(state): State<WebState<S>>) -> ApiResult<SafeJson<Vec<lookout_store::AgentRow>>> {
    Ok(SafeJson(state.store.agents().await?))
}

async fn silences<S: Store>(
    State(state): State<WebState<S>>,
    Query(q): Query<All>,
) -> ApiResult<SafeJson<Vec<lookout_store::Silence>>> {
    Ok(SafeJson(state.store.silences(q.all.unwrap_or(false), Timestamp::now()).await?))
}

#[derive(Deserialize)]
struct SilenceRequest {
    matchers: Vec<String>,
    /// e.g. "2h" (default 1h).
    duration: Option<String>,
    comment: String,
    by: Option<String>,
}

async fn add_silence<S: Store>(
    State(state): State<WebState<S>>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, SafeJson<lookout_store::Silence>)> {
    let req: SilenceRequest = json_body(&body, r#"{"matchers": ["group=shop"], "duration": "2h", "comment": "..."}"#)?;
    let now = Timestamp::now();
    let silence = silences::SilenceRequest {
        matchers: req.matchers,
        starts_at: now,
        duration: req.duration,
        comment: req.comment,
        by: req.by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "api".into()),
    }
    .validate()
    .map_err(|e| invalid(e.field(), e.to_string()))?;
    let id = state.store.add_silence(silence).await?;
    let stored = state.store.silences(true, now).await?.into_iter().find(|s| s.id == id);
    stored
        .map(|s| (StatusCode::CREATED, SafeJson(s)))
        .ok_or_else(|| err(StatusCode::INTERNAL_SERVER_ERROR, "the silence vanished"))
}

async fn expire_silence<S: Store>(State(state): State<WebState<S>>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    if state.store.expire_silence(id, Timestamp::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(err(StatusCode::NOT_FOUND, format!("no silence #{id} in force")))
    }
}

/// The OpenAPI document of `/api/v1` (checked against the routes above by the tests).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// OpenMetrics for scrapers that ask for it (`Accept: application/openmetrics-text`), the Prometheus text format
/// otherwise.
/// Prometheus text, or OpenMetrics when asked; gzip-compressed when the scraper accepts it (Prometheus always
/// does): at 10,000 targets the text is ~10 MB, its gzip a fraction of that.
async fn metrics<S: Store>(State(state): State<WebState<S>>, headers: HeaderMap) -> ApiResult<Response> {
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, text) = if open {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", state.metrics.render())
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", state.metrics.render_prometheus())
    };
    if accepts_gzip(&headers)
        && let Some(body) = gzip(text.as_bytes())
    {
        return Ok((
            [
                (header::CONTENT_TYPE, content_type),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "Accept-Encoding"),
            ],
            body,
        )
            .into_response());
    }
    Ok(([(header::CONTENT_TYPE, content_type), (header::VARY, "Accept-Encoding")], text).into_response())
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        },
    )
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// Whether lookout works as it should: `ok`, or `degraded` while it cannot write its store (it keeps alerting
/// from memory; see `store`). Always 200: a restart would not mend a full disk and would lose what is held, so a
/// supervisor's liveness check must not act on it — alert on `status` or `lookout_store_writable` instead.
async fn health<S: Store>(State(state): State<WebState<S>>) -> Response {
    let store = state.health.store();
    let status = if store.writable { "ok" } else { "degraded" };
    SafeJson(json!({ "status": status, "store": store })).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn gzip_is_used_when_the_scraper_accepts_it() {
        use axum::http::{HeaderMap, HeaderValue, header};
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            super::accepts_gzip(&h)
        };
        assert!(with("gzip"));
        assert!(with("identity, GZIP;q=0.5"));
        assert!(with("*"));
        assert!(!with("gzip;q=0"));
        assert!(!with("deflate, br"));
        assert!(!super::accepts_gzip(&HeaderMap::new()));
        let text = "lookout_probe_success{target=\"a\"} 1\n".repeat(1000);
        let packed = super::gzip(text.as_bytes()).unwrap();
        assert!(packed.len() * 10 < text.len(), "{} of {}", packed.len(), text.len());
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&packed[..]), &mut back).unwrap();
        assert_eq!(back, text);
    }

    /// Every `/api/v1` route registered in `router()` is in the OpenAPI document with its method, and the
    /// document names no route that is not registered.
    #[test]
    fn the_openapi_document_lists_exactly_the_registered_routes() {
        let source = include_str!("lib.rs");
        let start = source.find("pub fn router<").unwrap();
        let end = start + source[start..].find("\n}\n").unwrap();
        let mut registered: Vec<(String, String)> = Vec::new();
        for line in source[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(".route(\"/api/v1") || l.starts_with(".route(\"/-/"))
        {
            let path = line.split('"').nth(1).unwrap().to_string();
            let handlers = &line[line.find(',').unwrap()..];
            for method in ["get", "post", "delete", "put", "patch"] {
                if handlers.contains(&format!("{method}(")) {
                    registered.push((path.clone(), method.to_string()));
                }
            }
        }
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (p.clone(), m.clone())))
            .collect();
        registered.sort();
        documented.sort();
        assert_eq!(registered, documented);
    }
}
