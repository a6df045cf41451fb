//! `lookout store copy`: everything one store holds, moved into another — SQLite to PostgreSQL (the way to grow
//! from one machine to several), PostgreSQL back to SQLite, SQLite to SQLite — and verified by counting.
//!
//! Why rows and not the [`Store`](crate::Store) API: the API writes what the pipeline produces (a record, a
//! delivery mark) and reads what pages need; it cannot write a message that is already delivered with its id and
//! attempts, a packed block, a roll-up or a timeline entry as it stands. Both schemas use the same tables, column
//! names and encodings (times in ms, JSON documents as text, the blobs of `codec.rs`), so a row read from one
//! store is a row of the other; only the value types differ (booleans are INTEGER 0/1 in SQLite and BOOLEAN in
//! PostgreSQL, blobs BLOB and BYTEA), and each backend converts at its edge ([`Value`]).
//!
//! How:
//! - [`TABLES`] lists every table in an order that satisfies the foreign keys (incidents before their alerts and
//!   timeline), each with its columns and its primary key. Each table is read in pages of
//!   [`CopyOptions::page_rows`] ordered by the key (keyset paging: each page starts after the last key, so the
//!   cost per page does not grow with the table and ten million results never sit in memory at once), and each
//!   page is written to the target in one transaction while the next one is read.
//! - Ids are kept: incidents' timelines, messages' ids in logs and silences' numbers (`lookout silence expire 3`)
//!   mean the same after the move. PostgreSQL's id sequences are then set past the largest id, so a new row
//!   never collides with a copied one; SQLite needs nothing (a new rowid is the largest plus one).
//! - The target must be empty: merging two histories would collide on ids, (channel, key) and incidents' numbers,
//!   and would half-merge a timeline. A copy that stopped midway is started over into a new database or file.
//! - Both stores must have exactly the tables and columns listed here (save [`SKIPPED`]): a column a later
//!   migration adds and this list forgets is refused, not silently dropped. The test
//!   `every_table_of_both_schemas_is_copied_or_skipped_for_a_reason` checks the list against both schemas.
//! - After the copy each table is counted on both sides ([`CopyReport`]); the command fails on any difference
//!   (e.g. `lookout run` still writing to the source: stop it first, the copy reads no snapshot).

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::{AnyStore, Result, StoreError};

/// A value of one column, as both backends understand it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    /// Integers and booleans (0 or 1; PostgreSQL's BOOLEAN is read and written as such).
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A table the copy moves: its columns (the order in which pages carry them) and its primary key, by which it is
/// paged.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: &'static [&'static str],
}

impl Table {
    /// Where each key column is in a row.
    fn key_positions(&self) -> Vec<usize> {
        self.key.iter().filter_map(|k| self.columns.iter().position(|c| c == k)).collect()
    }
}

/// Every table, parents before children (foreign keys: `incident_alerts` and `incident_timeline` name
/// `incidents`; `results`, `result_blocks` and `result_rollups` carry `targets` ids, unchecked, but copied after
/// them all the same).
pub(crate) const TABLES: &[Table] = &[
    Table { name: "targets", columns: &["id", "name"], key: &["id"] },
    Table {
        name: "results",
        columns: &[
            "target",
            "at",
            "seq",
            "ok",
            "status",
            "latency_us",
            "rolled",
            "timings",
            "error",
            "failed_conditions",
            "body_excerpt",
        ],
        key: &["target", "at", "seq"],
    },
    Table { name: "result_blocks", columns: &["target", "start", "n", "data"], key: &["target", "start"] },
    Table {
        name: "result_rollups",
        columns: &[
            "target",
            "level",
            "start",
            "total",
            "failures",
            "latency_sum_us",
            "latency_min_us",
            "latency_max_us",
            "histogram",
        ],
        key: &["target", "level", "start"],
    },
    Table {
        name: "readings",
        columns: &["target", "name", "level", "start", "n", "sum", "min", "max"],
        key: &["target", "name", "level", "start"],
    },
    Table { name: "alert_state", columns: &["target", "state", "updated_at"], key: &["target"] },
    Table {
        name: "location_states",
        columns: &["target", "location", "state", "at", "ok", "latency_ms", "status", "reason"],
        key: &["target", "location"],
    },
    Table { name: "transitions", columns: &["id", "target", "kind", "at", "alert_id", "detail"], key: &["id"] },
    Table {
        name: "outbox",
        columns: &[
            "id",
            "channel",
            "key",
            "payload",
            "created_at",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "last_error",
            "abandoned_at",
            "group_key",
            "suppressed_at",
            "alert_id",
        ],
        key: &["id"],
    },
    Table {
        name: "silences",
        columns: &[
            "id",
            "matchers",
            "starts_at",
            "ends_at",
            "created_by",
            "comment",
            "created_at",
            "expired_at",
            "pause",
        ],
        key: &["id"],
    },
    Table { name: "log_cursors", columns: &["source", "file", "cursor", "updated_at"], key: &["source", "file"] },
    Table {
        name: "log_counts",
        columns: &["source", "minute", "requests", "s1xx", "s2xx", "s3xx", "s4xx", "s5xx", "malformed"],
        key: &["source", "minute"],
    },
    Table { name: "log_window", columns: &["id", "source", "sec", "entry"], key: &["id"] },
    Table {
        name: "incidents",
        columns: &["id", "grp", "day", "seq", "status", "live", "opened_at", "resolved_at", "revision", "detail"],
        key: &["id"],
    },
    Table {
        name: "incident_alerts",
        columns: &["incident", "alert_id", "seq", "target", "fired_at", "resolved_at", "detail"],
        key: &["incident", "alert_id"],
    },
    Table { name: "incident_timeline", columns: &["id", "incident", "at", "kind", "detail"], key: &["id"] },
];

