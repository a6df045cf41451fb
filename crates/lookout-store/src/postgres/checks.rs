//! Shared checks in PostgreSQL: location states, forwarded events and check leases, with the statements of
//! `crate::sql` and the server's clock as `now` (as for the leader lease). Lists go as arrays (`unnest`), so a
//! claim over ten thousand targets or a batch of forwarded events is a handful of statements, not one per row;
//! taking leases selects them `FOR UPDATE SKIP LOCKED`, so agents claiming together never get the same target and
//! never wait for each other.

use std::sync::LazyLock;

use deadpool_postgres::{GenericClient, Transaction};
use lookout_core::Timestamp;

use super::agents::now;
use super::{PgStore, bad, from_json, get, q, to_json};
use crate::sql::{
    CHECK_HOLDERS, CheckSql, FORWARDED, HELD_CHECKS, LOCATION_STATES, RELEASE_CHECKS, RELEASE_SURPLUS, RENEW_CHECKS,
    UPSERT_LOCATION, check_sql,
};
use crate::{CheckClaim, Forwarded, LocationState, Result};

static CHECKS: LazyLock<CheckSql> =
    LazyLock::new(|| check_sql(|n| format!("SELECT unnest(CAST(${n} AS TEXT[])) AS target"), "FOR UPDATE SKIP LOCKED"));

/// Forwarded events per INSERT: one statement, one round trip, however many rows (each a few hundred bytes).
const FORWARD_BATCH: usize = 2_000;

/// Writes a location's view of a target into an open transaction (a record's).
pub(super) async fn upsert_location(tx: &Transaction<'_>, l: &LocationState) -> Result<()> {
    const OP: &str = "record";
    let status = l.status.map(i32::from);
    super::record::exec(
        tx,
        UPSERT_LOCATION,
        &[&l.target, &l.location, &to_json(OP, &l.state)?, &l.at.0, &l.ok, &l.latency_ms, &status, &l.reason],
    )
    .await
    .map(drop)
}

/// Deletes the forwarded events a record consumed, in its transaction.
pub(super) async fn consume(tx: &Transaction<'_>, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    super::record::exec(tx, "DELETE FROM forwarded WHERE id = ANY($1)", &[&ids]).await.map(drop)
}

pub(super) async fn location_states(store: &PgStore) -> Result<Vec<LocationState>> {
    const OP: &str = "read location states";
    store
        .rows(OP, LOCATION_STATES, &[], |r| {
            let status = get::<Option<i32>>(OP, r, 6)?
                .map(|s| u16::try_from(s).map_err(|_| bad(OP, format!("HTTP status {s}"))))
                .transpose()?;
            Ok(LocationState {
                target: get(OP, r, 0)?,
                location: get(OP, r, 1)?,
                state: from_json(OP, get(OP, r, 2)?)?,
                at: Timestamp(get(OP, r, 3)?),
                ok: get(OP, r, 4)?,
                latency_ms: get(OP, r, 5)?,
                status,
                reason: get(OP, r, 7)?,
            })
        })
        .await
}

pub(super) async fn forward(store: &PgStore, agent: &str, bodies: &[String]) -> Result<()> {
    const OP: &str = "forward";
    if bodies.is_empty() {
        return Ok(());
    }
    let mut client = store.client(OP).await?;
    let tx = client.transaction().await.map_err(q(OP))?;
    let now = now(&tx, OP).await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO forwarded (agent, at, body)
             SELECT CAST($1 AS TEXT), CAST($2 AS BIGINT), b FROM unnest(CAST($3 AS TEXT[])) WITH ORDINALITY AS t(b, n)
             ORDER BY n",
        )
        .await
        .map_err(q(OP))?;
    for batch in bodies.chunks(FORWARD_BATCH) {
        tx.execute(&insert, &[&agent, &now, &batch]).await.map_err(q(OP))?;
    }
    tx.commit().await.map_err(q(OP))
}

pub(super) async fn forwarded(store: &PgStore, limit: usize) -> Result<Vec<Forwarded>> {
    const OP: &str = "read forwarded";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store
        .rows(OP, FORWARDED, &[&limit], |r| {
            Ok(Forwarded { id: get(OP, r, 0)?, agent: get(OP, r, 1)?, body: get(OP, r, 2)? })
        })
        .await
}

/// See [`crate::Store::claim_checks`]: the steps of `crate::sql`'s statements in one transaction.
pub(super) async fn claim(store: &PgStore, claim: &CheckClaim, ttl_ms: i64) -> Result<Vec<String>> {
    const OP: &str = "claim checks";
    let mut targets = claim.targets.clone();
    targets.sort_unstable();
    targets.dedup();
    let want = i64::try_from(claim.want).unwrap_or(i64::MAX);
    let (location, agent) = (&claim.location, &claim.agent);
    let mut client = store.client(OP).await?;
    let tx = client.transaction().await.map_err(q(OP))?;
    let now = now(&tx, OP).await?;
    let expires = now.saturating_add(ttl_ms);
    let run = async |sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]| -> Result<u64> {
        let stmt = tx.prepare_cached(sql).await.map_err(q(OP))?;
        tx.execute(&stmt, params).await.map_err(q(OP))
    };
    run(&CHECKS.seed, &[location, &targets]).await?;
    run(&CHECKS.drop_unknown, &[location, agent, &targets]).await?;
    let held = i64::try_from(run(RENEW_CHECKS, &[&expires, location, agent]).await?).unwrap_or(i64::MAX);
    if held > want {
        run(RELEASE_SURPLUS, &[location, agent, &(held - want)]).await?;
    } else if held < want {
        run(&CHECKS.take, &[location, &now, &targets, &(want - held), agent, &expires]).await?;
    }
    let valid_until = super::agents::now(&tx, OP).await?.saturating_add(ttl_ms / 2);
    let stmt = tx.prepare_cached(HELD_CHECKS).await.map_err(q(OP))?;
    let rows = tx.query(&stmt, &[location, agent, &valid_until]).await.map_err(q(OP))?;
    let held = rows.iter().map(|r| get(OP, r, 0)).collect::<Result<Vec<String>>>()?;
    tx.commit().await.map_err(q(OP))?;
    Ok(held)
}

pub(super) async fn release(store: &PgStore, agent: &str, location: &str) -> Result<()> {
    store.exec("release checks", RELEASE_CHECKS, &[&location, &agent]).await.map(drop)
}

pub(super) async fn holders(store: &PgStore) -> Result<Vec<(String, String, String)>> {
    const OP: &str = "read check holders";
    let client = store.client(OP).await?;
    let now = now(&client, OP).await?;
    let stmt = client.prepare_cached(CHECK_HOLDERS).await.map_err(q(OP))?;
    let rows = client.query(&stmt, &[&now]).await.map_err(q(OP))?;
    rows.iter().map(|r| Ok((get(OP, r, 0)?, get(OP, r, 1)?, get(OP, r, 2)?))).collect()
}
