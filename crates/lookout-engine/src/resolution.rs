//! What an incident's timeline says when it closes about the files its diagnoses named: the missing file exists
//! now, or it still does not (then the code that required it changed). Pure: the caller looks at the files
//! ([`files_to_look_at`]) and passes what it saw.

use std::collections::{HashMap, HashSet};

use lookout_core::{Cause, EntryKind, IncidentChange, TimelineEntry};

/// The diagnosed files of the incidents these changes resolve, each once: what the caller must look at.
pub fn files_to_look_at(changes: &[IncidentChange]) -> Vec<String> {
    let mut seen = HashSet::new();
    changes
        .iter()
        .filter(|c| resolved_at(c).is_some())
        .flat_map(|c| c.incident.diagnoses().filter_map(|(_, d)| d.path.clone()))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

/// Adds an `Observed` entry per diagnosed file to each change that resolves its incident, from `exists` (file →
/// whether it exists now). A file missing from `exists` is not mentioned.
pub fn observe_resolutions(changes: &mut [IncidentChange], exists: &HashMap<String, bool>) {
    for c in changes.iter_mut() {
        let Some(at) = resolved_at(c) else { continue };
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for (_, d) in c.incident.diagnoses() {
            let Some(path) = d.path.as_deref().filter(|p| seen.insert(p.to_string())) else { continue };
            let Some(&now) = exists.get(path) else { continue };
            let text = match (d.cause, now) {
                (Some(Cause::Missing), true) => format!("{path} exists now: the missing file was restored"),
                (Some(Cause::Missing), false) => {
                    format!("{path} still does not exist: the code that required it must have changed")
                }
                (_, true) => format!("{path} exists"),
                (_, false) => format!("{path} does not exist"),
            };
            entries.push(TimelineEntry { at, kind: EntryKind::Observed, text, by: None });
        }
        c.entries.extend(entries);
    }
}

/// When the change resolved its incident (`None` for any other change).
fn resolved_at(c: &IncidentChange) -> Option<lookout_core::Timestamp> {
    c.incident.resolved_at.filter(|_| c.entries.iter().any(|e| e.kind == EntryKind::Resolved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_core::{Diagnosis, Incident, IncidentAlert, IncidentStatus, Timestamp};

    fn change(resolved: bool, diagnoses: &[(&str, Cause)]) -> IncidentChange {
        let at = Timestamp::from_millis(1_000);
        let alerts = diagnoses
            .iter()
            .enumerate()
            .map(|(i, (path, cause))| IncidentAlert {
                alert_id: format!("a{i}"),
                target: format!("t{i}"),
                diagnosis: Some(Diagnosis {
                    verdict: format!("{path} is the cause"),
                    cause: Some(*cause),
                    path: Some(path.to_string()),
                    source: "trace".into(),
                    evidence: Vec::new(),
                }),
                failing_since: at,
                fired_at: at,
                resolved_at: resolved.then_some(at),
                reasons: Vec::new(),
            })
            .collect();
        let incident = Incident {
            id: "2026-11-25-shop-1".into(),
            group: "shop".into(),
            day: "2026-11-25".into(),
            seq: 1,
            status: if resolved { IncidentStatus::Resolved } else { IncidentStatus::Open },
            opened_at: at,
            first_failure_at: at,
            resolved_at: resolved.then_some(at),
            resolved_by: None,
            ack: None,
            alerts,
            revision: 1,
        };
        let kind = if resolved { EntryKind::Resolved } else { EntryKind::AlertFired };
        IncidentChange {
            incident,
            expected_revision: Some(1),
            entries: vec![TimelineEntry { at, kind, text: String::new(), by: None }],
        }
    }

    #[test]
    fn a_resolution_says_whether_each_diagnosed_file_exists_now() {
        let mut changes = vec![change(
            true,
            &[
                ("/www/inc/settings.phpp", Cause::Missing),
                ("/www/inc/db.php", Cause::Unreadable),
                ("/www/x.php", Cause::Missing),
            ],
        )];
        assert_eq!(files_to_look_at(&changes), ["/www/inc/settings.phpp", "/www/inc/db.php", "/www/x.php"]);
        let exists = HashMap::from([
            ("/www/inc/settings.phpp".to_string(), true),
            ("/www/inc/db.php".to_string(), true),
            ("/www/x.php".to_string(), false),
        ]);
        observe_resolutions(&mut changes, &exists);
        let texts: Vec<&str> =
            changes[0].entries.iter().filter(|e| e.kind == EntryKind::Observed).map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "/www/inc/settings.phpp exists now: the missing file was restored",
                "/www/inc/db.php exists",
                "/www/x.php still does not exist: the code that required it must have changed",
            ]
        );
    }

    #[test]
    fn an_incident_still_open_or_a_file_not_looked_at_adds_nothing() {
        let mut open = vec![change(false, &[("/www/a.php", Cause::Missing)])];
        assert!(files_to_look_at(&open).is_empty());
        observe_resolutions(&mut open, &HashMap::from([("/www/a.php".to_string(), true)]));
        assert_eq!(open[0].entries.len(), 1);
        let mut unseen = vec![change(true, &[("/www/a.php", Cause::Missing)])];
        observe_resolutions(&mut unseen, &HashMap::new());
        assert_eq!(unseen[0].entries.len(), 1);
    }
}
