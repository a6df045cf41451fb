//! Which targets this agent probes. Each target is probed from every location it names (`locations`, default
//! all) and, within one location, by one agent at a time: the agents of a location share its checks through
//! leases in the store ([`Store::claim_checks`]), each taking its fair share and renewing what it holds every
//! [`HEARTBEAT_EVERY`]. An agent that dies stops renewing; after [`CHECK_TTL`] its checks are free and the others,
//! whose fair share has grown, take them: within `CHECK_TTL + HEARTBEAT_EVERY` (13 s).
//!
//! Why a short lease rather than one of "interval + timeout": a 60 s interval would leave a dead agent's checks
//! unprobed for over a minute, and the lease is renewed in one statement per agent however many it holds, so a
//! short one costs nothing more. A check changing hands keeps its rhythm: its phase within the interval comes from
//! its name, the same on every agent.
//!
//! On one machine (a store that is not shared) there is nothing to share: every target of its location is its
//! own, and no lease is written. When the shared store cannot be reached, an agent keeps probing what it held
//! (nobody can take it over meanwhile): probing twice is better than not at all.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lookout_config::Config;
use lookout_store::{AgentInfo, CheckClaim, Store};
use tokio::sync::watch;

use crate::cluster::HEARTBEAT_EVERY;

/// How long a check lease lasts without renewal.
pub const CHECK_TTL: Duration = Duration::from_secs(10);

/// The checks this agent holds now, and which of them it just took over from an agent that went away.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub mine: HashSet<String>,
    /// Taken when the location lost an agent: a tick that fell while nobody held them was missed, and their probe
    /// loops make up for it at once (see `pipeline::loops`). Empty at start-up and when agents join, when the
    /// checks moved from a live agent that probed them.
    pub taken_over: HashSet<String>,
}

/// The targets this agent probes now: `None` while it probes every target of its location (one machine).
pub type Assigned = watch::Receiver<Option<Arc<Assignment>>>;

/// Whether `target` is this agent's to probe now.
pub fn is_mine(assigned: &Assigned, target: &str) -> bool {
    assigned.borrow().as_ref().is_none_or(|a| a.mine.contains(target))
}

/// Whether this agent just took `target` over from an agent that went away.
pub fn taken_over(assigned: &Assigned, target: &str) -> bool {
    assigned.borrow().as_ref().is_some_and(|a| a.taken_over.contains(target))
}

/// How long a check can have gone unprobed when its agent dies: its lease running out, and the next claim.
pub const TAKEOVER_WINDOW: Duration = Duration::from_secs(CHECK_TTL.as_secs() + 2 * HEARTBEAT_EVERY.as_secs());

/// The targets agents at `location` probe, by this config.
pub fn targets_at(config: &Config, location: &str) -> Vec<String> {
    config.targets.iter().filter(|t| t.probed_from(location)).map(|t| t.name.clone()).collect()
}

/// This agent's fair share of `checks` among `agents` live agents of its location (itself included).
pub fn fair_share(checks: usize, agents: usize) -> usize {
    checks.div_ceil(agents.max(1))
}

