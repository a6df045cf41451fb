//! The HTML side: the dashboard (targets, uptime, latency, log traffic), incidents and an incident's page (timeline,
//! diagnosis with evidence, impact, postmortem, actions); the public status page is in `status`. Server-rendered
//! with minijinja, whose `.html` templates escape every value; templates, CSS and JS are compiled into the binary.
//! Live updates arrive as server-sent events.
//!
//! The dashboard's cost does not grow with the results kept: the store counts and ranks (`result_buckets`,
//! `latency_percentiles`, `daily_uptime`) and the rows are computed at most once a second for every open page
//! ([`DashboardCache`]); a page never loads a day of results. Uptimes (24 h, 7 d, 30 d: the widest reads) are
//! computed at most every [`UPTIME_FRESH_FOR`] — they move slowly, and the store's one connection is also the
//! pipeline's, so a dashboard must not keep it busy.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use lookout_core::{Phase, Timestamp, format_duration};
use lookout_store::Store;
use minijinja::context;
use serde::Serialize;

use super::{ApiResult, WebState, err};
use crate::auth::{Limits, StreamSlot};

pub(crate) const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// How long computed dashboard rows are served to every open page before they are computed again.
const ROWS_FRESH_FOR: Duration = Duration::from_secs(1);
/// How long computed uptimes are kept.
const UPTIME_FRESH_FOR: Duration = Duration::from_secs(30);

/// 24 h, 7 d and 30 d uptime of each target.
type Uptimes = HashMap<String, [String; 3]>;

fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("dashboard.html", include_str!("templates/dashboard.html")),
            ("incidents.html", include_str!("templates/incidents.html")),
            ("incident.html", include_str!("templates/incident.html")),
            ("status.html", include_str!("templates/status.html")),
            ("server.html", include_str!("templates/server.html")),
            ("signin.html", include_str!("templates/signin.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "A built-in template does not compile.");
            }
        }
        env
    })
}

/// The page a browser gets without a token when reads are private (see `auth::sign_in_page`).
pub(crate) fn render_sign_in() -> Result<String, minijinja::Error> {
    templates().get_template("signin.html")?.render(context! { title => "Sign in", live => false, public => false })
}

pub(crate) fn page(name: &str, ctx: minijinja::Value) -> ApiResult<Response> {
    let html = templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot render {name}: {e}")))?;
    Ok(Html(html).into_response())
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.css" => {
            ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("assets/app.css")).into_response()
        }
        "app.js" => {
            ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("assets/app.js")).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) fn pct(ok: u64, total: u64) -> String {
    if total == 0 { "—".into() } else { format!("{:.2}%", 100.0 * ok as f64 / total as f64) }
}

fn ms(v: Option<&Option<f64>>) -> String {
    v.copied().flatten().map_or_else(|| "—".into(), |v| format!("{v:.0} ms"))
}

#[derive(Clone, Serialize)]
struct LastView {
    /// The check in words: `HTTP 200 in 12 ms`, `connected in 0.4 ms`, `connection refused after 1 ms`.
    what: String,
    /// `12 s ago`, with `at` (UTC) on hover.
    ago: String,
    at: String,
}

impl LastView {
    fn of(r: &lookout_store::ResultRow, kind: &str, now: Timestamp) -> LastView {
        let took = took_ms(r.latency_ms);
        let what = match (r.status, &r.error) {
            (_, Some(e)) if !r.ok || r.status.is_none() => format!("{e} after {took}"),
            (Some(status), _) => format!("HTTP {status} in {took}"),
            (None, _) => {
                let verb = match kind {
                    "tcp" => "connected",
                    "tls" => "handshake done",
                    "dns" => "answered",
                    "icmp" => "replied",
                    _ => "read",
                };
                format!("{verb} in {took}")
            }
        };
        LastView { what, ago: ago(r.at, now), at: r.at.to_rfc3339_seconds() }
    }
}

/// A duration in ms as people read it: `0.4 ms` below 10 ms, `12 ms` above.
fn took_ms(v: f64) -> String {
    if v < 10.0 { format!("{v:.1} ms") } else { format!("{v:.0} ms") }
}

