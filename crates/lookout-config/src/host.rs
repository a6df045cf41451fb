//! `[host]` and `[[process]]`: the machine lookout runs on, watched without configuration — CPU and load,
//! memory, open files, each filesystem that holds data (use, inodes, time until full) — and the processes named.
//! Each part is a [`Target`] with a [`Check::Host`] and `fire_when` rules, so thresholds, routes, silences and
//! incidents work as for any target. Each default alert comes as a warning and a critical target (the warning
//! `depends_on` the critical one, so only the worse is sent), in the group `host`, with hysteresis.
//!
//! The filesystems are found when `lookout run` starts ([`HostConfig::targets`] with the mounts the probe crate
//! lists), not when the file is read: a configuration is the same text on every machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lookout_engine::{Condition, TargetPolicy};

use crate::At;
use crate::alerting::{AlertMeta, Reads, alert_meta, built_in, group_name, parse_conditions};
use crate::error::ConfigError;
use crate::notify::at_least;
use crate::raw::{RawHost, RawProcess};
use crate::target::{Check, MIN_INTERVAL, Target};

/// What part of the host a target reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCheck {
    Cpu,
    Memory,
    /// Open file handles against the kernel's maximum.
    Descriptors,
    /// A filesystem, by its mount point; its time until full is fitted over `trend`.
    Filesystem {
        mount: PathBuf,
        trend: Duration,
    },
    /// Processes by command name (`/proc/PID/comm`).
    Process(String),
}

/// `[host]`, with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HostConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub cpu: bool,
    pub memory: bool,
    pub filesystems: bool,
    /// The mount points to watch; `None`: every mounted filesystem that holds data.
    pub mounts: Option<Vec<PathBuf>>,
    pub descriptors: bool,
    /// How far back a filesystem's growth is fitted for its time until full (a sixth of it must have passed
    /// before there is one: a burst of writes in the first minutes predicts nothing).
    pub trend: Duration,
    /// How far back a threshold moves once its alert fires (a fraction of it): see
    /// `Condition::with_hysteresis`.
    pub hysteresis: f64,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            interval: Duration::from_secs(10),
            cpu: true,
            memory: true,
            filesystems: true,
            mounts: None,
            descriptors: true,
            trend: Duration::from_secs(3600),
            hysteresis: DEFAULT_HYSTERESIS,
        }
    }
}

/// The default hysteresis: 5 % of a threshold (90 % clears below 85.5 %).
pub const DEFAULT_HYSTERESIS: f64 = 0.05;

/// The group of every host target: one incident for one machine's troubles.
pub const HOST_GROUP: &str = "host";

/// A warning and a critical level of one alert.
struct Levels<'a> {
    warning: &'a [&'a str],
    critical: &'a [&'a str],
}

const MEMORY: Levels<'_> =
    Levels { warning: &["[MEMORY_USED_RATIO] >= 90%"], critical: &["[MEMORY_USED_RATIO] >= 98%"] };
const FILESYSTEM: Levels<'_> = Levels {
    warning: &["[FS_USED_RATIO] >= 90%", "[FS_INODES_USED_RATIO] >= 90%", "[TIME_TO_FULL] < 8h"],
    critical: &["[FS_USED_RATIO] >= 98%", "[FS_INODES_USED_RATIO] >= 98%", "[TIME_TO_FULL] < 2h"],
};
const FILES: Levels<'_> = Levels { warning: &["[OPEN_FILES_RATIO] >= 80%"], critical: &["[OPEN_FILES_RATIO] >= 90%"] };

impl HostConfig {
    /// The host's targets, with `mounted` as the filesystems found (the configured `mounts` win).
    pub fn targets(&self, mounted: &[PathBuf]) -> Vec<Target> {
        if !self.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.cpu {
            // Read for the dashboard and /metrics; a busy CPU pages nobody by default.
            out.push(self.target("host-cpu".into(), HostCheck::Cpu, &[], "warning", BTreeMap::new(), Vec::new()));
        }
        if self.memory {
            out.extend(self.levels("host-memory", HostCheck::Memory, &MEMORY, BTreeMap::new()));
        }
        if self.descriptors {
            out.extend(self.levels("host-files", HostCheck::Descriptors, &FILES, BTreeMap::new()));
        }
        if self.filesystems {
            for mount in self.mounts.as_deref().unwrap_or(mounted) {
                let labels = BTreeMap::from([("mountpoint".to_string(), mount.display().to_string())]);
                let name = filesystem_name(mount);
                let check = HostCheck::Filesystem { mount: mount.clone(), trend: self.trend };
                out.extend(self.levels(&name, check, &FILESYSTEM, labels));
            }
        }
        out
    }

