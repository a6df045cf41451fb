//! `lookout.toml`: the serde model, its defaults, and validation.
//!
//! Every error names the file, the line and the key, and says what to do, e.g.
//! `lookout.toml:7: unknown key "intervall" in [[target]] "site" (did you mean "interval"?)`.
//! Parsing happens in two passes: serde reads the raw model (syntax, unknown keys, types, durations), then
//! [`validate`] checks meaning (one check kind per target, URLs, conditions, unique names) using the spans
//! serde kept.

mod error;
mod notify;
mod policy;
mod raw;
mod store;

pub use notify::{EmailConfig, Notify, NotifyKind, Secret, SmtpTls};
pub use policy::{Maintenance, Route};
pub use store::{StoreBackend, StoreConfig};

/// Route defaults: what an alert no route takes gets.
pub mod policy_defaults {
    pub use crate::policy::{DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL};
}

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_engine::{Condition, LogRules, TargetPolicy};
use lookout_logs::LogFormat;
use lookout_logs::distinct::ClientKey;
use lookout_logs::error_log::ErrorFormat;
use lookout_logs::tail::StartAt;

pub use error::ConfigError;
use raw::{RawConfig, RawLog, RawTarget};

/// Environment variable lookup, injectable so tests need not mutate the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from (or a display name for in-memory sources).
    pub source: PathBuf,
    pub store: StoreConfig,
    pub web: WebConfig,
    pub targets: Vec<Target>,
    pub notify: Vec<Notify>,
    pub logs: Vec<LogSource>,
    /// Which channels get which alerts, first match first (see [`Route`]).
    pub routes: Vec<Route>,
    pub maintenance: Vec<Maintenance>,
}

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
}

/// `[web]`: the dashboard, JSON API and `/metrics` inside `lookout run`.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub enabled: bool,
    /// Default 127.0.0.1:9898: reachable from this host only unless configured.
    pub listen: std::net::SocketAddr,
    /// Bearer tokens that may change things (ack, resolve, silences); none means every change is refused.
    pub tokens: Vec<Secret<String>>,
    /// Whether reads (dashboard, API GETs, /metrics) need no token.
    pub public_reads: bool,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub conditions: Vec<Condition>,
    pub policy: TargetPolicy,
    /// How to find the root cause when its alert fires.
    pub diagnose: Option<DiagnoseSpec>,
    /// Incident group: alerts of one group share an incident (default: the target's name).
    pub group: String,
    pub alert: AlertMeta,
    /// Targets or log sources this one needs: while one of them fires, this one's alerts are not sent.
    pub depends_on: Vec<String>,
}

/// How a target's or log source's alerts are labelled for routing, silences and receivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertMeta {
    /// `critical` (default), `error`, `warning` or `info` (PagerDuty's levels).
    pub severity: String,
    /// Free labels (Prometheus label names), e.g. `team = "web"`.
    pub labels: std::collections::BTreeMap<String, String>,
}

pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

fn alert_meta(
    severity: &Option<toml::Spanned<String>>,
    labels: &Option<toml::Spanned<toml::Table>>,
    section: &str,
    at: &At<'_>,
) -> Result<AlertMeta, ConfigError> {
    let severity = match severity {
        Some(s) if !SEVERITIES.contains(&s.get_ref().as_str()) => {
            return Err(at(
                s.span(),
                format!("severity {:?} in {section}: use one of {}", s.get_ref(), SEVERITIES.join(", ")),
            ));
        }
        Some(s) => s.get_ref().clone(),
        None => "critical".into(),
    };
    let mut out = std::collections::BTreeMap::new();
    if let Some(table) = labels {
        for (k, v) in table.get_ref() {
            let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with("__");
            let Some(v) = v.as_str().filter(|_| valid) else {
                return Err(at(
                    table.span(),
                    format!(
                        "label {k:?} in {section}: names are letters, digits and '_' (not starting with a digit or \"__\"), values are strings"
                    ),
                ));
            };
            out.insert(k.clone(), v.to_string());
        }
    }
    Ok(AlertMeta { severity, labels: out })
}

