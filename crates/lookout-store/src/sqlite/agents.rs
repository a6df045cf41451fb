//! Agents and leases in SQLite. One machine has one agent, which leads; the same statements as PostgreSQL's
//! (`postgres/agents.rs`) keep the two backends answering alike, so `lookout agents` works on both.

use lookout_core::Timestamp;
use rusqlite::{Connection, params};

use crate::sql::{AGENT_NAME_HELD_MS, AGENTS, HEARTBEAT, LEASE, LEAVE, RELEASE_LEASE, TAKE_LEASE};
use crate::{AgentInfo, AgentRow, LEADER_LEASE, Lease};

/// False when another live agent (another start time) beats under the same name.
pub(super) fn heartbeat(conn: &Connection, a: &AgentInfo) -> rusqlite::Result<bool> {
    let now = Timestamp::now().0;
    let written = conn.prepare_cached(HEARTBEAT)?.execute(params![
        a.name,
        a.location,
        a.version,
        a.config_hash,
        a.started_at.0,
        now,
        crate::mounts_json(&a.mounts),
        now - AGENT_NAME_HELD_MS
    ])?;
    Ok(written > 0)
}

pub(super) fn agents(conn: &Connection) -> rusqlite::Result<Vec<AgentRow>> {
    let mut stmt = conn.prepare_cached(AGENTS)?;
    let rows = stmt.query_map(params![LEADER_LEASE, Timestamp::now().0], |r| {
        Ok(AgentRow {
            info: AgentInfo {
                name: r.get(0)?,
                location: r.get(1)?,
                version: r.get(2)?,
                config_hash: r.get(3)?,
                started_at: Timestamp(r.get(4)?),
                mounts: crate::mounts_of_json(&r.get::<_, String>(7)?),
            },
            last_seen: Timestamp(r.get(5)?),
            leader: r.get(6)?,
        })
    })?;
    rows.collect()
}

pub(super) fn acquire(conn: &mut Connection, name: &str, holder: &str, ttl_ms: i64) -> rusqlite::Result<Lease> {
    let tx = conn.transaction()?;
    tx.prepare_cached(TAKE_LEASE)?.execute(params![name, holder, Timestamp::now().0, ttl_ms])?;
    let lease = tx
        .prepare_cached(LEASE)?
        .query_row([name], |r| Ok(Lease { holder: r.get(0)?, expires_at: Timestamp(r.get(1)?) }))?;
    tx.commit()?;
    Ok(lease)
}

pub(super) fn leave(conn: &Connection, a: &AgentInfo) -> rusqlite::Result<()> {
    let gone = Timestamp::now().0 - AGENT_NAME_HELD_MS - 1;
    conn.prepare_cached(LEAVE)?.execute(params![gone, a.name, a.started_at.0])?;
    Ok(())
}

pub(super) fn release(conn: &Connection, name: &str, holder: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(RELEASE_LEASE)?.execute([name, holder])?;
    Ok(())
}
