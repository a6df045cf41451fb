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
use crate::alerting::{AlertMeta, Reads, alert_meta, error_format, group_name, parse_conditions};
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
    /// What counts as one client affected.
    pub clients: ClientKey,
    pub alert: AlertMeta,
    /// The agent whose machine has these files (`agent = "web-1"`): only it reads them. None: every agent does,
    /// which is right for one machine.
    pub agent: Option<String>,
}

impl LogSource {
    /// Whether the agent `name` reads this source.
    pub fn read_by(&self, name: &str) -> bool {
        self.agent.as_deref().is_none_or(|a| a == name)
    }
}

/// The default rule on a server's error log for a saturated worker pool.
pub const SATURATION_RULE: &str = "[ERROR_LOG] matches \"AH00161|reached pm.max_children\"";

pub(crate) fn validate_log(l: RawLog, base_dir: &Path, at: &At<'_>) -> Result<LogSource, ConfigError> {
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
    let default_rule =
        || ["[5XX_RATIO] > 5%", SATURATION_RULE].iter().map(|r| toml::Spanned::new(0..0, (*r).to_string())).collect();
    let fire_when = parse_conditions(l.fire_when.unwrap_or_else(default_rule), &section, Reads::Log, at)?;
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
    Ok(LogSource {
        agent,
        group,
        clients,
        alert,
        name: l.name.get_ref().clone(),
        access: l.access.as_ref().map(|a| resolve(a.get_ref())),
        format,
        error: l.error.as_ref().map(|e| resolve(e.get_ref())),
        error_format,
        vhost: l.vhost,
        rules: LogRules { fire_when, window, min_requests: l.min_requests.unwrap_or(10) },
        policy: TargetPolicy {
            failure_threshold: 1,
            success_threshold,
            pending_for: l.pending_for.map_or(Duration::ZERO, |d| d.0),
            ..TargetPolicy::default()
        },
        start_at,
    })
}
