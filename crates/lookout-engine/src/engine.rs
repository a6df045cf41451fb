//! The alert state machine: per-target memory of consecutive failures and successes, and the
//! transitions pending → firing → resolved that follow from each observation.
//!
//! Thresholds give hysteresis: a target must fail `failure_threshold` times in a row to fire and succeed
//! `success_threshold` times in a row to resolve, so a single flap neither pages nor clears.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_core::{AlertState, Clock, Event, IncidentChange, Phase, Timestamp, Transition, TransitionKind, alert_id};

use crate::condition::{Condition, Verdict, judge_while};
use crate::incident::IncidentBook;
use crate::log_window::{LogWindow, WindowChange, WindowEntry};
use crate::quorum::Locations;

/// Why a retired target's alert was closed.
pub const RETIRED_REASON: &str = "no longer monitored: the target was removed from the configuration";

/// How many consecutive results it takes to change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetPolicy {
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// How long the target must have been failing, continuously, before the alert fires (`for`).
    pub pending_for: Duration,
    /// How many locations must see it failing (each by the thresholds above) for the alert to fire; it
    /// resolves when fewer do. One machine is one location, so 1 is the alert as it always was.
    pub quorum: u32,
    /// A location not heard from for longer than this no longer counts towards the quorum (its agent died, or
    /// the target left it); zero: never. Three intervals and a timeout, from the config.
    pub stale_after: Duration,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy {
            failure_threshold: 3,
            success_threshold: 2,
            pending_for: Duration::ZERO,
            quorum: 1,
            stale_after: Duration::ZERO,
        }
    }
}

/// What a log source's alert looks at.
#[derive(Clone, Debug)]
pub struct LogRules {
    /// The alert fires while any of these holds.
    pub fire_when: Vec<Condition>,
    /// Length of the sliding window.
    pub window: Duration,
    /// Fewer requests than this in the window give `[5XX_RATIO]` no value.
    pub min_requests: u64,
}

enum Rules {
    Probe(Vec<Condition>),
    Log(LogRules, LogWindow),
}

struct TargetRules {
    rules: Rules,
    policy: TargetPolicy,
}

/// What one event led to.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Zero or one transition today; a list so that later rules (log windows) can add theirs.
    pub transitions: Vec<Transition>,
    /// The target's state after the event, to persist.
    pub state: AlertState,
    /// For a log batch: what to persist of the source's window, so a restart restores it.
    pub log_window: Option<WindowChange>,
    /// For a probe: its location and the target's state there after the event, to persist.
    pub location: Option<(String, AlertState)>,
}

/// Judges events, keeps each target's alert state and the live incidents. Pure: no IO, time from the clock.
pub struct Engine {
    clock: Arc<dyn Clock>,
    rules: HashMap<String, TargetRules>,
    states: HashMap<String, AlertState>,
    /// Incident group of each target that is not its own group.
    groups: HashMap<String, String>,
    incidents: IncidentBook,
    /// Each probed target's state in each location it is probed from (see [`crate::quorum`]).
    locations: HashMap<String, Locations>,
    /// This agent's location: a state restored without per-location states is this location's.
    home: String,
}

