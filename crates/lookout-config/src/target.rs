//! `[[target]]`: what a probe checks (HTTP, TCP, TLS, DNS or ICMP ping), how often, what judges it and how its root cause is
//! diagnosed, and the validation of all that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_engine::{Condition, TargetPolicy};
use lookout_logs::error_log::ErrorFormat;

use crate::At;
use crate::alerting::{AlertMeta, Reads, alert_meta, error_format, group_name, parse_conditions, public_name};
use crate::dns::{DnsCheck, validate_dns, validate_icmp};
use crate::error::ConfigError;
use crate::notify::{MIN_TIMEOUT, at_least};
use crate::raw::RawTarget;
use crate::url::{Shown, host_port, http_url};
use lookout_core::url::{Redacted, redact};

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
    /// What the public status page calls it (`public_name`; default: `name`).
    pub public_name: Option<String>,
    /// Whether `/metrics` has its per-target series (`metrics = false` on the target, or `[web] target_metrics =
    /// false` for all): at 10,000 targets they are most of the scrape.
    pub metrics: bool,
    pub alert: AlertMeta,
    /// Targets or log sources this one needs: while one of them fires, this one's alerts are not sent.
    pub depends_on: Vec<String>,
    /// The agents' locations it is probed from (`locations = [...]`); empty: every location.
    pub locations: Vec<String>,
    /// The agent whose machine this target watches (its host parts and processes when several agents share the
    /// store): that agent alone probes it, outside its location's share of the checks. None: any agent may.
    pub machine: Option<String>,
}

impl Target {
    /// Whether agents at `location` probe it.
    pub fn probed_from(&self, location: &str) -> bool {
        self.locations.is_empty() || self.locations.iter().any(|l| l == location)
    }
}

/// Where a target's root cause is looked for when its alert fires.
#[derive(Clone, Debug)]
pub struct DiagnoseSpec {
    /// The error logs to read (`error_log = "…"` or a list: nginx's and PHP-FPM's), merged.
    pub error_logs: Vec<PathBuf>,
    pub error_format: ErrorFormat,
    /// Trace the workers of processes with these names...
    pub processes: Vec<String>,
    /// ...and of the processes whose pids these files hold (and their children: a prefork pool, FPM's workers).
    pub pid_files: Vec<PathBuf>,
    /// How long to trace (the server is slower while traced).
    pub duration: Duration,
    /// The agent whose machine runs the server (`agent = "web-1"`): it traces and reads, at the leader's
    /// request. None: the agent that decides (the leader; one machine).
    pub agent: Option<String>,
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
    /// One DNS question to one server.
    Dns(DnsCheck),
    /// ICMP echo (ping) to a host.
    Icmp {
        host: String,
    },
    /// A web server's status page (`[[status]]`).
    Status(crate::status::StatusCheck),
    /// The machine lookout runs on (`[host]`, `[[process]]`).
    Host(crate::host::HostCheck),
}

impl Check {
    /// The kind's name as written in the config (`url` targets are `http`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Tcp { .. } => "tcp",
            Check::Tls { .. } => "tls",
            Check::Dns(_) => "dns",
            Check::Icmp { .. } => "icmp",
            Check::Status(_) => "status",
            Check::Host(_) => "host",
        }
    }
}

/// `Debug` shows the URL redacted (`http://user:***@host/`) and header names without their values (tokens).
#[derive(Clone)]
pub struct HttpCheck {
    pub url: http::Uri,
    pub method: http::Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub follow_redirects: bool,
    pub verify_tls: bool,
    /// Offer HTTP/2 by ALPN to `https://` targets (`http2 = false` keeps HTTP/1.1); plain `http://` stays HTTP/1.1.
    pub http2: bool,
}

impl std::fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.to_string();
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, _)| (k.as_str(), "***")).collect();
        f.debug_struct("HttpCheck")
            .field("url", &Redacted(&url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("follow_redirects", &self.follow_redirects)
            .field("verify_tls", &self.verify_tls)
            .field("http2", &self.http2)
            .finish()
    }
}

