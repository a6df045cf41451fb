//! Agents and leases in PostgreSQL: the statements of `crate::sql`, with the server's clock as `now`, so that
//! agents whose own clocks disagree still agree on who leads and who is alive.

use deadpool_postgres::GenericClient;
use lookout_core::Timestamp;

use super::{PgStore, get, q};
use crate::sql::{AGENT_NAME_HELD_MS, AGENTS, HEARTBEAT, LEASE, LEAVE, RELEASE_LEASE, TAKE_LEASE};
use crate::{AgentInfo, AgentRow, LEADER_LEASE, Lease, Result};

/// The server's clock in milliseconds since the epoch.
const NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

pub(super) async fn now(client: &impl GenericClient, op: &'static str) -> Result<i64> {
    let row = client.query_one(NOW, &[]).await.map_err(q(op))?;
    get(op, &row, 0)
}

pub(super) async fn heartbeat(store: &PgStore, a: &AgentInfo) -> Result<()> {
    const OP: &str = "heartbeat";
    let client = store.client(OP).await?;
    let now = now(&client, OP).await?;
    let stmt = client.prepare_cached(HEARTBEAT).await.map_err(q(OP))?;
    let held_since = now - AGENT_NAME_HELD_MS;
    let mounts = crate::mounts_json(&a.mounts);
    let written = client
        .execute(
            &stmt,
            &[&a.name, &a.location, &a.version, &a.config_hash, &a.started_at.0, &now, &mounts, &held_since],
        )
        .await
        .map_err(q(OP))?;
    if written == 0 {
        return Err(crate::StoreError::NameTaken { name: a.name.clone() });
    }
    Ok(())
}

pub(super) async fn agents(store: &PgStore) -> Result<Vec<AgentRow>> {
    const OP: &str = "read agents";
    let client = store.client(OP).await?;
    let now = now(&client, OP).await?;
    let stmt = client.prepare_cached(AGENTS).await.map_err(q(OP))?;
    let rows = client.query(&stmt, &[&LEADER_LEASE, &now]).await.map_err(q(OP))?;
    rows.iter()
        .map(|r| {
            Ok(AgentRow {
                info: AgentInfo {
                    name: get(OP, r, 0)?,
                    location: get(OP, r, 1)?,
                    version: get(OP, r, 2)?,
                    config_hash: get(OP, r, 3)?,
                    started_at: Timestamp(get(OP, r, 4)?),
                    mounts: crate::mounts_of_json(&get::<String>(OP, r, 7)?),
                },
                last_seen: Timestamp(get(OP, r, 5)?),
                leader: get(OP, r, 6)?,
            })
        })
        .collect()
}

pub(super) async fn acquire(store: &PgStore, name: &str, holder: &str, ttl_ms: i64) -> Result<Lease> {
    const OP: &str = "take lease";
    let mut client = store.client(OP).await?;
    let tx = client.transaction().await.map_err(q(OP))?;
    let now = now(&tx, OP).await?;
    let take = tx.prepare_cached(TAKE_LEASE).await.map_err(q(OP))?;
    tx.execute(&take, &[&name, &holder, &now, &ttl_ms]).await.map_err(q(OP))?;
    let read = tx.prepare_cached(LEASE).await.map_err(q(OP))?;
    let row = tx.query_one(&read, &[&name]).await.map_err(q(OP))?;
    let lease = Lease { holder: get(OP, &row, 0)?, expires_at: Timestamp(get(OP, &row, 1)?) };
    tx.commit().await.map_err(q(OP))?;
    Ok(lease)
}

pub(super) async fn leave(store: &PgStore, a: &AgentInfo) -> Result<()> {
    const OP: &str = "leave";
    let client = store.client(OP).await?;
    let gone = now(&client, OP).await? - AGENT_NAME_HELD_MS - 1;
    let stmt = client.prepare_cached(LEAVE).await.map_err(q(OP))?;
    client.execute(&stmt, &[&gone, &a.name, &a.started_at.0]).await.map_err(q(OP))?;
    Ok(())
}

pub(super) async fn release(store: &PgStore, name: &str, holder: &str) -> Result<()> {
    const OP: &str = "release lease";
    let client = store.client(OP).await?;
    let stmt = client.prepare_cached(RELEASE_LEASE).await.map_err(q(OP))?;
    client.execute(&stmt, &[&name, &holder]).await.map_err(q(OP))?;
    Ok(())
}