    /// `name` (warning) and `name-critical`; the warning is not sent while the critical one fires.
    fn levels(
        &self,
        name: &str,
        check: HostCheck,
        levels: &Levels<'_>,
        labels: BTreeMap<String, String>,
    ) -> Vec<Target> {
        let critical = format!("{name}-critical");
        vec![
            self.target(
                name.to_string(),
                check.clone(),
                levels.warning,
                "warning",
                labels.clone(),
                vec![critical.clone()],
            ),
            self.target(critical, check, levels.critical, "critical", labels, Vec::new()),
        ]
    }

    fn target(
        &self,
        name: String,
        check: HostCheck,
        rules: &[&str],
        severity: &str,
        labels: BTreeMap<String, String>,
        depends_on: Vec<String>,
    ) -> Target {
        let conditions =
            rules.iter().map(|src| built_in(src)).map(|c| c.fire_when().with_hysteresis(self.hysteresis)).collect();
        reading_target(
            name,
            Check::Host(check),
            self.interval,
            conditions,
            HOST_GROUP.into(),
            severity,
            labels,
            depends_on,
        )
    }
}

/// A target that reads values (a host part, a process): probed every `interval`, 2 readings in a row fire and 2
/// resolve.
#[allow(clippy::too_many_arguments)]
fn reading_target(
    name: String,
    check: Check,
    interval: Duration,
    conditions: Vec<Condition>,
    group: String,
    severity: &str,
    labels: BTreeMap<String, String>,
    depends_on: Vec<String>,
) -> Target {
    let timeout = Duration::from_secs(5).min(interval);
    Target {
        name,
        check,
        interval,
        timeout,
        conditions,
        policy: TargetPolicy {
            failure_threshold: 2,
            success_threshold: 2,
            pending_for: Duration::ZERO,
            quorum: 1,
            stale_after: interval * 3 + timeout,
        },
        diagnose: None,
        group,
        public_name: None,
        metrics: true,
        alert: AlertMeta { severity: severity.to_string(), labels },
        depends_on,
        locations: Vec::new(),
        machine: None,
    }
}

/// A filesystem's target name: `fs-root` for `/`, `fs-var-lib-mysql` for `/var/lib/mysql` (names are what URLs
/// and keys may hold).
pub fn filesystem_name(mount: &std::path::Path) -> String {
    let path = mount.to_string_lossy();
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "fs-root".into();
    }
    let safe: String =
        trimmed.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' }).collect();
    let mut name = format!("fs-{safe}");
    // Room for "-critical" within the 64 a name may have.
    name.truncate(64 - "-critical".len());
    name
}

/// A hysteresis written as a percentage of the threshold (`"5%"`), between 0 and 50 %.
pub(crate) fn hysteresis(
    value: &Option<toml::Spanned<String>>,
    section: &str,
    at: &At<'_>,
) -> Result<f64, ConfigError> {
    let Some(v) = value else { return Ok(DEFAULT_HYSTERESIS) };
    let fraction = v.get_ref().trim().strip_suffix('%').and_then(|n| n.trim().parse::<f64>().ok()).map(|p| p / 100.0);
    match fraction {
        Some(f) if (0.0..=0.5).contains(&f) => Ok(f),
        _ => Err(at(
            v.span(),
            format!("\"hysteresis\" in {section} is {:?}: write a percentage from \"0%\" to \"50%\"", v.get_ref()),
        )),
    }
}

