//! What decides who is told: `[[route]]`s (which channels get an alert, how long to gather a group, how often to
//! remind), `[[maintenance]]` windows (alerts inside are recorded, not sent), and `depends_on` between targets.

use std::ops::Range;
use std::time::Duration;

use lookout_engine::Matcher;
use lookout_engine::schedule::{Cron, MAX_RECURRING, Schedule};

use crate::error::ConfigError;
use crate::raw::{RawMaintenance, RawRoute};
use crate::{At, LogSource, Notify, Target};

/// A route: alerts that match every matcher go to `channels`. Routes are tried in order and the first match
/// wins unless it says `continue = true`; an alert no route takes goes to every channel (never nowhere).
#[derive(Clone, Debug)]
pub struct Route {
    pub matchers: Vec<Matcher>,
    pub channels: Vec<String>,
    /// How long to gather the alerts of one group into one message; `None` (not set): the group's default,
    /// [`Config::default_group_waits`](crate::Config::default_group_waits) — one check round for a group of
    /// several, at once for a target alone.
    pub group_wait: Option<Duration>,
    /// How often a firing alert is sent again as a reminder (default 4h).
    pub repeat_interval: Duration,
    pub continue_matching: bool,
}

pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
/// The shortest `repeat_interval`: a reminder is for people, and `0s` sent one every second.
pub const MIN_REPEAT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Maintenance {
    pub name: String,
    /// Which alerts it covers (empty: all).
    pub matchers: Vec<Matcher>,
    pub schedule: Schedule,
}

pub(crate) fn matchers(
    list: &Option<Vec<toml::Spanned<String>>>,
    section: &str,
    at: &At<'_>,
) -> Result<Vec<Matcher>, ConfigError> {
    list.iter()
        .flatten()
        .map(|m| Matcher::parse(m.get_ref()).map_err(|e| at(m.span(), format!("{e} in {section}"))))
        .collect()
}

pub(crate) fn route(r: RawRoute, notify: &[Notify], at: &At<'_>) -> Result<Route, ConfigError> {
    let section = "[[route]]";
    let matchers = matchers(&r.matchers, section, at)?;
    let channels = match &r.channels {
        Some(c) => {
            for name in c.get_ref() {
                if !notify.iter().any(|n| &n.name == name) {
                    let known: Vec<&str> = notify.iter().map(|n| n.name.as_str()).collect();
                    return Err(at(
                        c.span(),
                        format!(
                            "{section} sends to {name:?}, which no [[notify]] defines (defined: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
            c.get_ref().clone()
        }
        None => notify.iter().map(|n| n.name.clone()).collect(),
    };
    Ok(Route {
        matchers,
        channels,
        group_wait: r.group_wait.map(|d| d.get_ref().0),
        repeat_interval: crate::notify::at_least(
            &r.repeat_interval,
            "repeat_interval",
            DEFAULT_REPEAT_INTERVAL,
            MIN_REPEAT_INTERVAL,
            section,
            at,
        )?,
        continue_matching: r.cont.unwrap_or(false),
    })
}

pub(crate) fn maintenance(m: RawMaintenance, at: &At<'_>) -> Result<Maintenance, ConfigError> {
    let section = format!("[[maintenance]] {:?}", m.name.get_ref());
    let matchers = matchers(&m.matchers, &section, at)?;
    let tz = match &m.timezone {
        Some(t) => jiff::tz::TimeZone::get(t.get_ref()).map_err(|_| {
            at(
                t.span(),
                format!(
                    "unknown timezone {:?} in {section}; use an IANA name like \"Europe/Berlin\" or \"UTC\"",
                    t.get_ref()
                ),
            )
        })?,
        None => jiff::tz::TimeZone::UTC,
    };
    let span_of = |s: &Option<toml::Spanned<String>>| s.as_ref().map_or(m.name.span(), |x| x.span());
    let schedule = match (&m.schedule, &m.start) {
        (Some(cron), None) => {
            let parsed = Cron::parse(cron.get_ref()).map_err(|e| at(cron.span(), format!("{e} in {section}")))?;
            let Some(duration) = &m.duration else {
                return Err(at(cron.span(), format!("{section} has a schedule but no duration = \"2h\"")));
            };
            let d = duration.get_ref().0;
            if d.is_zero() || d > MAX_RECURRING {
                return Err(at(duration.span(), format!("duration in {section} must be between 1m and 7d")));
            }
            if m.end.is_some() {
                return Err(at(span_of(&m.end), format!("{section}: end applies to a one-off window (start = ...)")));
            }
            Schedule::Recurring { cron: parsed, duration: d, tz }
        }
        (None, Some(start)) => {
            let end = match (&m.end, &m.duration) {
                (Some(e), None) => e.get_ref().clone(),
                (None, Some(d)) => {
                    let civil: jiff::civil::DateTime = start.get_ref().parse().map_err(|e| {
                        at(
                            start.span(),
                            format!(
                                "{:?} in {section} is not a date and time like 2026-11-28T02:00: {e}",
                                start.get_ref()
                            ),
                        )
                    })?;
                    let span = jiff::SignedDuration::try_from(d.get_ref().0).unwrap_or(jiff::SignedDuration::ZERO);
                    let zoned = civil.to_zoned(tz.clone()).map_err(|e| at(start.span(), e.to_string()))?;
                    zoned.checked_add(span).map_err(|e| at(d.span(), e.to_string()))?.datetime().to_string()
                }
                _ => {
                    return Err(at(
                        start.span(),
                        format!("{section} needs either end = \"...\" or duration = \"...\""),
                    ));
                }
            };
            Schedule::once(start.get_ref(), &end, &tz).map_err(|e| at(start.span(), format!("{e} in {section}")))?
        }
        (Some(cron), Some(_)) => {
            return Err(at(
                cron.span(),
                format!("{section} sets both schedule (recurring) and start (one-off): keep one"),
            ));
        }
        (None, None) => {
            return Err(at(
                m.name.span(),
                format!(
                    "{section} needs schedule = \"0 2 * * SUN\" with duration, or start = \"2026-11-28T02:00\" with end or duration"
                ),
            ));
        }
    };
    Ok(Maintenance { name: m.name.get_ref().clone(), matchers, schedule })
}

/// `depends_on` names existing targets or log sources, never itself, and never in a circle.
pub(crate) fn check_dependencies(
    targets: &[Target],
    spans: &[Range<usize>],
    logs: &[LogSource],
    at: &At<'_>,
) -> Result<(), ConfigError> {
    for (t, span) in targets.iter().zip(spans) {
        for parent in &t.depends_on {
            let exists = targets.iter().any(|x| &x.name == parent) || logs.iter().any(|l| &l.name == parent);
            if !exists || parent == &t.name {
                let why = if exists { "itself" } else { "no target or log of that name" };
                return Err(at(span.clone(), format!("depends_on in [[target]] {:?} names {parent:?}: {why}", t.name)));
            }
        }
        // Walk up from each parent; reaching this target again is a circle.
        let mut stack: Vec<&str> = t.depends_on.iter().map(String::as_str).collect();
        let mut seen: Vec<&str> = Vec::new();
        while let Some(name) = stack.pop() {
            if name == t.name {
                return Err(at(span.clone(), format!("depends_on in [[target]] {:?} makes a circle", t.name)));
            }
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some(p) = targets.iter().find(|x| x.name == name) {
                stack.extend(p.depends_on.iter().map(String::as_str));
            }
        }
    }
    Ok(())
}
