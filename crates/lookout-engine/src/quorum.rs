//! Quorum: a target probed from several locations fires when at least `quorum` of them see it failing, each by
//! its own thresholds, and resolves when fewer do.
//!
//! Why per location: one location cannot tell a regional network fault from an outage (commercial checkers
//! confirm from several places before they page). Each location keeps its own [`AlertState`], stepped by the same
//! state machine as a single machine's alert; the target's own state is decided from them. With one location and a
//! quorum of 1 the target's state is exactly that location's, so one machine behaves as it always did.
//!
//! A location not heard from for longer than the policy's `stale_after` does not count: an agent that died while
//! its location was failing must not keep the target firing, nor help a later failure elsewhere reach its quorum.

use lookout_core::{AlertState, Phase, Timestamp, Transition, TransitionKind, alert_id};

use crate::condition::Verdict;
use crate::engine::{TargetPolicy, step};

/// One target's state in each location, and when each was last heard from.
///
/// A list, not a map: a target has one location, or a handful, and 10,000 targets each with a hash table of one
/// entry held ~6 MB more than this.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    by_name: Vec<(String, AlertState, Timestamp)>,
}

impl Locations {
    /// `location`'s entry, made (with `make`) when it has none yet.
    fn entry(
        &mut self,
        location: &str,
        make: impl FnOnce() -> (AlertState, Timestamp),
    ) -> &mut (String, AlertState, Timestamp) {
        let i = match self.by_name.iter().position(|(l, _, _)| l == location) {
            Some(i) => i,
            None => {
                let (state, heard) = make();
                self.by_name.push((location.to_string(), state, heard));
                self.by_name.len() - 1
            }
        };
        &mut self.by_name[i]
    }

    /// Puts back a location's persisted state; it counts as heard from now (it gets `stale_after` to speak).
    pub(crate) fn restore(&mut self, location: &str, state: AlertState, now: Timestamp) {
        let entry = self.entry(location, || (AlertState::default(), now));
        (entry.1, entry.2) = (state, now);
    }

    /// A target state restored without per-location states is `home`'s (unless that location was restored).
    pub(crate) fn seed(&mut self, home: &str, state: &AlertState, now: Timestamp) {
        self.entry(home, || (state.clone(), now));
    }

