//! The incident lifecycle: firing alerts open an incident of their group or join the open one; the incident
//! resolves when its last alert resolves (or by hand). Pure: every function takes the incident as it stands and
//! returns the [`IncidentChange`] to write; time comes from the transitions or the caller.
//!
//! The store is the truth. [`IncidentBook`] is `lookout run`'s working copy of the live incidents; a change whose
//! expected revision the store no longer has (someone acknowledged or resolved it meanwhile) is refused there,
//! and the pipeline reloads the book and applies the transition again.

use std::collections::HashMap;

use lookout_core::{
    Ack, EntryKind, Incident, IncidentAlert, IncidentChange, IncidentStatus, TimelineEntry, Timestamp, Transition,
    TransitionKind, format_duration, incident_id,
};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IncidentError {
    #[error("incident {id} is already resolved (at {at})")]
    AlreadyResolved { id: String, at: String },
    #[error("incident {id} was already acknowledged by {by} at {at}")]
    AlreadyAcknowledged { id: String, by: String, at: String },
    #[error("a note needs some text")]
    EmptyNote,
}

/// The live incidents — open, or resolved by hand while an alert still fires — and the last sequence number of
/// each group and day.
#[derive(Debug, Default)]
pub struct IncidentBook {
    live: Vec<Incident>,
    seqs: HashMap<(String, String), u32>,
    /// Which live incident each alert is in: a storm's thousandth alert is found without reading the others.
    alerts: HashMap<String, String>,
}

impl IncidentBook {
    /// Replaces the working copy with the store's: the live incidents and `(day, group, last seq)`.
    pub fn restore(&mut self, live: Vec<Incident>, seqs: Vec<(String, String, u32)>) {
        self.live = live;
        self.seqs = seqs.into_iter().map(|(day, group, seq)| ((day, group), seq)).collect();
        self.alerts =
            self.live.iter().flat_map(|i| i.alerts.iter().map(|a| (a.alert_id.clone(), i.id.clone()))).collect();
    }

    pub fn live(&self) -> &[Incident] {
        &self.live
    }

    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.live.iter().find(|i| i.id == id)
    }

    /// The live incident an alert is in.
    pub fn of_alert(&self, alert_id: &str) -> Option<&Incident> {
        self.get(self.alerts.get(alert_id)?)
    }

    /// What a notifying transition does to the incidents; `None` for transitions that change nothing (pending,
    /// recovered, or an alert already recorded).
    pub fn on_transition(&mut self, group: &str, t: &Transition) -> Option<IncidentChange> {
        let alert_id = t.alert_id.as_deref()?;
        let change = match t.kind {
            TransitionKind::Firing => {
                if self.alerts.contains_key(alert_id) {
                    return None;
                }
                match self.live.iter().find(|i| i.group == group && i.status == IncidentStatus::Open) {
                    Some(open) => join(open, alert_id, t),
                    None => {
                        let seq = self.next_seq(group, t.at);
                        open_incident(group, seq, alert_id, t)
                    }
                }
            }
            TransitionKind::Resolved => {
                let id = self.alerts.get(alert_id)?;
                let incident = self.live.iter().find(|i| &i.id == id)?;
                if !incident.alerts.iter().rev().any(|a| a.alert_id == alert_id && a.resolved_at.is_none()) {
                    return None;
                }
                resolve_alert(incident, alert_id, t)
            }
            TransitionKind::Pending | TransitionKind::Recovered => return None,
        };
        self.apply(&change);
        Some(change)
    }

    /// Acknowledges a live incident (the CLI works on the store's copy with [`acknowledge`] directly).
    pub fn acknowledge(&mut self, id: &str, by: &str, at: Timestamp) -> Option<Result<IncidentChange, IncidentError>> {
        let result = acknowledge(self.get(id)?, by, at);
        if let Ok(change) = &result {
            self.apply(change);
        }
        Some(result)
    }

    /// Takes a change into the working copy: live incidents stay, finished ones leave.
    pub fn apply(&mut self, change: &IncidentChange) {
        let i = &change.incident;
        let key = (i.day.clone(), i.group.clone());
        let seq = self.seqs.entry(key).or_default();
        *seq = (*seq).max(i.seq);
        let live = |x: &Incident| x.status == IncidentStatus::Open || x.has_firing_alerts();
        let known = &self.alerts;
        match self.live.iter().position(|x| x.id == i.id) {
            Some(pos) => {
                self.live[pos].apply(i, |alert| known.get(alert) == Some(&i.id));
                if !live(&self.live[pos]) {
                    let gone = self.live.remove(pos);
                    for a in &gone.alerts {
                        self.alerts.remove(&a.alert_id);
                    }
                    return;
                }
            }
            None if live(i) => self.live.push(i.clone()),
            None => return,
        }
        for a in &i.alerts {
            self.alerts.insert(a.alert_id.clone(), i.id.clone());
        }
    }

    fn next_seq(&self, group: &str, at: Timestamp) -> u32 {
        let day = lookout_core::utc_day(at);
        self.seqs.get(&(day, group.to_string())).copied().unwrap_or(0) + 1
    }
}