/// Tables a store has that are not copied, each with why: state about the store itself or the processes using it
/// now, not history. A new table goes into [`TABLES`] or here; the tests fail until it does.
pub(crate) const SKIPPED: &[(&str, &str)] = &[
    ("lookout_schema", "each store records which of its own migrations ran (SQLite: user_version)"),
    ("agents", "the agents heartbeating into the source; they register again with the target when pointed at it"),
    ("leases", "who leads now; leadership is taken afresh on the target"),
    (
        "forwarded",
        "events in flight from agents to the leader, handled within seconds; a copy is made with lookout stopped",
    ),
    ("check_leases", "which agent probes what now; the agents claim their checks afresh on the target"),
    (
        "diagnosis_requests",
        "the leader's questions to agents, answered within seconds and deleted after an hour; a copy is made with \
         lookout stopped",
    ),
];

/// How to copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Rows per page: per read, per target transaction, and the most rows held in memory (two pages: the one
    /// being written and the next one being read).
    pub page_rows: usize,
}

impl Default for CopyOptions {
    /// 5,000 rows: a page of results is about a megabyte, and a transaction per page costs little next to it.
    fn default() -> Self {
        CopyOptions { page_rows: 5_000 }
    }
}

/// Where a copy stands, after each page.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub table: &'a str,
    /// Rows of this table copied so far.
    pub copied: u64,
    /// Rows of this table in the source when the copy began.
    pub total: u64,
}

/// One table's rows in the source and in the target after the copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableCount {
    pub table: String,
    pub source: u64,
    pub target: u64,
}

/// What a copy did: every table's counts on both sides, counted after the copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
    /// Rows written.
    pub copied: u64,
    pub seconds: f64,
}

impl CopyReport {
    /// Whether every table has as many rows in the target as in the source.
    pub fn matches(&self) -> bool {
        self.tables.iter().all(|t| t.source == t.target)
    }
}

