//! `[[log]]`: a server's access and error logs, the window they are judged over and the `fire_when` rules that
//! alert on them, and the validation of all that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_engine::{LogRules, TargetPolicy};
use lookout_logs::LogFormat;
use lookout_logs::distinct::ClientKey;
use lookout_logs::error_log::ErrorFormat;
use lookout_logs::tail::StartAt;

use crate::At;
use crate::alerting::{AlertMeta, Reads, alert_meta, error_format, group_name, parse_conditions, public_name};
use crate::error::ConfigError;
use crate::raw::RawLog;

/// A `[[log]]` source: an access log and/or an error log of one server, alerting on its own rules.
#[derive(Clone, Debug)]
pub struct LogSource {
    pub name: String,
    pub access: Option<PathBuf>,
    pub format: LogFormat,
    pub error: Option<PathBuf>,
    pub error_format: ErrorFormat,
    /// Only requests to this virtual host (`%v`) count.
    pub vhost: Option<String>,
    pub rules: LogRules,
    pub policy: TargetPolicy,
    /// Where to begin in a file never read before.
    pub start_at: StartAt,
    /// Incident group: alerts of one group share an incident (default: the source's name).
    pub group: String,
    /// What the public status page calls it (`public_name`; default: `name`).
    pub public_name: Option<String>,
    /// What counts as one client affected.
    pub clients: ClientKey,
    pub alert: AlertMeta,
    /// The agent whose machine has these files (`agent = "web-1"`): only it reads them. None: every agent does,
    /// which is right for one machine.
    pub agent: Option<String>,
    /// A second level of a source (`NAME-warning`, from `warn_when`) reads no file: it is judged on the batches
    /// of the source it follows, over a window of its own, and alerts as a source of its own.
    pub follows: Option<String>,
    /// Sources whose firing makes this one's notifications redundant: a warning level's own source.
    pub depends_on: Vec<String>,
}

impl LogSource {
    /// Whether the agent `name` reads this source.
    pub fn read_by(&self, name: &str) -> bool {
        self.follows.is_none() && self.agent.as_deref().is_none_or(|a| a == name)
    }
}

/// The default critical rule on an access log: more than 5 % of the window's requests failed with a 5xx.
pub const RATIO_CRITICAL: &str = "[5XX_RATIO] > 5%";
/// The default warning rule (`NAME-warning`): more than 2 %, as Netdata's web-log alarms.
pub const RATIO_WARNING: &str = "[5XX_RATIO] > 2%";
/// The warning level counts only above this many requests a minute (Netdata's floor): 2 % of a handful of
/// requests is one unlucky request. The critical level keeps `min_requests` (10 a window by default), because
/// the founding site served ~40 requests a minute and a floor of 120 would never have told it.
pub const WARNING_MIN_PER_MINUTE: u64 = 120;

/// The default rule on a server's error log for a saturated worker pool.
pub const SATURATION_RULE: &str = "[ERROR_LOG] matches \"AH00161|reached pm.max_children\"";

