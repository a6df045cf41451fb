//! `/server`: the machine and its web servers over the last hours — one chart per reading of each status page
//! (`[[status]]`), host part (`[host]`) and process (`[[process]]`), read from the store's readings (raw, or the
//! per-minute and per-hour roll-ups further back), with axes, units, a value on hover and the periods its alerts
//! fired shaded. Server-rendered SVG: nothing to load, and readable without JavaScript.

use axum::extract::{Query, State};
use axum::response::Response;
use lookout_core::{Timestamp, TransitionKind};
use lookout_engine::condition::Unit;
use lookout_store::{ReadingBucket, Store};
use minijinja::context;

use crate::pages::page;
use crate::{ApiResult, WebState};

/// Points per chart: the range is cut into this many slices.
const POINTS: i64 = 90;

#[derive(serde::Deserialize)]
pub struct Range {
    /// Hours back from now (1 to 720; default 6).
    hours: Option<i64>,
}

pub async fn server<S: Store>(State(state): State<WebState<S>>, Query(range): Query<Range>) -> ApiResult<Response> {
    let hours = range.hours.unwrap_or(6).clamp(1, 720);
    let to = Timestamp::now();
    let from = Timestamp(to.0 - hours * 3_600_000);
    let bucket = (hours * 3_600_000 / POINTS).max(1000);
    let mut sections = Vec::new();
    let mut targets = state.config.targets.clone();
    targets.extend(crate::other_machines(&state).await?);
    for (target, names) in lookout_app::server_curves::charted(&targets) {
        let readings = state.store.readings_between(target.name.clone(), from, to, bucket).await?;
        let mut fired = Vec::new();
        for name in &names {
            fired.extend(fired_periods(state.store.as_ref(), name, from, to).await?);
        }
        let mut charts = Vec::new();
        for (reading, unit, meaning) in lookout_engine::READINGS {
            let points: Vec<&ReadingBucket> = readings.iter().filter(|b| b.name == *reading).collect();
            if points.is_empty() {
                continue;
            }
            let last = points.last().map(|b| format_value(b.mean, *unit)).unwrap_or_default();
            charts.push(context! {
                name => reading,
                meaning => meaning,
                last => last,
                svg => minijinja::Value::from_safe_string(svg(&points, from.0, to.0, *unit, &fired, reading)),
            });
        }
        let label = target
            .alert
            .labels
            .get("mountpoint")
            .map_or_else(|| target.name.clone(), |m| format!("{} ({m})", target.name));
        let scoreboard = match &target.check {
            lookout_config::Check::Status(s) if s.server == lookout_config::Server::Apache => {
                let last = state.store.recent_results(target.name.clone(), 1).await?;
                last.into_iter().next().and_then(|r| Some(scoreboard(r.body_excerpt?.strip_prefix("Scoreboard: ")?)))
            }
            _ => None,
        };
        sections.push(context! {
            name => label,
            kind => target.check.kind_name(),
            charts => charts,
            fired => !fired.is_empty(),
            scoreboard => scoreboard,
        });
    }
    // The web servers' own account, from their access logs: requests per second, the 5xx ratio and the request
    // time's percentiles per slice.
    for log in state.config.logs.iter().filter(|l| l.follows.is_none()) {
        let minutes = state.store.log_counts_between(log.name.clone(), from, to).await?;
        if minutes.is_empty() {
            continue;
        }
        let fired = fired_periods(state.store.as_ref(), &log.name, from, to).await?;
        let (rate, ratio) = log_points(&minutes, from.0, bucket);
        // Each minute's percentiles of the request durations (`%D`/`%T`), if the format has them; a slice of
        // several minutes shows their mean, and its worst minute on hover.
        let latency = state.store.readings_between(log.name.clone(), from, to, bucket.max(60_000)).await?;
        let percentile = |name: &str| latency.iter().filter(|b| b.name == name).cloned().collect::<Vec<_>>();
        let (p50, p95, p99) = (percentile("LATENCY_P50"), percentile("LATENCY_P95"), percentile("LATENCY_P99"));
        let mut charts = Vec::new();
        for (name, unit, meaning, points) in [
            ("REQUESTS_PER_SECOND", Unit::Number, "requests per second in the access log", &rate),
            ("5XX_RATIO", Unit::Ratio, "5xx answers ÷ requests in the access log", &ratio),
            ("LATENCY_P50", Unit::Duration, "median request time per minute (access log)", &p50),
            ("LATENCY_P95", Unit::Duration, "95th percentile of request time per minute", &p95),
            ("LATENCY_P99", Unit::Duration, "99th percentile of request time per minute", &p99),
        ] {
            if points.is_empty() && name.starts_with("LATENCY") {
                continue;
            }
            let refs: Vec<&ReadingBucket> = points.iter().collect();
            let last = refs.last().map(|b| format_value(b.mean, unit)).unwrap_or_default();
            charts.push(context! {
                name => name,
                meaning => meaning,
                last => last,
                svg => minijinja::Value::from_safe_string(svg(&refs, from.0, to.0, unit, &fired, name)),
            });
        }
        sections
            .push(context! { name => log.name.clone(), kind => "log", charts => charts, fired => !fired.is_empty() });
    }
    page(
        "server.html",
        context! { title => "Server", live => false, public => false, hours => hours, sections => sections },
    )
}

