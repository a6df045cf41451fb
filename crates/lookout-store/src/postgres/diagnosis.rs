//! Diagnosis requests in PostgreSQL: the statements of `crate::sql` with the server's clock as `now` (as for the
//! leader lease), so the leader's and the agent's own clocks never decide whether a request is fresh. A take
//! selects the requests `FOR UPDATE SKIP LOCKED`, so two polls at once never get the same request and never wait
//! for each other.

use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use lookout_core::Timestamp;

use super::agents::now;
use super::{PgStore, bad, get, q};
use crate::sql::{
    ANSWER_DIAGNOSIS, DIAGNOSIS_ANSWER, DIAGNOSIS_KEEP_MS, DIAGNOSIS_TAKE_WITHIN_MS, PRUNE_DIAGNOSES,
    REQUEST_DIAGNOSIS, take_diagnoses,
};
use crate::{DiagnosisRequest, Result};

static TAKE: LazyLock<String> = LazyLock::new(|| take_diagnoses("FOR UPDATE SKIP LOCKED"));

/// See [`crate::Store::request_diagnosis`]: the housekeeping and the request in one transaction.
pub(super) async fn request(store: &PgStore, agent: &str, target: &str, since: Option<Timestamp>) -> Result<i64> {
    const OP: &str = "request diagnosis";
    let mut client = store.client(OP).await?;
    let tx = client.transaction().await.map_err(q(OP))?;
    let now = now(&tx, OP).await?;
    let prune = tx.prepare_cached(PRUNE_DIAGNOSES).await.map_err(q(OP))?;
    tx.execute(&prune, &[&now.saturating_sub(DIAGNOSIS_KEEP_MS)]).await.map_err(q(OP))?;
    let insert = tx.prepare_cached(REQUEST_DIAGNOSIS).await.map_err(q(OP))?;
    let since = since.map(|s| s.0);
    let row = tx.query_opt(&insert, &[&agent, &target, &since, &now]).await.map_err(q(OP))?;
    let id = get(OP, &row.ok_or_else(|| bad(OP, "no id returned"))?, 0)?;
    tx.commit().await.map_err(q(OP))?;
    Ok(id)
}

/// See [`crate::Store::take_diagnosis_requests`]: one statement, so a take is whole or nothing.
pub(super) async fn take(store: &PgStore, agent: &str) -> Result<Vec<DiagnosisRequest>> {
    const OP: &str = "take diagnosis requests";
    let client = store.client(OP).await?;
    let now = now(&client, OP).await?;
    let stmt = client.prepare_cached(&TAKE).await.map_err(q(OP))?;
    let rows =
        client.query(&stmt, &[&now, &agent, &now.saturating_sub(DIAGNOSIS_TAKE_WITHIN_MS)]).await.map_err(q(OP))?;
    let mut taken = rows
        .iter()
        .map(|r| {
            Ok(DiagnosisRequest {
                id: get(OP, r, 0)?,
                target: get(OP, r, 1)?,
                since: get::<Option<i64>>(OP, r, 2)?.map(Timestamp),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    taken.sort_unstable_by_key(|r| r.id);
    Ok(taken)
}

pub(super) async fn answer(store: &PgStore, id: i64, answer: &str) -> Result<()> {
    const OP: &str = "answer diagnosis";
    let client = store.client(OP).await?;
    let now = now(&client, OP).await?;
    let stmt = client.prepare_cached(ANSWER_DIAGNOSIS).await.map_err(q(OP))?;
    client.execute(&stmt, &[&answer, &now, &id]).await.map_err(q(OP))?;
    Ok(())
}

pub(super) async fn answer_of(store: &PgStore, id: i64) -> Result<Option<String>> {
    const OP: &str = "read diagnosis answer";
    let answers = store.rows(OP, DIAGNOSIS_ANSWER, &[&id], |r| get::<Option<String>>(OP, r, 0)).await?;
    Ok(answers.into_iter().next().flatten())
}
