//! The file as serde reads it: exact keys (`deny_unknown_fields`), types and durations, with spans kept
//! where validation needs to point back at a line.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub store: Option<RawStore>,
    pub agent: Option<RawAgent>,
    pub web: Option<RawWeb>,
    #[serde(default)]
    pub target: Vec<RawTarget>,
    #[serde(default)]
    pub notify: Vec<RawNotify>,
    #[serde(default)]
    pub log: Vec<RawLog>,
    #[serde(default)]
    pub status: Vec<RawStatus>,
    pub host: Option<RawHost>,
    #[serde(default)]
    pub process: Vec<RawProcess>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    #[serde(rename = "match")]
    pub matchers: Option<Vec<Spanned<String>>>,
    pub channels: Option<Spanned<Vec<String>>>,
    pub group_wait: Option<Spanned<Dur>>,
    pub repeat_interval: Option<Spanned<Dur>>,
    #[serde(rename = "continue")]
    pub cont: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaintenance {
    pub name: Spanned<String>,
    #[serde(rename = "match")]
    pub matchers: Option<Vec<Spanned<String>>>,
    pub schedule: Option<Spanned<String>>,
    pub duration: Option<Spanned<Dur>>,
    pub start: Option<Spanned<String>>,
    pub end: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub name: Spanned<String>,
    pub access: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub error: Option<Spanned<String>>,
    pub error_format: Option<Spanned<String>>,
    pub vhost: Option<String>,
    pub window: Option<Spanned<Dur>>,
    pub min_requests: Option<u64>,
    pub fire_when: Option<Vec<Spanned<String>>>,
    pub warn_when: Option<Vec<Spanned<String>>>,
    #[serde(rename = "for")]
    pub pending_for: Option<Dur>,
    pub success_threshold: Option<Spanned<u32>>,
    pub start_at: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub public_name: Option<Spanned<String>>,
    pub clients: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub labels: Option<Spanned<toml::Table>>,
    pub agent: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatus {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub url: Spanned<String>,
    pub interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub workers: Option<Spanned<u32>>,
    pub fire_when: Option<Vec<Spanned<String>>>,
    #[serde(rename = "for")]
    pub pending_for: Option<Spanned<Dur>>,
    pub failure_threshold: Option<Spanned<u32>>,
    pub success_threshold: Option<Spanned<u32>>,
    pub group: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub labels: Option<Spanned<toml::Table>>,
    pub depends_on: Option<Spanned<Vec<String>>>,
    pub metrics: Option<bool>,
    pub hysteresis: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub enabled: Option<bool>,
    pub interval: Option<Spanned<Dur>>,
    pub cpu: Option<bool>,
    pub memory: Option<bool>,
    pub filesystems: Option<bool>,
    pub mounts: Option<Spanned<Vec<String>>>,
    pub descriptors: Option<bool>,
    pub trend: Option<Spanned<Dur>>,
    pub hysteresis: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcess {
    pub name: Spanned<String>,
    pub command: Option<Spanned<String>>,
    pub interval: Option<Spanned<Dur>>,
    pub fire_when: Option<Vec<Spanned<String>>>,
    pub group: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub labels: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeb {
    pub enabled: Option<bool>,
    pub listen: Option<toml::Spanned<String>>,
    pub tokens_env: Option<toml::Spanned<String>>,
    pub public_reads: Option<bool>,
    pub allowed_hosts: Option<Vec<toml::Spanned<String>>>,
    pub max_connections: Option<toml::Spanned<i64>>,
    pub target_metrics: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub name: Option<Spanned<String>>,
    pub location: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub path: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    pub retention: Option<Dur>,
    pub raw_retention: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub name: Spanned<String>,
    pub url: Option<Spanned<String>>,
    pub tcp: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    pub dns: Option<Spanned<RawDns>>,
    pub icmp: Option<Spanned<String>>,
    pub http2: Option<Spanned<bool>>,
    pub metrics: Option<bool>,
    pub interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub method: Option<Spanned<String>>,
    pub headers: Option<Spanned<toml::Table>>,
    pub body: Option<Spanned<String>>,
    pub follow_redirects: Option<Spanned<bool>>,
    pub verify_tls: Option<Spanned<bool>>,
    pub conditions: Option<Vec<Spanned<String>>>,
    pub failure_threshold: Option<Spanned<u32>>,
    pub success_threshold: Option<Spanned<u32>>,
    pub group: Option<Spanned<String>>,
    pub public_name: Option<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub labels: Option<Spanned<toml::Table>>,
    pub depends_on: Option<Spanned<Vec<String>>>,
    pub locations: Option<Spanned<Vec<String>>>,
    pub quorum: Option<Spanned<u32>>,
    pub diagnose: Option<RawDiagnose>,
}

/// `dns = { server = "127.0.0.1:53", name = "example.test", type = "A" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDns {
    pub server: Spanned<String>,
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub record: Option<Spanned<String>>,
}

/// `key = "one"` or `key = ["one", "two"]`: a stack has one server or several (nginx's and PHP-FPM's logs).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDiagnose {
    pub error_log: Option<OneOrMany>,
    pub error_format: Option<Spanned<String>>,
    pub processes: Option<Vec<String>>,
    pub pid_file: Option<OneOrMany>,
    pub duration: Option<Spanned<Dur>>,
    pub agent: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub url: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    pub headers: Option<Spanned<toml::Table>>,
    pub timeout: Option<Spanned<Dur>>,
    pub retry_initial: Option<Spanned<Dur>>,
    pub retry_max: Option<Spanned<Dur>>,
    /// webhook: a minijinja template for the body.
    pub template: Option<Spanned<String>>,
    /// pagerduty
    pub routing_key_env: Option<Spanned<String>>,
    /// alertmanager
    pub firing_ttl: Option<Spanned<Dur>>,
    /// email
    pub smtp: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<Vec<String>>>,
    pub ca_file: Option<Spanned<String>>,
}

/// A duration written as text (`"10s"`); a parse error becomes a serde error at the value's span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration string such as \"10s\", \"500ms\" or \"2m\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                lookout_core::parse_duration(s).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!("a bare number ({n}) is ambiguous; write a unit, e.g. \"{n}s\" or \"{n}ms\"")))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!("a bare number ({n}) is ambiguous; write a unit, e.g. \"{n}s\" or \"{n}ms\"")))
            }
        }
        d.deserialize_any(V)
    }
}