/// Takes and renews this agent's checks until `shutdown`, publishing them on `assigned`; gives them up at a
/// clean stop so that the location's other agents take them at once.
pub async fn run<S: Store>(
    store: Arc<S>,
    me: AgentInfo,
    targets: Vec<String>,
    assigned: watch::Sender<Option<Arc<Assignment>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !store.is_shared() {
        return;
    }
    let (agent, location) = (me.name.clone(), me.location.clone());
    // Nothing is probed until the first claim says what is ours: two agents starting together must not both
    // probe everything.
    assigned.send_replace(Some(Arc::new(Assignment::default())));
    let mut held_count = None::<usize>;
    let mut differs_from = None::<String>;
    let mut live_before = None::<usize>;
    // When the location last lost an agent: checks taken within a takeover window after it are its.
    let mut lost_at = None::<std::time::Instant>;
    loop {
        match claim(store.as_ref(), &me, &targets, &mut differs_from).await {
            Ok((held, live)) => {
                if held_count != Some(held.len()) {
                    tracing::info!(%location, checks = held.len(), of = targets.len(), "This agent's share of its location's checks.");
                    held_count = Some(held.len());
                }
                if live_before.is_some_and(|before| live < before) {
                    lost_at = Some(std::time::Instant::now());
                }
                live_before = Some(live);
                let lost_an_agent = lost_at.is_some_and(|t| t.elapsed() < TAKEOVER_WINDOW);
                let mine: HashSet<String> = held.into_iter().collect();
                // Published only when it changes: every probe loop looks at it then.
                assigned.send_if_modified(|current| {
                    let before = current.as_ref().map(|a| &a.mine);
                    if before == Some(&mine) {
                        return false;
                    }
                    let taken_over = if lost_an_agent {
                        mine.iter().filter(|t| before.is_some_and(|b| !b.contains(*t))).cloned().collect()
                    } else {
                        HashSet::new()
                    };
                    *current = Some(Arc::new(Assignment { mine: mine.clone(), taken_over }));
                    true
                });
            }
            Err(e) => tracing::warn!(error = %e, "Cannot renew the check leases; probing what this agent held."),
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = shutdown.changed() => break,
        }
    }
    if let Err(e) = store.release_checks(agent, location).await {
        tracing::warn!(error = %e, "Cannot hand the checks over; the location's other agents take them when the leases run out.");
    }
}

/// One round: counts the location's live agents (those that beat within a lease) and claims this agent's share.
/// Says (once per leader) when this agent's configuration differs from the leader's.
/// Takes nothing while another process runs under this agent's name (its heartbeat is refused, see
/// `crate::cluster`): two holders of one name would probe and lead twice.
async fn claim<S: Store>(
    store: &S,
    me: &AgentInfo,
    targets: &[String],
    differs_from: &mut Option<String>,
) -> lookout_store::Result<(Vec<String>, usize)> {
    let (agent, location, config_hash) = (me.name.as_str(), me.location.as_str(), me.config_hash.as_str());
    let agents = store.agents().await?;
    if agents.iter().any(|a| a.info.name == agent && a.info.started_at != me.started_at) {
        return Ok((Vec::new(), 0));
    }
    if let Some(leader) = agents.iter().find(|a| a.leader) {
        let differs = leader.info.config_hash != config_hash;
        if differs && differs_from.as_deref() != Some(leader.info.name.as_str()) {
            tracing::warn!(
                leader = %leader.info.name,
                leader_config = %leader.info.config_hash,
                this_config = %config_hash,
                "This agent's configuration differs from the leader's: it probes only the targets it knows, and the leader ignores results of targets it does not know. Give every agent the same config file."
            );
            *differs_from = Some(leader.info.name.clone());
        } else if !differs {
            *differs_from = None;
        }
    }
    // The agents' clocks do not matter: last_seen is the store's, compared with the freshest beat it knows.
    let newest = agents.iter().map(|a| a.last_seen.0).max().unwrap_or(0);
    let ttl = i64::try_from(CHECK_TTL.as_millis()).unwrap_or(i64::MAX);
    let live = agents
        .iter()
        .filter(|a| a.info.location == location && (a.info.name == agent || newest - a.last_seen.0 <= ttl))
        .count();
    let want = fair_share(targets.len(), live.max(1));
    let held = store
        .claim_checks(CheckClaim {
            agent: agent.to_string(),
            location: location.to_string(),
            targets: targets.to_vec(),
            want,
            ttl: CHECK_TTL,
        })
        .await?;
    Ok((held, live))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_fair_and_cover_every_check() {
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(10, 1), 10);
        assert_eq!(fair_share(0, 2), 0);
        assert_eq!(fair_share(5, 0), 5, "an agent that does not yet see itself takes everything");
        for (checks, agents) in [(10_000, 3), (7, 7), (1, 4)] {
            assert!(fair_share(checks, agents) * agents >= checks);
        }
    }
}
