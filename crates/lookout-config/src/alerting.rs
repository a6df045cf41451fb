//! The keys `[[target]]` and `[[log]]` share, and their validation: `conditions` / `fire_when`, `group`,
//! `severity` and `labels`, and `error_format`.

use lookout_engine::Condition;
use lookout_logs::error_log::ErrorFormat;

use crate::At;
use crate::error::ConfigError;
use crate::load::valid_name;

/// How a target's or log source's alerts are labelled for routing, silences and receivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertMeta {
    /// `critical` (default), `error`, `warning` or `info` (PagerDuty's levels).
    pub severity: String,
    /// Free labels (Prometheus label names), e.g. `team = "web"`.
    pub labels: std::collections::BTreeMap<String, String>,
}

pub const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

pub(crate) fn alert_meta(
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

/// `group = "..."`: a valid name, by default the section's own name.
pub(crate) fn group_name(
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

/// The longest `public_name`: a status page row, not a paragraph.
pub const PUBLIC_NAME_MAX: usize = 80;

/// `public_name = "Checkout"`: what the public status page calls a target or log source (default: its name) —
/// the name users know, where the config name is the team's (`shop-php-fpm-2`). One line of text, escaped where
/// shown.
pub(crate) fn public_name(
    value: &Option<toml::Spanned<String>>,
    section: &str,
    at: &At<'_>,
) -> Result<Option<String>, ConfigError> {
    let Some(v) = value else { return Ok(None) };
    let text = v.get_ref().trim();
    if text.is_empty() || text.chars().count() > PUBLIC_NAME_MAX || text.chars().any(char::is_control) {
        return Err(at(
            v.span(),
            format!(
                "invalid public_name {:?} in {section}: one line of 1 to {PUBLIC_NAME_MAX} characters",
                v.get_ref()
            ),
        ));
    }
    Ok(Some(text.to_string()))
}

/// `error_format = "auto" | "apache" | "nginx" | "fpm" | "php"` (default auto: recognised from the log's first
/// lines), wherever an error log is named.
pub(crate) fn error_format(
    value: &Option<toml::Spanned<String>>,
    section: &str,
    at: &At<'_>,
) -> Result<ErrorFormat, ConfigError> {
    match value {
        Some(f) => ErrorFormat::parse_name(f.get_ref()).ok_or_else(|| {
            at(
                f.span(),
                format!("unknown error_format {:?} in {section}; use \"apache\" or \"nginx\" (or \"fpm\", \"php\", \"auto\")", f.get_ref()),
            )
        }),
        None => Ok(ErrorFormat::Auto),
    }
}

/// What a list of conditions may read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reads {
    Probe,
    Log,
}

/// A condition written in lookout's own code (a default rule): it parses, or the build is wrong.
pub(crate) fn built_in(src: &str) -> Condition {
    Condition::parse(src).unwrap_or_else(|e| unreachable!("built-in condition {src:?} must parse: {e}"))
}

/// Parses conditions, pointing at the one that does not parse or reads the wrong kind of placeholder.
pub(crate) fn parse_conditions(
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