/// Where a target's root cause is looked for when its alert fires.
#[derive(Clone, Debug)]
pub struct DiagnoseSpec {
    pub error_log: Option<PathBuf>,
    pub error_format: ErrorFormat,
    /// Trace the workers of processes with these names...
    pub processes: Vec<String>,
    /// ...or of the process whose pid this file holds (and its children: a prefork pool).
    pub pid_file: Option<PathBuf>,
    /// How long to trace (the server is slower while traced).
    pub duration: Duration,
}

/// What a target's probe does.
#[derive(Clone, Debug)]
pub enum Check {
    Http(HttpCheck),
    /// TCP connect to `host:port`.
    Tcp {
        address: String,
    },
    /// TLS handshake with `host:port`, for certificate expiry.
    Tls {
        address: String,
        verify: bool,
    },
}

#[derive(Clone, Debug)]
pub struct HttpCheck {
    pub url: http::Uri,
    pub method: http::Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub follow_redirects: bool,
    pub verify_tls: bool,
}

impl Config {
    /// Reads and validates a config file, resolving environment variables from the process.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        Config::parse(&text, path, &|k| std::env::var(k).ok())
    }

    /// Reads a config for commands that read the store and never send (`incidents`, `postmortem`): secrets named
    /// by `url_env` need not be set, and no notifier may be built from the result. The store's `url_env` is read
    /// for real: these commands need the store.
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let real = |k: &str| std::env::var(k).ok();
        let raw: RawConfig = toml::from_str(&text).map_err(|e| error::from_toml(&e, &text, path))?;
        validate(raw, &text, path, &|_| Some("http://secret.invalid/".into()), &real)
    }

    /// Parses and validates config text; `path` is used for messages and for resolving relative paths.
    pub fn parse(text: &str, path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| error::from_toml(&e, text, path))?;
        validate(raw, text, path, env, env)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// `env` resolves secrets (channels, tokens); `store_env` the store's `url_env`, which every command needs.
fn validate(
    raw: RawConfig,
    text: &str,
    path: &Path,
    env: EnvLookup<'_>,
    store_env: EnvLookup<'_>,
) -> Result<Config, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String| ConfigError::at(path, text, span.start, message);
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    let store = store::validate(raw.store.unwrap_or_default(), &base_dir, store_env, &at)?;

    let mut names = HashSet::new();
    let mut targets = Vec::new();
    let mut depends_spans = Vec::new();
    for t in raw.target {
        check_name(&t.name, "target", &mut names, &at)?;
        let section = format!("[[target]] {:?}", t.name.get_ref());
        depends_spans.push(t.depends_on.as_ref().map_or(t.name.span(), |d| d.span()));
        targets.push(validate_target(t, &section, &base_dir, &at)?);
    }

    let mut logs = Vec::new();
    for l in raw.log {
        check_name(&l.name, "log", &mut names, &at)?;
        logs.push(validate_log(l, &base_dir, &at)?);
    }

    let mut notify = Vec::new();
    let mut notify_names = HashSet::new();
    for n in raw.notify {
        check_name(&n.name, "notify", &mut notify_names, &at)?;
        notify.push(notify::validate(n, env, &base_dir, &at)?);
    }

    let routes = raw.route.into_iter().map(|r| policy::route(r, &notify, &at)).collect::<Result<Vec<_>, _>>()?;
    let mut maintenance = Vec::new();
    let mut window_names = HashSet::new();
    for m in raw.maintenance {
        check_name(&m.name, "maintenance", &mut window_names, &at)?;
        maintenance.push(policy::maintenance(m, &at)?);
    }
    policy::check_dependencies(&targets, &depends_spans, &logs, &at)?;

    let web = web_config(raw.web.unwrap_or_default(), env, &at)?;
    Ok(Config { source: path.to_path_buf(), store, web, targets, notify, logs, routes, maintenance })
}

