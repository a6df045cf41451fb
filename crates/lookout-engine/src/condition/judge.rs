//! Judging: combining a target's conditions (or a log source's `fire_when`) into one [`Verdict`].

use lookout_core::Observation;
use serde::Serialize;

use super::eval::{JsonCache, Subject};
use super::{Condition, LogView};

/// The result of judging one observation against a target's conditions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub ok: bool,
    /// Failed conditions, each with the value that was seen, e.g. `[STATUS] (500) == 200`.
    pub failed_conditions: Vec<String>,
    /// The probe error, if the probe could not complete.
    pub error: Option<String>,
}

impl Verdict {
    /// One line saying why the observation failed, or `None` if it passed.
    pub fn reason(&self) -> Option<String> {
        if self.ok {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        if let Some(e) = &self.error {
            parts.push(e.clone());
        }
        parts.extend(self.failed_conditions.iter().cloned());
        Some(parts.join("; "))
    }

    /// Reasons as a list (error first), for messages.
    pub fn reasons(&self) -> Vec<String> {
        let mut v: Vec<String> = self.error.iter().cloned().collect();
        v.extend(self.failed_conditions.iter().cloned());
        v
    }
}

/// Judges an observation: it passes when every condition holds, no `fire_when` rule holds (a status page's) and
/// the probe completed. A probe error does not fail the observation on its own when a condition looks at
/// `[CONNECTED]` (e.g. `[CONNECTED] == false` to assert a port is closed).
pub fn judge(conditions: &[Condition], obs: &Observation) -> Verdict {
    judge_while(conditions, obs, false)
}

/// [`judge`], knowing whether the target's alert fires now: then a rule with hysteresis is judged by its clearing
/// threshold ([`Condition::with_hysteresis`]).
pub fn judge_while(conditions: &[Condition], obs: &Observation, firing: bool) -> Verdict {
    let mut json = JsonCache::default();
    let failed: Vec<String> = conditions
        .iter()
        .filter_map(|c| {
            let (holds, description) = c.deciding(firing).evaluate_subject(Subject::Probe(obs), &mut json);
            (holds == c.fires()).then_some(description)
        })
        .collect();
    let checks_connectivity = conditions.iter().any(Condition::checks_connectivity);
    let error = obs.error.as_ref().map(ToString::to_string);
    let ok = failed.is_empty() && (error.is_none() || checks_connectivity);
    Verdict { ok, failed_conditions: failed, error }
}

/// Judges a log window against `fire_when` conditions: it fails when any of them holds; the ones that hold are
/// listed (with the values seen) as the reasons.
pub fn judge_log(fire_when: &[Condition], view: &LogView) -> Verdict {
    judge_log_while(fire_when, view, false)
}

/// [`judge_log`] knowing whether the source's alert fires: a rule with hysteresis then holds until the value is
/// back past its clearing threshold ([`Condition::with_hysteresis`]).
pub fn judge_log_while(fire_when: &[Condition], view: &LogView, alert_firing: bool) -> Verdict {
    let mut json = JsonCache::default();
    let firing: Vec<String> = fire_when
        .iter()
        .filter_map(|c| {
            let (holds, description) = c.deciding(alert_firing).evaluate_subject(Subject::Log(view), &mut json);
            holds.then_some(description)
        })
        .collect();
    Verdict { ok: firing.is_empty(), failed_conditions: firing, error: None }
}
