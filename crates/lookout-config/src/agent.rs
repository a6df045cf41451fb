//! `[agent]`: who this process is among the agents that share a store. Several `lookout run` processes pointed at
//! one PostgreSQL store read the same config file; each differs only by its name and location, so both may also
//! come from the environment (`LOOKOUT_AGENT_NAME`, `LOOKOUT_AGENT_LOCATION`), which wins over the file.

use crate::raw::RawAgent;
use crate::{At, ConfigError, EnvLookup};

/// The location of an agent that names none: a single machine is one location.
pub const DEFAULT_LOCATION: &str = "local";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// Unique among the agents of one store (default: the host name).
    pub name: String,
    /// Where it probes from; each target is probed once per location (default [`DEFAULT_LOCATION`]).
    pub location: String,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig { name: host_name(), location: DEFAULT_LOCATION.to_string() }
    }
}

/// The kernel's host name, or "lookout" when it cannot be read or is no valid name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| crate::load::valid_name(h))
        .unwrap_or_else(|| "lookout".to_string())
}

pub(crate) fn validate(raw: RawAgent, env: EnvLookup<'_>, at: &At<'_>) -> Result<AgentConfig, ConfigError> {
    let mut agent = AgentConfig::default();
    for (key, value, var, slot) in [
        ("name", &raw.name, "LOOKOUT_AGENT_NAME", &mut agent.name),
        ("location", &raw.location, "LOOKOUT_AGENT_LOCATION", &mut agent.location),
    ] {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            let v = v.trim();
            if !crate::load::valid_name(v) {
                return Err(ConfigError::Env {
                    message: format!(
                        "${var} is not a valid agent {key}: use letters, digits, '-', '_' or '.' (at most 64)"
                    ),
                });
            }
            *slot = v.to_string();
        } else if let Some(v) = value {
            if !crate::load::valid_name(v.get_ref()) {
                return Err(at(
                    v.span(),
                    format!("{key} in [agent] is {:?}: use letters, digits, '-', '_' or '.' (at most 64)", v.get_ref()),
                ));
            }
            *slot = v.get_ref().clone();
        }
    }
    Ok(agent)
}

/// `agent = "web-1"` in a `[[log]]` or `[target.diagnose]`: the agent whose machine has the files and processes.
pub(crate) fn pinned_agent(
    value: &Option<toml::Spanned<String>>,
    section: &str,
    at: &At<'_>,
) -> Result<Option<String>, ConfigError> {
    let Some(v) = value else { return Ok(None) };
    if !crate::load::valid_name(v.get_ref()) {
        return Err(at(
            v.span(),
            format!(
                "agent in {section} is {:?}: name an agent as [agent] name does (letters, digits, '-', '_' or '.')",
                v.get_ref()
            ),
        ));
    }
    Ok(Some(v.get_ref().clone()))
}