/// The states of Apache's scoreboard, as mod_status's own key says them.
const SLOTS: &[(char, &str)] = &[
    ('_', "waiting for connection"),
    ('S', "starting up"),
    ('R', "reading request"),
    ('W', "sending reply"),
    ('K', "keepalive (read)"),
    ('D', "DNS lookup"),
    ('C', "closing connection"),
    ('L', "logging"),
    ('G', "gracefully finishing"),
    ('I', "idle cleanup of worker"),
    ('.', "open slot with no current process"),
];

/// Apache's scoreboard as the server saw it at the last reading: one cell per worker slot, and how many are in
/// each state. The page is the server's text: any character that is not a known state is drawn as `?`, so
/// nothing from it reaches the HTML unescaped.
fn scoreboard(line: &str) -> minijinja::Value {
    let mut cells = String::with_capacity(line.len() * 40);
    let mut counts: Vec<(char, &str, usize)> = Vec::new();
    for c in line.trim().chars() {
        let (c, meaning) = SLOTS.iter().find(|(k, _)| *k == c).copied().unwrap_or(('?', "unknown state"));
        let class = match c {
            '_' => "idle",
            '.' => "open",
            'W' | 'R' => "busy",
            '?' => "unknown",
            _ => "other",
        };
        cells.push_str(&format!("<span class=\"slot {class}\" title=\"{meaning}\">{c}</span>"));
        match counts.iter_mut().find(|(k, ..)| *k == c) {
            Some(n) => n.2 += 1,
            None => counts.push((c, meaning, 1)),
        }
    }
    counts.sort_by_key(|(c, ..)| SLOTS.iter().position(|(k, _)| k == c).unwrap_or(SLOTS.len()));
    let legend: Vec<String> = counts.iter().map(|(c, meaning, n)| format!("{c} {n} {meaning}")).collect();
    minijinja::Value::from_serialize(serde_json::json!({
        "cells": cells,
        "legend": legend,
        "slots": line.trim().chars().count(),
    }))
}