/// How long ago, roughly: `12 s ago`, `3 min ago`, `2 h ago`, `4 d ago`.
pub(crate) fn ago(at: Timestamp, now: Timestamp) -> String {
    let s = (now.as_millis() - at.as_millis()).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A moment as people read it: `3 min ago`, the exact time in UTC on hover (`title`) and for machines
/// (`datetime`): `<time datetime="{{ w.at }}" title="{{ w.utc }}">{{ w.ago }}</time>`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct When {
    at: String,
    ago: String,
    utc: String,
}

impl When {
    pub(crate) fn of(t: Timestamp, now: Timestamp) -> When {
        let at = t.to_rfc3339_seconds();
        let utc = format!("{} UTC", at.trim_end_matches('Z').replacen('T', " ", 1));
        When { at, ago: ago(t, now), utc }
    }
}

#[derive(Clone, Serialize)]
pub(crate) struct TargetRow {
    name: String,
    kind: &'static str,
    group: String,
    state: &'static str,
    since: Option<When>,
    reason: Option<String>,
    last: Option<LastView>,
    uptime_24h: String,
    uptime_7d: String,
    uptime_30d: String,
    p50: String,
    p95: String,
    p99: String,
    /// SVG polyline points (numbers only).
    chart: Option<String>,
    chart_label: &'static str,
    requests: Option<u64>,
    ratio: String,
    /// Each location's state and latency (several agents only).
    locations: Vec<LocationCell>,
    /// "degraded in us, asia": failing there, below the quorum.
    degraded: Option<String>,
    /// A configured target can be paused from the page (not a log source, not another machine's host target).
    pausable: bool,
    paused: Option<PausedView>,
}

/// Who paused a target, when, and why (`lookout_app::pause`).
#[derive(Clone, Serialize)]
struct PausedView {
    by: String,
    since: When,
    /// Empty when none was given.
    comment: String,
}

#[derive(Clone, Serialize)]
struct LocationCell {
    location: String,
    state: &'static str,
    latency: String,
    stale: bool,
}

fn chart(latencies: &[f64]) -> Option<String> {
    if latencies.len() < 2 {
        return None;
    }
    let max = latencies.iter().copied().fold(1.0_f64, f64::max);
    let step = 120.0 / (latencies.len() - 1) as f64;
    // Written into one string: a point per minute for each of a thousand targets every second, formatted one by
    // one and joined, was the most frequent allocation of a busy dashboard (bench/soak.sh under heaptrack).
    let mut points = String::with_capacity(latencies.len() * 10);
    for (i, l) in latencies.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(points, "{sep}{:.1},{:.1}", i as f64 * step, 29.0 - 28.0 * l / max);
    }
    Some(points)
}

pub(crate) fn uptime_over(days: &[(i64, u64, u64)], since_day: i64) -> String {
    let (ok, total) =
        days.iter().filter(|(d, ..)| *d >= since_day).fold((0, 0), |(o, t), (_, ok, total)| (o + ok, t + total));
    pct(ok, total)
}

/// The dashboard's rows, shared by every page opened within [`ROWS_FRESH_FOR`]; one computation at a time (the
/// others wait for it rather than start their own).
#[derive(Clone, Default)]
pub(crate) struct DashboardCache(Arc<tokio::sync::Mutex<Cached>>);

#[derive(Default)]
struct Cached {
    rows: Option<(Instant, Arc<Vec<TargetRow>>)>,
    uptimes: Option<(Instant, Arc<Uptimes>)>,
}

impl DashboardCache {
    /// Drops the rows (not the uptimes): a change made on the page (a pause) shows at its next refresh.
    pub(crate) async fn forget(&self) {
        self.0.lock().await.rows = None;
    }

    async fn rows<S: Store>(&self, state: &WebState<S>) -> ApiResult<Arc<Vec<TargetRow>>> {
        let mut cached = self.0.lock().await;
        if let Some((_, rows)) = cached.rows.as_ref().filter(|(at, _)| at.elapsed() < ROWS_FRESH_FOR) {
            return Ok(rows.clone());
        }
        let uptimes = match cached.uptimes.as_ref().filter(|(at, _)| at.elapsed() < UPTIME_FRESH_FOR) {
            Some((_, u)) => u.clone(),
            None => {
                let u = Arc::new(uptimes(state).await?);
                cached.uptimes = Some((Instant::now(), u.clone()));
                u
            }
        };
        let rows = Arc::new(target_rows(state, &uptimes).await?);
        cached.rows = Some((Instant::now(), rows.clone()));
        Ok(rows)
    }
}