fn entry(at: Timestamp, kind: EntryKind, text: String) -> TimelineEntry {
    TimelineEntry { at, kind, text, by: None }
}

fn alert_of(alert_id: &str, t: &Transition) -> IncidentAlert {
    IncidentAlert {
        alert_id: alert_id.to_string(),
        target: t.target.clone(),
        failing_since: t.failing_since.unwrap_or(t.at),
        fired_at: t.at,
        resolved_at: None,
        reasons: t.reasons.clone(),
        diagnosis: t.diagnosis.clone(),
    }
}

/// Timeline entries of an alert that fired: its first failure, the firing, and the diagnosis if one ran.
fn fired_entries(alert: &IncidentAlert, t: &Transition) -> Vec<TimelineEntry> {
    let reasons = if t.reasons.is_empty() { "failing".to_string() } else { t.reasons.join("; ") };
    let mut entries = vec![
        entry(
            alert.failing_since,
            EntryKind::FirstFailure,
            format!("{}: first failing check: {}", t.target, t.reasons.first().map_or("failing", String::as_str)),
        ),
        entry(
            t.at,
            EntryKind::AlertFired,
            format!(
                "{}: alert fired after {}: {reasons}",
                t.target,
                lookout_core::text::count(t.consecutive, "failing check", None)
            ),
        ),
    ];
    if let Some(d) = &t.diagnosis {
        entries.push(entry(t.at, EntryKind::Diagnosis, format!("{} (from the {})", d.verdict, d.source)));
    }
    entries
}

fn open_incident(group: &str, seq: u32, alert_id: &str, t: &Transition) -> IncidentChange {
    let alert = alert_of(alert_id, t);
    let (id, day) = incident_id(group, t.at, seq);
    let entries = fired_entries(&alert, t);
    let incident = Incident {
        id,
        group: group.to_string(),
        day,
        seq,
        status: IncidentStatus::Open,
        opened_at: t.at,
        first_failure_at: alert.failing_since,
        resolved_at: None,
        resolved_by: None,
        ack: None,
        alerts: vec![alert],
        revision: 1,
    };
    IncidentChange { incident, expected_revision: None, entries }
}

fn join(open: &Incident, alert_id: &str, t: &Transition) -> IncidentChange {
    let alert = alert_of(alert_id, t);
    let entries = fired_entries(&alert, t);
    let mut incident = open.head();
    incident.first_failure_at = incident.first_failure_at.min(alert.failing_since);
    incident.alerts.push(alert);
    bump(incident, open.revision, entries)
}

fn bump(mut incident: Incident, expected: u64, entries: Vec<TimelineEntry>) -> IncidentChange {
    incident.revision = expected + 1;
    IncidentChange { incident, expected_revision: Some(expected), entries }
}

