//! The machine's own targets (`[host]`): added to the configuration when `lookout run` starts, with the
//! filesystems mounted then, so a configuration is the same text on every machine and a new disk is watched from
//! the next start.

use lookout_config::{Config, StoreBackend};

/// Adds the host's targets to `config` (none when `[host] enabled = false`). Agents sharing a PostgreSQL store
/// judge every target on their leader, which knows only its own machine's: there, the host is not watched yet
/// (said once at start). A host target whose name a configured target already has is left out, with a warning.
pub fn add_host_targets(config: &mut Config) {
    if !config.host.enabled {
        return;
    }
    if matches!(config.store.backend, StoreBackend::Postgres { .. }) {
        tracing::info!("Several agents share the store: [host] resources are watched on one machine only (for now).");
        return;
    }
    let mounts = lookout_probe::host::mounts();
    for target in config.host.targets(&mounts) {
        if config.targets.iter().any(|t| t.name == target.name) {
            tracing::warn!(target = %target.name, "A configured target has a [host] target's name; the host's is left out.");
            continue;
        }
        config.targets.push(target);
    }
}
