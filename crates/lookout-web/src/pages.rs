//! The HTML side: the dashboard (targets, uptime, latency, log traffic), incidents and an incident's page (timeline,
//! diagnosis with evidence, impact, postmortem, actions), and the public status page (state and 90-day uptime per
//! group, incidents without internal details). Server-rendered with minijinja, whose `.html` templates escape every
//! value; templates, CSS and JS are compiled into the binary. Live updates arrive as server-sent events.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use lookout_config::Check;
use lookout_core::{IncidentStatus, Phase, Timestamp, format_duration};
use lookout_store::Store;
use minijinja::context;
use serde::Serialize;

use super::{ApiResult, WebState, authorize_read, err};

const DAY_MS: i64 = 86_400_000;

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
        ] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "A built-in template does not compile.");
            }
        }
        env
    })
}

fn page(name: &str, ctx: minijinja::Value) -> ApiResult<Response> {
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

fn pct(ok: u64, total: u64) -> String {
    if total == 0 { "—".into() } else { format!("{:.2}%", 100.0 * ok as f64 / total as f64) }
}

fn percentile(sorted: &[f64], q: f64) -> String {
    if sorted.is_empty() {
        return "—".into();
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    format!("{:.0} ms", sorted[i.min(sorted.len() - 1)])
}

#[derive(Serialize)]
struct LastView {
    status: Option<u16>,
    error: Option<String>,
    latency: String,
    at: String,
}

#[derive(Serialize)]
struct TargetRow {
    name: String,
    kind: &'static str,
    group: String,
    state: &'static str,
    since: Option<String>,
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
    chart_label: String,
    requests: Option<u64>,
    ratio: String,
}

fn chart(latencies: &[f64]) -> Option<String> {
    if latencies.len() < 2 {
        return None;
    }
    let max = latencies.iter().copied().fold(1.0_f64, f64::max);
    let step = 120.0 / (latencies.len() - 1) as f64;
    Some(
        latencies
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{:.1},{:.1}", i as f64 * step, 29.0 - 28.0 * l / max))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn uptime_over(days: &[(i64, u64, u64)], since_day: i64) -> String {
    let (ok, total) =
        days.iter().filter(|(d, ..)| *d >= since_day).fold((0, 0), |(o, t), (_, ok, total)| (o + ok, t + total));
    pct(ok, total)
}

async fn target_rows<S: Store>(state: &WebState<S>) -> ApiResult<Vec<TargetRow>> {
    let now = Timestamp::now();
    let hour_ago = Timestamp::from_millis(now.as_millis() - 3_600_000);
    let states: HashMap<String, lookout_core::AlertState> = state.store.alert_states().await?.into_iter().collect();
    let today = now.as_millis().div_euclid(DAY_MS);
    let mut rows = Vec::new();
    let base = |name: &str, kind: &'static str, group: &str| {
        let s = states.get(name).cloned().unwrap_or_default();
        TargetRow {
            name: name.into(),
            kind,
            group: group.into(),
            state: s.phase.as_str(),
            since: (s.phase != Phase::Ok && s.since.as_millis() > 0).then(|| s.since.to_rfc3339_seconds()),
            reason: (s.phase != Phase::Ok).then_some(s.last_reason).flatten(),
            last: None,
            uptime_24h: "—".into(),
            uptime_7d: "—".into(),
            uptime_30d: "—".into(),
            p50: "—".into(),
            p95: "—".into(),
            p99: "—".into(),
            chart: None,
            chart_label: String::new(),
            requests: None,
            ratio: "—".into(),
        }
    };
    for t in &state.config.targets {
        let kind = match t.check {
            Check::Http(_) => "http",
            Check::Tcp { .. } => "tcp",
            Check::Tls { .. } => "tls",
        };
        let mut row = base(&t.name, kind, &t.group);
        let day =
            state.store.results_between(t.name.clone(), Timestamp::from_millis(now.as_millis() - DAY_MS), now).await?;
        let ok = day.iter().filter(|r| r.ok).count() as u64;
        row.uptime_24h = pct(ok, day.len() as u64);
        let days = state.store.daily_uptime(t.name.clone(), Timestamp::from_millis((today - 30) * DAY_MS)).await?;
        row.uptime_7d = uptime_over(&days, today - 6);
        row.uptime_30d = uptime_over(&days, today - 29);
        let hour: Vec<f64> = day.iter().filter(|r| r.at >= hour_ago).map(|r| r.latency_ms).collect();
        let mut sorted = hour.clone();
        sorted.sort_by(f64::total_cmp);
        row.p50 = percentile(&sorted, 0.50);
        row.p95 = percentile(&sorted, 0.95);
        row.p99 = percentile(&sorted, 0.99);
        let recent: Vec<f64> = hour.iter().rev().take(120).rev().copied().collect();
        row.chart = chart(&recent);
        row.chart_label = format!("latency of the last {} checks", recent.len());
        row.last = day.last().map(|r| LastView {
            status: r.status,
            error: r.error.clone(),
            latency: format!("{:.0}", r.latency_ms),
            at: r.at.to_rfc3339_seconds(),
        });
        rows.push(row);
    }
    for l in &state.config.logs {
        let mut row = base(&l.name, "log", &l.group);
        let counts = state.store.log_counts_between(l.name.clone(), hour_ago, now).await?;
        let requests: u64 = counts.iter().map(|c| c.requests).sum();
        let failed: u64 = counts.iter().map(|c| c.classes[4]).sum();
        row.requests = Some(requests);
        row.ratio = pct(failed, requests);
        let per_minute: Vec<f64> = counts.iter().map(|c| c.requests as f64).collect();
        row.chart = chart(&per_minute);
        row.chart_label = "requests per minute, last hour".into();
        rows.push(row);
    }
    Ok(rows)
}

#[derive(Serialize)]
struct IncidentRow {
    id: String,
    status: &'static str,
    opened: String,
    duration: String,
    ack: Option<String>,
    title: String,
    group: String,
}

fn incident_row(i: &lookout_core::Incident, now: Timestamp) -> IncidentRow {
    IncidentRow {
        id: i.id.clone(),
        status: i.status.as_str(),
        opened: i.opened_at.to_rfc3339_seconds(),
        duration: format_duration(Duration::from_secs(
            i.resolved_at.unwrap_or(now).since(i.first_failure_at).as_secs(),
        )),
        ack: i.ack.as_ref().map(|a| a.by.clone()),
        title: i.title(),
        group: i.group.clone(),
    }
}

pub async fn dashboard<S: Store>(State(state): State<WebState<S>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize_read(&state, &headers)?;
    let targets = target_rows(&state).await?;
    let now = Timestamp::now();
    let open: Vec<IncidentRow> = state
        .store
        .incidents(200)
        .await?
        .iter()
        .filter(|i| i.status == IncidentStatus::Open)
        .map(|i| incident_row(i, now))
        .collect();
    page("dashboard.html", context! { title => "Targets", live => true, public => false, targets, open })
}

pub async fn incidents<S: Store>(State(state): State<WebState<S>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize_read(&state, &headers)?;
    let now = Timestamp::now();
    let incidents: Vec<IncidentRow> = state.store.incidents(200).await?.iter().map(|i| incident_row(i, now)).collect();
    page("incidents.html", context! { title => "Incidents", live => true, public => false, incidents })
}

pub async fn incident<S: Store>(
    State(state): State<WebState<S>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorize_read(&state, &headers)?;
    let view = super::view_of(&state, &id).await?;
    let now = Timestamp::now();
    let i = &view.incident;
    let row = context! {
        id => i.id.clone(),
        status => i.status.as_str(),
        title => i.title(),
        first_failure => i.first_failure_at.to_rfc3339_seconds(),
        opened => i.opened_at.to_rfc3339_seconds(),
        resolved => i.resolved_at.map(|t| t.to_rfc3339_seconds()),
        duration => incident_row(i, now).duration,
        ack => i.ack.as_ref().map(|a| a.by.clone()),
    };
    let mut seen = Vec::new();
    let diagnoses: Vec<&lookout_core::Diagnosis> = i
        .diagnoses()
        .map(|(_, d)| d)
        .filter(|d| {
            !seen.contains(&d.verdict) && {
                seen.push(d.verdict.clone());
                true
            }
        })
        .collect();
    let timeline: Vec<BTreeMap<&str, String>> = view
        .timeline
        .iter()
        .map(|e| {
            BTreeMap::from([
                ("at", e.at.to_rfc3339_seconds()),
                ("kind", e.kind.as_str().to_string()),
                ("text", e.text.clone()),
                ("by", e.by.clone().unwrap_or_default()),
            ])
        })
        .collect();
    let impact = view.impact.lines();
    let postmortem = markdown_to_html(&lookout_app::postmortem::from_incident::render(&view));
    page(
        "incident.html",
        context! { title => format!("Incident {}", i.id), live => true, public => false, i => row, diagnoses, timeline, impact, postmortem },
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

#[derive(Serialize)]
struct Bar {
    class: &'static str,
    title: String,
}

#[derive(Serialize)]
struct StatusTarget {
    name: String,
    state: &'static str,
    label: &'static str,
    bars: Vec<Bar>,
    uptime_90d: String,
}

/// The public status page: no token, no reasons, paths or evidence.
pub async fn status<S: Store>(State(state): State<WebState<S>>) -> ApiResult<Response> {
    let now = Timestamp::now();
    let today = now.as_millis().div_euclid(DAY_MS);
    let states: HashMap<String, lookout_core::AlertState> = state.store.alert_states().await?.into_iter().collect();
    let mut groups: BTreeMap<String, Vec<StatusTarget>> = BTreeMap::new();
    let mut all_ok = true;
    for t in &state.config.targets {
        let phase = states.get(&t.name).map(|s| s.phase).unwrap_or_default();
        let (st, label) = match phase {
            Phase::Ok => ("operational", "operational"),
            Phase::Pending => ("pending", "degraded"),
            Phase::Firing => ("down", "down"),
        };
        all_ok &= phase == Phase::Ok;
        let days = state.store.daily_uptime(t.name.clone(), Timestamp::from_millis((today - 89) * DAY_MS)).await?;
        let by_day: HashMap<i64, (u64, u64)> = days.iter().map(|(d, ok, total)| (*d, (*ok, *total))).collect();
        let bars = (today - 89..=today)
            .map(|d| {
                let date = Timestamp::from_millis(d * DAY_MS).to_rfc3339_seconds().chars().take(10).collect::<String>();
                match by_day.get(&d) {
                    None => Bar { class: "none", title: format!("{date}: no data") },
                    Some((ok, total)) => {
                        let ratio = *ok as f64 / (*total).max(1) as f64;
                        let class = if ratio >= 0.9999 {
                            "ok"
                        } else if ratio >= 0.95 {
                            "degraded"
                        } else {
                            "down"
                        };
                        Bar { class, title: format!("{date}: {}", pct(*ok, *total)) }
                    }
                }
            })
            .collect();
        let uptime_90d = uptime_over(&days, today - 89);
        groups.entry(t.group.clone()).or_default().push(StatusTarget {
            name: t.name.clone(),
            state: st,
            label,
            bars,
            uptime_90d,
        });
    }
    let groups: Vec<minijinja::Value> = groups.into_iter().map(|(name, targets)| context! { name, targets }).collect();
    let since = Timestamp::from_millis(now.as_millis() - 90 * DAY_MS);
    let incidents: Vec<minijinja::Value> = state
        .store
        .incidents(100)
        .await?
        .iter()
        .filter(|i| i.opened_at >= since)
        .map(|i| {
            let r = incident_row(i, now);
            context! { opened => r.opened, group => r.group, status => r.status, duration => r.duration }
        })
        .collect();
    page("status.html", context! { title => "Status", live => false, public => true, all_ok, groups, incidents })
}

/// Server-sent events: one `changed` per check, transition or incident change; the page refreshes itself.
pub async fn events<S: Store>(State(state): State<WebState<S>>, headers: HeaderMap) -> ApiResult<Response> {
    authorize_read(&state, &headers)?;
    let Some(tx) = &state.events else {
        return Err(err(StatusCode::NOT_FOUND, "no live events in this process"));
    };
    let rx = tx.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(a) => {
                    let kind = match a {
                        lookout_app::Activity::Checked { .. } => "check",
                        lookout_app::Activity::Transition(_) => "transition",
                        lookout_app::Activity::Incident { .. } => "incident",
                    };
                    return Some((Ok::<_, Infallible>(SseEvent::default().data(kind)), rx));
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
        for name in ["base.html", "dashboard.html", "incidents.html", "incident.html", "status.html"] {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
        let html = env
            .get_template("incidents.html")
            .unwrap()
            .render(minijinja::context! { title => "<t>", live => false, public => false, incidents => vec![
                minijinja::context! { id => "x", status => "open", opened => "", duration => "", ack => "<b>", title => "<script>alert(1)</script>" }
            ] })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") && !html.contains("<script>alert"),
            "{html}"
        );
    }
}
