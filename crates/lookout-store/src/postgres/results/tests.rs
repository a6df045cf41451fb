//! What only PostgreSQL's results do, against a real server (`crate::testing`): writers racing for a key, two
//! agents rolling up at once, damaged bytes, and the bytes themselves being SQLite's. The behaviour both backends
//! share is the conformance suite's.

use std::path::PathBuf;
use std::time::Duration;

use lookout_core::{Timestamp, Timings};

use crate::testing::{TestPostgres, postgres_or_skip};
use crate::{AnyStore, Horizons, Record, ResultRow, Store, StoreError};

fn result(at: i64, ok: bool, latency_ms: f64) -> ResultRow {
    ResultRow {
        target: "site".into(),
        at: Timestamp(at),
        ok,
        status: Some(if ok { 200 } else { 500 }),
        latency_ms,
        error: (!ok).then(|| "boom".into()),
        failed_conditions: if ok { vec![] } else { vec!["[STATUS] (500) == 200".into()] },
        timings: Timings { connect_ms: Some(0.5), total_ms: latency_ms, ..Timings::default() },
        body_excerpt: None,
    }
}

fn records(rows: Vec<ResultRow>) -> Vec<Record> {
    rows.into_iter().map(|r| Record { result: Some(r), ..Record::default() }).collect()
}

/// Two days of a result a minute from a UTC midnight, every 7th failing, latencies spread from 5 to 200 ms.
fn history() -> Vec<ResultRow> {
    let t0 = 20_000 * 86_400_000;
    (0..2 * 1440).map(|i| result(t0 + i * 60_000 + 1_500, i % 7 != 3, 5.0 + ((i * 37) % 196) as f64 + 0.25)).collect()
}

/// Everything is rolled up, the second day's successes packed.
fn horizons() -> Horizons {
    let now = 20_002 * 86_400_000;
    Horizons { pack: Timestamp(now), raw: Timestamp(now - 86_400_000), detail: Timestamp(0), hourly: Timestamp(0) }
}

/// A fresh database: its store, its name and the server.
async fn fresh() -> Option<(AnyStore, String, &'static TestPostgres)> {
    let pg = postgres_or_skip()?;
    let url = pg.fresh_database().await;
    let store = crate::open(&config(&url)).await.unwrap();
    Some((store, url.rsplit('/').next().unwrap_or_default().to_string(), pg))
}

fn config(url: &str) -> lookout_config::StoreConfig {
    lookout_config::StoreConfig {
        backend: lookout_config::StoreBackend::Postgres { url: url.to_string() },
        ..lookout_config::StoreConfig::sqlite(PathBuf::new())
    }
}