/// Names are identifiers in messages, keys and (later) URLs: restricted characters, unique per table kind.
fn check_name(
    name: &toml::Spanned<String>,
    table: &str,
    seen: &mut HashSet<String>,
    at: &At<'_>,
) -> Result<(), ConfigError> {
    let n = name.get_ref();
    if !valid_name(n) {
        return Err(at(
            name.span(),
            format!("invalid name {n:?} in [[{table}]]: use letters, digits, '-', '_' or '.' (at most 64)"),
        ));
    }
    if !seen.insert(n.clone()) {
        return Err(at(name.span(), format!("duplicate {table} name {n:?}: names must be unique")));
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;

fn validate_target(t: RawTarget, section: &str, base_dir: &Path, at: &At<'_>) -> Result<Target, ConfigError> {
    let name = t.name.get_ref().clone();
    let kinds = [t.url.is_some(), t.tcp.is_some(), t.tls.is_some()].iter().filter(|b| **b).count();
    if kinds != 1 {
        let msg = if kinds == 0 {
            format!(
                "{section} has nothing to check: set one of url = \"http://...\", tcp = \"host:port\" or tls = \"host:port\""
            )
        } else {
            format!("{section} sets more than one of url, tcp and tls: keep one per target")
        };
        return Err(at(t.name.span(), msg));
    }
    let http_only = [
        ("method", t.method.as_ref().map(|m| m.span())),
        ("headers", t.headers.as_ref().map(|h| h.span())),
        ("body", t.body.as_ref().map(|b| b.span())),
        ("follow_redirects", t.follow_redirects.as_ref().map(|b| b.span())),
    ];
    let check = if let Some(url) = &t.url {
        let uri: http::Uri = url.get_ref().parse().map_err(|e| {
            at(
                url.span(),
                format!("invalid url {:?} in {section}: {e}; write e.g. \"http://127.0.0.1:8080/\"", url.get_ref()),
            )
        })?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(at(
                    url.span(),
                    format!(
                        "url {:?} in {section} must start with http:// or https:// (for TCP use tcp = \"host:port\")",
                        url.get_ref()
                    ),
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(at(url.span(), format!("url {:?} in {section} has no host", url.get_ref())));
        }
        let method = match &t.method {
            Some(m) => http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                .map_err(|_| at(m.span(), format!("invalid HTTP method {:?} in {section}", m.get_ref())))?,
            None => http::Method::GET,
        };
        let headers = match &t.headers {
            Some(h) => check_headers(h.get_ref(), h.span(), section, at)?,
            None => Vec::new(),
        };
        Check::Http(HttpCheck {
            url: uri,
            method,
            headers,
            body: t.body.as_ref().map(|b| b.get_ref().clone()),
            follow_redirects: t.follow_redirects.as_ref().is_none_or(|b| *b.get_ref()),
            verify_tls: t.verify_tls.as_ref().is_none_or(|b| *b.get_ref()),
        })
    } else {
        if let Some((key, Some(span))) = http_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(at(span, format!("{key:?} in {section} only applies to url = \"http(s)://...\" targets")));
        }
        let (key, addr) = match (&t.tcp, &t.tls) {
            (Some(a), _) => ("tcp", a),
            (_, Some(a)) => ("tls", a),
            _ => unreachable!("exactly one check kind was verified above"),
        };
        if !valid_host_port(addr.get_ref()) {
            return Err(at(
                addr.span(),
                format!("{key} = {:?} in {section} is not host:port; write e.g. \"127.0.0.1:5432\"", addr.get_ref()),
            ));
        }
        if key == "tcp" {
            if let Some(v) = &t.verify_tls {
                return Err(at(v.span(), format!("\"verify_tls\" in {section} only applies to https and tls targets")));
            }
            Check::Tcp { address: addr.get_ref().clone() }
        } else {
            Check::Tls { address: addr.get_ref().clone(), verify: t.verify_tls.as_ref().is_none_or(|b| *b.get_ref()) }
        }
    };

    let interval = t.interval.as_ref().map_or(Duration::from_secs(30), |d| d.get_ref().0);
    let timeout = t.timeout.as_ref().map_or(Duration::from_secs(5), |d| d.get_ref().0);
    if interval.is_zero() {
        let span = t.interval.as_ref().map_or(t.name.span(), |d| d.span());
        return Err(at(span, format!("\"interval\" in {section} must be greater than zero")));
    }
    if timeout.is_zero() {
        let span = t.timeout.as_ref().map_or(t.name.span(), |d| d.span());
        return Err(at(span, format!("\"timeout\" in {section} must be greater than zero")));
    }

    let mut conditions = parse_conditions(t.conditions.unwrap_or_default(), section, Reads::Probe, at)?;
    if conditions.is_empty() {
        conditions.push(default_condition(&check));
    }

    let threshold = |v: &Option<toml::Spanned<u32>>, key: &str, default: u32| -> Result<u32, ConfigError> {
        match v {
            Some(s) if *s.get_ref() == 0 => Err(at(s.span(), format!("{key:?} in {section} must be at least 1"))),
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        }
    };
    let policy = TargetPolicy {
        failure_threshold: threshold(&t.failure_threshold, "failure_threshold", 3)?,
        success_threshold: threshold(&t.success_threshold, "success_threshold", 2)?,
        pending_for: Duration::ZERO,
    };
    let diagnose = match t.diagnose {
        None => None,
        Some(d) => {
            let error_format = error_format(&d.error_format, section, at)?;
            let resolve = |p: String| {
                let p = PathBuf::from(p);
                if p.is_absolute() { p } else { base_dir.join(p) }
            };
            let duration = d.duration.as_ref().map_or(Duration::from_secs(2), |v| v.get_ref().0);
            if let Some(v) = &d.duration
                && (duration.is_zero() || duration > Duration::from_secs(30))
            {
                return Err(at(
                    v.span(),
                    format!(
                        "\"duration\" in [target.diagnose] of {section} must be between 1ms and 30s: tracing slows the server"
                    ),
                ));
            }
            let spec = DiagnoseSpec {
                error_log: d.error_log.map(resolve),
                error_format,
                processes: d.processes.unwrap_or_default(),
                pid_file: d.pid_file.map(resolve),
                duration,
            };
            if spec.error_log.is_none() && spec.processes.is_empty() && spec.pid_file.is_none() {
                return Err(at(
                    t.name.span(),
                    format!(
                        "[target.diagnose] of {section} needs error_log = \"...\", processes = [\"apache2\"] or pid_file = \"...\""
                    ),
                ));
            }
            Some(spec)
        }
    };
    let group = group_name(&t.group, &name, section, at)?;
    let alert = alert_meta(&t.severity, &t.labels, section, at)?;
    let depends_on = t.depends_on.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default();
    Ok(Target { name, check, interval, timeout, conditions, policy, diagnose, group, alert, depends_on })
}

fn web_config(w: raw::RawWeb, env: EnvLookup<'_>, at: &At<'_>) -> Result<WebConfig, ConfigError> {
    let listen = match &w.listen {
        Some(l) => l.get_ref().parse().map_err(|_| {
            at(
                l.span(),
                format!("listen = {:?} in [web] is not an address: write e.g. \"127.0.0.1:9898\"", l.get_ref()),
            )
        })?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 9898)),
    };
    let tokens = match &w.tokens_env {
        Some(var) => {
            let value = env(var.get_ref()).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                at(
                    var.span(),
                    format!("environment variable {:?} named by tokens_env in [web] is not set; export it (comma-separated tokens) before starting lookout", var.get_ref()),
                )
            })?;
            value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| Secret(t.to_string())).collect()
        }
        None => Vec::new(),
    };
    Ok(WebConfig { enabled: w.enabled.unwrap_or(true), listen, tokens, public_reads: w.public_reads.unwrap_or(true) })
}

