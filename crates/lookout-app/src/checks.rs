//! Which targets this agent probes. Each target is probed from every location it names (`locations`, default
//! all) and, within one location, by one agent at a time: the agents of a location share its checks through
//! leases in the store ([`Store::claim_checks`]), each taking its fair share and renewing what it holds every
//! [`HEARTBEAT_EVERY`]. An agent that dies stops renewing; after [`CHECK_TTL`] its checks are free and the others,
//! whose fair share has grown, take them: within `CHECK_TTL + HEARTBEAT_EVERY` (11 s).
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

/// How long a check lease lasts without renewal: between two missed renewals and three, so that a dead agent's
/// checks move well within the 15 s a location may go unwatched.
pub const CHECK_TTL: Duration = Duration::from_secs(8);

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
/// A machine's own targets are not shared out: its agent alone probes them.
pub fn targets_at(config: &Config, location: &str) -> Vec<(String, Duration)> {
    let shared_out = |t: &&lookout_config::Target| t.probed_from(location) && t.machine.is_none();
    config.targets.iter().filter(shared_out).map(|t| (t.name.clone(), t.interval)).collect()
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
    checks: Vec<(String, Duration)>,
    assigned: watch::Sender<Option<Arc<Assignment>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !store.is_shared() {
        return;
    }
    let (agent, location) = (me.name.clone(), me.location.clone());
    let targets: Vec<String> = checks.iter().map(|(name, _)| name.clone()).collect();
    let intervals: std::collections::HashMap<String, Duration> = checks.into_iter().collect();
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
                let before = assigned.borrow().as_ref().map(|a| a.mine.clone()).unwrap_or_default();
                // Published only when it changes: every probe loop looks at it then.
                if before != mine {
                    let newly: Vec<&String> = mine.iter().filter(|t| !before.contains(*t)).collect();
                    let taken_over = if lost_an_agent && !newly.is_empty() {
                        owed_a_probe(store.as_ref(), &location, &newly, &intervals).await
                    } else {
                        HashSet::new()
                    };
                    if !taken_over.is_empty() {
                        tracing::info!(
                            checks = taken_over.len(),
                            "Probing at once the checks taken over whose last tick nobody probed."
                        );
                    }
                    assigned.send_replace(Some(Arc::new(Assignment { mine, taken_over })));
                }
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

/// Of the checks just taken over, those whose last tick went unprobed: the location's latest result is older
/// than it (the agent that held them had died by then). Exact where a guess by time would either probe some
/// twice or leave some a whole interval late. If the store cannot say, none: they keep their rhythm.
async fn owed_a_probe<S: Store>(
    store: &S,
    location: &str,
    newly: &[&String],
    intervals: &std::collections::HashMap<String, Duration>,
) -> HashSet<String> {
    let Ok(states) = store.location_states().await else { return HashSet::new() };
    let last: std::collections::HashMap<&str, i64> =
        states.iter().filter(|s| s.location == location).map(|s| (s.target.as_str(), s.at.0)).collect();
    let now = lookout_core::Timestamp::now().as_millis();
    newly
        .iter()
        .filter(|t| {
            let Some(interval) = intervals.get(t.as_str()) else { return false };
            let since_tick = interval.saturating_sub(crate::pipeline::phase_delay(t, *interval, now));
            let tick = now - i64::try_from(since_tick.as_millis()).unwrap_or(i64::MAX);
            // A second of slack: a probe's time is when it started, a few milliseconds after its tick.
            last.get(t.as_str()).is_none_or(|at| *at + 1_000 < tick)
        })
        .map(|t| (*t).clone())
        .collect()
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

    #[tokio::test]
    async fn a_check_taken_over_is_owed_a_probe_only_if_its_last_tick_went_unprobed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let Ok(cfg) = lookout_config::Config::parse(
            "[store]\npath = \"lookout.sqlite\"\n",
            &dir.path().join("lookout.toml"),
            &|_| None,
        ) else {
            panic!("the config parses")
        };
        let Ok(store) = lookout_store::open(&cfg.store).await else { panic!("the store opens") };
        let interval = Duration::from_secs(60);
        let now = lookout_core::Timestamp::now().as_millis();
        // Each target's last tick, by its phase: one was probed then, one an interval before (its agent had died).
        let tick = |name: &str| {
            now - i64::try_from((interval - crate::pipeline::phase_delay(name, interval, now)).as_millis()).unwrap_or(0)
        };
        let seen = |target: &str, at: i64| lookout_store::LocationState {
            target: target.into(),
            location: "eu".into(),
            state: lookout_core::AlertState::default(),
            at: lookout_core::Timestamp(at),
            ok: true,
            latency_ms: 1.0,
            status: Some(200),
            reason: None,
        };
        let record = lookout_store::Record {
            locations: vec![
                seen("probed", tick("probed") + 5),
                seen("missed", tick("missed") - 60_000),
                lookout_store::LocationState { location: "us".into(), ..seen("elsewhere", tick("elsewhere") + 5) },
            ],
            ..lookout_store::Record::default()
        };
        store.record(record).await.unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = ["probed", "missed", "elsewhere", "never"].map(String::from).to_vec();
        let newly: Vec<&String> = names.iter().collect();
        let intervals = names.iter().map(|n| (n.clone(), interval)).collect();
        let owed = owed_a_probe(&store, "eu", &newly, &intervals).await;
        let mut owed: Vec<&str> = owed.iter().map(String::as_str).collect();
        owed.sort_unstable();
        assert_eq!(owed, ["elsewhere", "missed", "never"], "only a check probed at its last tick here is not owed one");
    }

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