/// (at, seq, ok) of the raw rows of "site", in key order.
async fn keys(pg: &TestPostgres, db: &str) -> Vec<(i64, i32, bool)> {
    let c = pg.connect(db).await.unwrap();
    let rows = c.query("SELECT at, seq, ok FROM results ORDER BY target, at, seq", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

#[tokio::test]
async fn results_of_one_millisecond_are_numbered_in_order_within_a_batch_and_across_batches() {
    let Some((s, db, pg)) = fresh().await else { return };
    s.record_all(records(vec![result(5_000, true, 1.0), result(5_000, false, 2.0), result(6_000, true, 3.0)]))
        .await
        .unwrap();
    s.record_all(records(vec![result(5_000, true, 4.0)])).await.unwrap();
    assert_eq!(keys(pg, &db).await, [(5_000, 0, true), (5_000, 1, false), (5_000, 2, true), (6_000, 0, true)]);
    let read = s.results_between("site".into(), Timestamp(0), Timestamp(9_000)).await.unwrap();
    assert_eq!(read.iter().map(|r| r.latency_ms).collect::<Vec<_>>(), [1.0, 2.0, 4.0, 3.0]);
    assert_eq!(read[1], result(5_000, false, 2.0), "a row reads back whole");
}

/// Another writer holds (uncommitted) the key a result would take: the write waits for it, then goes after it —
/// the whole group of that millisecond, in its order — instead of failing or losing a result.
#[tokio::test]
async fn a_key_another_writer_takes_meanwhile_is_written_after_its_row() {
    let Some((s, db, pg)) = fresh().await else { return };
    s.record(Record { result: Some(result(1_000, true, 1.0)), ..Record::default() }).await.unwrap();
    let mut other = pg.connect(&db).await.unwrap();
    let tx = other.transaction().await.unwrap();
    tx.execute("INSERT INTO results (target, at, seq, ok, latency_us) SELECT id, 5000, 0, FALSE, 9 FROM targets", &[])
        .await
        .unwrap();
    let writer = tokio::spawn({
        let s = s.clone();
        async move { s.record_all(records(vec![result(5_000, true, 1.0), result(5_000, true, 2.0)])).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "the write waits for the other writer's transaction");
    tx.commit().await.unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(keys(pg, &db).await, [(1_000, 0, true), (5_000, 0, false), (5_000, 1, true), (5_000, 2, true)]);
    let read = s.results_between("site".into(), Timestamp(5_000), Timestamp(5_000)).await.unwrap();
    assert_eq!(read.iter().map(|r| r.latency_ms).collect::<Vec<_>>(), [0.009, 1.0, 2.0]);
}

/// Two agents rolling up at once take turns per target: every result is counted once.
#[tokio::test]
async fn two_roll_ups_at_once_count_every_result_once() {
    let Some((s, db, pg)) = fresh().await else { return };
    s.record_all(records(history())).await.unwrap();
    let (from, to) = (Timestamp(0), Timestamp(i64::MAX / 2));
    let before = (
        s.daily_uptime("site".into(), from).await.unwrap(),
        s.result_buckets("site".into(), from, to, 3_600_000).await.unwrap(),
    );
    let t = crate::open(&config(&pg.url(&db))).await.unwrap();
    let (a, b) = tokio::join!(s.roll_up(horizons()), t.roll_up(horizons()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.rolled + b.rolled, 1440, "the first day, once");
    assert!(a.packed + b.packed > 1000, "{a:?} {b:?}");
    let after = (
        s.daily_uptime("site".into(), from).await.unwrap(),
        s.result_buckets("site".into(), from, to, 3_600_000).await.unwrap(),
    );
    assert_eq!(after, before);
}

/// Bytes the store cannot decode (a damaged block, timings or histogram) are a query error, never a panic.
#[tokio::test]
async fn damaged_bytes_are_an_error_not_a_panic() {
    let Some((s, db, pg)) = fresh().await else { return };
    s.record_all(records(history())).await.unwrap();
    s.roll_up(horizons()).await.unwrap();
    let c = pg.connect(&db).await.unwrap();
    let (from, to) = (Timestamp(0), Timestamp(i64::MAX / 2));
    let is_query_error = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Query { .. }));

    c.execute("UPDATE result_rollups SET histogram = '\\x03ff'::BYTEA", &[]).await.unwrap();
    assert!(is_query_error(s.result_buckets("site".into(), from, to, 60_000).await.map(drop)));
    // A late result makes the roll-up add to the damaged aggregates.
    s.record(Record { result: Some(result(20_000 * 86_400_000 + 1_000, true, 1.0)), ..Record::default() })
        .await
        .unwrap();
    assert!(is_query_error(s.roll_up(horizons()).await.map(drop)));

    c.execute("UPDATE result_blocks SET data = '\\x0001ffffffffffffffffffff01'::BYTEA", &[]).await.unwrap();
    assert!(is_query_error(s.results_between("site".into(), from, to).await.map(drop)));
    assert!(is_query_error(s.latency_percentiles("site".into(), from, to, vec![0.5]).await.map(drop)));

    c.execute("UPDATE results SET timings = '\\x80'::BYTEA", &[]).await.unwrap();
    assert!(is_query_error(s.recent_results("site".into(), 5).await.map(drop)));
}

/// PostgreSQL keeps the very bytes SQLite keeps (blocks, histograms, timings), so a copy between the two moves
/// them as they are.
#[tokio::test]
async fn the_bytes_are_sqlite_s() {
    let Some((s, db, pg)) = fresh().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let lite = crate::open(&lookout_config::StoreConfig::sqlite(path.clone())).await.unwrap();
    for store in [&s, &lite] {
        store.record_all(records(history())).await.unwrap();
        store.roll_up(horizons()).await.unwrap();
    }
    type Rows = Vec<Vec<Option<Vec<u8>>>>;
    let c = pg.connect(&db).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables = [
        "SELECT start, n, data FROM result_blocks ORDER BY start",
        "SELECT level, start, total, failures, latency_sum_us, latency_min_us, latency_max_us, histogram
         FROM result_rollups ORDER BY level, start",
        "SELECT at, seq, ok, status, latency_us, rolled, timings, error, failed_conditions FROM results
         ORDER BY at, seq",
    ];
    for sql in tables {
        // Every column as text (numbers, booleans as 0/1) or bytes, so the two backends' rows compare.
        let pg_rows: Rows = c
            .query(&format!("SELECT * FROM ({sql}) t"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| match r.columns()[i].type_().name() {
                        "bytea" => r.get::<_, Option<Vec<u8>>>(i),
                        "bool" => r.get::<_, Option<bool>>(i).map(|b| u8::from(b).to_string().into_bytes()),
                        "int2" => r.get::<_, Option<i16>>(i).map(|v| v.to_string().into_bytes()),
                        "int4" => r.get::<_, Option<i32>>(i).map(|v| v.to_string().into_bytes()),
                        "int8" => r.get::<_, Option<i64>>(i).map(|v| v.to_string().into_bytes()),
                        _ => r.get::<_, Option<String>>(i).map(String::into_bytes),
                    })
                    .collect()
            })
            .collect();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let lite_rows: Rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => None,
                            rusqlite::types::ValueRef::Integer(v) => Some(v.to_string().into_bytes()),
                            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => Some(t.to_vec()),
                            rusqlite::types::ValueRef::Real(v) => Some(v.to_string().into_bytes()),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!pg_rows.is_empty(), "{sql}");
        assert_eq!(pg_rows, lite_rows, "{sql}");
    }
}
