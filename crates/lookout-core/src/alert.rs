//! Alert state per target and the transitions between states (pending → firing → resolved).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Diagnosis, Timestamp};

/// Where a target's alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Healthy (or never seen failing).
    #[default]
    Ok,
    /// Failing, but not yet for `failure_threshold` consecutive checks.
    Pending,
    /// Failing for long enough that people have been told.
    Firing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "ok" => Some(Phase::Ok),
            "pending" => Some(Phase::Pending),
            "firing" => Some(Phase::Firing),
            _ => None,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The engine's memory of one target, persisted so that a restart resumes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AlertState {
    pub phase: Phase,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// When the current phase began.
    pub since: Timestamp,
    /// The first failing observation of the current failing streak (kept through firing until resolved).
    pub failing_since: Option<Timestamp>,
    /// Identity of the alert while it is firing; stable across restarts.
    pub alert_id: Option<String>,
    /// The latest reason the target failed.
    pub last_reason: Option<String>,
    /// Set while a log source fails because it cannot read its files (the reason): its state reads `error`, not
    /// `firing`, since what is broken is the watching, not (as far as anyone knows) the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AlertState {
    /// The state as people see it: `error` for a source that cannot read, else the phase.
    pub fn status(&self) -> &'static str {
        if self.error.is_some() { "error" } else { self.phase.as_str() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    /// First failure below the threshold: recorded, not sent.
    Pending,
    /// Failure threshold reached: people are told.
    Firing,
    /// A firing alert saw enough consecutive successes: people are told.
    Resolved,
    /// A pending failure cleared before it fired: recorded, not sent.
    Recovered,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Pending => "pending",
            TransitionKind::Firing => "firing",
            TransitionKind::Resolved => "resolved",
            TransitionKind::Recovered => "recovered",
        }
    }
}

impl fmt::Display for TransitionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change in a target's alert state, as emitted by the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub target: String,
    pub kind: TransitionKind,
    pub at: Timestamp,
    /// Set for `Firing` and `Resolved`.
    pub alert_id: Option<String>,
    /// First failing observation of the streak this transition belongs to.
    pub failing_since: Option<Timestamp>,
    /// Why the target is failing (failed conditions or the probe error); empty when resolving.
    pub reasons: Vec<String>,
    pub consecutive: u32,
    /// The probable root cause, when a diagnosis ran for this transition (set by the pipeline, not the engine).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::incident::compat::deserialize"
    )]
    pub diagnosis: Option<Diagnosis>,
}

impl Transition {
    /// Whether people are told about this transition.
    pub fn notifies(&self) -> bool {
        matches!(self.kind, TransitionKind::Firing | TransitionKind::Resolved)
    }

    /// Key that receivers dedupe on: one alert and one transition, never reused.
    pub fn idempotency_key(&self) -> Option<String> {
        Some(crate::key::transition(self.alert_id.as_ref()?, self.kind))
    }
}

/// The identity given to an alert when it fires: target name plus the firing time, so it stays unique even
/// if the store is wiped and counters restart.
pub fn alert_id(target: &str, fired_at: Timestamp) -> String {
    format!("{target}@{}", fired_at.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_names_alert_and_transition() {
        let t = Transition {
            target: "site".into(),
            kind: TransitionKind::Firing,
            at: Timestamp(5),
            alert_id: Some(alert_id("site", Timestamp(5))),
            failing_since: Some(Timestamp(1)),
            reasons: vec![],
            consecutive: 3,
            diagnosis: None,
        };
        assert_eq!(t.idempotency_key().as_deref(), Some("lookout/site@5/firing"));
        assert!(t.notifies());
        let p = Transition { kind: TransitionKind::Pending, alert_id: None, ..t };
        assert_eq!(p.idempotency_key(), None);
        assert!(!p.notifies());
    }

    #[test]
    fn phase_round_trips_through_text() {
        for p in [Phase::Ok, Phase::Pending, Phase::Firing] {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        assert_eq!(Phase::parse("zombie"), None);
    }
}
