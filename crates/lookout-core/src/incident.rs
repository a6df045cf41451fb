//! Incidents: what people work on. An incident gathers the alerts of one group (by default, one target) from the
//! first firing alert until the last one resolves, and keeps a timeline of what happened and who did what.
//!
//! The lifecycle rules live in the engine; this module is the vocabulary the engine, the store, the CLI and the
//! web share.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The probable root cause of a firing alert, found by tracing the server or reading its error log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Diagnosis {
    /// One sentence for humans, the verdict first.
    pub verdict: String,
    /// What kind of cause, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The file the cause is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `trace` (ptrace of the workers) or `error log`.
    pub source: String,
    /// A few lines behind the verdict, verbatim (error-log lines or traced calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// The kind of a probable root cause: what the postmortem asks and recommends depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// ENOENT: the file (or a directory on its way) does not exist.
    Missing,
    /// EACCES/EPERM: it exists but the server may not read it.
    Unreadable,
    /// PHP could not parse a script: no syscall fails, only the error log knows.
    ParseError,
    /// Another errno.
    Failing,
    /// The web server cannot reach its backend (PHP-FPM's socket refuses or is gone): every PHP request fails.
    BackendDown,
    /// A pool ran out of workers (PHP-FPM's `pm.max_children` reached): requests wait or time out.
    Saturated,
    /// A request ran out of time: PHP's `max_execution_time`, PHP-FPM's `request_terminate_timeout`, or the web
    /// server gave up waiting for its backend (504).
    Timeout,
    /// PHP-FPM's slowlog named a slow script: context for timeouts and a full pool, not a root cause by itself.
    Slow,
    /// PHP-FPM found no script at the `SCRIPT_FILENAME` the web server passed (`Primary script unknown`).
    ScriptUnknown,
    /// PHP-FPM workers died of a signal that means a crash (SIGSEGV, SIGABRT, SIGBUS, …): the request each was
    /// serving got no answer (502). A PHP extension or opcache is failing, not a script's own error.
    Crashed,
    /// The web server's side of a backend that died mid-request: it closed the connection (or reset it) before
    /// answering (502). Which process died and why is in the backend's own log.
    BackendClosed,
}

impl Cause {
    /// The name incidents, postmortems and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Missing => "missing",
            Cause::Unreadable => "unreadable",
            Cause::ParseError => "parse-error",
            Cause::Failing => "failing",
            Cause::BackendDown => "backend-down",
            Cause::Saturated => "saturated",
            Cause::Timeout => "timeout",
            Cause::Slow => "slow",
            Cause::ScriptUnknown => "script-unknown",
            Cause::Crashed => "crashed",
            Cause::BackendClosed => "backend-closed",
        }
    }
}