impl Engine {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Engine {
            clock,
            rules: HashMap::new(),
            states: HashMap::new(),
            groups: HashMap::new(),
            incidents: IncidentBook::default(),
            locations: HashMap::new(),
            home: String::new(),
        }
    }

    /// This agent's location (default empty): a target state restored from a store that kept no per-location
    /// states (one machine) is taken as this location's, so a restart neither resolves nor re-fires anything.
    pub fn set_home(&mut self, location: &str) {
        self.home = location.to_string();
    }

    /// Resumes one location's view of a target (several agents, after a restart or a change of leader).
    pub fn restore_location(&mut self, target: &str, location: &str, state: AlertState) {
        let now = self.clock.now();
        self.locations.entry(target.to_string()).or_default().restore(location, state, now);
    }

    /// Each location's state of a target, by location.
    pub fn locations(&self, target: &str) -> Vec<(&str, &AlertState)> {
        self.locations.get(target).map(Locations::states).unwrap_or_default()
    }

    /// The locations that see a target failing (firing there) while it is not firing: below its quorum, it
    /// is *degraded* there and pages nobody.
    pub fn degraded(&self, target: &str) -> Vec<String> {
        if self.state(target).is_some_and(|s| s.phase == Phase::Firing) {
            return Vec::new();
        }
        self.locations(target)
            .into_iter()
            .filter(|(_, s)| s.phase == Phase::Firing)
            .map(|(l, _)| l.to_string())
            .collect()
    }

    /// Puts a target's alerts into the incidents of `group` (by default each target is its own group).
    pub fn set_group(&mut self, target: &str, group: &str) {
        self.groups.insert(target.to_string(), group.to_string());
    }

    /// The incident group of a target: its own name unless `set_group` said otherwise.
    pub fn group_of<'a>(&'a self, target: &'a str) -> &'a str {
        self.groups.get(target).map_or(target, String::as_str)
    }

    /// The engine's time (the injected clock): what every decision of `lookout run` is made at.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The alerts firing now, by target.
    pub fn firing(&self) -> impl Iterator<Item = (&String, &AlertState)> {
        self.states.iter().filter(|(_, s)| s.phase == Phase::Firing)
    }

    /// Whether a target with these `parents` has them all up (none firing), so that a child held back behind
    /// them may be announced. False without parents.
    pub fn parents_up(&self, parents: &[String]) -> bool {
        !parents.is_empty() && parents.iter().all(|p| self.state(p).is_none_or(|s| s.phase != Phase::Firing))
    }

    pub fn incidents(&self) -> &IncidentBook {
        &self.incidents
    }

    /// The working copy of the live incidents, to restore from the store or to acknowledge.
    pub fn incidents_mut(&mut self) -> &mut IncidentBook {
        &mut self.incidents
    }

    /// Opens, joins and resolves incidents for these transitions (after any diagnosis was attached to them).
    pub fn track(&mut self, transitions: &[Transition]) -> Vec<IncidentChange> {
        let mut changes = Vec::new();
        for t in transitions {
            let group = self.group_of(&t.target).to_string();
            changes.extend(self.incidents.on_transition(&group, t));
        }
        changes
    }

    /// Registers a probed target with its conditions and thresholds (thresholds below 1 count as 1).
    pub fn add_target(&mut self, name: &str, conditions: Vec<Condition>, policy: TargetPolicy) {
        self.rules.insert(name.to_string(), TargetRules { rules: Rules::Probe(conditions), policy: sane(policy) });
    }

    /// Registers a log source: its window is judged against `fire_when` on every batch.
    pub fn add_log(&mut self, name: &str, rules: LogRules, policy: TargetPolicy) {
        self.rules.insert(
            name.to_string(),
            TargetRules { rules: Rules::Log(rules, LogWindow::default()), policy: sane(policy) },
        );
    }

    /// Resumes a target's state from the store, e.g. after a restart, so that an alert that was firing
    /// resolves normally instead of being forgotten.
    pub fn restore(&mut self, name: &str, state: AlertState) {
        let now = self.clock.now();
        if let Some(TargetRules { rules: Rules::Probe(_), .. }) = self.rules.get(name) {
            self.locations.entry(name.to_string()).or_default().seed(&self.home, &state, now);
        }
        self.states.insert(name.to_string(), state);
    }

    /// Puts back a log source's window entries persisted before a restart (oldest first), so that a restart
    /// inside a firing window neither resolves the alert nor opens a new incident. No-op for unknown names.
    pub fn restore_log_window(&mut self, name: &str, entries: Vec<WindowEntry>) {
        if let Some(TargetRules { rules: Rules::Log(_, window), .. }) = self.rules.get_mut(name) {
            window.restore(entries);
        }
    }

    /// The window length of each log source, to know how far back to restore.
    pub fn log_windows(&self) -> impl Iterator<Item = (&String, std::time::Duration)> {
        self.rules.iter().filter_map(|(name, r)| match &r.rules {
            Rules::Log(rules, _) => Some((name, rules.window)),
            Rules::Probe(_) => None,
        })
    }

    pub fn state(&self, name: &str) -> Option<&AlertState> {
        self.states.get(name)
    }

    /// Every known target's state.
    pub fn states(&self) -> impl Iterator<Item = (&String, &AlertState)> {
        self.states.iter()
    }

    /// Closes the alert of a target that is no longer configured but was firing when lookout last ran, so
    /// that no alert stays open forever at the receivers. `None` if it was not firing.
    pub fn retire(&self, target: &str, state: &AlertState) -> Option<Transition> {
        if state.phase != Phase::Firing {
            return None;
        }
        Some(Transition {
            target: target.to_string(),
            kind: TransitionKind::Resolved,
            at: self.clock.now(),
            alert_id: state.alert_id.clone(),
            failing_since: state.failing_since,
            reasons: vec![RETIRED_REASON.to_string()],
            consecutive: 0,
            diagnosis: None,
        })
    }

    /// Judges an event for a known target; `None` for events of targets the engine does not know.
    pub fn observe(&mut self, event: &Event) -> Option<Outcome> {
        let now = self.clock.now();
        let target = event.target();
        let rules = self.rules.get_mut(target)?;
        let policy = rules.policy;
        match (&mut rules.rules, event) {
            (Rules::Probe(conditions), Event::Probe(obs)) => {
                let firing = self.states.get(target).is_some_and(|s| s.phase == Phase::Firing);
                let verdict = judge_while(conditions, obs, firing);
                // Each location judges by the thresholds; the target fires by its quorum of locations.
                // An observation nobody stamped (one machine, `lookout check`) is from this agent's location.
                let location = if obs.location.is_empty() { &self.home } else { &obs.location };
                let locations = self.locations.entry(target.to_string()).or_default();
                let seen = locations.step(location, policy, target, &verdict, obs.at, now);
                let state = self.states.entry(target.to_string()).or_default();
                let transition = locations.decide(state, &seen, &verdict, policy, target, now);
                Some(Outcome {
                    verdict,
                    transitions: transition.into_iter().collect(),
                    state: state.clone(),
                    log_window: None,
                    location: Some((location.clone(), seen)),
                })
            }
            (Rules::Log(log_rules, window), Event::Log(batch)) => {
                let firing = self.states.get(target).is_some_and(|s| s.phase == Phase::Firing);
                let (verdict, change, blind) = window.observe(log_rules, batch, now, firing);
                let state = self.states.entry(target.to_string()).or_default();
                let transition = step(state, policy, target, &verdict, batch.at, now);
                state.error = blind;
                Some(Outcome {
                    verdict,
                    transitions: transition.into_iter().collect(),
                    state: state.clone(),
                    log_window: Some(change),
                    location: None,
                })
            }
            _ => None,
        }
    }
}

