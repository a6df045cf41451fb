//! `[[notify]]` channels: webhook, Slack, PagerDuty, Alertmanager and e-mail. Every type takes only its own keys
//! (a key of another type is an error naming the type it belongs to), and secrets — the Slack URL, a webhook URL
//! given by `url_env`, the PagerDuty routing key, the SMTP password — come from environment variables and are
//! wrapped in [`Secret`], which never prints.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::error::ConfigError;
use crate::raw::RawNotify;
use crate::target::check_headers;
use crate::url::{Shown, http_url};
use crate::{At, EnvLookup};
use lookout_core::format_duration;
use lookout_core::url::Redacted;

/// A value that must not reach logs or error messages: `Debug` and `Display` print `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> Secret<T> {
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Clone, Debug)]
pub struct Notify {
    pub name: String,
    pub kind: NotifyKind,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
}

/// `Debug` shows URLs redacted (`http://user:***@host/`) and header names without their values.
#[derive(Clone)]
pub enum NotifyKind {
    /// POSTs the notification JSON, or the body rendered from `template` (minijinja).
    Webhook {
        url: Secret<http::Uri>,
        headers: Vec<(String, String)>,
        template: Option<String>,
    },
    /// A Slack incoming webhook (Block Kit message).
    Slack {
        url: Secret<http::Uri>,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        url: http::Uri,
        routing_key: Secret<String>,
    },
    /// Alertmanager's `POST /api/v2/alerts` under `url`; a firing alert's `endsAt` is `firing_ttl` ahead.
    Alertmanager {
        url: http::Uri,
        headers: Vec<(String, String)>,
        firing_ttl: Duration,
    },
    Email(EmailConfig),
}

impl fmt::Debug for NotifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |h: &[(String, String)]| h.iter().map(|(k, _)| format!("{k}: ***")).collect::<Vec<_>>();
        match self {
            NotifyKind::Webhook { url, headers, template } => f
                .debug_struct("Webhook")
                .field("url", url)
                .field("headers", &names(headers))
                .field("template", template)
                .finish(),
            NotifyKind::Slack { url } => f.debug_struct("Slack").field("url", url).finish(),
            NotifyKind::PagerDuty { url, routing_key } => f
                .debug_struct("PagerDuty")
                .field("url", &Redacted(&url.to_string()))
                .field("routing_key", routing_key)
                .finish(),
            NotifyKind::Alertmanager { url, headers, firing_ttl } => f
                .debug_struct("Alertmanager")
                .field("url", &Redacted(&url.to_string()))
                .field("headers", &names(headers))
                .field("firing_ttl", firing_ttl)
                .finish(),
            NotifyKind::Email(e) => f.debug_tuple("Email").field(e).finish(),
        }
    }
}

impl NotifyKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            NotifyKind::Webhook { .. } => "webhook",
            NotifyKind::Slack { .. } => "slack",
            NotifyKind::PagerDuty { .. } => "pagerduty",
            NotifyKind::Alertmanager { .. } => "alertmanager",
            NotifyKind::Email(_) => "email",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (refuses to go on without it).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a relay on the same host.
    None,
}

#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra CA certificate (PEM) to trust, e.g. an internal mail relay's.
    pub ca_file: Option<PathBuf>,
}

/// The shortest `timeout` of a channel (and of a target): less cannot connect, let alone get an answer.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// The shortest `retry_initial` and `retry_max`: less hammers a struggling receiver (`0s` sent one message 17
/// times in a second).
pub(crate) const MIN_RETRY: Duration = Duration::from_millis(100);

/// A duration key's value or its default, refused (at its line) when shorter than `min`.
pub(crate) fn at_least(
    value: &Option<Spanned<crate::raw::Dur>>,
    key: &str,
    default: Duration,
    min: Duration,
    section: &str,
    at: &At<'_>,
) -> Result<Duration, ConfigError> {
    match value {
        Some(v) if v.get_ref().0 < min => Err(at(
            v.span(),
            format!(
                "{key:?} in {section} is {}: the minimum is {}",
                format_duration(v.get_ref().0),
                format_duration(min)
            ),
        )),
        Some(v) => Ok(v.get_ref().0),
        None => Ok(default),
    }
}

const TYPES: [&str; 5] = ["webhook", "slack", "pagerduty", "alertmanager", "email"];

