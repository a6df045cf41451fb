//! `lookout.toml`: the serde model, its defaults, and validation.
//!
//! Every error names the file, the line and the key, and says what to do, e.g.
//! `lookout.toml:7: unknown key "intervall" in [[target]] "site" (did you mean "interval"?)`.
//! Parsing happens in two passes: serde reads the raw model (syntax, unknown keys, types, durations), then
//! `load::validate` checks meaning (one check kind per target, URLs, conditions, unique names) using the spans
//! serde kept.
//!
//! By job: `target` and `log_source` define and validate what is watched, `alerting` the keys those two share,
//! `notify` the channels, `policy` routes, maintenance windows and dependencies, `store` and `web` their own
//! sections, `raw` the file as serde reads it, and `load` reads a file and validates it as a whole.

mod agent;
mod alerting;
mod dns;
mod error;
mod host;
mod load;
mod log_source;
mod notify;
mod policy;
mod raw;
mod status;
mod store;
mod target;
mod url;
mod web;

pub use agent::{AgentConfig, DEFAULT_LOCATION};
pub use alerting::{AlertMeta, SEVERITIES};
pub use dns::{DnsCheck, RecordType};
pub use error::ConfigError;
pub use host::{HOST_GROUP, HostCheck, HostConfig, filesystem_name};
pub use log_source::LogSource;
pub use notify::{EmailConfig, Notify, NotifyKind, Secret, SmtpTls};
pub use policy::{Maintenance, Route};
pub use status::{Server, StatusCheck};
pub use store::{HOURLY_RETENTION_MIN, StoreBackend, StoreConfig, redact_url};
pub use target::{Check, DiagnoseSpec, HttpCheck, Target};
pub use web::WebConfig;

/// Route defaults: what an alert no route takes gets.
pub mod policy_defaults {
    pub use crate::policy::{DEFAULT_REPEAT_INTERVAL, MIN_REPEAT_INTERVAL};
}

use std::path::PathBuf;
use std::time::Duration;

/// Environment variable lookup, injectable so tests need not mutate the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) type At<'a> = dyn Fn(std::ops::Range<usize>, String) -> ConfigError + 'a;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from (or a display name for in-memory sources).
    pub source: PathBuf,
    pub store: StoreConfig,
    /// Who this process is among the agents sharing the store.
    pub agent: AgentConfig,
    pub web: WebConfig,
    pub targets: Vec<Target>,
    /// The machine's own targets, added when `lookout run` starts (see [`HostConfig::targets`]).
    pub host: HostConfig,
    pub notify: Vec<Notify>,
    pub logs: Vec<LogSource>,
    /// Which channels get which alerts, first match first (see [`Route`]).
    pub routes: Vec<Route>,
    pub maintenance: Vec<Maintenance>,
    /// The `[[process]]` targets as configured, when several agents share the store: each agent watches its own
    /// machine's, under its own name (see `lookout_app::host`); set when `lookout run` starts, empty otherwise.
    pub processes: Vec<Target>,
}

/// What a group's default wait adds to one check round: room for late starts and recording on a busy machine.
pub const GROUP_SETTLE: Duration = Duration::from_secs(2);

impl Config {
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// How long the first message of each group waits for the others when its route sets no `group_wait`: for a
    /// group of several targets, the longest `interval + timeout` among them plus [`GROUP_SETTLE`] — every target
    /// has checked once by then (each checks at its own phase of its interval) and been recorded, so a failure of
    /// the whole group is one message; for a target alone in its group, with or without log sources (they read
    /// continuously, so a target and its server's logs need no round to gather), nothing: sent at once.
    pub fn default_group_waits(&self) -> std::collections::HashMap<String, Duration> {
        let mut members: std::collections::HashMap<&str, (usize, Duration)> = Default::default();
        for t in &self.targets {
            let m = members.entry(t.group.as_str()).or_default();
            m.0 += 1;
            m.1 = m.1.max(t.interval + t.timeout);
        }
        members
            .into_iter()
            .map(|(group, (n, wait))| (group.to_string(), if n > 1 { wait + GROUP_SETTLE } else { Duration::ZERO }))
            .collect()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_logs;