/// Accepts the diagnosis as stored before it had structure (a bare verdict string) as well as the struct.
pub(crate) mod compat {
    use super::Diagnosis;
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Verdict(String),
        Full(Diagnosis),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Diagnosis>, D::Error> {
        Ok(match Option::<Either>::deserialize(d)? {
            None => None,
            Some(Either::Full(x)) => Some(x),
            Some(Either::Verdict(verdict)) => {
                Some(Diagnosis { verdict, source: "unknown".into(), ..Diagnosis::default() })
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who took the incident, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub at: Timestamp,
}

/// One alert of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentAlert {
    pub alert_id: String,
    pub target: String,
    /// First failing observation of the streak that fired.
    pub failing_since: Timestamp,
    pub fired_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Short and stable: `{UTC day it opened}-{group}-{n}`, e.g. `2026-11-25-site-1`.
    pub id: String,
    /// The group whose alerts it gathers (a target's `group`, by default its name).
    pub group: String,
    /// The day part of the id and its sequence number within that day and group.
    pub day: String,
    pub seq: u32,
    pub status: IncidentStatus,
    /// When the first alert fired.
    pub opened_at: Timestamp,
    /// The first failing observation of any of its alerts.
    pub first_failure_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// `None` when its alerts resolved; the name of the person who resolved it by hand otherwise.
    pub resolved_by: Option<String>,
    pub ack: Option<Ack>,
    /// The alerts in the order they joined. In an [`IncidentChange`], only the alerts the change added or changed.
    #[serde(default)]
    pub alerts: Vec<IncidentAlert>,
    /// Bumped on every write; a write that expected another revision is refused (optimistic concurrency between
    /// `lookout run` and the CLI, or between agents).
    pub revision: u64,
}

impl Incident {
    /// Everything but the alerts: what a change of one alert copies, so that a change costs the same whether the
    /// incident has one alert or five thousand.
    pub fn head(&self) -> Incident {
        Incident {
            id: self.id.clone(),
            group: self.group.clone(),
            day: self.day.clone(),
            seq: self.seq,
            status: self.status,
            opened_at: self.opened_at,
            first_failure_at: self.first_failure_at,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by.clone(),
            ack: self.ack.clone(),
            alerts: Vec::new(),
            revision: self.revision,
        }
    }

    /// Takes a change into this copy: its head as it is after the change, and each alert it carries replacing the
    /// alert of the same id or joining at the end. `has(alert_id)` says whether this copy has that alert already
    /// (an index the caller keeps; a new alert then joins without a search through the others).
    pub fn apply(&mut self, change: &Incident, has: impl Fn(&str) -> bool) {
        let alerts = std::mem::take(&mut self.alerts);
        *self = Incident { alerts, ..change.head() };
        for a in &change.alerts {
            let known =
                if has(&a.alert_id) { self.alerts.iter_mut().rev().find(|x| x.alert_id == a.alert_id) } else { None };
            match known {
                Some(x) => *x = a.clone(),
                None => self.alerts.push(a.clone()),
            }
        }
    }

    /// The alerts' diagnoses, first fired first.
    pub fn diagnoses(&self) -> impl Iterator<Item = (&IncidentAlert, &Diagnosis)> {
        self.alerts.iter().filter_map(|a| Some((a, a.diagnosis.as_ref()?)))
    }

    /// One diagnosis per cause (same file and cause, or else same verdict), keeping the one with the most
    /// evidence: the alerts of an incident usually find the same file, with more evidence later on.
    pub fn distinct_diagnoses(&self) -> Vec<&Diagnosis> {
        let mut out: Vec<&Diagnosis> = Vec::new();
        for (_, d) in self.diagnoses() {
            let same = |x: &&Diagnosis| match (&x.path, &d.path) {
                (Some(a), Some(b)) => a == b && x.cause == d.cause,
                _ => x.verdict == d.verdict,
            };
            match out.iter_mut().find(|x| same(x)) {
                Some(slot) if d.evidence.len() > slot.evidence.len() => *slot = d,
                Some(_) => {}
                None => out.push(d),
            }
        }
        out
    }

    /// Whether an alert of this incident is still firing.
    pub fn has_firing_alerts(&self) -> bool {
        self.alerts.iter().any(|a| a.resolved_at.is_none())
    }

    /// Its alerts' targets, each once, in the order they fired.
    pub fn targets(&self) -> Vec<&str> {
        let mut targets: Vec<&str> = Vec::new();
        for a in &self.alerts {
            if !targets.contains(&a.target.as_str()) {
                targets.push(&a.target);
            }
        }
        targets
    }

    /// A one-line title: the targets and their first reason.
    pub fn title(&self) -> String {
        let targets = self.targets();
        let reason = self.alerts.first().and_then(|a| a.reasons.first()).map(String::as_str).unwrap_or("failing");
        format!("{} failing: {reason}", targets.join(", "))
    }
}

/// The id of the `seq`-th incident of `group` on the UTC day of `at`.
pub fn incident_id(group: &str, at: Timestamp, seq: u32) -> (String, String) {
    let day = utc_day(at);
    (format!("{day}-{group}-{seq}"), day)
}

/// `YYYY-MM-DD` of a timestamp, UTC.
pub fn utc_day(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// The first failing observation of an alert's streak.
    FirstFailure,
    /// An alert fired and joined the incident (or opened it).
    AlertFired,
    /// The probable root cause was found.
    Diagnosis,
    /// A notification was delivered (composed from the outbox when the timeline is read).
    Notified,
    Acknowledged,
    Note,
    /// One alert resolved.
    AlertResolved,
    /// Something lookout checked when the incident closed (e.g. whether the missing file exists now).
    Observed,
    /// The incident closed.
    Resolved,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::FirstFailure => "first-failure",
            EntryKind::AlertFired => "alert-fired",
            EntryKind::Diagnosis => "diagnosis",
            EntryKind::Notified => "notified",
            EntryKind::Acknowledged => "acknowledged",
            EntryKind::Note => "note",
            EntryKind::AlertResolved => "alert-resolved",
            EntryKind::Observed => "observed",
            EntryKind::Resolved => "resolved",
        }
    }
}

/// One line of an incident's timeline. `text` may hold text from logs and people: escape it when rendering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    pub kind: EntryKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// An incident as it should be after a change, with the timeline entries the change adds. The store writes it
/// only if the stored revision is still `expected_revision` (`None`: the incident is new).
///
/// `incident.alerts` holds only the alerts the change adds or changes (all of them is also right, e.g. for a
/// change made on a whole incident read from the store): the others stay as they are. So an alert joining an
/// incident of thousands writes one alert, not the whole list again, and a storm is recorded in linear time. A
/// change that resolves the incident carries every alert (what is said at the resolution reads their diagnoses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentChange {
    pub incident: Incident,
    pub expected_revision: Option<u64>,
    pub entries: Vec<TimelineEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_day_group_and_sequence() {
        // 2026-11-25T14:00:00Z
        let (id, day) = incident_id("site", Timestamp(1_795_615_200_000), 2);
        assert_eq!(id, "2026-11-25-site-2");
        assert_eq!(day, "2026-11-25");
    }