pub(crate) fn validate(n: RawNotify, env: EnvLookup<'_>, base_dir: &Path, at: &At<'_>) -> Result<Notify, ConfigError> {
    let section = format!("[[notify]] {:?}", n.name.get_ref());
    let kind_name = n.kind.get_ref().as_str();
    if !TYPES.contains(&kind_name) {
        let hint = TYPES
            .iter()
            .find(|k| strsim::damerau_levenshtein(kind_name, k) <= 2)
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        return Err(at(
            n.kind.span(),
            format!("unknown notify type {kind_name:?} in {section}{hint}; supported: {}", TYPES.join(", ")),
        ));
    }
    refuse_foreign_keys(&n, kind_name, &section, at)?;
    let secret_env = |var: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
        env(var.get_ref()).filter(|v| !v.is_empty()).ok_or_else(|| {
            at(
                var.span(),
                format!(
                    "environment variable {:?} named by {key} in {section} is not set; export it before starting lookout",
                    var.get_ref()
                ),
            )
        })
    };
    let headers = match &n.headers {
        Some(h) => check_headers(h.get_ref(), h.span(), &section, at)?,
        None => Vec::new(),
    };
    let kind = match kind_name {
        "webhook" | "slack" => {
            let (text, span, shown) = match (&n.url, &n.url_env) {
                (Some(u), None) if kind_name == "slack" => (u.get_ref().clone(), u.span(), Shown::Token),
                (Some(u), None) => (u.get_ref().clone(), u.span(), Shown::Redacted),
                (None, Some(var)) => (secret_env(var, "url_env")?, var.span(), Shown::Never),
                (Some(_), Some(var)) => {
                    return Err(at(var.span(), format!("{section} sets both url and url_env: keep one")));
                }
                (None, None) => {
                    return Err(at(
                        n.name.span(),
                        format!(
                            "{section} needs url = \"https://...\" (or url_env = \"VAR\" to keep a secret URL out of the file)"
                        ),
                    ));
                }
            };
            let url = Secret(http_url(&text, shown, "url", span, &section, at)?);
            if kind_name == "slack" {
                NotifyKind::Slack { url }
            } else {
                let template = match &n.template {
                    Some(t) => {
                        let mut env = minijinja::Environment::new();
                        env.add_template("body", t.get_ref())
                            .map_err(|e| at(t.span(), format!("template in {section} does not compile: {e}")))?;
                        Some(t.get_ref().clone())
                    }
                    None => None,
                };
                NotifyKind::Webhook { url, headers, template }
            }
        }
        "pagerduty" => {
            let Some(var) = &n.routing_key_env else {
                return Err(at(
                    n.name.span(),
                    format!(
                        "{section} needs routing_key_env = \"VAR\": the integration's routing key, from the environment"
                    ),
                ));
            };
            let routing_key = Secret(secret_env(var, "routing_key_env")?);
            let url = match &n.url {
                Some(u) => http_url(u.get_ref(), Shown::Redacted, "url", u.span(), &section, at)?,
                None => http::Uri::from_static("https://events.pagerduty.com/v2/enqueue"),
            };
            NotifyKind::PagerDuty { url, routing_key }
        }
        "alertmanager" => {
            let Some(u) = &n.url else {
                return Err(at(n.name.span(), format!("{section} needs url = \"http://alertmanager:9093\"")));
            };
            let url = http_url(u.get_ref(), Shown::Redacted, "url", u.span(), &section, at)?;
            let firing_ttl = n.firing_ttl.as_ref().map_or(Duration::from_secs(24 * 3600), |d| d.get_ref().0);
            if firing_ttl < Duration::from_secs(60) {
                let span = n.firing_ttl.as_ref().map_or(n.name.span(), |d| d.span());
                return Err(at(span, format!("firing_ttl in {section} must be at least 1m")));
            }
            NotifyKind::Alertmanager { url, headers, firing_ttl }
        }
        _ => NotifyKind::Email(email(&n, &section, base_dir, &secret_env, at)?),
    };
    let timeout = at_least(&n.timeout, "timeout", Duration::from_secs(10), MIN_TIMEOUT, &section, at)?;
    let retry_initial = at_least(&n.retry_initial, "retry_initial", Duration::from_secs(1), MIN_RETRY, &section, at)?;
    let retry_max = at_least(&n.retry_max, "retry_max", Duration::from_secs(300), MIN_RETRY, &section, at)?;
    if retry_initial > retry_max {
        let span = n.retry_initial.as_ref().or(n.retry_max.as_ref()).map_or(n.name.span(), Spanned::span);
        return Err(at(
            span,
            format!(
                "\"retry_initial\" ({}) in {section} is longer than \"retry_max\" ({}): the first retry delay doubles up to retry_max",
                format_duration(retry_initial),
                format_duration(retry_max)
            ),
        ));
    }
    Ok(Notify { name: n.name.get_ref().clone(), kind, retry_initial, retry_max, timeout })
}