/// A log source's minutes as points per slice of `bucket` ms: requests per second, and the 5xx ratio (slices
/// without requests have none).
fn log_points(minutes: &[lookout_core::LogCount], from: i64, bucket: i64) -> (Vec<ReadingBucket>, Vec<ReadingBucket>) {
    let mut slices: std::collections::BTreeMap<i64, (u64, u64, u64)> = Default::default();
    for m in minutes {
        let slice = (m.minute * 1000 - from).div_euclid(bucket.max(60_000));
        let e = slices.entry(slice).or_default();
        e.0 += m.requests;
        e.1 += m.classes[4];
        e.2 += 1;
    }
    let width = bucket.max(60_000);
    let point = |name: &str, start: i64, v: f64, n: u64| ReadingBucket {
        name: name.into(),
        start: Timestamp(from + start * width),
        n,
        mean: v,
        min: v,
        max: v,
    };
    let mut rate = Vec::new();
    let mut ratio = Vec::new();
    for (slice, (requests, errors, n)) in slices {
        rate.push(point("REQUESTS_PER_SECOND", slice, requests as f64 / (n as f64 * 60.0), n));
        if requests > 0 {
            ratio.push(point("5XX_RATIO", slice, errors as f64 / requests as f64, n));
        }
    }
    (rate, ratio)
}

/// The spans (ms) a target's alert fired within the range: firing → resolved, or still firing at its end.
async fn fired_periods<S: Store>(
    store: &S,
    target: &str,
    from: Timestamp,
    to: Timestamp,
) -> lookout_store::Result<Vec<(i64, i64)>> {
    let mut spans = Vec::new();
    let mut open: Option<i64> = None;
    let mut transitions = store.transitions(Some(target.to_string())).await?;
    transitions.sort_by_key(|t| t.at);
    for t in transitions {
        match t.kind {
            TransitionKind::Firing => open = Some(t.at.0),
            TransitionKind::Resolved => {
                if let Some(start) = open.take() {
                    spans.push((start, t.at.0));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        spans.push((start, to.0));
    }
    Ok(spans.into_iter().filter(|(s, e)| *e >= from.0 && *s <= to.0).collect())
}

/// A value as people read it: `85.5%`, `2h6m`, `1.25`.
pub(crate) fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => format!("{:.1}%", v * 100.0),
        Unit::Duration => lookout_core::format_duration(std::time::Duration::from_millis(v.max(0.0) as u64)),
        Unit::Number if v.abs() >= 100.0 || v.fract() == 0.0 => format!("{v:.0}"),
        Unit::Number => format!("{v:.2}"),
    }
}

const W: f64 = 600.0;
const H: f64 = 140.0;
const LEFT: f64 = 58.0;
const BOTTOM: f64 = 22.0;

/// One chart: the mean per slice as a line, a dot per slice whose tooltip says its time, mean, min and max; the
/// y axis from 0 (ratios to 100 %) to the top with three labels, the x axis with the range's start, middle and
/// end (UTC), and the periods in `fired` shaded.
pub(crate) fn svg(
    points: &[&ReadingBucket],
    from: i64,
    to: i64,
    unit: Unit,
    fired: &[(i64, i64)],
    name: &str,
) -> String {
    let span = (to - from).max(1) as f64;
    let top = match unit {
        Unit::Ratio => 1.0,
        _ => points.iter().map(|b| b.max).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE) * 1.1,
    };
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - 8.0;
    let x = |t: i64| LEFT + (t - from) as f64 / span * plot_w;
    let y = |v: f64| 8.0 + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    // `name` is one of the fixed reading names (ASCII capitals and `_`): nothing to escape.
    let mut s = format!("<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{name}\">");
    for (start, end) in fired {
        let (a, b) = (x((*start).max(from)), x((*end).min(to)));
        s.push_str(&format!(
            "<rect class=\"fired\" x=\"{a:.1}\" y=\"8\" width=\"{:.1}\" height=\"{plot_h:.1}\"><title>alert firing</title></rect>",
            (b - a).max(1.0)
        ));
    }
    // Axes and labels.
    s.push_str(&format!(
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"8\" x2=\"{LEFT}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        8.0 + plot_h,
        8.0 + plot_h,
        W - 8.0,
        8.0 + plot_h
    ));
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        s.push_str(&format!(
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><line class=\"grid\" x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
            LEFT - 4.0,
            y(v) + 4.0,
            format_value(v, unit),
            y(v),
            W - 8.0,
            y(v)
        ));
    }
    for (t, anchor) in [(from, "start"), ((from + to) / 2, "middle"), (to, "end")] {
        s.push_str(&format!(
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(t),
            H - 6.0,
            hh_mm(t)
        ));
    }
    let line: Vec<String> = points.iter().map(|b| format!("{:.1},{:.1}", x(b.start.0), y(b.mean))).collect();
    s.push_str(&format!("<polyline class=\"series\" points=\"{}\"/>", line.join(" ")));
    for b in points {
        s.push_str(&format!(
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"><title>{} UTC: {} (min {}, max {}, {} readings)</title></circle>",
            x(b.start.0),
            y(b.mean),
            hh_mm(b.start.0),
            format_value(b.mean, unit),
            format_value(b.min, unit),
            format_value(b.max, unit),
            b.n
        ));
    }
    s.push_str("</svg>");
    s
}