    #[test]
    fn one_diagnosis_per_cause_with_the_most_evidence() {
        let d = |path: &str, evidence: usize| Diagnosis {
            verdict: format!("{path} does not exist ({evidence} lines)"),
            cause: Some(Cause::Missing),
            path: Some(path.into()),
            source: "error log".into(),
            evidence: vec!["line".into(); evidence],
        };
        let alert = |id: &str, dg: Diagnosis| IncidentAlert {
            alert_id: id.into(),
            target: id.into(),
            failing_since: Timestamp(0),
            fired_at: Timestamp(0),
            resolved_at: None,
            reasons: vec![],
            diagnosis: Some(dg),
        };
        let incident = Incident {
            id: "i".into(),
            group: "g".into(),
            day: "2026-11-25".into(),
            seq: 1,
            status: IncidentStatus::Open,
            opened_at: Timestamp(0),
            first_failure_at: Timestamp(0),
            resolved_at: None,
            resolved_by: None,
            ack: None,
            alerts: vec![alert("a", d("/x", 2)), alert("b", d("/x", 4)), alert("c", d("/y", 1))],
            revision: 1,
        };
        let verdicts: Vec<&str> = incident.distinct_diagnoses().iter().map(|d| d.verdict.as_str()).collect();
        assert_eq!(verdicts, ["/x does not exist (4 lines)", "/y does not exist (1 lines)"]);
    }

    #[test]
    fn a_bare_verdict_string_still_reads_as_a_diagnosis() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "compat::deserialize")]
            d: Option<Diagnosis>,
        }
        let old: T = serde_json::from_str(r#"{"d":"Probable root cause: x"}"#).unwrap();
        assert_eq!(old.d.unwrap().verdict, "Probable root cause: x");
        let new: T = serde_json::from_str(r#"{"d":{"verdict":"v","source":"trace","path":"/p"}}"#).unwrap();
        assert_eq!(new.d.unwrap().path.as_deref(), Some("/p"));
        let none: T = serde_json::from_str(r#"{}"#).unwrap();
        assert!(none.d.is_none());
    }
}
