//! Shared checks in SQLite: location states, forwarded events and check leases, with the statements of
//! `crate::sql` (PostgreSQL's are the same but for how the list of targets is passed: here one JSON text, read by
//! `json_each`). SQLite has a single writer, so a claim needs no row locks: the transaction is the lock.

use std::sync::LazyLock;

use lookout_core::Timestamp;
use rusqlite::{Connection, Transaction, params};

use super::{from_json, to_json};
use crate::sql::{
    CHECK_HOLDERS, CheckSql, FORWARDED, HELD_CHECKS, LOCATION_STATES, RELEASE_CHECKS, RELEASE_SURPLUS, RENEW_CHECKS,
    UPSERT_LOCATION, check_sql,
};
use crate::{CheckClaim, Forwarded, LocationState};

static CHECKS: LazyLock<CheckSql> =
    LazyLock::new(|| check_sql(|n| format!("SELECT value AS target FROM json_each(${n})"), ""));

/// Writes a location's view of a target into an open transaction (a record's).
pub(super) fn upsert_location(tx: &Transaction<'_>, l: &LocationState) -> rusqlite::Result<()> {
    tx.prepare_cached(UPSERT_LOCATION)?.execute(params![
        l.target,
        l.location,
        to_json(&l.state)?,
        l.at.0,
        l.ok,
        l.latency_ms,
        l.status,
        l.reason
    ])?;
    Ok(())
}

pub(super) fn location_states(conn: &Connection) -> rusqlite::Result<Vec<LocationState>> {
    let mut stmt = conn.prepare_cached(LOCATION_STATES)?;
    let rows = stmt.query_map([], |r| {
        Ok(LocationState {
            target: r.get(0)?,
            location: r.get(1)?,
            state: from_json(2, &r.get::<_, String>(2)?)?,
            at: Timestamp(r.get(3)?),
            ok: r.get(4)?,
            latency_ms: r.get(5)?,
            status: r.get(6)?,
            reason: r.get(7)?,
        })
    })?;
    rows.collect()
}

pub(super) fn forward(conn: &mut Connection, agent: &str, bodies: &[String]) -> rusqlite::Result<()> {
    let now = Timestamp::now().0;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO forwarded (agent, at, body) VALUES (?1, ?2, ?3)")?;
        for body in bodies {
            insert.execute(params![agent, now, body])?;
        }
    }
    tx.commit()
}

pub(super) fn forwarded(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Forwarded>> {
    let mut stmt = conn.prepare_cached(FORWARDED)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], |r| Ok(Forwarded { id: r.get(0)?, agent: r.get(1)?, body: r.get(2)? }))?;
    rows.collect()
}

/// Deletes the forwarded events a record consumed, in its transaction.
pub(super) fn consume(tx: &Transaction<'_>, ids: &[i64]) -> rusqlite::Result<()> {
    let mut delete = tx.prepare_cached("DELETE FROM forwarded WHERE id = ?1")?;
    for id in ids {
        delete.execute([id])?;
    }
    Ok(())
}

/// See [`crate::Store::claim_checks`]: the steps of `crate::sql`'s statements in one transaction.
pub(super) fn claim(conn: &mut Connection, claim: &CheckClaim, ttl_ms: i64) -> rusqlite::Result<Vec<String>> {
    let mut targets = claim.targets.clone();
    targets.sort_unstable();
    targets.dedup();
    let targets = to_json(&targets)?;
    let now = Timestamp::now().0;
    let expires = now.saturating_add(ttl_ms);
    let want = i64::try_from(claim.want).unwrap_or(i64::MAX);
    let (location, agent) = (&claim.location, &claim.agent);
    let tx = conn.transaction()?;
    tx.prepare_cached(&CHECKS.seed)?.execute(params![location, targets])?;
    tx.prepare_cached(&CHECKS.drop_unknown)?.execute(params![location, agent, targets])?;
    let held =
        i64::try_from(tx.prepare_cached(RENEW_CHECKS)?.execute(params![expires, location, agent])?).unwrap_or(i64::MAX);
    if held > want {
        tx.prepare_cached(RELEASE_SURPLUS)?.execute(params![location, agent, held - want])?;
    } else if held < want {
        tx.prepare_cached(&CHECKS.take)?.execute(params![location, now, targets, want - held, agent, expires])?;
    }
    let valid_until = Timestamp::now().0.saturating_add(ttl_ms / 2);
    let mut stmt = tx.prepare_cached(HELD_CHECKS)?;
    let held = stmt.query_map(params![location, agent, valid_until], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    tx.commit()?;
    Ok(held)
}

pub(super) fn release(conn: &Connection, agent: &str, location: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(RELEASE_CHECKS)?.execute([location, agent])?;
    Ok(())
}

pub(super) fn holders(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare_cached(CHECK_HOLDERS)?;
    let rows = stmt.query_map([Timestamp::now().0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