/// `14:05` (UTC) of a time in ms.
fn hh_mm(ms: i64) -> String {
    lookout_app::server_curves::hh_mm(Timestamp(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoreboard_is_drawn_cell_by_cell_with_its_states_counted_and_nothing_else_passes() {
        let board = scoreboard("_WW_K....<b>");
        let cells = board.get_attr("cells").unwrap().to_string();
        assert_eq!(cells.matches("class=\"slot busy\"").count(), 2);
        assert_eq!(cells.matches("class=\"slot open\"").count(), 4);
        assert!(!cells.contains("<b>") && cells.matches(">?<").count() == 3, "{cells}");
        let legend: Vec<String> =
            serde_json::from_value(serde_json::to_value(board.get_attr("legend").unwrap()).unwrap()).unwrap();
        assert_eq!(
            legend,
            [
                "_ 2 waiting for connection",
                "W 2 sending reply",
                "K 1 keepalive (read)",
                ". 4 open slot with no current process",
                "? 3 unknown state"
            ]
        );
    }

    fn bucket(start: i64, mean: f64) -> ReadingBucket {
        ReadingBucket { name: "X".into(), start: Timestamp(start), n: 6, mean, min: mean / 2.0, max: mean * 1.5 }
    }

    #[test]
    fn a_log_s_minutes_become_requests_per_second_and_a_5xx_ratio() {
        let minute = |m: i64, requests: u64, errors: u64| lookout_core::LogCount {
            minute: m * 60,
            requests,
            classes: [0, requests - errors, 0, 0, errors],
            malformed: 0,
        };
        let (rate, ratio) = log_points(&[minute(0, 120, 0), minute(1, 60, 30), minute(5, 0, 0)], 0, 120_000);
        assert_eq!(rate.iter().map(|p| p.mean).collect::<Vec<_>>(), [1.5, 0.0], "two minutes a slice: 180 / 120 s");
        assert_eq!(ratio.iter().map(|p| p.mean).collect::<Vec<_>>(), [30.0 / 180.0], "no ratio without requests");
    }

    #[test]
    fn a_chart_has_axes_units_hover_values_and_shaded_alerts() {
        let points = [bucket(0, 0.25), bucket(3_600_000, 0.5)];
        let refs: Vec<&ReadingBucket> = points.iter().collect();
        let svg = svg(&refs, 0, 7_200_000, Unit::Ratio, &[(3_000_000, 4_000_000)], "WORKER_SATURATION");
        assert!(svg.contains(">100.0%</text>") && svg.contains(">0.0%</text>"), "y axis in percent: {svg}");
        assert!(svg.contains(">00:00</text>") && svg.contains(">02:00</text>"), "x axis in UTC: {svg}");
        assert!(svg.contains("<title>01:00 UTC: 50.0% (min 25.0%, max 75.0%, 6 readings)</title>"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"fired\"").count(), 1);
        assert_eq!(format_value(7_560_000.0, Unit::Duration), "2h6m");
        assert_eq!(format_value(3.0, Unit::Number), "3");
    }
}
