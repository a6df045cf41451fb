//! `[[status]]`: a web server's own status page — Apache `mod_status` (`?auto`), nginx `stub_status`, PHP-FPM's
//! `pm.status_path` (`?json`) — polled on an interval. Its readings (`[BUSY_WORKERS]`, `[WORKER_SATURATION]`,
//! `[LISTEN_QUEUE]`, …) are placeholders of the condition language, and `fire_when` rules over them alert like a
//! probe's conditions: a `[[status]]` becomes a [`Target`] with a [`Check::Status`], so thresholds, `for`,
//! routes, silences, incidents and the dashboard treat it as any other target.

use std::time::Duration;

use lookout_engine::{Condition, TargetPolicy};

use crate::At;
use crate::alerting::{Reads, alert_meta, built_in, group_name, parse_conditions};
use crate::error::ConfigError;
use crate::notify::{MIN_TIMEOUT, at_least};
use crate::raw::RawStatus;
use crate::target::{Check, HttpCheck, MIN_INTERVAL, Target, count};
use crate::url::{Shown, http_url};

/// Which server's status page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `mod_status`, read as `?auto` (machine-readable).
    Apache,
    /// `stub_status`.
    Nginx,
    /// PHP-FPM's `pm.status_path`, read as `?json`.
    PhpFpm,
}

impl Server {
    pub const NAMES: [&'static str; 3] = ["apache", "nginx", "php-fpm"];

    pub fn as_str(self) -> &'static str {
        match self {
            Server::Apache => "apache",
            Server::Nginx => "nginx",
            Server::PhpFpm => "php-fpm",
        }
    }

    fn of(name: &str) -> Option<Server> {
        match name {
            "apache" => Some(Server::Apache),
            "nginx" => Some(Server::Nginx),
            "php-fpm" | "fpm" => Some(Server::PhpFpm),
            _ => None,
        }
    }

    /// What pages if `fire_when` says nothing: a pool busy for minutes (warning) or saturated (critical), and
    /// requests queueing for FPM's processes for 30 s; each level its own target (name suffix, severity, rules,
    /// `for` in seconds). nginx's page has no limit to compare with: only its absence alerts.
    fn default_levels(self) -> &'static [Level] {
        const WARNING: Level = ("", "warning", &["[WORKER_SATURATION] >= 80%"], 120);
        const CRITICAL: Level = ("-critical", "critical", &["[WORKER_SATURATION] >= 95%"], 0);
        match self {
            Server::Apache => &[WARNING, CRITICAL],
            Server::Nginx => &[("", "critical", &[], 0)],
            Server::PhpFpm => &[WARNING, CRITICAL, ("-queue", "critical", &["[LISTEN_QUEUE] > 0"], 30)],
        }
    }

    /// The query the machine-readable page needs, when the URL has none.
    fn query(self) -> Option<&'static str> {
        match self {
            Server::Apache => Some("auto"),
            Server::Nginx => None,
            Server::PhpFpm => Some("json"),
        }
    }
}

/// A status page to read.
#[derive(Clone, Debug)]
pub struct StatusCheck {
    pub server: Server,
    pub http: HttpCheck,
    /// The most workers there can be (`MaxRequestWorkers`, `pm.max_children`), for `[WORKER_SATURATION]`:
    /// Apache's scoreboard has a slot per possible worker, which is the limit when this is not given.
    pub workers: Option<u32>,
}

/// A default alert level: name suffix, severity, rules, `for` in seconds.
type Level = (&'static str, &'static str, &'static [&'static str], u64);

