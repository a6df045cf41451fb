//! The machine's own targets (`[host]`, `[[process]]`): added to the configuration when `lookout run` starts, with
//! the filesystems mounted then, so a configuration is the same text on every machine and a new disk is watched
//! from the next start.
//!
//! Several agents sharing a store each watch their own machine: an agent's copies of the host parts and of the
//! `[[process]]` targets are named after it (`web-1.host-memory`, `web-1.fs-root`, `web-1.apache2`), in its own
//! incident group (`web-1.host`), labelled `agent = "web-1"`, and probed by it alone ([`Target::machine`]). Each
//! agent says which filesystems it watches with its heartbeat (`agents.mounts`); from that, whichever agent leads
//! builds the same targets for every other machine ([`others`]) and judges them like its own — so a disk filling
//! up on a follower pages as surely as one on the leader.

use std::path::PathBuf;

use lookout_config::{Check, Config, HostCheck, StoreBackend, Target};
use lookout_store::AgentRow;

/// Adds the host's targets to `config` (none when `[host] enabled = false`); on a shared store, this agent's
/// copies of them and of the `[[process]]` targets (see the module's doc). A host target whose name a configured
/// target already has is left out, with a warning.
pub fn add_host_targets(config: &mut Config) {
    let shared = matches!(config.store.backend, StoreBackend::Postgres { .. });
    let mounts = if config.host.enabled { lookout_probe::host::mounts() } else { Vec::new() };
    let own = if shared {
        let (processes, rest): (Vec<Target>, Vec<Target>) =
            std::mem::take(&mut config.targets).into_iter().partition(is_process);
        config.targets = rest;
        config.processes = processes;
        machine_targets(config, &config.agent.name, &mounts)
    } else {
        config.host.targets(&mounts)
    };
    for target in own {
        if config.targets.iter().any(|t| t.name == target.name) {
            tracing::warn!(target = %target.name, "A configured target has a [host] target's name; the host's is left out.");
            continue;
        }
        config.targets.push(target);
    }
}

/// Whether `t` is a `[[process]]` target.
pub(crate) fn is_process(t: &Target) -> bool {
    matches!(t.check, Check::Host(HostCheck::Process(_)))
}

/// The mount points this agent's own filesystem targets watch: what its heartbeat tells the others.
pub fn own_mounts(config: &Config) -> Vec<String> {
    config
        .targets
        .iter()
        .filter(|t| t.machine.as_deref() == Some(config.agent.name.as_str()))
        .filter_map(|t| match &t.check {
            Check::Host(HostCheck::Filesystem { mount, .. }) => Some(mount.to_string_lossy().into_owned()),
            _ => None,
        })
        .fold(Vec::new(), |mut out, m| {
            if !out.contains(&m) {
                out.push(m);
            }
            out
        })
}

/// The targets of `agent`'s machine with `mounts` watched: the host parts (`[host]`) and the `[[process]]`
/// targets, named, grouped and labelled after the agent, probed by it alone.
pub fn machine_targets(config: &Config, agent: &str, mounts: &[PathBuf]) -> Vec<Target> {
    let own = |name: &str| format!("{agent}.{name}");
    config
        .host
        .targets(mounts)
        .into_iter()
        .chain(config.processes.iter().cloned())
        .map(|mut t| {
            t.name = own(&t.name);
            t.group = own(&t.group);
            t.depends_on = t.depends_on.iter().map(|d| own(d)).collect();
            t.alert.labels.insert("agent".into(), agent.to_string());
            t.machine = Some(agent.to_string());
            t
        })
        .collect()
}

/// The machine targets of the other agents the store knows (on a shared store; none on one machine), as their
/// heartbeats describe their machines. Every agent's `[host]` and `[[process]]` are this configuration's: agents
/// share one file (`lookout agents` shows one that does not).
pub fn others(config: &Config, agents: &[AgentRow]) -> Vec<Target> {
    if !matches!(config.store.backend, StoreBackend::Postgres { .. }) {
        return Vec::new();
    }
    agents
        .iter()
        .filter(|a| a.info.name != config.agent.name)
        .flat_map(|a| {
            let mounts: Vec<PathBuf> = a.info.mounts.iter().map(PathBuf::from).collect();
            machine_targets(config, &a.info.name, &mounts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(extra: &str) -> Config {
        let text = format!(
            "[store]\nurl = \"postgres://lookout@127.0.0.1/lookout\"\n[agent]\nname = \"web-1\"\n[[process]]\nname = \"apache2\"\n{extra}"
        );
        match Config::parse(&text, std::path::Path::new("lookout.toml"), &|_| None) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn on_a_shared_store_each_machine_s_targets_are_named_grouped_and_probed_after_its_agent() {
        let mut config = shared("");
        add_host_targets(&mut config);
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"web-1.apache2") && names.contains(&"web-1.host-memory-critical"), "{names:?}");
        assert!(!names.contains(&"apache2"), "the configured process is a template, not a target: {names:?}");
        let memory = config.targets.iter().find(|t| t.name == "web-1.host-memory").cloned();
        let Some(memory) = memory else { panic!("{names:?}") };
        assert_eq!(memory.group, "web-1.host");
        assert_eq!(memory.depends_on, ["web-1.host-memory-critical"]);
        assert_eq!(memory.alert.labels.get("agent").map(String::as_str), Some("web-1"));
        assert_eq!(memory.machine.as_deref(), Some("web-1"));

        let row = |name: &str, mounts: &[&str]| AgentRow {
            info: lookout_store::AgentInfo {
                name: name.into(),
                location: String::new(),
                version: String::new(),
                config_hash: String::new(),
                started_at: lookout_core::Timestamp(0),
                mounts: mounts.iter().map(|m| m.to_string()).collect(),
            },
            last_seen: lookout_core::Timestamp(0),
            leader: false,
        };
        let theirs = others(&config, &[row("web-1", &["/"]), row("db-1", &["/", "/var/lib/postgresql"])]);
        let names: Vec<&str> = theirs.iter().map(|t| t.name.as_str()).collect();
        assert!(names.iter().all(|n| n.starts_with("db-1.")), "not this agent's own again: {names:?}");
        assert!(names.contains(&"db-1.fs-var-lib-postgresql-critical") && names.contains(&"db-1.apache2"), "{names:?}");
        let fs = theirs.iter().find(|t| t.name == "db-1.fs-var-lib-postgresql");
        assert_eq!(fs.and_then(|t| t.alert.labels.get("mountpoint")).map(String::as_str), Some("/var/lib/postgresql"));
    }

    #[test]
    fn on_one_machine_the_names_stay_plain_and_there_are_no_others() {
        let text = "[[process]]\nname = \"apache2\"\n[host]\nmounts = [\"/\"]\n";
        let Ok(mut config) = Config::parse(text, std::path::Path::new("lookout.toml"), &|_| None) else {
            panic!("parses")
        };
        add_host_targets(&mut config);
        assert!(config.targets.iter().any(|t| t.name == "apache2" && t.machine.is_none()));
        assert!(config.targets.iter().any(|t| t.name == "fs-root"));
        assert!(others(&config, &[]).is_empty() && config.processes.is_empty());
    }
}
