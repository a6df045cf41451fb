//! The public status page: every target and log source by group (under its `public_name`) with its state, daily
//! uptime bars and uptime over the days there is data for, and the incidents of the last 90 days — no reasons,
//! paths or evidence.
//!
//! It tells the truth: the headline says "operational" only when every shown target and log source is ok *and*
//! no incident of a shown group is open (an incident can outlive its alert until it is resolved, and a log
//! source's alert is as real as a probe's); uptime says over how long it was measured ("since 14 Nov"), not
//! "90 days" over three minutes of data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::State;
use axum::response::Response;
use lookout_core::{Phase, Timestamp};
use lookout_store::Store;
use minijinja::context;
use serde::Serialize;

use crate::pages::{DAY_MS, incident_row, page, pct, uptime_over};
use crate::{ApiResult, WebState};

const DAYS: i64 = 90;
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

#[derive(Serialize)]
struct Bar {
    class: &'static str,
    title: String,
}

#[derive(Serialize)]
struct StatusRow {
    /// The config name: the row's anchor (`/status#status-site`), stable when the shown name is reworded.
    id: String,
    /// What users read: `public_name`, or the config name.
    name: String,
    /// `target` or `log`.
    kind: &'static str,
    state: &'static str,
    label: &'static str,
    bars: Vec<Bar>,
    /// e.g. "99.95% uptime since 14 Nov", "99.95% uptime over 90 days", "no data yet".
    uptime: String,
}

/// `2026-11-14` for a Unix day.
fn date(day: i64) -> String {
    Timestamp::from_millis(day * DAY_MS).to_rfc3339_seconds().chars().take(10).collect()
}

/// `14 Nov` for a Unix day.
fn short_date(day: i64) -> String {
    let d = date(day);
    let month = d.get(5..7).and_then(|m| m.parse::<usize>().ok()).and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    let dom = d.get(8..10).map(|s| s.trim_start_matches('0')).unwrap_or("");
    match month {
        Some(m) => format!("{dom} {m}"),
        None => d,
    }
}

fn state_of(phase: Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::Ok => ("operational", "operational"),
        Phase::Pending => ("pending", "degraded"),
        Phase::Firing => ("down", "down"),
    }
}

/// The uptime text over the days `days` cover: the whole window, or since the first day with data.
fn uptime_text(days: &[(i64, u64, u64)], today: i64) -> String {
    let first = today - (DAYS - 1);
    match days.iter().find(|(d, _, total)| *d >= first && *total > 0) {
        None => "no data yet".into(),
        Some((d, ..)) if *d <= first => format!("{} uptime over {DAYS} days", uptime_over(days, first)),
        Some((d, ..)) if *d == today => format!("{} uptime since today", uptime_over(days, first)),
        Some((d, ..)) => format!("{} uptime since {}", uptime_over(days, first), short_date(*d)),
    }
}

fn bars(days: &[(i64, u64, u64)], today: i64) -> Vec<Bar> {
    let by_day: HashMap<i64, (u64, u64)> = days.iter().map(|(d, ok, total)| (*d, (*ok, *total))).collect();
    (today - (DAYS - 1)..=today)
        .map(|d| match by_day.get(&d) {
            None => Bar { class: "none", title: format!("{}: no data", date(d)) },
            Some((ok, total)) => {
                let ratio = *ok as f64 / (*total).max(1) as f64;
                let class = if ratio >= 0.9999 {
                    "ok"
                } else if ratio >= 0.95 {
                    "degraded"
                } else {
                    "down"
                };
                Bar { class, title: format!("{}: {}", date(d), pct(*ok, *total)) }
            }
        })
        .collect()
}

/// The public status page: no token, no reasons, paths or evidence.
pub async fn status<S: Store>(State(state): State<WebState<S>>) -> ApiResult<Response> {
    let now = Timestamp::now();
    let today = now.as_millis().div_euclid(DAY_MS);
    let states: HashMap<String, lookout_core::AlertState> = state.store.alert_states().await?.into_iter().collect();
    let phase = |name: &str| states.get(name).map(|s| s.phase).unwrap_or_default();
    let mut groups: BTreeMap<String, Vec<StatusRow>> = BTreeMap::new();
    let mut all_ok = true;
    // The services users reach, not the machine under them (its disks, memory, processes): those are the team's,
    // on the dashboard.
    let services = state.config.targets.iter().filter(|t| !matches!(t.check, lookout_config::Check::Host(_)));
    for t in services {
        let p = phase(&t.name);
        all_ok &= p == Phase::Ok;
        let (st, label) = state_of(p);
        let days =
            state.store.daily_uptime(t.name.clone(), Timestamp::from_millis((today - (DAYS - 1)) * DAY_MS)).await?;
        groups.entry(t.group.clone()).or_default().push(StatusRow {
            id: t.name.clone(),
            name: t.public_name.clone().unwrap_or_else(|| t.name.clone()),
            kind: "target",
            state: st,
            label,
            bars: bars(&days, today),
            uptime: uptime_text(&days, today),
        });
    }
    // A source's warning level is not a service of its own: while only it fires, the source is degraded.
    for l in state.config.logs.iter().filter(|l| l.follows.is_none()) {
        let warned =
            state.config.logs.iter().any(|w| w.follows.as_ref() == Some(&l.name) && phase(&w.name) == Phase::Firing);
        let p = match phase(&l.name) {
            Phase::Ok if warned => Phase::Pending,
            p => p,
        };
        all_ok &= p == Phase::Ok;
        let (st, label) = state_of(p);
        groups.entry(l.group.clone()).or_default().push(StatusRow {
            id: l.name.clone(),
            name: l.public_name.clone().unwrap_or_else(|| l.name.clone()),
            kind: "log",
            state: st,
            label,
            bars: Vec::new(),
            uptime: "judged from its server's logs".into(),
        });
    }
    // Open incidents are asked for apart from the list below: an open one older than the latest 100 still counts.
    let open_groups: BTreeSet<String> =
        state.store.open_incident_groups().await?.into_iter().filter(|g| groups.contains_key(g)).collect();
    let recent = state.store.incidents(100).await?;
    all_ok &= open_groups.is_empty();
    let groups: Vec<minijinja::Value> = groups
        .into_iter()
        .map(|(name, targets)| {
            let incident_open = open_groups.contains(&name);
            context! { name, targets, incident_open }
        })
        .collect();
    let since = Timestamp::from_millis(now.as_millis() - DAYS * DAY_MS);
    let incidents: Vec<minijinja::Value> = recent
        .iter()
        .filter(|i| i.opened_at >= since)
        .map(|i| {
            let r = incident_row(i, now);
            context! { opened => r.opened, group => r.group, status => r.status, duration => r.duration }
        })
        .collect();
    page("status.html", context! { title => "Status", live => false, public => true, all_ok, groups, incidents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_says_over_how_long_it_was_measured() {
        let today = 20_000;
        assert_eq!(uptime_text(&[], today), "no data yet");
        assert_eq!(uptime_text(&[(today, 3, 4)], today), "75.00% uptime since today");
        assert_eq!(uptime_text(&[(today - 2, 1, 1), (today, 1, 1)], today), "100.00% uptime since 2 Oct");
        assert_eq!(uptime_text(&[(today - 89, 1, 2), (today, 1, 2)], today), "50.00% uptime over 90 days");
        assert_eq!(short_date(20_406), "14 Nov");
    }
}