pub(crate) fn validate_host(h: RawHost, at: &At<'_>) -> Result<HostConfig, ConfigError> {
    let section = "[host]";
    let d = HostConfig::default();
    let mounts = match h.mounts {
        None => None,
        Some(m) => {
            if let Some(bad) = m.get_ref().iter().find(|p| !p.starts_with('/')) {
                return Err(at(m.span(), format!("mount {bad:?} in {section} must be an absolute path")));
            }
            Some(m.into_inner().into_iter().map(PathBuf::from).collect())
        }
    };
    Ok(HostConfig {
        enabled: h.enabled.unwrap_or(d.enabled),
        interval: at_least(&h.interval, "interval", d.interval, MIN_INTERVAL, section, at)?,
        cpu: h.cpu.unwrap_or(d.cpu),
        memory: h.memory.unwrap_or(d.memory),
        filesystems: h.filesystems.unwrap_or(d.filesystems),
        mounts,
        descriptors: h.descriptors.unwrap_or(d.descriptors),
        trend: at_least(&h.trend, "trend", d.trend, Duration::from_secs(6), section, at)?,
        hysteresis: hysteresis(&h.hysteresis, section, at)?,
    })
}

/// `[[process]]`: alerts when no process of the name runs (default), or by its own `fire_when`.
pub(crate) fn validate_process(p: RawProcess, at: &At<'_>) -> Result<Target, ConfigError> {
    let name = p.name.get_ref().clone();
    let section = format!("[[process]] {name:?}");
    let command = p.command.as_ref().map_or_else(|| name.clone(), |c| c.get_ref().clone());
    if command.is_empty() || command.len() > 15 {
        let span = p.command.as_ref().map_or(p.name.span(), |c| c.span());
        return Err(at(
            span,
            format!(
                "the command in {section} is {command:?}: Linux keeps 15 characters of a process name (see /proc/PID/comm); set command = \"…\""
            ),
        ));
    }
    let interval = at_least(&p.interval, "interval", Duration::from_secs(10), MIN_INTERVAL, &section, at)?;
    let rules = match p.fire_when {
        Some(list) => parse_conditions(list, &section, Reads::Probe, at)?,
        None => ["[PROCESS_COUNT] < 1", "[PROCESS_RESTARTS] > 0"].iter().map(|src| built_in(src)).collect(),
    };
    let conditions = rules.into_iter().map(Condition::fire_when).collect();
    let group = group_name(&p.group, &name, &section, at)?;
    let meta = alert_meta(&p.severity, &p.labels, &section, at)?;
    let mut target = reading_target(
        name,
        Check::Host(HostCheck::Process(command)),
        interval,
        conditions,
        group,
        &meta.severity,
        meta.labels,
        Vec::new(),
    );
    // A restart is one reading: it fires at once and resolves at the next.
    target.policy.failure_threshold = 1;
    target.policy.success_threshold = 1;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_names_are_valid_target_names() {
        assert_eq!(filesystem_name(std::path::Path::new("/")), "fs-root");
        assert_eq!(filesystem_name(std::path::Path::new("/var/lib/mysql")), "fs-var-lib-mysql");
        assert_eq!(filesystem_name(std::path::Path::new("/mnt/my disk")), "fs-mnt-my-disk");
        let long = format!("/{}", "a".repeat(100));
        assert!(crate::load::valid_name(&format!("{}-critical", filesystem_name(std::path::Path::new(&long)))));
    }

    #[test]
    fn the_host_is_watched_by_default_with_a_warning_and_a_critical_level() {
        let targets = HostConfig::default().targets(&[PathBuf::from("/"), PathBuf::from("/srv")]);
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "host-cpu",
                "host-memory",
                "host-memory-critical",
                "host-files",
                "host-files-critical",
                "fs-root",
                "fs-root-critical",
                "fs-srv",
                "fs-srv-critical"
            ]
        );
        let warning = &targets[5];
        assert_eq!(
            (warning.alert.severity.as_str(), warning.depends_on.as_slice()),
            ("warning", &["fs-root-critical".to_string()][..])
        );
        assert_eq!(warning.alert.labels.get("mountpoint").map(String::as_str), Some("/"));
        assert!(warning.conditions.iter().all(Condition::fires));
        assert_eq!(targets[6].alert.severity, "critical");
        assert!(targets.iter().all(|t| t.group == HOST_GROUP));
        let off = HostConfig { enabled: false, ..HostConfig::default() };
        assert!(off.targets(&[PathBuf::from("/")]).is_empty());
        let only = HostConfig {
            mounts: Some(vec![PathBuf::from("/data")]),
            cpu: false,
            memory: false,
            descriptors: false,
            ..HostConfig::default()
        };
        let names: Vec<String> = only.targets(&[PathBuf::from("/")]).into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["fs-data", "fs-data-critical"]);
    }
}
