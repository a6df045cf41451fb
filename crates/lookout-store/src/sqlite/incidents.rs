//! Incidents in SQLite: the incident's head in `incidents.detail` (JSON, `alerts` empty), its alerts one row each
//! in `incident_alerts`. A change writes the head and only the alerts it carries, so recording a storm is linear
//! in its alerts; reads fetch the alerts of every incident asked for in one query.

use std::collections::HashMap;

use lookout_core::{Incident, IncidentAlert, IncidentChange, IncidentStatus};
use rusqlite::{Connection, params};

use super::record::exec;
use super::{from_json, to_json};
use crate::{Result, StoreError};

/// The migration that moved alerts out of the incident document.
pub(super) const ALERTS_MIGRATION: i64 = 8;

/// Writes one incident change: inserts a new incident or updates one whose stored revision is still the expected
/// one, upserts the alerts it carries, and appends its timeline entries. `Ok(Err(Conflict))` when someone else
/// changed it first.
pub(super) fn write(tx: &rusqlite::Transaction<'_>, change: &IncidentChange) -> rusqlite::Result<Result<()>> {
    let i = &change.incident;
    let conflict = || StoreError::Conflict { incident: i.id.clone() };
    let head = to_json(&i.head())?;
    let open = i.status == IncidentStatus::Open;
    let written = match change.expected_revision {
        None => exec(
            tx,
            "INSERT INTO incidents (id, grp, day, seq, status, live, opened_at, resolved_at, revision, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                i.id,
                i.group,
                i.day,
                i.seq,
                i.status.as_str(),
                open || i.has_firing_alerts(),
                i.opened_at.0,
                i.resolved_at.map(|t| t.0),
                i.revision as i64,
                head
            ],
        ),
        // `live` is set below, once the alerts are written.
        Some(expected) => exec(
            tx,
            "UPDATE incidents SET status = ?2, resolved_at = ?3, revision = ?4, detail = ?5
             WHERE id = ?1 AND revision = ?6",
            params![i.id, i.status.as_str(), i.resolved_at.map(|t| t.0), i.revision as i64, head, expected as i64],
        ),
    };
    match written {
        Ok(0) => return Ok(Err(conflict())),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            return Ok(Err(conflict()));
        }
        other => other?,
    };
    for a in &i.alerts {
        upsert_alert(tx, &i.id, a)?;
    }
    if change.expected_revision.is_some() {
        // Live: open, or an alert still firing (an indexed look, not a read of every alert).
        exec(
            tx,
            "UPDATE incidents SET live = (?2 OR EXISTS
                (SELECT 1 FROM incident_alerts WHERE incident = ?1 AND resolved_at IS NULL))
             WHERE id = ?1",
            params![i.id, open],
        )?;
    }
    for e in &change.entries {
        exec(
            tx,
            "INSERT INTO incident_timeline (incident, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![i.id, e.at.0, e.kind.as_str(), to_json(e)?],
        )?;
    }
    Ok(Ok(()))
}

/// An alert joins at the end (next `seq`) or replaces its row.
fn upsert_alert(tx: &rusqlite::Transaction<'_>, incident: &str, a: &IncidentAlert) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO incident_alerts (incident, alert_id, seq, target, fired_at, resolved_at, detail)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_alerts WHERE incident = ?1), ?3, ?4, ?5, ?6)
         ON CONFLICT (incident, alert_id) DO UPDATE SET
           target = excluded.target, fired_at = excluded.fired_at, resolved_at = excluded.resolved_at,
           detail = excluded.detail",
        params![incident, a.alert_id, a.target, a.fired_at.0, a.resolved_at.map(|t| t.0), to_json(a)?],
    )?;
    Ok(())
}

/// Incidents by a `WHERE`/`ORDER BY` tail over `incidents` (with its parameters), each with its alerts: two
/// queries however many incidents and alerts.
pub(super) fn read(
    conn: &Connection,
    tail: &str,
    args: impl rusqlite::Params + Clone,
) -> rusqlite::Result<Vec<Incident>> {
    let mut stmt = conn.prepare(&format!("SELECT id, detail FROM incidents {tail}"))?;
    let mut incidents: Vec<Incident> = stmt
        .query_map(args.clone(), |r| from_json::<Incident>(1, &r.get::<_, String>(1)?))?
        .collect::<rusqlite::Result<_>>()?;
    if incidents.is_empty() {
        return Ok(incidents);
    }
    let at: HashMap<String, usize> = incidents.iter().enumerate().map(|(n, i)| (i.id.clone(), n)).collect();
    let mut stmt = conn.prepare(&format!(
        "SELECT incident, detail FROM incident_alerts
         WHERE incident IN (SELECT id FROM incidents {tail}) ORDER BY incident, seq"
    ))?;
    let mut rows = stmt.query(args)?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let alert: IncidentAlert = from_json(1, &r.get::<_, String>(1)?)?;
        if let Some(&n) = at.get(&id) {
            incidents[n].alerts.push(alert);
        }
    }
    Ok(incidents)
}

/// Runs after migration [`ALERTS_MIGRATION`]'s script, in its transaction: moves the alerts of every stored
/// incident document into `incident_alerts`, and fills in each outbox message's alert.
pub(super) fn migrate(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let stored: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, detail FROM incidents")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (id, detail) in stored {
        let incident: Incident = from_json(1, &detail)?;
        for a in &incident.alerts {
            upsert_alert(tx, &id, a)?;
        }
        tx.execute("UPDATE incidents SET detail = ?2 WHERE id = ?1", params![id, to_json(&incident.head())?])?;
    }
    let keys: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT id, key FROM outbox")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (id, key) in keys {
        if let Some(alert) = lookout_core::key::alert_of(&key) {
            tx.execute("UPDATE outbox SET alert_id = ?2 WHERE id = ?1", params![id, alert])?;
        }
    }
    Ok(())
}