/// `group = "..."`: a valid name, by default the section's own name.
fn group_name(
    group: &Option<toml::Spanned<String>>,
    name: &str,
    section: &str,
    at: &At<'_>,
) -> Result<String, ConfigError> {
    match group {
        Some(g) if !valid_name(g.get_ref()) => Err(at(
            g.span(),
            format!("invalid group {:?} in {section}: use letters, digits, '-', '_' or '.' (at most 64)", g.get_ref()),
        )),
        Some(g) => Ok(g.get_ref().clone()),
        None => Ok(name.to_string()),
    }
}

/// `error_format = "apache" | "nginx"` (default apache), wherever an error log is named.
fn error_format(value: &Option<toml::Spanned<String>>, section: &str, at: &At<'_>) -> Result<ErrorFormat, ConfigError> {
    match value {
        Some(f) => ErrorFormat::parse_name(f.get_ref()).ok_or_else(|| {
            at(f.span(), format!("unknown error_format {:?} in {section}; use \"apache\" or \"nginx\"", f.get_ref()))
        }),
        None => Ok(ErrorFormat::Apache),
    }
}

/// What a list of conditions may read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    Probe,
    Log,
}

/// Parses conditions, pointing at the one that does not parse or reads the wrong kind of placeholder.
fn parse_conditions(
    list: Vec<toml::Spanned<String>>,
    section: &str,
    reads: Reads,
    at: &At<'_>,
) -> Result<Vec<Condition>, ConfigError> {
    let mut out = Vec::new();
    for c in list {
        let parsed = Condition::parse(c.get_ref()).map_err(|e| {
            at(c.span(), format!("invalid condition in {section}: {}\n{}", e.message, e.pointer(c.get_ref())))
        })?;
        let wrong = match reads {
            Reads::Probe if parsed.uses_log_placeholders() => {
                Some("reads a log window; put it in a [[log]] section's fire_when")
            }
            Reads::Log if parsed.uses_probe_placeholders() => Some(
                "reads a probe result; log conditions use [REQUESTS], [5XX], [5XX_RATIO], [ERROR_LOG], [CLIENTS_AFFECTED] or [LATENCY_P50/P95/P99]",
            ),
            _ => None,
        };
        if let Some(what) = wrong {
            return Err(at(c.span(), format!("condition {:?} in {section} {what}", c.get_ref())));
        }
        out.push(parsed);
    }
    Ok(out)
}

fn validate_log(l: RawLog, base_dir: &Path, at: &At<'_>) -> Result<LogSource, ConfigError> {
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
    let default_rule = || vec![toml::Spanned::new(0..0, "[5XX_RATIO] > 5%".to_string())];
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
    Ok(LogSource {
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
        },
        start_at,
    })
}

/// When a target lists no conditions: HTTP must answer below 400, TCP and TLS must connect.
fn default_condition(check: &Check) -> Condition {
    let src = match check {
        Check::Http(_) => "[STATUS] < 400",
        Check::Tcp { .. } | Check::Tls { .. } => "[CONNECTED] == true",
    };
    match Condition::parse(src) {
        Ok(c) => c,
        Err(e) => unreachable!("built-in condition {src:?} must parse: {e}"),
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

pub(crate) fn check_headers(
    headers: &toml::Table,
    span: std::ops::Range<usize>,
    section: &str,
    at: &At<'_>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in headers {
        let Some(v) = v.as_str() else {
            return Err(at(span, format!("header {k:?} in {section} must be a string")));
        };
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() || http::HeaderValue::from_str(v).is_err() {
            return Err(at(span, format!("header {k:?} in {section} is not a valid HTTP header name and value")));
        }
        out.push((k.clone(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