async fn uptimes<S: Store>(state: &WebState<S>) -> ApiResult<Uptimes> {
    let now = Timestamp::now();
    let today = now.as_millis().div_euclid(DAY_MS);
    let day_ago = Timestamp::from_millis(now.as_millis() - DAY_MS);
    let mut out = HashMap::new();
    let others = crate::other_machines(state).await?;
    for t in state.config.targets.iter().chain(&others) {
        let hours = state.store.result_buckets(t.name.clone(), day_ago, now, HOUR_MS).await?;
        let (ok, total) = hours.iter().fold((0, 0), |(o, n), b| (o + b.ok, n + b.total));
        let days = state.store.daily_uptime(t.name.clone(), Timestamp::from_millis((today - 30) * DAY_MS)).await?;
        out.insert(t.name.clone(), [pct(ok, total), uptime_over(&days, today - 6), uptime_over(&days, today - 29)]);
    }
    Ok(out)
}

async fn target_rows<S: Store>(state: &WebState<S>, uptimes: &Uptimes) -> ApiResult<Vec<TargetRow>> {
    let now = Timestamp::now();
    let hour_ago = Timestamp::from_millis(now.as_millis() - 3_600_000);
    let states: HashMap<String, lookout_core::AlertState> = state.store.alert_states().await?.into_iter().collect();
    let mut rows = Vec::new();
    let base = |name: &str, kind: &'static str, group: &str| {
        let s = states.get(name).cloned().unwrap_or_default();
        TargetRow {
            name: name.into(),
            kind,
            group: group.into(),
            state: s.status(),
            since: (s.phase != Phase::Ok && s.since.as_millis() > 0).then(|| When::of(s.since, now)),
            reason: (s.phase != Phase::Ok).then_some(s.last_reason).flatten(),
            last: None,
            uptime_24h: "—".into(),
            uptime_7d: "—".into(),
            uptime_30d: "—".into(),
            p50: "—".into(),
            p95: "—".into(),
            p99: "—".into(),
            chart: None,
            chart_label: "",
            requests: None,
            ratio: "—".into(),
            locations: Vec::new(),
            degraded: None,
            pausable: false,
            paused: None,
        }
    };
    let pauses = lookout_app::pause::paused(&state.store.silences(false, now).await?, now);
    let mut by_location = crate::locations::by_target(state.store.as_ref(), &state.config).await?;
    let others = crate::other_machines(state).await?;
    let own = state.config.targets.len();
    for (i, t) in state.config.targets.iter().chain(&others).enumerate() {
        let kind = t.check.kind_name();
        let mut row = base(&t.name, kind, &t.group);
        let name = || t.name.clone();
        if let Some([day, week, month]) = uptimes.get(&t.name) {
            (row.uptime_24h, row.uptime_7d, row.uptime_30d) = (day.clone(), week.clone(), month.clone());
        }
        let p = state.store.latency_percentiles(name(), hour_ago, now, vec![0.50, 0.95, 0.99]).await?;
        (row.p50, row.p95, row.p99) = (ms(p.first()), ms(p.get(1)), ms(p.get(2)));
        let minutes = state.store.result_buckets(name(), hour_ago, now, 60_000).await?;
        let means: Vec<f64> = minutes.iter().map(|b| b.mean_latency_ms).collect();
        row.chart = chart(&means);
        row.chart_label = "mean latency per minute, last hour";
        let here = by_location.remove(&t.name).unwrap_or_default();
        let phase = states.get(&t.name).map(|s| s.phase).unwrap_or_default();
        let degraded = crate::locations::degraded(phase, &here);
        row.degraded = (!degraded.is_empty()).then(|| format!("degraded in {}", degraded.join(", ")));
        row.locations = here
            .iter()
            .map(|l| LocationCell {
                location: l.location.clone(),
                state: l.state,
                latency: format!("{:.0}", l.latency_ms),
                stale: l.stale,
            })
            .collect();
        row.last = state.store.recent_results(name(), 1).await?.into_iter().next().map(|r| LastView::of(&r, kind, now));
        // This agent's configuration's own targets; another machine's host targets are its agent's to pause.
        row.pausable = i < own;
        if let Some(p) = pauses.get(&t.name) {
            row.state = "paused";
            row.paused = Some(PausedView {
                by: p.created_by.clone(),
                since: When::of(p.starts_at, now),
                comment: if p.comment == "paused" { String::new() } else { p.comment.clone() },
            });
        }
        rows.push(row);
    }
    for l in &state.config.logs {
        let mut row = base(&l.name, "log", &l.group);
        // A warning level counts its source's requests.
        let counted = l.follows.as_ref().unwrap_or(&l.name);
        let counts = state.store.log_counts_between(counted.clone(), hour_ago, now).await?;
        let requests: u64 = counts.iter().map(|c| c.requests).sum();
        let failed: u64 = counts.iter().map(|c| c.classes[4]).sum();
        row.requests = Some(requests);
        row.ratio = pct(failed, requests);
        let per_minute: Vec<f64> = counts.iter().map(|c| c.requests as f64).collect();
        row.chart = chart(&per_minute);
        row.chart_label = "requests per minute, last hour";
        rows.push(row);
    }
    Ok(rows)
}