fn sane(policy: TargetPolicy) -> TargetPolicy {
    TargetPolicy {
        failure_threshold: policy.failure_threshold.max(1),
        success_threshold: policy.success_threshold.max(1),
        quorum: policy.quorum.max(1),
        ..policy
    }
}

/// Advances one target's state by one verdict. `observed_at` is when the probe ran, `now` the engine's time.
pub(crate) fn step(
    state: &mut AlertState,
    policy: TargetPolicy,
    target: &str,
    verdict: &Verdict,
    observed_at: Timestamp,
    now: Timestamp,
) -> Option<Transition> {
    let emit = |state: &AlertState, kind: TransitionKind, reasons: Vec<String>, consecutive: u32| Transition {
        target: target.to_string(),
        kind,
        at: now,
        alert_id: state.alert_id.clone(),
        failing_since: state.failing_since,
        reasons,
        consecutive,
        diagnosis: None,
    };
    if verdict.ok {
        state.consecutive_failures = 0;
        state.consecutive_successes = state.consecutive_successes.saturating_add(1);
        match state.phase {
            Phase::Ok => None,
            Phase::Pending => {
                let t = emit(state, TransitionKind::Recovered, Vec::new(), state.consecutive_successes);
                *state = AlertState { phase: Phase::Ok, since: now, consecutive_successes: 1, ..AlertState::default() };
                Some(t)
            }
            Phase::Firing if state.consecutive_successes >= policy.success_threshold => {
                let t = emit(state, TransitionKind::Resolved, Vec::new(), state.consecutive_successes);
                *state = AlertState {
                    phase: Phase::Ok,
                    since: now,
                    consecutive_successes: state.consecutive_successes,
                    ..AlertState::default()
                };
                Some(t)
            }
            Phase::Firing => None,
        }
    } else {
        state.consecutive_successes = 0;
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.last_reason = verdict.reason();
        if state.phase == Phase::Ok {
            state.failing_since = Some(observed_at);
        }
        let long_enough = state.failing_since.is_none_or(|since| observed_at.since(since) >= policy.pending_for);
        match state.phase {
            Phase::Ok | Phase::Pending if state.consecutive_failures >= policy.failure_threshold && long_enough => {
                state.phase = Phase::Firing;
                state.since = now;
                state.alert_id = Some(alert_id(target, now));
                Some(emit(state, TransitionKind::Firing, verdict.reasons(), state.consecutive_failures))
            }
            Phase::Ok => {
                state.phase = Phase::Pending;
                state.since = now;
                Some(emit(state, TransitionKind::Pending, verdict.reasons(), state.consecutive_failures))
            }
            Phase::Pending | Phase::Firing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_core::{LogBatch, ManualClock, Observation, ProbeKind};
    use std::time::Duration;

    struct Harness {
        clock: Arc<ManualClock>,
        engine: Engine,
    }

    impl Harness {
        fn new(failure_threshold: u32, success_threshold: u32) -> Self {
            let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
            let mut engine = Engine::new(clock.clone());
            engine.add_target(
                "site",
                vec![Condition::parse("[STATUS] == 200").unwrap()],
                TargetPolicy {
                    failure_threshold,
                    success_threshold,
                    pending_for: Duration::ZERO,
                    ..TargetPolicy::default()
                },
            );
            Harness { clock, engine }
        }

        /// Advances 10 s, observes a status, returns the transition kind (if any).
        fn status(&mut self, status: u16) -> Option<TransitionKind> {
            self.clock.advance(Duration::from_secs(10));
            let mut o = Observation::new("site", ProbeKind::Http, self.clock.now());
            o.connected = true;
            o.status = Some(status);
            let out = self.engine.observe(&Event::Probe(o)).unwrap();
            assert!(out.transitions.len() <= 1);
            out.transitions.first().map(|t| t.kind)
        }

        fn phase(&self) -> Phase {
            self.engine.state("site").map(|s| s.phase).unwrap_or_default()
        }
    }

    use TransitionKind::*;

    #[test]
    fn fires_after_threshold_and_resolves_after_successes() {
        let mut h = Harness::new(3, 2);
        assert_eq!(h.status(200), None);
        assert_eq!(h.status(500), Some(Pending));
        assert_eq!(h.status(500), None);
        assert_eq!(h.phase(), Phase::Pending);
        assert_eq!(h.status(500), Some(Firing));
        assert_eq!(h.phase(), Phase::Firing);
        assert_eq!(h.status(500), None, "still firing: no repeat from the engine");
        assert_eq!(h.status(200), None, "one success is not enough");
        assert_eq!(h.status(200), Some(Resolved));
        assert_eq!(h.phase(), Phase::Ok);
        assert_eq!(h.status(200), None);
    }

    #[test]
    fn firing_transition_carries_identity_timing_and_reason() {
        let mut h = Harness::new(2, 1);
        h.status(500);
        let first_failure = h.clock.now();
        h.clock.advance(Duration::from_secs(10));
        let mut o = Observation::new("site", ProbeKind::Http, h.clock.now());
        o.status = Some(503);
        o.connected = true;
        let out = h.engine.observe(&Event::Probe(o)).unwrap();
        let t = &out.transitions[0];
        assert_eq!(t.kind, Firing);
        assert_eq!(t.at, h.clock.now());
        assert_eq!(t.failing_since, Some(first_failure));
        assert_eq!(t.alert_id.as_deref(), Some(format!("site@{}", h.clock.now().as_millis()).as_str()));
        assert_eq!(t.reasons, vec!["[STATUS] (503) == 200".to_string()]);
        assert_eq!(t.consecutive, 2);
        let fired_id = t.alert_id.clone();
        h.clock.advance(Duration::from_secs(10));
        let mut ok = Observation::new("site", ProbeKind::Http, h.clock.now());
        ok.status = Some(200);
        ok.connected = true;
        let out = h.engine.observe(&Event::Probe(ok)).unwrap();
        assert_eq!(out.transitions[0].kind, Resolved);
        assert_eq!(out.transitions[0].alert_id, fired_id, "resolve names the alert it resolves");
        assert_eq!(out.transitions[0].failing_since, Some(first_failure));
        assert_eq!(out.state.alert_id, None);
    }

    #[test]
    fn flapping_below_threshold_never_fires() {
        let mut h = Harness::new(3, 2);
        let mut kinds = Vec::new();
        for i in 0..20 {
            kinds.extend(h.status(if i % 2 == 0 { 500 } else { 200 }));
        }
        assert!(!kinds.contains(&Firing), "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == Pending).count(), 10);
        assert_eq!(kinds.iter().filter(|k| **k == Recovered).count(), 10);
    }

    #[test]
    fn flapping_while_firing_does_not_resolve_until_successes_are_consecutive() {
        let mut h = Harness::new(1, 3);
        assert_eq!(h.status(500), Some(Firing), "threshold 1 fires at once, skipping pending");
        for _ in 0..5 {
            assert_eq!(h.status(200), None);
            assert_eq!(h.status(200), None);
            assert_eq!(h.status(500), None);
        }
        assert_eq!(h.phase(), Phase::Firing);
        h.status(200);
        h.status(200);
        assert_eq!(h.status(200), Some(Resolved));
    }

    #[test]
    fn refire_after_resolve_is_a_new_alert() {
        let mut h = Harness::new(1, 1);
        h.status(500);
        let first = h.engine.state("site").unwrap().alert_id.clone();
        h.status(200);
        h.status(500);
        let second = h.engine.state("site").unwrap().alert_id.clone();
        assert!(first.is_some() && second.is_some());
        assert_ne!(first, second);
    }

    #[test]
    fn restored_firing_state_resolves_after_restart() {
        let mut h = Harness::new(2, 2);
        h.status(500);
        h.status(500);
        let saved = h.engine.state("site").unwrap().clone();
        assert_eq!(saved.phase, Phase::Firing);

        // A new engine, as after a restart, resumes from the saved state.
        let mut restarted = Harness::new(2, 2);
        restarted.clock.set(h.clock.now());
        restarted.engine.restore("site", saved.clone());
        assert_eq!(restarted.status(200), None);
        assert_eq!(restarted.status(200), Some(Resolved));
        // Without the restore it would never resolve: that is the zombie alert we refuse to keep.
        let mut forgetful = Harness::new(2, 2);
        assert_eq!(forgetful.status(200), None);
        assert_eq!(forgetful.status(200), None);
    }

    #[test]
    fn retiring_a_firing_target_resolves_its_alert() {
        let mut h = Harness::new(1, 1);
        h.status(500);
        let state = h.engine.state("site").unwrap().clone();
        let t = h.engine.retire("site", &state).unwrap();
        assert_eq!(t.kind, Resolved);
        assert_eq!(t.alert_id, state.alert_id);
        assert_eq!(t.at, h.clock.now());
        assert_eq!(t.reasons, vec![RETIRED_REASON.to_string()]);
        assert!(h.engine.retire("site", &AlertState::default()).is_none(), "nothing to close when not firing");
    }

    fn log_engine(pending_for: Duration) -> (Arc<ManualClock>, Engine) {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let mut engine = Engine::new(clock.clone());
        let rules = LogRules {
            fire_when: vec![
                Condition::parse("[5XX_RATIO] > 5%").unwrap(),
                Condition::parse("[ERROR_LOG] matches \"PHP (Fatal|Parse) error\"").unwrap(),
            ],
            window: Duration::from_secs(60),
            min_requests: 10,
        };
        engine.add_log(
            "apache",
            rules,
            TargetPolicy { failure_threshold: 1, success_threshold: 1, pending_for, ..TargetPolicy::default() },
        );
        (clock, engine)
    }

    fn batch(clock: &ManualClock, requests: u64, e5xx: u64, errors: &[&str]) -> Event {
        Event::Log(LogBatch {
            target: "apache".into(),
            at: clock.now(),
            requests,
            status_5xx: e5xx,
            failing_clients: (0..e5xx).collect(),
            error_lines: errors.iter().map(|s| s.to_string()).collect(),
            ..LogBatch::default()
        })
    }

    #[test]
    fn a_5xx_burst_in_the_log_fires_and_the_window_sliding_past_it_resolves() {
        let (clock, mut engine) = log_engine(Duration::ZERO);
        let out = engine.observe(&batch(&clock, 100, 0, &[])).unwrap();
        assert!(out.transitions.is_empty());
        clock.advance(Duration::from_secs(1));
        let out = engine.observe(&batch(&clock, 20, 20, &[])).unwrap();
        assert_eq!(out.transitions[0].kind, Firing, "{:?}", out.verdict);
        assert_eq!(out.transitions[0].reasons, vec!["[5XX_RATIO] (16.7%) > 5%".to_string()]);
        // A trickle of healthy traffic keeps the 5xx in the window for a minute, then it slides out.
        for _ in 0..58 {
            clock.advance(Duration::from_secs(1));
            let out = engine.observe(&batch(&clock, 1, 0, &[])).unwrap();
            assert!(out.transitions.is_empty(), "{:?}", out.verdict);
        }
        clock.advance(Duration::from_secs(2));
        let out = engine.observe(&batch(&clock, 1, 0, &[])).unwrap();
        assert_eq!(out.transitions[0].kind, Resolved, "{:?}", out.verdict);
    }

    #[test]
    fn error_log_lines_fire_even_without_access_traffic_and_for_delays_firing() {
        let (clock, mut engine) = log_engine(Duration::from_secs(5));
        let fatal = "PHP Fatal error:  Uncaught Error: Failed opening required '/var/www/html/inc/settings.phpp'";
        let out = engine.observe(&batch(&clock, 0, 0, &[fatal])).unwrap();
        assert_eq!(out.transitions[0].kind, Pending, "for = 5s holds it back");
        for _ in 0..4 {
            clock.advance(Duration::from_secs(1));
            let out = engine.observe(&batch(&clock, 0, 0, &[])).unwrap();
            assert!(out.transitions.is_empty());
        }
        clock.advance(Duration::from_secs(1));
        let out = engine.observe(&batch(&clock, 0, 0, &[])).unwrap();
        assert_eq!(out.transitions[0].kind, Firing);
        assert!(out.transitions[0].reasons[0].starts_with("[ERROR_LOG] (PHP Fatal error:"), "{:?}", out.transitions);
        // A few requests, all failing, are below min_requests: the ratio alone would not fire.
        let (clock, mut quiet) = log_engine(Duration::ZERO);
        let out = quiet.observe(&batch(&clock, 3, 3, &[])).unwrap();
        assert!(out.verdict.ok);
    }

    #[test]
    fn slow_requests_in_the_log_fire_a_latency_rule() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let mut engine = Engine::new(clock.clone());
        let rules = LogRules {
            fire_when: vec![Condition::parse("[LATENCY_P95] > 500ms").unwrap()],
            window: Duration::from_secs(10),
            min_requests: 1,
        };
        engine.add_log(
            "apache",
            rules,
            TargetPolicy {
                failure_threshold: 1,
                success_threshold: 1,
                pending_for: Duration::ZERO,
                ..TargetPolicy::default()
            },
        );
        let with = |durations: Vec<u64>| {
            Event::Log(LogBatch {
                target: "apache".into(),
                requests: durations.len() as u64,
                durations_us: durations,
                ..LogBatch::default()
            })
        };
        let out = engine.observe(&with(vec![20_000; 100])).unwrap();
        assert!(out.verdict.ok);
        clock.advance(Duration::from_secs(1));
        let out = engine.observe(&with(vec![900_000; 20])).unwrap();
        assert_eq!(out.transitions[0].kind, Firing);
        assert!(out.transitions[0].reasons[0].starts_with("[LATENCY_P95] (90"), "{:?}", out.transitions[0].reasons);
        clock.advance(Duration::from_secs(11));
        let out = engine.observe(&with(vec![20_000; 10])).unwrap();
        assert_eq!(out.transitions[0].kind, Resolved);
    }

    #[test]
    fn events_of_the_wrong_kind_for_a_target_are_ignored() {
        let (clock, mut engine) = log_engine(Duration::ZERO);
        let o = Observation::new("apache", ProbeKind::Http, clock.now());
        assert!(engine.observe(&Event::Probe(o)).is_none());
    }

    #[test]
    fn unknown_targets_are_ignored() {
        let mut h = Harness::new(1, 1);
        let o = Observation::new("other", ProbeKind::Http, h.clock.now());
        assert!(h.engine.observe(&Event::Probe(o)).is_none());
    }

    #[test]
    fn zero_thresholds_behave_as_one() {
        let mut h = Harness::new(0, 0);
        assert_eq!(h.status(500), Some(Firing));
        assert_eq!(h.status(200), Some(Resolved));
    }
}
