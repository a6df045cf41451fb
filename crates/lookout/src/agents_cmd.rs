//! `lookout agents`: the agents sharing the store, where they probe from, which one leads, when each was last
//! heard from, and whether their configurations agree (the config hash; this process's own is printed beside).
//!
//! An agent not heard from for longer than a leader lease lasts is marked `gone`: if it led, another has taken
//! over or will at the next heartbeat.

use std::fmt::Write as _;
use std::path::Path;

use lookout_config::Config;
use lookout_core::{Timestamp, format_duration};
use lookout_store::{AgentRow, Store};

pub async fn run(config: &Path, json: bool, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let config = Config::load_without_secrets(config)?;
    let store = lookout_store::open(&config.store).await?;
    let agents = store.agents().await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&agents)?)?;
    } else {
        out.write_all(table(&agents, &lookout_app::cluster::config_hash(&config), Timestamp::now()).as_bytes())?;
    }
    Ok(0)
}

/// Whether an agent last seen at `last_seen` still counts as alive at `now`.
pub fn alive(last_seen: Timestamp, now: Timestamp) -> bool {
    now.0 - last_seen.0 <= lookout_app::cluster::LEADER_TTL.as_millis() as i64
}

fn table(agents: &[AgentRow], own_hash: &str, now: Timestamp) -> String {
    if agents.is_empty() {
        return "No agent has used this store yet: start `lookout run` with it.\n".into();
    }
    let mut s = format!(
        "{:<24} {:<14} {:<7} {:<12} {:<9} {:<14} {}\n",
        "NAME", "LOCATION", "LEADER", "LAST SEEN", "VERSION", "CONFIG", "STATE"
    );
    for a in agents {
        let ago = std::time::Duration::from_millis(u64::try_from(now.0 - a.last_seen.0).unwrap_or(0));
        let state = if !alive(a.last_seen, now) {
            "gone"
        } else if a.info.config_hash != own_hash {
            "config differs"
        } else {
            "up"
        };
        let _ = writeln!(
            s,
            "{:<24} {:<14} {:<7} {:<12} {:<9} {:<14} {}",
            a.info.name,
            a.info.location,
            if a.leader { "yes" } else { "-" },
            format!("{} ago", format_duration(ago)),
            a.info.version,
            a.info.config_hash,
            state
        );
    }
    let _ = writeln!(s, "\nThis config's hash: {own_hash}");
    s
}