/// A `[[status]]`'s targets: one with its own `fire_when`, else one per default level (the first has the section's
/// name, the others a suffix: `-critical`, `-queue`).
pub(crate) fn validate_status(s: RawStatus, at: &At<'_>) -> Result<Vec<Target>, ConfigError> {
    let name = s.name.get_ref().clone();
    let section = format!("[[status]] {name:?}");
    let server = Server::of(s.kind.get_ref()).ok_or_else(|| {
        at(s.kind.span(), format!("type {:?} in {section}: use one of {}", s.kind.get_ref(), Server::NAMES.join(", ")))
    })?;
    let mut url = s.url.get_ref().clone();
    if let Some(q) = server.query()
        && !url.contains('?')
    {
        url = format!("{url}?{q}");
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(at(s.url.span(), format!("url in {section} must start with http:// or https://")));
    }
    let uri = http_url(&url, Shown::Redacted, "url", s.url.span(), &section, at)?;
    let http = HttpCheck {
        url: uri,
        method: http::Method::GET,
        headers: Vec::new(),
        body: None,
        follow_redirects: true,
        verify_tls: true,
        http2: false,
    };
    let workers = match &s.workers {
        Some(w) if *w.get_ref() == 0 => {
            return Err(at(w.span(), format!("\"workers\" in {section} must be at least 1")));
        }
        w => w.as_ref().map(|w| *w.get_ref()),
    };
    let interval = at_least(&s.interval, "interval", Duration::from_secs(10), MIN_INTERVAL, &section, at)?;
    let timeout = at_least(&s.timeout, "timeout", Duration::from_secs(5), MIN_TIMEOUT, &section, at)?;
    let hysteresis = crate::host::hysteresis(&s.hysteresis, &section, at)?;
    let threshold = |v: &Option<toml::Spanned<u32>>, key: &str, default: u32| count(v, key, default, &section, at);
    let policy = TargetPolicy {
        failure_threshold: threshold(&s.failure_threshold, "failure_threshold", 2)?,
        success_threshold: threshold(&s.success_threshold, "success_threshold", 2)?,
        pending_for: s.pending_for.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0),
        quorum: 1,
        stale_after: interval * 3 + timeout,
    };
    let rules = |list: Vec<Condition>| list.into_iter().map(|c| c.fire_when().with_hysteresis(hysteresis)).collect();
    let base = Target {
        group: group_name(&s.group, &name, &section, at)?,
        public_name: None,
        alert: alert_meta(&s.severity, &s.labels, &section, at)?,
        depends_on: s.depends_on.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default(),
        name: name.clone(),
        check: Check::Status(StatusCheck { server, http, workers }),
        interval,
        timeout,
        conditions: Vec::new(),
        policy,
        diagnose: None,
        metrics: s.metrics.unwrap_or(true),
        locations: Vec::new(),
        machine: None,
    };
    if let Some(list) = s.fire_when {
        return Ok(vec![Target { conditions: rules(parse_conditions(list, &section, Reads::Probe, at)?), ..base }]);
    }
    // The default levels have their own severities and waits.
    let own = [("severity", s.severity.as_ref().map(|v| v.span())), ("for", s.pending_for.as_ref().map(|v| v.span()))];
    if let Some((key, Some(span))) = own.into_iter().find(|(_, span)| span.is_some()) {
        return Err(at(
            span,
            format!(
                "{key:?} in {section} applies to your own fire_when rules: the default alerts come as levels with their own (README, \"Server status pages\")"
            ),
        ));
    }
    let levels = server.default_levels();
    let critical =
        levels.iter().find(|(suffix, ..)| *suffix == "-critical").map(|(suffix, ..)| format!("{name}{suffix}"));
    Ok(levels
        .iter()
        .map(|(suffix, severity, sources, wait)| {
            let parsed = sources.iter().map(|src| built_in(src)).collect();
            let mut t = base.clone();
            t.name = format!("{name}{suffix}");
            t.conditions = rules(parsed);
            t.alert.severity = (*severity).to_string();
            t.policy.pending_for = Duration::from_secs(*wait);
            // Only the worse of warning and critical is sent.
            if *severity == "warning"
                && let Some(c) = &critical
            {
                t.depends_on.push(c.clone());
            }
            t
        })
        .collect())
}
