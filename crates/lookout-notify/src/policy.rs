//! Who is not told, and why — decided when a message is about to be sent, so a silence or a maintenance window
//! added while messages wait still applies: alerts matching an active silence or maintenance window, alerts of a
//! target whose parent (`depends_on`) is down, resolves of alerts whose firing message this channel never sent,
//! and alerts that fired and resolved before their group was sent (flap damping) are recorded, not sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use lookout_config::Maintenance;
use lookout_core::Timestamp;
use lookout_engine::{Matcher, all_match};
use lookout_store::Silence;

use crate::Notification;

/// What the configuration says about suppressing.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub maintenance: Vec<Maintenance>,
    /// Each target's parents. Shared: targets learnt while running (another agent's machine) add theirs.
    pub depends_on: Parents,
}

/// Each target's parents (`depends_on`), shared between the pipeline that learns targets and the outbox.
#[derive(Clone, Debug, Default)]
pub struct Parents(std::sync::Arc<std::sync::RwLock<HashMap<String, Vec<String>>>>);

impl Parents {
    pub fn new(map: HashMap<String, Vec<String>>) -> Self {
        Parents(std::sync::Arc::new(std::sync::RwLock::new(map)))
    }

    /// Adds (or replaces) a target's parents.
    pub fn insert(&self, target: String, parents: Vec<String>) {
        if let Ok(mut map) = self.0.write() {
            map.insert(target, parents);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<String>>> {
        // A writer that panicked left a whole map (inserts are single calls): read it all the same.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

/// What is true right now: the silences in force and the targets whose alert is firing.
#[derive(Clone, Debug, Default)]
pub struct Situation {
    pub now: Timestamp,
    pub silences: Vec<(Silence, Vec<Matcher>)>,
    pub firing: HashSet<String>,
}

impl Situation {
    /// Keeps the silences in force whose matchers parse (they were checked when added).
    pub fn new(now: Timestamp, silences: Vec<Silence>, firing: HashSet<String>) -> Situation {
        let silences = silences
            .into_iter()
            .filter(|s| s.active(now))
            .filter_map(|s| {
                let ms = s.matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<Vec<_>, _>>().ok()?;
                Some((s, ms))
            })
            .collect();
        Situation { now, silences, firing }
    }
}

/// The labels matchers see: `alertname` and `target` (the target), `group`, `severity`, `state`, and the
/// target's own labels.
pub fn labels(n: &Notification) -> BTreeMap<String, String> {
    let mut l = n.labels.clone();
    l.insert("alertname".into(), n.target.clone());
    l.insert("target".into(), n.target.clone());
    l.insert("group".into(), n.group.clone());
    l.insert("severity".into(), n.severity.clone());
    l.insert("state".into(), n.state.clone());
    l
}

impl Policy {
    /// Why `n` must not be sent now, if so.
    pub fn suppress(&self, n: &Notification, s: &Situation) -> Option<String> {
        let labels = labels(n);
        for (silence, matchers) in &s.silences {
            if all_match(matchers, &labels) {
                return Some(format!(
                    "silenced by silence #{} ({}, until {}): {}",
                    silence.id,
                    silence.created_by,
                    silence.ends_at.to_rfc3339_seconds(),
                    silence.comment
                ));
            }
        }
        for m in &self.maintenance {
            if m.schedule.active(s.now) && all_match(&m.matchers, &labels) {
                return Some(format!("in maintenance window {:?}", m.name));
            }
        }
        if n.state == "firing"
            && let Some(parent) =
                self.depends_on.read().get(&n.target).into_iter().flatten().find(|p| s.firing.contains(*p)).cloned()
        {
            return Some(format!("{parent} is down and {} depends on it: told with {parent}'s alert", n.target));
        }
        None
    }

    /// The targets depending on `parent` that are firing now: they are named in the parent's message.
    pub fn affected(&self, parent: &str, s: &Situation) -> Vec<String> {
        let mut children: Vec<String> = self
            .depends_on
            .read()
            .iter()
            .filter(|(child, parents)| parents.iter().any(|p| p == parent) && s.firing.contains(*child))
            .map(|(child, _)| child.clone())
            .collect();
        children.sort();
        children
    }
}

/// Flap damping: an alert that fired and resolved while its group waited — both messages are in `batch`, and the
/// firing one was never tried — is not worth two messages. Returns the indexes to suppress. (A firing message
/// that was tried — failed, or cut by a crash — is still sent, then its resolve: the receiver may have seen it.
/// Attempts are counted before each send for that reason.)
pub fn flapped(batch: &[(u32, Notification)]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, (_, n)) in batch.iter().enumerate() {
        if n.reminder.is_some() {
            continue;
        }
        let firing_untried = |alert: &str| {
            batch.iter().any(|(attempts, m)| {
                m.alert_id == alert && m.state == "firing" && m.reminder.is_none() && *attempts == 0
            })
        };
        let resolved = |alert: &str| batch.iter().any(|(_, m)| m.alert_id == alert && m.state == "resolved");
        if firing_untried(&n.alert_id) && resolved(&n.alert_id) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_config::Maintenance;
    use lookout_engine::schedule::Schedule;

    fn n(target: &str, state: &str) -> Notification {
        serde_json::from_value(serde_json::json!({
            "version": 1, "idempotency_key": format!("lookout/{target}@1/{state}"), "alert_id": format!("{target}@1"),
            "target": target, "state": state, "at": "2026-11-25T14:00:00.000Z", "since": null,
            "duration_seconds": null, "summary": "s", "reasons": [], "diagnosis": null, "last_result": null,
            "group": "shop", "severity": "critical", "labels": {"team": "web"}
        }))
        .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::from_millis(s.parse::<jiff::Timestamp>().unwrap().as_millisecond())
    }

    fn silence(id: i64, matchers: &[&str], from: &str, to: &str) -> Silence {
        Silence {
            id,
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            starts_at: at(from),
            ends_at: at(to),
            created_by: "alice".into(),
            comment: "deploying".into(),
            created_at: at(from),
            expired_at: None,
            pause: false,
        }
    }

    #[test]
    fn silences_apply_while_in_force_and_only_to_what_they_match() {
        let p = Policy::default();
        let sils =
            vec![silence(7, &["group=shop", "team=~\"web|api\""], "2026-11-25T14:00:00Z", "2026-11-25T16:00:00Z")];
        let during = Situation::new(at("2026-11-25T15:00:00Z"), sils.clone(), HashSet::new());
        assert_eq!(
            p.suppress(&n("web", "firing"), &during).as_deref(),
            Some("silenced by silence #7 (alice, until 2026-11-25T16:00:00Z): deploying")
        );
        let mut other = n("db", "firing");
        other.group = "data".into();
        assert_eq!(p.suppress(&other, &during), None);
        let after = Situation::new(at("2026-11-25T16:00:00Z"), sils.clone(), HashSet::new());
        assert_eq!(p.suppress(&n("web", "firing"), &after), None, "ended");
        let before = Situation::new(at("2026-11-25T13:59:59Z"), sils, HashSet::new());
        assert_eq!(p.suppress(&n("web", "firing"), &before), None, "not yet");
    }

    #[test]
    fn maintenance_windows_and_dependencies() {
        let window = Maintenance {
            name: "backup".into(),
            matchers: vec![Matcher::parse("target=db").unwrap()],
            schedule: Schedule::once("2026-11-25T02:00", "2026-11-25T04:00", &jiff::tz::TimeZone::UTC).unwrap(),
        };
        let p = Policy {
            maintenance: vec![window],
            depends_on: Parents::new(
                [("web".to_string(), vec!["db".to_string()]), ("api".to_string(), vec!["db".to_string()])].into(),
            ),
        };
        let night = Situation::new(at("2026-11-25T03:00:00Z"), vec![], HashSet::new());
        assert_eq!(p.suppress(&n("db", "firing"), &night).as_deref(), Some("in maintenance window \"backup\""));
        assert_eq!(p.suppress(&n("web", "firing"), &night), None);
        let db_down = Situation::new(
            at("2026-11-25T12:00:00Z"),
            vec![],
            ["db".to_string(), "web".to_string(), "api".to_string()].into(),
        );
        assert_eq!(p.suppress(&n("db", "firing"), &db_down), None, "the parent is told");
        assert_eq!(
            p.suppress(&n("web", "firing"), &db_down).as_deref(),
            Some("db is down and web depends on it: told with db's alert")
        );
        assert_eq!(p.affected("db", &db_down), vec!["api".to_string(), "web".to_string()]);
        let db_up = Situation::new(at("2026-11-25T12:00:00Z"), vec![], ["web".to_string()].into());
        assert_eq!(p.suppress(&n("web", "firing"), &db_up), None, "on its own, web is told");
    }

    #[test]
    fn an_alert_that_fired_and_resolved_within_its_group_wait_is_not_sent() {
        let batch = vec![(0, n("web", "firing")), (0, n("api", "firing")), (0, n("web", "resolved"))];
        assert_eq!(flapped(&batch), vec![0, 2]);
        let tried = vec![(2, n("web", "firing")), (0, n("web", "resolved"))];
        assert!(flapped(&tried).is_empty(), "a firing message already tried is sent, then its resolve");
    }
}