/// Keys that belong to another type are errors that say which type they belong to.
fn refuse_foreign_keys(n: &RawNotify, kind: &str, section: &str, at: &At<'_>) -> Result<(), ConfigError> {
    type Span = Option<std::ops::Range<usize>>;
    let span = |s: Span| s;
    let keys: [(&str, Span, &[&str]); 13] = [
        ("url", span(n.url.as_ref().map(Spanned::span)), &["webhook", "slack", "pagerduty", "alertmanager"]),
        ("url_env", span(n.url_env.as_ref().map(Spanned::span)), &["webhook", "slack"]),
        ("headers", span(n.headers.as_ref().map(Spanned::span)), &["webhook", "alertmanager"]),
        ("template", span(n.template.as_ref().map(Spanned::span)), &["webhook"]),
        ("routing_key_env", span(n.routing_key_env.as_ref().map(Spanned::span)), &["pagerduty"]),
        ("firing_ttl", span(n.firing_ttl.as_ref().map(Spanned::span)), &["alertmanager"]),
        ("smtp", span(n.smtp.as_ref().map(Spanned::span)), &["email"]),
        ("tls", span(n.tls.as_ref().map(Spanned::span)), &["email"]),
        ("username", span(n.username.as_ref().map(Spanned::span)), &["email"]),
        ("password_env", span(n.password_env.as_ref().map(Spanned::span)), &["email"]),
        ("from", span(n.from.as_ref().map(Spanned::span)), &["email"]),
        ("to", span(n.to.as_ref().map(Spanned::span)), &["email"]),
        ("ca_file", span(n.ca_file.as_ref().map(Spanned::span)), &["email"]),
    ];
    for (key, span, types) in keys {
        if let Some(span) = span
            && !types.contains(&kind)
        {
            let owners: Vec<String> = types.iter().map(|t| format!("type = {t:?}")).collect();
            return Err(at(
                span,
                format!("{key:?} in {section} does not apply to type = {kind:?} (only to {})", owners.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Reads the secret an `*_env` key names.
type SecretEnv<'a> = dyn Fn(&Spanned<String>, &str) -> Result<String, ConfigError> + 'a;

fn email(
    n: &RawNotify,
    section: &str,
    base_dir: &Path,
    secret_env: &SecretEnv<'_>,
    at: &At<'_>,
) -> Result<EmailConfig, ConfigError> {
    let need = |key: &str, example: &str| at(n.name.span(), format!("{section} needs {key} = {example}"));
    let smtp = n.smtp.as_ref().ok_or_else(|| need("smtp", "\"smtp.example.com:587\""))?;
    let tls = match n.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("starttls", _)) => SmtpTls::Starttls,
        Some(("tls", _)) => SmtpTls::Tls,
        Some(("none", _)) => SmtpTls::None,
        Some((other, span)) => {
            return Err(at(span, format!("tls = {other:?} in {section}: use \"starttls\", \"tls\" or \"none\"")));
        }
    };
    let (host, port) = match smtp.get_ref().rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h.trim_start_matches('[').trim_end_matches(']').to_string(), p),
            _ => {
                return Err(at(
                    smtp.span(),
                    format!("smtp = {:?} in {section}: the port is not a number", smtp.get_ref()),
                ));
            }
        },
        _ => {
            let default = if tls == SmtpTls::Tls { 465 } else { 587 };
            (smtp.get_ref().clone(), default)
        }
    };
    let from = n.from.as_ref().ok_or_else(|| need("from", "\"lookout@example.com\""))?;
    let to = n.to.as_ref().ok_or_else(|| need("to", "[\"ops@example.com\"]"))?;
    if to.get_ref().is_empty() {
        return Err(at(to.span(), format!("to in {section} names nobody")));
    }
    for address in std::iter::once(from.get_ref()).chain(to.get_ref()) {
        if address.parse::<lettre_address::Address>().is_err() {
            let span = if address == from.get_ref() { from.span() } else { to.span() };
            return Err(at(span, format!("{address:?} in {section} is not an e-mail address")));
        }
    }
    let password = n.password_env.as_ref().map(|v| secret_env(v, "password_env")).transpose()?.map(Secret);
    if password.is_some() && n.username.is_none() {
        return Err(need("username", "\"lookout\" (password_env is set)"));
    }
    Ok(EmailConfig {
        host,
        port,
        tls,
        username: n.username.as_ref().map(|u| u.get_ref().clone()),
        password,
        from: from.get_ref().clone(),
        to: to.get_ref().clone(),
        ca_file: n.ca_file.as_ref().map(|c| {
            let p = PathBuf::from(c.get_ref());
            if p.is_absolute() { p } else { base_dir.join(p) }
        }),
    })
}

/// E-mail addresses, checked the way the sender will parse them.
mod lettre_address {
    /// `local@domain` with a non-empty local part and a domain with a dot or `localhost`; the sender (lettre)
    /// checks the full grammar again when it builds the message.
    pub struct Address;

    impl std::str::FromStr for Address {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let s = s.rsplit_once('<').map_or(s, |(_, a)| a.trim_end_matches('>'));
            match s.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && !domain.is_empty()
                        && !s.contains(char::is_whitespace)
                        && (domain.contains('.') || domain == "localhost") =>
                {
                    Ok(Address)
                }
                _ => Err(()),
            }
        }
    }
}