/// What a backend does for the copy: list its schema, count, read a page by key, write a page in one
/// transaction, and finish (set id sequences). `sqlite/rows.rs` and `postgres/rows.rs` implement it.
pub(crate) trait Rows: Sync {
    /// The tables of the store's schema (not the database's own catalogue).
    fn tables(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// A table's columns.
    fn columns(&self, table: &'static str) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn count(&self, table: &'static str) -> impl Future<Output = Result<u64>> + Send;
    /// Up to `limit` rows ordered by the key, after the key `after` (from the start when `None`); each row's
    /// values in the order of [`Table::columns`].
    fn read_page(
        &self,
        table: &'static Table,
        after: Option<Vec<Value>>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>>> + Send;
    /// Inserts the rows, in one transaction.
    fn write_page(&self, table: &'static Table, rows: Vec<Vec<Value>>) -> impl Future<Output = Result<()>> + Send;
    /// After every table: whatever makes new rows follow the copied ones (PostgreSQL's sequences).
    fn finish(&self) -> impl Future<Output = Result<()>> + Send;
}

fn fail(message: String) -> StoreError {
    StoreError::Query { op: "copy", message }
}

/// Copies everything `from` holds into `to`, which must be empty, then counts both table by table. The result is
/// a report even when counts differ (see [`CopyReport::matches`]); an error means the copy did not finish — what
/// it wrote stays, and the next attempt needs an empty target again.
pub async fn copy(
    from: &AnyStore,
    to: &AnyStore,
    options: &CopyOptions,
    progress: impl FnMut(Progress<'_>),
) -> Result<CopyReport> {
    match (from, to) {
        (AnyStore::Sqlite(a), AnyStore::Sqlite(b)) => copy_rows(a, b, options, progress).await,
        (AnyStore::Sqlite(a), AnyStore::Postgres(b)) => copy_rows(a, b, options, progress).await,
        (AnyStore::Postgres(a), AnyStore::Sqlite(b)) => copy_rows(a, b, options, progress).await,
        (AnyStore::Postgres(a), AnyStore::Postgres(b)) => copy_rows(a, b, options, progress).await,
    }
}

async fn copy_rows<A: Rows, B: Rows>(
    from: &A,
    to: &B,
    options: &CopyOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<CopyReport> {
    let started = Instant::now();
    check_schema(from, "source").await?;
    check_schema(to, "target").await?;
    let mut held = Vec::new();
    for table in TABLES {
        let n = to.count(table.name).await?;
        if n > 0 {
            held.push(format!("{}: {n} {}", table.name, rows(n)));
        }
    }
    if !held.is_empty() {
        return Err(fail(format!(
            "the target store already holds data ({}); copy into an empty store — a new SQLite file or a new \
             PostgreSQL database (CREATE DATABASE …) — so that nothing is merged",
            held.join(", ")
        )));
    }
    let limit = options.page_rows.max(1);
    let mut copied = 0;
    for table in TABLES {
        let total = from.count(table.name).await?;
        let keys = table.key_positions();
        let mut done = 0;
        progress(Progress { table: table.name, copied: 0, total });
        let mut page = from.read_page(table, None, limit).await?;
        while !page.is_empty() {
            let last = page.len() < limit;
            let after = page.last().map(|row| keys.iter().filter_map(|&i| row.get(i).cloned()).collect());
            let n = page.len() as u64;
            // Write this page while the next one is read: the two stores work at the same time.
            let (written, next) = if last {
                (to.write_page(table, page).await, Ok(Vec::new()))
            } else {
                tokio::join!(to.write_page(table, page), from.read_page(table, after, limit))
            };
            written?;
            done += n;
            progress(Progress { table: table.name, copied: done, total: total.max(done) });
            page = next?;
        }
        copied += done;
    }
    to.finish().await?;
    let mut tables = Vec::new();
    for table in TABLES {
        tables.push(TableCount {
            table: table.name.to_string(),
            source: from.count(table.name).await?,
            target: to.count(table.name).await?,
        });
    }
    Ok(CopyReport { tables, copied, seconds: started.elapsed().as_secs_f64() })
}

fn rows(n: u64) -> &'static str {
    if n == 1 { "row" } else { "rows" }
}

/// Refuses a store whose schema differs from [`TABLES`]: a column or table this build does not know would not
/// be copied, and a move must not lose anything silently.
async fn check_schema<R: Rows>(store: &R, which: &str) -> Result<()> {
    let mut problems = Vec::new();
    let tables = store.tables().await?;
    for name in &tables {
        if !TABLES.iter().any(|t| t.name == name) && !SKIPPED.iter().any(|(skipped, _)| skipped == name) {
            problems.push(format!("table {name} is unknown"));
        }
    }
    for table in TABLES {
        if !tables.iter().any(|t| t == table.name) {
            problems.push(format!("table {} is missing", table.name));
            continue;
        }
        let columns = store.columns(table.name).await?;
        for c in &columns {
            if !table.columns.contains(&c.as_str()) {
                problems.push(format!("{}.{c} is unknown", table.name));
            }
        }
        for c in table.columns {
            if !columns.iter().any(|have| have == c) {
                problems.push(format!("{}.{c} is missing", table.name));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(fail(format!(
            "the {which} store's schema is not the one this lookout copies ({}); copy with the lookout version that \
             wrote it",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests;
