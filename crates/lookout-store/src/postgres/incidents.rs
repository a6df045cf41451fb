//! Incidents in PostgreSQL, laid out as in SQLite: the head in `incidents.detail` (JSON, `alerts` empty), each
//! alert a row of `incident_alerts`, so recording a storm is linear in its alerts and reads take two queries.

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Transaction};
use lookout_core::{Incident, IncidentAlert, IncidentChange, IncidentStatus};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::record::exec;
use super::{PgStore, from_json, get, q, to_json};
use crate::{Result, StoreError};

const OP: &str = "record";

/// Writes one incident change: inserts a new incident or updates one whose stored revision is still the expected
/// one, upserts the alerts it carries, and appends its timeline entries. `Err(Conflict)` when someone else
/// changed it first (another agent's leader included): the caller reads it again.
pub(super) async fn write(tx: &Transaction<'_>, change: &IncidentChange) -> Result<()> {
    let i = &change.incident;
    let conflict = || StoreError::Conflict { incident: i.id.clone() };
    let head = to_json(OP, &i.head())?;
    let open = i.status == IncidentStatus::Open;
    let revision = i64::try_from(i.revision).unwrap_or(i64::MAX);
    let resolved = i.resolved_at.map(|t| t.0);
    let written = match change.expected_revision {
        None => {
            let seq = i32::try_from(i.seq).unwrap_or(i32::MAX);
            let live = open || i.has_firing_alerts();
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO incidents (id, grp, day, seq, status, live, opened_at, resolved_at, revision, detail)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .await
                .map_err(q(OP))?;
            let params: [&(dyn ToSql + Sync); 10] =
                [&i.id, &i.group, &i.day, &seq, &i.status.as_str(), &live, &i.opened_at.0, &resolved, &revision, &head];
            match tx.execute(&stmt, &params).await {
                // Another writer opened this incident (or one of its group) first.
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Err(conflict()),
                other => other.map_err(q(OP))?,
            }
        }
        // `live` is set below, once the alerts are written.
        Some(expected) => {
            let expected = i64::try_from(expected).unwrap_or(i64::MAX);
            exec(
                tx,
                "UPDATE incidents SET status = $2, resolved_at = $3, revision = $4, detail = $5
                 WHERE id = $1 AND revision = $6",
                &[&i.id, &i.status.as_str(), &resolved, &revision, &head, &expected],
            )
            .await?
        }
    };
    if written == 0 {
        return Err(conflict());
    }
    for a in &i.alerts {
        exec(
            tx,
            "INSERT INTO incident_alerts (incident, alert_id, seq, target, fired_at, resolved_at, detail)
             VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_alerts WHERE incident = $1), $3, $4, $5,
                     $6)
             ON CONFLICT (incident, alert_id) DO UPDATE SET
               target = excluded.target, fired_at = excluded.fired_at, resolved_at = excluded.resolved_at,
               detail = excluded.detail",
            &[&i.id, &a.alert_id, &a.target, &a.fired_at.0, &a.resolved_at.map(|t| t.0), &to_json(OP, a)?],
        )
        .await?;
    }
    if change.expected_revision.is_some() {
        // Live: open, or an alert still firing (an indexed look, not a read of every alert).
        exec(
            tx,
            "UPDATE incidents SET live = ($2 OR EXISTS
                (SELECT 1 FROM incident_alerts WHERE incident = $1 AND resolved_at IS NULL))
             WHERE id = $1",
            &[&i.id, &open],
        )
        .await?;
    }
    for e in &change.entries {
        exec(
            tx,
            "INSERT INTO incident_timeline (incident, at, kind, detail) VALUES ($1, $2, $3, $4)",
            &[&i.id, &e.at.0, &e.kind.as_str(), &to_json(OP, e)?],
        )
        .await?;
    }
    Ok(())
}

/// Incidents by a `WHERE`/`ORDER BY` tail over `incidents` (with its parameters), each with its alerts: two
/// queries however many incidents and alerts.
pub(super) async fn read(store: &PgStore, tail: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<Incident>> {
    const OP: &str = "read incidents";
    let client = store.client(OP).await?;
    let stmt = client.prepare_cached(&format!("SELECT id, detail FROM incidents {tail}")).await.map_err(q(OP))?;
    let mut incidents: Vec<Incident> = client
        .query(&stmt, args)
        .await
        .map_err(q(OP))?
        .iter()
        .map(|r| from_json(OP, get(OP, r, 1)?))
        .collect::<Result<_>>()?;
    if incidents.is_empty() {
        return Ok(incidents);
    }
    let at: HashMap<String, usize> = incidents.iter().enumerate().map(|(n, i)| (i.id.clone(), n)).collect();
    let stmt = client
        .prepare_cached(&format!(
            "SELECT incident, detail FROM incident_alerts
             WHERE incident IN (SELECT id FROM incidents {tail}) ORDER BY incident, seq"
        ))
        .await
        .map_err(q(OP))?;
    for r in client.query(&stmt, args).await.map_err(q(OP))? {
        let id: String = get(OP, &r, 0)?;
        let alert: IncidentAlert = from_json(OP, get(OP, &r, 1)?)?;
        if let Some(&n) = at.get(&id) {
            incidents[n].alerts.push(alert);
        }
    }
    Ok(incidents)
}