fn resolve_alert(incident: &Incident, alert_id: &str, t: &Transition) -> IncidentChange {
    let closes = incident.status == IncidentStatus::Open
        && !incident.alerts.iter().any(|a| a.resolved_at.is_none() && a.alert_id != alert_id);
    // Only the resolved alert changes; a change that closes the incident carries them all (the resolution entries
    // read every alert's diagnosis).
    let mut next = if closes { incident.clone() } else { incident.head() };
    if !closes {
        next.alerts.extend(incident.alerts.iter().filter(|a| a.alert_id == alert_id).cloned());
    }
    let mut entries = Vec::new();
    for a in next.alerts.iter_mut().filter(|a| a.alert_id == alert_id) {
        a.resolved_at = Some(t.at);
    }
    let why =
        if t.reasons.is_empty() { format!("after {} successful checks", t.consecutive) } else { t.reasons.join("; ") };
    entries.push(entry(t.at, EntryKind::AlertResolved, format!("{}: alert resolved {why}", t.target)));
    if closes {
        next.status = IncidentStatus::Resolved;
        next.resolved_at = Some(t.at);
        entries.push(entry(
            t.at,
            EntryKind::Resolved,
            format!(
                "incident resolved: all alerts resolved, {} after the first failure",
                format_duration(t.at.since(next.first_failure_at))
            ),
        ));
    }
    bump(next, incident.revision, entries)
}

/// Someone takes the incident: it stays open, and the timeline says who and when.
pub fn acknowledge(incident: &Incident, by: &str, at: Timestamp) -> Result<IncidentChange, IncidentError> {
    refuse_if_resolved(incident)?;
    if let Some(ack) = &incident.ack {
        return Err(IncidentError::AlreadyAcknowledged {
            id: incident.id.clone(),
            by: ack.by.clone(),
            at: ack.at.to_rfc3339_seconds(),
        });
    }
    let mut next = incident.clone();
    next.ack = Some(Ack { by: by.to_string(), at });
    let e =
        TimelineEntry { at, kind: EntryKind::Acknowledged, text: format!("acknowledged by {by}"), by: Some(by.into()) };
    Ok(bump(next, incident.revision, vec![e]))
}

/// A note on the timeline, open or resolved (postmortem findings come after).
pub fn note(incident: &Incident, by: &str, text: &str, at: Timestamp) -> Result<IncidentChange, IncidentError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(IncidentError::EmptyNote);
    }
    let e = TimelineEntry { at, kind: EntryKind::Note, text: text.to_string(), by: Some(by.into()) };
    Ok(bump(incident.clone(), incident.revision, vec![e]))
}

/// Closes an incident by hand, e.g. when the cause is known and the alert is expected to clear. Alerts still
/// firing stay attached: their resolution is still recorded here, and a new alert of the group opens a new
/// incident.
pub fn resolve_by_hand(
    incident: &Incident,
    by: &str,
    note: Option<&str>,
    at: Timestamp,
) -> Result<IncidentChange, IncidentError> {
    refuse_if_resolved(incident)?;
    let mut next = incident.clone();
    next.status = IncidentStatus::Resolved;
    next.resolved_at = Some(at);
    next.resolved_by = Some(by.to_string());
    let mut entries = Vec::new();
    if let Some(text) = note.map(str::trim).filter(|t| !t.is_empty()) {
        entries.push(TimelineEntry { at, kind: EntryKind::Note, text: text.to_string(), by: Some(by.into()) });
    }
    let firing = next.alerts.iter().filter(|a| a.resolved_at.is_none()).count();
    let text = match firing {
        0 => format!("resolved by hand by {by}"),
        n => format!("resolved by hand by {by} while {n} alert(s) still fired"),
    };
    entries.push(TimelineEntry { at, kind: EntryKind::Resolved, text, by: Some(by.into()) });
    Ok(bump(next, incident.revision, entries))
}