#[derive(Serialize)]
pub(crate) struct IncidentRow {
    id: String,
    pub(crate) status: &'static str,
    pub(crate) opened: When,
    pub(crate) duration: String,
    ack: Option<String>,
    title: String,
    pub(crate) group: String,
}

pub(crate) fn incident_row(i: &lookout_core::Incident, now: Timestamp) -> IncidentRow {
    IncidentRow {
        id: i.id.clone(),
        status: i.status.as_str(),
        opened: When::of(i.opened_at, now),
        duration: format_duration(Duration::from_secs(
            i.resolved_at.unwrap_or(now).since(i.first_failure_at).as_secs(),
        )),
        ack: i.ack.as_ref().map(|a| a.by.clone()),
        title: i.title(),
        group: i.group.clone(),
    }
}

/// The most open incidents the dashboard lists (one per group at most, so this many groups broken at once).
const OPEN_SHOWN: usize = 500;

pub async fn dashboard<S: Store>(
    State(state): State<WebState<S>>,
    Extension(cache): Extension<DashboardCache>,
) -> ApiResult<Response> {
    let rows = cache.rows(&state).await?;
    let targets = rows.as_slice();
    let now = Timestamp::now();
    // Asked for apart from the newest incidents: an old open one must not hide behind newer resolved ones.
    let open: Vec<IncidentRow> =
        state.store.open_incidents(OPEN_SHOWN).await?.iter().map(|i| incident_row(i, now)).collect();
    let store = state.health.store();
    // Said first: what follows may be stale while lookout cannot write its store.
    let degraded = (!store.writable).then(|| {
        let since = store.unwritable_since.map(|t| t.to_rfc3339_seconds()).unwrap_or_default();
        let error = store.error.unwrap_or_default();
        format!(
            "lookout cannot write its store since {since}: {error}. It keeps probing and alerting from memory ({} records held); what this page shows from the store may be stale.",
            store.held_records
        )
    });
    let agents = state.store.agents().await?;
    // One machine is a cluster of one: the agents' table is shown only when there are several.
    let differs = crate::locations::config_differs(&agents);
    let config_notice = (!differs.is_empty()).then(|| {
        format!(
            "Agent(s) {} run a configuration that differs from the leader's: they do not probe targets they do not know, and the leader ignores what it does not know. Give every agent the same file.",
            differs.join(", ")
        )
    });
    let agents: Vec<BTreeMap<&str, String>> = if agents.len() < 2 {
        Vec::new()
    } else {
        agents
            .iter()
            .map(|a| {
                BTreeMap::from([
                    ("name", a.info.name.clone()),
                    ("location", a.info.location.clone()),
                    ("role", if a.leader { "leader".into() } else { "follower".into() }),
                    ("last_seen", a.last_seen.to_rfc3339_seconds()),
                    ("version", a.info.version.clone()),
                    ("config_hash", a.info.config_hash.clone()),
                    ("differs", if differs.contains(&a.info.name) { "config differs".into() } else { String::new() }),
                ])
            })
            .collect()
    };
    page(
        "dashboard.html",
        context! { title => "Targets", live => true, public => false, targets, open, degraded, agents, config_notice },
    )
}

