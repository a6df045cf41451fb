//! Diagnosis requests in SQLite, with the statements of `crate::sql` (PostgreSQL's are the same but for the row
//! locks of a take). SQLite is a cluster of one, whose agent diagnoses on its own machine; the requests work here
//! all the same, so both backends answer alike.

use std::sync::LazyLock;

use lookout_core::Timestamp;
use rusqlite::{Connection, params};

use crate::DiagnosisRequest;
use crate::sql::{
    ANSWER_DIAGNOSIS, DIAGNOSIS_ANSWER, DIAGNOSIS_KEEP_MS, DIAGNOSIS_TAKE_WITHIN_MS, PRUNE_DIAGNOSES,
    REQUEST_DIAGNOSIS, take_diagnoses,
};

static TAKE: LazyLock<String> = LazyLock::new(|| take_diagnoses(""));

/// See [`crate::Store::request_diagnosis`]: the housekeeping and the request in one transaction.
pub(super) fn request(
    conn: &mut Connection,
    agent: &str,
    target: &str,
    since: Option<Timestamp>,
) -> rusqlite::Result<i64> {
    let now = Timestamp::now().0;
    let tx = conn.transaction()?;
    tx.prepare_cached(PRUNE_DIAGNOSES)?.execute([now.saturating_sub(DIAGNOSIS_KEEP_MS)])?;
    let id = tx
        .prepare_cached(REQUEST_DIAGNOSIS)?
        .query_row(params![agent, target, since.map(|s| s.0), now], |r| r.get(0))?;
    tx.commit()?;
    Ok(id)
}

/// See [`crate::Store::take_diagnosis_requests`]: one statement, so a take is whole or nothing.
pub(super) fn take(conn: &Connection, agent: &str) -> rusqlite::Result<Vec<DiagnosisRequest>> {
    let now = Timestamp::now().0;
    let mut stmt = conn.prepare_cached(&TAKE)?;
    let rows = stmt.query_map(params![now, agent, now.saturating_sub(DIAGNOSIS_TAKE_WITHIN_MS)], |r| {
        Ok(DiagnosisRequest { id: r.get(0)?, target: r.get(1)?, since: r.get::<_, Option<i64>>(2)?.map(Timestamp) })
    })?;
    let mut taken = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    taken.sort_unstable_by_key(|r| r.id);
    Ok(taken)
}

pub(super) fn answer(conn: &Connection, id: i64, answer: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(ANSWER_DIAGNOSIS)?.execute(params![answer, Timestamp::now().0, id])?;
    Ok(())
}

pub(super) fn answer_of(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare_cached(DIAGNOSIS_ANSWER)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => row.get(0),
        None => Ok(None),
    }
}