/// A `[[log]]` and, when it has warning rules, its `NAME-warning` level.
pub(crate) fn validate_log(l: RawLog, base_dir: &Path, at: &At<'_>) -> Result<Vec<LogSource>, ConfigError> {
    let section = format!("[[log]] {:?}", l.name.get_ref());
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { base_dir.join(p) }
    };
    if l.access.is_none() && l.error.is_none() {
        return Err(at(
            l.name.span(),
            format!("{section} reads no file: set access = \"/var/log/apache2/access.log\" and/or error = \"...\""),
        ));
    }
    let format = match &l.format {
        Some(f) => LogFormat::named_or_custom(f.get_ref())
            .map_err(|e| at(f.span(), format!("invalid format in {section}: {e}")))?,
        None => LogFormat::named_or_custom("combined").map_err(|e| at(l.name.span(), e.to_string()))?,
    };
    let error_format = error_format(&l.error_format, &section, at)?;
    let start_at = match l.start_at.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("end", _)) => StartAt::End,
        Some(("beginning", _)) => StartAt::Beginning,
        Some((other, span)) => {
            return Err(at(span, format!("start_at = {other:?} in {section}: use \"end\" or \"beginning\"")));
        }
    };
    // Beside the 5xx ratio, a worker pool that ran out fires at once: Apache's AH00161 ("server reached
    // MaxRequestWorkers setting") and PHP-FPM's "server reached pm.max_children setting" come before the errors do.
    let spanned = |rules: &[&str]| rules.iter().map(|r| toml::Spanned::new(0..0, (*r).to_string())).collect();
    // Own `fire_when` and no `warn_when`: the user chose the rules, so no warning level comes of itself.
    let warn_when = match (&l.fire_when, l.warn_when) {
        (_, Some(w)) => w,
        (None, None) => spanned(&[RATIO_WARNING]),
        (Some(_), None) => Vec::new(),
    };
    // Hysteresis as on status pages and the host: a ratio that fired at 5 % holds until 4.75 %, so a window
    // hovering on the threshold does not page and resolve by turns.
    let steady = |rules: Vec<lookout_engine::Condition>| {
        rules.into_iter().map(|c| c.with_hysteresis(crate::host::DEFAULT_HYSTERESIS)).collect::<Vec<_>>()
    };
    let warn_when = steady(parse_conditions(warn_when, &section, Reads::Log, at)?);
    let fire_when = parse_conditions(
        l.fire_when.unwrap_or_else(|| spanned(&[RATIO_CRITICAL, SATURATION_RULE])),
        &section,
        Reads::Log,
        at,
    )?;
    let fire_when = steady(fire_when);
    let window = l.window.as_ref().map_or(Duration::from_secs(60), |w| w.get_ref().0);
    if window < Duration::from_secs(1) {
        let span = l.window.as_ref().map_or(l.name.span(), |w| w.span());
        return Err(at(span, format!("\"window\" in {section} must be at least 1s")));
    }
    let success_threshold = match &l.success_threshold {
        Some(s) if *s.get_ref() == 0 => {
            return Err(at(s.span(), format!("\"success_threshold\" in {section} must be at least 1")));
        }
        Some(s) => *s.get_ref(),
        None => 1,
    };
    let group = group_name(&l.group, l.name.get_ref(), &section, at)?;
    let public_name = public_name(&l.public_name, &section, at)?;
    let clients = match &l.clients {
        Some(c) => ClientKey::parse(c.get_ref()).ok_or_else(|| {
            at(
                c.span(),
                format!("unknown clients = {:?} in {section}; use \"address\" or \"address+user-agent\"", c.get_ref()),
            )
        })?,
        None => ClientKey::Address,
    };
    let alert = alert_meta(&l.severity, &l.labels, &section, at)?;
    let agent = crate::agent::pinned_agent(&l.agent, &section, at)?;
    let min_requests = l.min_requests.unwrap_or(10);
    let source = LogSource {
        agent,
        follows: None,
        depends_on: Vec::new(),
        group,
        public_name,
        clients,
        alert,
        name: l.name.get_ref().clone(),
        access: l.access.as_ref().map(|a| resolve(a.get_ref())),
        format,
        error: l.error.as_ref().map(|e| resolve(e.get_ref())),
        error_format,
        vhost: l.vhost,
        rules: LogRules { fire_when, window, min_requests },
        policy: TargetPolicy {
            failure_threshold: 1,
            success_threshold,
            pending_for: l.pending_for.map_or(Duration::ZERO, |d| d.0),
            ..TargetPolicy::default()
        },
        start_at,
    };
    if warn_when.is_empty() {
        return Ok(vec![source]);
    }
    let floor = (WARNING_MIN_PER_MINUTE as f64 * window.as_secs_f64() / 60.0).ceil() as u64;
    let warning = LogSource {
        name: format!("{}-warning", source.name),
        follows: Some(source.name.clone()),
        depends_on: vec![source.name.clone()],
        rules: LogRules { fire_when: warn_when, window, min_requests: min_requests.max(floor) },
        alert: AlertMeta { severity: "warning".into(), ..source.alert.clone() },
        ..source.clone()
    };
    Ok(vec![source, warning])
}