/// The shortest probe `interval`: shorter is a busy loop against the target, not monitoring.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) fn validate_target(
    t: RawTarget,
    section: &str,
    base_dir: &Path,
    at: &At<'_>,
) -> Result<Target, ConfigError> {
    let name = t.name.get_ref().clone();
    let kinds = [t.url.is_some(), t.tcp.is_some(), t.tls.is_some(), t.dns.is_some(), t.icmp.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if kinds != 1 {
        let msg = if kinds == 0 {
            format!(
                "{section} has nothing to check: set one of url = \"http://...\", tcp = \"host:port\", tls = \"host:port\", \
                 dns = {{ server = \"host:port\", name = \"...\", type = \"A\" }} or icmp = \"host\""
            )
        } else {
            format!("{section} sets more than one of url, tcp, tls, dns and icmp: keep one per target")
        };
        return Err(at(t.name.span(), msg));
    }
    let http_only = [
        ("method", t.method.as_ref().map(|m| m.span())),
        ("headers", t.headers.as_ref().map(|h| h.span())),
        ("body", t.body.as_ref().map(|b| b.span())),
        ("follow_redirects", t.follow_redirects.as_ref().map(|b| b.span())),
        ("http2", t.http2.as_ref().map(|b| b.span())),
    ];
    let check = if let Some(url) = &t.url {
        let lower = url.get_ref().to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(at(
                url.span(),
                format!(
                    "url = {:?} in {section}: must start with http:// or https:// (for TCP use tcp = \"host:port\")",
                    redact(url.get_ref())
                ),
            ));
        }
        let uri = http_url(url.get_ref(), Shown::Redacted, "url", url.span(), section, at)?;
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
            http2: t.http2.as_ref().is_none_or(|b| *b.get_ref()),
        })
    } else if t.dns.is_some() || t.icmp.is_some() {
        if let Some((key, Some(span))) = http_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(at(span, format!("{key:?} in {section} only applies to url = \"http(s)://...\" targets")));
        }
        if let Some(v) = &t.verify_tls {
            return Err(at(v.span(), format!("\"verify_tls\" in {section} only applies to https and tls targets")));
        }
        match (&t.dns, &t.icmp) {
            (Some(d), _) => Check::Dns(validate_dns(d.get_ref(), section, at)?),
            (_, Some(h)) => Check::Icmp { host: validate_icmp(h.get_ref(), h.span(), section, at)? },
            _ => unreachable!("dns or icmp was checked just above"),
        }
    } else {
        if let Some((key, Some(span))) = http_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(at(span, format!("{key:?} in {section} only applies to url = \"http(s)://...\" targets")));
        }
        let (key, addr) = match (&t.tcp, &t.tls) {
            (Some(a), _) => ("tcp", a),
            (_, Some(a)) => ("tls", a),
            _ => unreachable!("exactly one check kind was verified above"),
        };
        host_port(addr.get_ref(), key, addr.span(), section, at)?;
        if key == "tcp" {
            if let Some(v) = &t.verify_tls {
                return Err(at(v.span(), format!("\"verify_tls\" in {section} only applies to https and tls targets")));
            }
            Check::Tcp { address: addr.get_ref().clone() }
        } else {
            Check::Tls { address: addr.get_ref().clone(), verify: t.verify_tls.as_ref().is_none_or(|b| *b.get_ref()) }
        }
    };

    let interval = at_least(&t.interval, "interval", Duration::from_secs(30), MIN_INTERVAL, section, at)?;
    let timeout = at_least(&t.timeout, "timeout", Duration::from_secs(5), MIN_TIMEOUT, section, at)?;

    let mut conditions = parse_conditions(t.conditions.unwrap_or_default(), section, Reads::Probe, at)?;
    if conditions.is_empty() {
        conditions.push(default_condition(&check));
    }

    let threshold = |v: &Option<toml::Spanned<u32>>, key: &str, default: u32| count(v, key, default, section, at);
    let locations = match &t.locations {
        None => Vec::new(),
        Some(l) => {
            let list = l.get_ref().clone();
            if list.is_empty() {
                return Err(at(
                    l.span(),
                    format!("\"locations\" in {section} is empty: leave it out to probe from every location"),
                ));
            }
            if let Some(bad) = list.iter().find(|n| n.trim().is_empty()) {
                return Err(at(l.span(), format!("\"locations\" in {section} names an empty location {bad:?}")));
            }
            if let Some(dup) = list.iter().enumerate().find(|(i, n)| list[..*i].contains(n)).map(|(_, n)| n) {
                return Err(at(l.span(), format!("\"locations\" in {section} names {dup:?} twice")));
            }
            list
        }
    };
    let quorum = threshold(&t.quorum, "quorum", 1)?;
    if let Some(q) = &t.quorum
        && !locations.is_empty()
        && quorum as usize > locations.len()
    {
        return Err(at(
            q.span(),
            format!(
                "\"quorum\" in {section} is {quorum} but it is probed from {} location(s): it could never fire",
                locations.len()
            ),
        ));
    }
    let policy = TargetPolicy {
        failure_threshold: threshold(&t.failure_threshold, "failure_threshold", 3)?,
        success_threshold: threshold(&t.success_threshold, "success_threshold", 2)?,
        pending_for: Duration::ZERO,
        quorum,
        // A location silent for three checks (its agent died, or left) no longer counts towards the quorum.
        stale_after: interval * 3 + timeout,
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
                error_logs: d.error_log.map(|l| l.into_vec()).unwrap_or_default().into_iter().map(resolve).collect(),
                error_format,
                processes: d.processes.unwrap_or_default(),
                pid_files: d.pid_file.map(|l| l.into_vec()).unwrap_or_default().into_iter().map(resolve).collect(),
                duration,
                agent: crate::agent::pinned_agent(&d.agent, &format!("[target.diagnose] of {section}"), at)?,
            };
            if spec.error_logs.is_empty() && spec.processes.is_empty() && spec.pid_files.is_empty() {
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
    let public_name = public_name(&t.public_name, section, at)?;
    let alert = alert_meta(&t.severity, &t.labels, section, at)?;
    let depends_on = t.depends_on.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default();
    let metrics = t.metrics.unwrap_or(true);
    Ok(Target {
        name,
        check,
        interval,
        timeout,
        conditions,
        policy,
        diagnose,
        group,
        public_name,
        metrics,
        alert,
        depends_on,
        locations,
        machine: None,
    })
}

/// A count key (`failure_threshold`, `quorum`, …) or its default; 0 is refused at its line.
pub(crate) fn count(
    v: &Option<toml::Spanned<u32>>,
    key: &str,
    default: u32,
    section: &str,
    at: &At<'_>,
) -> Result<u32, ConfigError> {
    match v {
        Some(n) if *n.get_ref() == 0 => Err(at(n.span(), format!("{key:?} in {section} must be at least 1"))),
        Some(n) => Ok(*n.get_ref()),
        None => Ok(default),
    }
}

/// When a target lists no conditions: HTTP must answer below 400, TCP, TLS and ping must connect (answer), DNS
/// must answer `NOERROR`.
fn default_condition(check: &Check) -> Condition {
    let src = match check {
        Check::Http(_) => "[STATUS] < 400",
        Check::Tcp { .. } | Check::Tls { .. } | Check::Icmp { .. } => "[CONNECTED] == true",
        Check::Dns(_) => "[DNS_RCODE] == NOERROR",
        Check::Status(_) => "[STATUS] == 200",
        Check::Host(_) => "[CONNECTED] == true",
    };
    crate::alerting::built_in(src)
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