fn refuse_if_resolved(incident: &Incident) -> Result<(), IncidentError> {
    match (incident.status, incident.resolved_at) {
        (IncidentStatus::Resolved, at) => Err(IncidentError::AlreadyResolved {
            id: incident.id.clone(),
            at: at.map_or_else(|| "an unknown time".into(), |t| t.to_rfc3339_seconds()),
        }),
        (IncidentStatus::Open, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, Condition, Engine, TargetPolicy};
    use lookout_core::{Event, ManualClock, Observation, ProbeKind};
    use std::sync::Arc;
    use std::time::Duration;

    /// 2026-11-25T14:00:00Z
    const START: Timestamp = Timestamp(1_795_615_200_000);

    struct Shop {
        clock: Arc<ManualClock>,
        engine: Engine,
    }

    impl Shop {
        /// Two probed targets, `web` and `api`, in one group `shop`; `db` in its own.
        fn new() -> Self {
            let clock = Arc::new(ManualClock::new(START));
            let mut engine = Engine::new(clock.clone());
            let policy = TargetPolicy {
                failure_threshold: 2,
                success_threshold: 1,
                pending_for: Duration::ZERO,
                ..TargetPolicy::default()
            };
            for name in ["web", "api", "db"] {
                engine.add_target(name, vec![Condition::parse("[STATUS] == 200").unwrap()], policy);
            }
            engine.set_group("web", "shop");
            engine.set_group("api", "shop");
            Shop { clock, engine }
        }

        /// Advances 10 s, observes a status for a target and returns the incident changes it made.
        fn status(&mut self, target: &str, status: u16) -> Vec<IncidentChange> {
            self.clock.advance(Duration::from_secs(10));
            let mut o = Observation::new(target, ProbeKind::Http, self.clock.now());
            o.connected = true;
            o.status = Some(status);
            let out = self.engine.observe(&Event::Probe(o)).unwrap();
            self.engine.track(&out.transitions)
        }

        fn fail_until_firing(&mut self, target: &str) -> IncidentChange {
            assert!(self.status(target, 500).is_empty(), "pending opens no incident");
            let mut changes = self.status(target, 500);
            assert_eq!(changes.len(), 1);
            changes.remove(0)
        }
    }

    fn kinds(change: &IncidentChange) -> Vec<EntryKind> {
        change.entries.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn alerts_of_one_group_share_an_incident_that_resolves_with_the_last_alert() {
        let mut shop = Shop::new();
        let opened = shop.fail_until_firing("web");
        assert_eq!(opened.incident.id, "2026-11-25-shop-1");
        assert_eq!(opened.expected_revision, None, "a new incident");
        assert_eq!(opened.incident.first_failure_at, START.plus(Duration::from_secs(10)));
        assert_eq!(opened.incident.opened_at, START.plus(Duration::from_secs(20)));
        assert_eq!(kinds(&opened), [EntryKind::FirstFailure, EntryKind::AlertFired]);
        assert_eq!(opened.entries[1].text, "web: alert fired after 2 failing checks: [STATUS] (500) == 200");

        let joined = shop.fail_until_firing("api");
        assert_eq!(joined.incident.id, "2026-11-25-shop-1", "same group, same incident");
        assert_eq!(joined.expected_revision, Some(1));
        assert_eq!(joined.incident.revision, 2);
        assert_eq!(joined.incident.alerts.len(), 1, "a change carries only the alert it adds");
        assert_eq!(joined.incident.alerts[0].target, "api");
        let book = shop.engine.incidents().get("2026-11-25-shop-1").unwrap();
        assert_eq!(book.alerts.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(), ["web", "api"]);
        assert_eq!(book.revision, 2);
        assert_eq!(joined.incident.first_failure_at, opened.incident.first_failure_at, "the earliest failure");

        let other = shop.fail_until_firing("db");
        assert_eq!(other.incident.id, "2026-11-25-db-1", "another group, another incident");
        assert_eq!(shop.engine.incidents().live().len(), 2);

        let web_ok = shop.status("web", 200);
        assert_eq!(web_ok[0].incident.status, IncidentStatus::Open, "api still fires");
        assert_eq!(kinds(&web_ok[0]), [EntryKind::AlertResolved]);
        assert_eq!(web_ok[0].incident.alerts.len(), 1, "only the resolved alert");
        assert!(web_ok[0].incident.alerts[0].resolved_at.is_some());
        let api_ok = shop.status("api", 200);
        let closed = &api_ok[0].incident;
        assert_eq!(closed.status, IncidentStatus::Resolved);
        assert_eq!(closed.resolved_at, Some(shop.clock.now()));
        assert_eq!(closed.resolved_by, None, "resolved by its alerts");
        assert_eq!(closed.alerts.len(), 2, "the closing change carries every alert");
        assert!(closed.alerts.iter().all(|a| a.resolved_at.is_some()));
        assert_eq!(kinds(&api_ok[0]), [EntryKind::AlertResolved, EntryKind::Resolved]);
        assert_eq!(api_ok[0].entries[1].text, "incident resolved: all alerts resolved, 1m10s after the first failure");
        assert!(shop.engine.incidents().get("2026-11-25-shop-1").is_none(), "a finished incident leaves the book");
        assert!(shop.status("api", 200).is_empty(), "nothing left to resolve");
    }

    #[test]
    fn a_refire_after_resolve_opens_a_new_incident_and_ids_restart_each_day() {
        let mut shop = Shop::new();
        shop.fail_until_firing("web");
        shop.status("web", 200);
        let second = shop.fail_until_firing("web");
        assert_eq!(second.incident.id, "2026-11-25-shop-2");
        assert_eq!(second.incident.alerts.len(), 1);
        shop.status("web", 200);
        shop.clock.advance(Duration::from_secs(24 * 3600));
        assert_eq!(shop.fail_until_firing("web").incident.id, "2026-11-26-shop-1");

        // After a restart the book comes back from the store and the numbering goes on.
        let mut restarted = Shop::new();
        restarted.engine.incidents_mut().restore(Vec::new(), vec![("2026-11-25".into(), "shop".into(), 2)]);
        assert_eq!(restarted.fail_until_firing("web").incident.id, "2026-11-25-shop-3");
    }

    #[test]
    fn the_same_firing_alert_twice_changes_nothing() {
        let mut shop = Shop::new();
        shop.status("web", 500);
        shop.clock.advance(Duration::from_secs(10));
        let mut o = Observation::new("web", ProbeKind::Http, shop.clock.now());
        o.status = Some(500);
        let out = shop.engine.observe(&Event::Probe(o)).unwrap();
        assert_eq!(shop.engine.track(&out.transitions).len(), 1);
        assert!(shop.engine.track(&out.transitions).is_empty(), "replayed after a store conflict: no second alert");
    }

    #[test]
    fn acknowledging_notes_and_resolving_by_hand() {
        let mut shop = Shop::new();
        let opened = shop.fail_until_firing("web");
        let id = opened.incident.id.clone();
        let at = shop.clock.now();
        let ack = shop.engine.incidents_mut().acknowledge(&id, "alice", at).unwrap().unwrap();
        assert_eq!(ack.incident.ack, Some(Ack { by: "alice".into(), at }));
        assert_eq!(ack.entries[0].text, "acknowledged by alice");
        assert_eq!(ack.entries[0].by.as_deref(), Some("alice"));
        assert_eq!(ack.incident.status, IncidentStatus::Open, "acknowledged is still open");
        let again = shop.engine.incidents_mut().acknowledge(&id, "bob", at).unwrap().unwrap_err();
        assert_eq!(
            again.to_string(),
            format!("incident {id} was already acknowledged by alice at 2026-11-25T14:00:20Z")
        );

        let live = shop.engine.incidents().get(&id).unwrap().clone();
        assert_eq!(note(&live, "bob", "  ", at), Err(IncidentError::EmptyNote));
        let noted = note(&live, "bob", "rolling back deploy 42", at).unwrap();
        assert_eq!(noted.entries[0].kind, EntryKind::Note);

        let closed = resolve_by_hand(&live, "bob", Some("fixed the require"), at).unwrap();
        assert_eq!(closed.incident.status, IncidentStatus::Resolved);
        assert_eq!(closed.incident.resolved_by.as_deref(), Some("bob"));
        assert_eq!(closed.entries[1].text, "resolved by hand by bob while 1 alert(s) still fired");
        assert!(matches!(acknowledge(&closed.incident, "carol", at), Err(IncidentError::AlreadyResolved { .. })));
        assert!(resolve_by_hand(&closed.incident, "carol", None, at).is_err());
        shop.engine.incidents_mut().apply(&closed);

        // The alert still fires: its resolution is still recorded on the closed incident...
        let later = shop.status("web", 200);
        assert_eq!(later[0].incident.id, id);
        assert_eq!(kinds(&later[0]), [EntryKind::AlertResolved]);
        assert_eq!(later[0].incident.resolved_by.as_deref(), Some("bob"), "the hand-made resolution stands");
        // ...and the next failure is a new incident.
        assert_eq!(shop.fail_until_firing("web").incident.id, "2026-11-25-shop-2");
    }
}