pub async fn incidents<S: Store>(State(state): State<WebState<S>>) -> ApiResult<Response> {
    let now = Timestamp::now();
    let incidents: Vec<IncidentRow> = state.store.incidents(200).await?.iter().map(|i| incident_row(i, now)).collect();
    page("incidents.html", context! { title => "Incidents", live => true, public => false, incidents })
}

pub async fn incident<S: Store>(State(state): State<WebState<S>>, Path(id): Path<String>) -> ApiResult<Response> {
    let view = super::view_of(&state, &id).await?;
    let now = Timestamp::now();
    let i = &view.incident;
    let row = context! {
        id => i.id.clone(),
        status => i.status.as_str(),
        title => i.title(),
        first_failure => When::of(i.first_failure_at, now),
        opened => When::of(i.opened_at, now),
        resolved => i.resolved_at.map(|t| When::of(t, now)),
        duration => incident_row(i, now).duration,
        ack => i.ack.as_ref().map(|a| a.by.clone()),
    };
    // One block per cause (the alerts of an incident find the same file, with more lines each time), its verdict
    // under the heading that already says "Probable root cause".
    let diagnoses: Vec<minijinja::Value> = i
        .distinct_diagnoses()
        .into_iter()
        .map(|d| {
            let verdict = d.verdict.strip_prefix("Probable root cause: ").unwrap_or(&d.verdict);
            context! { verdict => verdict, source => d.source.clone(), evidence => d.evidence.clone() }
        })
        .collect();
    let timeline: Vec<BTreeMap<&str, String>> = view
        .timeline
        .iter()
        .map(|e| {
            BTreeMap::from([
                // The heading says UTC: `2026-12-01 10:43:40` reads (and wraps) better than the ISO form.
                ("at", e.at.to_rfc3339_seconds().trim_end_matches('Z').replacen('T', " ", 1)),
                ("kind", e.kind.as_str().to_string()),
                ("text", e.text.clone()),
                // "acknowledged by alice", not "acknowledged by alice (alice)".
                ("by", e.by.clone().filter(|by| !e.text.contains(by.as_str())).unwrap_or_default()),
            ])
        })
        .collect();
    let impact = view.impact.lines();
    let postmortem = markdown_to_html(&lookout_app::postmortem::from_incident::render(&view));
    // The server's curves that reached their warning level in the incident's window, the incident shaded.
    let fired = [(i.first_failure_at.0, i.resolved_at.unwrap_or(now).0)];
    let server: Vec<minijinja::Value> = view
        .curves
        .iter()
        .map(|c| {
            let points: Vec<&lookout_store::ReadingBucket> = c.points.iter().collect();
            let svg = crate::server_page::svg(&points, c.from.0, c.to.0, c.unit, &fired, c.reading);
            context! { sentence => c.sentence.clone(), svg => minijinja::Value::from_safe_string(svg) }
        })
        .collect();
    page(
        "incident.html",
        context! { title => format!("Incident {}", i.id), live => true, public => false, i => row, diagnoses, timeline, impact, server, postmortem },
    )
}

/// The postmortem draft as HTML. Text from logs was already escaped for Markdown; any HTML that still appears in
/// the Markdown is rendered as text, never as markup.
fn markdown_to_html(markdown: &str) -> minijinja::Value {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    minijinja::Value::from_safe_string(html)
}

