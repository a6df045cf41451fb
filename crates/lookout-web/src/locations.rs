//! Targets as each location sees them, and the agents with their leader: what the API and the dashboard show
//! when several agents share the store. One machine stores no location states, and these lists stay empty.

use std::collections::HashMap;

use lookout_config::Config;
use lookout_core::{Phase, Timestamp};
use lookout_store::{AgentRow, LocationState, Store};
use serde::Serialize;

/// A target's state and latest check in one location.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LocationView {
    pub location: String,
    /// The alert state there (`ok`, `pending`, `firing`), by the target's thresholds.
    pub state: &'static str,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub at: Timestamp,
    pub reason: Option<String>,
    /// Not heard from for longer than the target's quorum counts a location (its agent died or left).
    pub stale: bool,
}

/// Each target's locations, by target.
pub(crate) async fn by_target<S: Store>(
    store: &S,
    config: &Config,
) -> lookout_store::Result<HashMap<String, Vec<LocationView>>> {
    let now = Timestamp::now();
    let mut out: HashMap<String, Vec<LocationView>> = HashMap::new();
    for LocationState { target, location, state, at, ok, latency_ms, status, reason } in store.location_states().await?
    {
        let Some(t) = config.target(&target) else { continue };
        let stale_after = t.policy.stale_after;
        let stale = !stale_after.is_zero() && now.since(at) > stale_after;
        out.entry(target).or_default().push(LocationView {
            location,
            state: state.phase.as_str(),
            ok,
            status,
            latency_ms,
            at,
            reason,
            stale,
        });
    }
    Ok(out)
}

/// The locations where a target fails (firing there) while its alert does not fire: below its quorum, it is
/// degraded there and pages nobody.
pub(crate) fn degraded(target_phase: Phase, locations: &[LocationView]) -> Vec<String> {
    if target_phase == Phase::Firing {
        return Vec::new();
    }
    locations.iter().filter(|l| !l.stale && l.state == Phase::Firing.as_str()).map(|l| l.location.clone()).collect()
}

/// The agents whose configuration differs from the leader's: they do not probe targets they do not know, and
/// the leader ignores what it does not know, so the two disagree about what is watched.
pub(crate) fn config_differs(agents: &[AgentRow]) -> Vec<String> {
    let Some(leader) = agents.iter().find(|a| a.leader) else { return Vec::new() };
    agents.iter().filter(|a| a.info.config_hash != leader.info.config_hash).map(|a| a.info.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(location: &str, state: Phase, stale: bool) -> LocationView {
        LocationView {
            location: location.into(),
            state: state.as_str(),
            ok: state == Phase::Ok,
            status: None,
            latency_ms: 1.0,
            at: Timestamp(0),
            reason: None,
            stale,
        }
    }

    #[test]
    fn degraded_means_failing_somewhere_fresh_while_not_firing() {
        let l = [view("eu", Phase::Ok, false), view("us", Phase::Firing, false), view("asia", Phase::Firing, true)];
        assert_eq!(degraded(Phase::Pending, &l), vec!["us".to_string()]);
        assert!(degraded(Phase::Firing, &l).is_empty(), "firing is more than degraded");
        assert!(degraded(Phase::Ok, &l[..1]).is_empty());
    }
}