    pub(crate) fn states(&self) -> Vec<(&str, &AlertState)> {
        let mut all: Vec<(&str, &AlertState)> = self.by_name.iter().map(|(l, s, _)| (l.as_str(), s)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Steps `location`'s state by one verdict; returns its state after.
    pub(crate) fn step(
        &mut self,
        location: &str,
        policy: TargetPolicy,
        target: &str,
        verdict: &Verdict,
        observed_at: Timestamp,
        now: Timestamp,
    ) -> AlertState {
        let entry = self.entry(location, || (AlertState::default(), now));
        entry.2 = now;
        // The location's own transition is not an alert's: the target's is decided from all of them.
        let _ = step(&mut entry.1, policy, target, verdict, observed_at, now);
        entry.1.clone()
    }

    /// The target's transition, if any, after a location's verdict (`seen`: that location's state after it):
    /// firing when the locations firing reach the quorum, resolved when they fall below it, pending while some
    /// location fails below it, recovered when none fails any more. Decided afresh each time rather than from the
    /// location's own transition, since a location coming back from staleness changes the count without one.
    pub(crate) fn decide(
        &self,
        state: &mut AlertState,
        seen: &AlertState,
        verdict: &Verdict,
        policy: TargetPolicy,
        target: &str,
        now: Timestamp,
    ) -> Option<Transition> {
        let counted = self
            .by_name
            .iter()
            .filter(|(_, _, heard)| policy.stale_after.is_zero() || now.since(*heard) <= policy.stale_after);
        let (mut firing, mut failing, mut since) = (0u32, 0u32, None::<Timestamp>);
        for (_, s, _) in counted {
            if s.phase != Phase::Ok {
                failing += 1;
                since = match (since, s.failing_since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if s.phase == Phase::Firing {
                firing += 1;
            }
        }
        let emit = |state: &AlertState, kind| {
            let failed = matches!(kind, TransitionKind::Firing | TransitionKind::Pending);
            Transition {
                target: target.to_string(),
                kind,
                at: now,
                alert_id: state.alert_id.clone(),
                failing_since: state.failing_since,
                reasons: if failed { verdict.reasons() } else { Vec::new() },
                consecutive: if failed { seen.consecutive_failures } else { seen.consecutive_successes },
                diagnosis: None,
            }
        };
        let decided = match state.phase {
            Phase::Ok | Phase::Pending if firing >= policy.quorum => {
                state.phase = Phase::Firing;
                state.since = now;
                state.failing_since = since.or(seen.failing_since);
                state.alert_id = Some(alert_id(target, now));
                Some(emit(state, TransitionKind::Firing))
            }
            Phase::Ok if failing > 0 => {
                state.phase = Phase::Pending;
                state.since = now;
                state.failing_since = since.or(seen.failing_since);
                Some(emit(state, TransitionKind::Pending))
            }
            Phase::Pending if failing == 0 => {
                let t = emit(state, TransitionKind::Recovered);
                *state = AlertState { phase: Phase::Ok, since: now, ..AlertState::default() };
                Some(t)
            }
            Phase::Firing if firing < policy.quorum => {
                let t = emit(state, TransitionKind::Resolved);
                *state = AlertState { phase: Phase::Ok, since: now, ..AlertState::default() };
                Some(t)
            }
            _ => None,
        };
        // The counters people read are the latest location's.
        state.consecutive_failures = seen.consecutive_failures;
        state.consecutive_successes = seen.consecutive_successes;
        state.last_reason = seen.last_reason.clone();
        decided
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use lookout_core::{Event, ManualClock, Observation, ProbeKind, TransitionKind};

    use crate::{Condition, Engine, TargetPolicy};

    fn engine(quorum: u32, stale_after: Duration) -> (Arc<ManualClock>, Engine) {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let mut engine = Engine::new(clock.clone());
        let policy =
            TargetPolicy { failure_threshold: 2, success_threshold: 1, quorum, stale_after, ..TargetPolicy::default() };
        let Ok(condition) = Condition::parse("[STATUS] == 200") else { panic!("the condition parses") };
        engine.add_target("shop", vec![condition], policy);
        (clock, engine)
    }

    use lookout_core::{Clock, Timestamp};

    /// Observes `status` from `location` 1 s later; the target's transition kind, if any.
    fn see(clock: &ManualClock, engine: &mut Engine, location: &str, status: u16) -> Option<TransitionKind> {
        clock.advance(Duration::from_secs(1));
        let mut o = Observation::new("shop", ProbeKind::Http, clock.now());
        o.connected = true;
        o.status = Some(status);
        o.location = location.to_string();
        let outcome = engine.observe(&Event::Probe(o))?;
        let stamped = if location.is_empty() { "local" } else { location };
        assert_eq!(outcome.location.as_ref().map(|(l, _)| l.as_str()), Some(stamped));
        outcome.transitions.first().map(|t| t.kind)
    }

    #[test]
    fn one_location_failing_below_the_quorum_is_degraded_and_pages_nobody() {
        let (clock, mut e) = engine(2, Duration::ZERO);
        assert_eq!(see(&clock, &mut e, "l1", 200), None);
        assert_eq!(see(&clock, &mut e, "l2", 500), Some(TransitionKind::Pending));
        assert_eq!(see(&clock, &mut e, "l2", 500), None, "l2 fires there, but one location is below the quorum");
        assert_eq!(e.degraded("shop"), vec!["l2".to_string()]);
        assert_eq!(see(&clock, &mut e, "l1", 200), None);
        // The second location confirms: now it fires, once, with the failing streak's start from l2.
        assert_eq!(see(&clock, &mut e, "l1", 500), None);
        let first_failure = e.locations("shop").iter().find(|(l, _)| *l == "l2").and_then(|(_, s)| s.failing_since);
        assert_eq!(see(&clock, &mut e, "l1", 500), Some(TransitionKind::Firing));
        assert_eq!(e.state("shop").and_then(|s| s.failing_since), first_failure);
        assert!(e.degraded("shop").is_empty(), "firing is not degraded");
        assert_eq!(see(&clock, &mut e, "l2", 500), None, "still firing: no second alert");
        // One location recovers: fewer than the quorum fail, so it resolves.
        assert_eq!(see(&clock, &mut e, "l1", 200), Some(TransitionKind::Resolved));
        assert_eq!(e.degraded("shop"), vec!["l2".to_string()], "l2 still fails on its own");
        assert_eq!(see(&clock, &mut e, "l2", 200), None, "l2's recovery changes nothing more");
        assert!(e.degraded("shop").is_empty());
    }

    #[test]
    fn a_location_not_heard_from_does_not_count() {
        let (clock, mut e) = engine(2, Duration::from_secs(30));
        see(&clock, &mut e, "l2", 500);
        see(&clock, &mut e, "l2", 500);
        assert_eq!(e.degraded("shop"), vec!["l2".to_string()]);
        // l2's agent dies; a minute later l1 fails alone: one fresh location, below the quorum.
        clock.advance(Duration::from_secs(60));
        assert_eq!(see(&clock, &mut e, "l1", 500), None, "already pending from l2");
        assert_eq!(see(&clock, &mut e, "l1", 500), None, "l2 is stale: no quorum");
        assert_ne!(e.state("shop").map(|s| s.phase), Some(lookout_core::Phase::Firing));
        // l2 speaks again: two locations fail, it fires.
        assert_eq!(see(&clock, &mut e, "l2", 500), Some(TransitionKind::Firing));
    }

    #[test]
    fn a_restored_target_state_is_the_home_location_s() {
        let (clock, mut e) = engine(1, Duration::ZERO);
        e.set_home("local");
        see(&clock, &mut e, "", 500);
        assert_eq!(see(&clock, &mut e, "", 500), Some(TransitionKind::Firing));
        let Some(firing) = e.state("shop").cloned() else { panic!("a state") };
        // A restart: a fresh engine restores the target's state only (one machine keeps no location states).
        let (clock, mut e) = engine(1, Duration::ZERO);
        e.set_home("local");
        e.restore("shop", firing);
        assert_eq!(see(&clock, &mut e, "local", 500), None, "still firing, not fired again");
        assert_eq!(see(&clock, &mut e, "", 200), Some(TransitionKind::Resolved), "unstamped is home");
    }
}