/// Server-sent events: one `changed` per check, transition or incident change; the page refreshes itself.
/// At most `auth::MAX_EVENT_STREAMS` at once: each holds a connection open for as long as its page is open.
pub async fn events<S: Store>(
    State(state): State<WebState<S>>,
    Extension(limits): Extension<Limits>,
) -> ApiResult<Response> {
    let Some(tx) = &state.events else {
        return Err(err(StatusCode::NOT_FOUND, "no live events in this process"));
    };
    let Some(slot) = StreamSlot::take(&limits) else {
        return Err(err(StatusCode::SERVICE_UNAVAILABLE, "too many open event streams; the page still works without"));
    };
    let rx = tx.subscribe();
    let stream = futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        loop {
            match rx.recv().await {
                Ok(a) => {
                    let kind = match a {
                        lookout_app::Activity::Checked { .. } => "check",
                        lookout_app::Activity::Transition(_) => "transition",
                        lookout_app::Activity::Incident { .. } => "incident",
                    };
                    return Some((Ok::<_, Infallible>(SseEvent::default().data(kind)), (rx, slot)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_check_reads_as_words_with_how_long_ago() {
        let now = Timestamp(1_000_000_000);
        let row = |status: Option<u16>, error: Option<&str>, ok: bool, latency_ms: f64| lookout_store::ResultRow {
            target: "t".into(),
            at: Timestamp(now.0 - 12_500),
            ok,
            status,
            latency_ms,
            error: error.map(str::to_string),
            failed_conditions: Vec::new(),
            timings: Default::default(),
            body_excerpt: None,
        };
        let http = LastView::of(&row(Some(200), None, true, 12.3), "http", now);
        assert_eq!((http.what.as_str(), http.ago.as_str()), ("HTTP 200 in 12 ms", "12 s ago"));
        assert_eq!(http.at, "1970-01-12T13:46:27Z");
        assert_eq!(
            LastView::of(&row(None, None, true, 0.42), "tcp", now).what,
            "connected in 0.4 ms",
            "not 'None in 0 ms'"
        );
        let refused = LastView::of(&row(None, Some("connection refused"), false, 1.0), "tcp", now);
        assert_eq!(refused.what, "connection refused after 1.0 ms");
        assert_eq!(LastView::of(&row(Some(500), None, false, 40.0), "http", now).what, "HTTP 500 in 40 ms");
        assert_eq!(ago(Timestamp(now.0 - 3 * 60_000 - 5), now), "3 min ago");
        assert_eq!(ago(Timestamp(now.0 - 26 * 3_600_000), now), "1 d ago");
        let when = super::When::of(Timestamp(now.0 - 125_000), now);
        assert_eq!((when.ago.as_str(), when.at.len(), when.utc.ends_with(" UTC")), ("2 min ago", 20, true));
        assert_eq!(when.utc, format!("{} {} UTC", &when.at[..10], &when.at[11..19]), "{when:?}");
    }

    #[test]
    fn the_postmortem_renders_as_html_without_markup_from_logs() {
        let md = "## Summary\n\nfailed: \\[ERROR\\_LOG\\] (&lt;script&gt;alert(1)&lt;/script&gt;)\n\n<b>raw</b>\n\n| time | event |\n|---|---|\n| 14:00 | a \\| b |\n";
        let html = super::markdown_to_html(md).to_string();
        assert!(html.contains("<h2>Summary</h2>"), "{html}");
        assert!(html.contains("[ERROR_LOG] (&lt;script&gt;alert(1)&lt;/script&gt;)"), "{html}");
        assert!(html.contains("&lt;b&gt;raw&lt;/b&gt;") && !html.contains("<b>raw"), "raw HTML becomes text: {html}");
        assert!(html.contains("<table>") && html.contains("a | b"), "{html}");
    }

    #[test]
    fn every_built_in_template_compiles_and_escapes() {
        let env = super::templates();
        for name in ["base.html", "dashboard.html", "incidents.html", "incident.html", "status.html", "signin.html"] {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
        let html = env
            .get_template("incidents.html")
            .unwrap()
            .render(minijinja::context! { title => "<t>", live => false, public => false, incidents => vec![
                minijinja::context! { id => "x", status => "open", opened => super::When::of(Timestamp(0), Timestamp(0)), duration => "", ack => "<b>", title => "<script>alert(1)</script>" }
            ] })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") && !html.contains("<script>alert"),
            "{html}"
        );
    }
}

#[cfg(test)]
mod chart_tests {
    #[test]
    fn a_chart_is_one_point_per_value_scaled_to_the_largest() {
        assert_eq!(super::chart(&[1.0, 2.0, 4.0]).as_deref(), Some("0.0,22.0 60.0,15.0 120.0,1.0"));
        assert_eq!(super::chart(&[5.0]), None, "one value is not a line");
    }
}
