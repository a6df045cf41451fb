//! SQLite's tests: the conformance suite every backend runs (on database files, opened through [`crate::open`] as
//! `lookout` opens them), and what only SQLite does: concurrent opens of a new file, schema versions, bad paths,
//! in-memory stores.

use std::path::Path;

use lookout_config::StoreConfig;
use rusqlite::Connection;

use super::SqliteStore;
use crate::AnyStore;
use crate::conformance::Harness;

/// SQLite stores for the conformance suite: one database file in a temporary directory of its own, whose parent
/// directory (`sub/`) does not exist yet, opened through [`crate::open`] and [`AnyStore`].
struct SqliteFiles {
    dir: tempfile::TempDir,
}

impl SqliteFiles {
    fn new() -> SqliteFiles {
        SqliteFiles { dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> StoreConfig {
        StoreConfig::sqlite(self.dir.path().join("sub/lookout.sqlite"))
    }
}

impl Harness for SqliteFiles {
    type S = AnyStore;

    async fn fresh(&self) -> AnyStore {
        crate::open(&self.config()).await.unwrap()
    }

    async fn reopen(&self) -> AnyStore {
        crate::open(&self.config()).await.unwrap()
    }
}

mod conformance {
    crate::conformance::suite!(super::SqliteFiles::new());
}

/// The in-memory store (tests and one-shot commands) is migrated and works like a file.
#[tokio::test]
async fn an_in_memory_store_is_migrated_and_works() {
    crate::conformance::record_is_atomic_and_readable(&SqliteStore::in_memory().unwrap()).await;
    crate::conformance::outbox_is_keyed_and_fifo_per_channel(&SqliteStore::in_memory().unwrap()).await;
}

#[test]
fn concurrent_opens_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.sqlite");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || SqliteStore::open(&p).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
}

#[tokio::test]
async fn refuses_a_newer_schema_and_reports_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(e.contains("schema 99") && e.contains("upgrade lookout"), "{e}");
    let e = SqliteStore::open(Path::new("/proc/nope/x.sqlite")).unwrap_err().to_string();
    assert!(e.starts_with("cannot open the store at /proc/nope/x.sqlite"), "{e}");
}

#[tokio::test]
async fn incidents_stored_as_one_document_move_their_alerts_to_their_table() {
    use crate::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        // A store as the build before migration 8 left it: alerts inside the incident's JSON.
        let c = Connection::open(&path).unwrap();
        for sql in &super::MIGRATIONS[..super::incidents::ALERTS_MIGRATION as usize - 1] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", super::incidents::ALERTS_MIGRATION - 1).unwrap();
        let alert = |id: &str, target: &str| {
            serde_json::json!({"alert_id": id, "target": target, "failing_since": 1, "fired_at": 2,
                               "resolved_at": null, "reasons": ["[STATUS] (500) == 200"]})
        };
        let detail = serde_json::json!({
            "id": "2026-11-25-shop-1", "group": "shop", "day": "2026-11-25", "seq": 1, "status": "open",
            "opened_at": 2, "first_failure_at": 1, "resolved_at": null, "resolved_by": null, "ack": null,
            "alerts": [alert("web@2", "web"), alert("api@3", "api")], "revision": 2
        });
        c.execute(
            "INSERT INTO incidents (id, grp, day, seq, status, live, opened_at, revision, detail)
             VALUES ('2026-11-25-shop-1', 'shop', '2026-11-25', 1, 'open', 1, 2, 2, ?1)",
            [detail.to_string()],
        )
        .unwrap();
        for key in ["lookout/web@2/firing", "lookout/api@3/firing/1", "lookout/group/shop/00000000000000ff"] {
            c.execute(
                "INSERT INTO outbox (channel, key, payload, created_at, next_attempt_at) VALUES ('ops', ?1, '{}', 1, 1)",
                [key],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let incident = store.incident("2026-11-25-shop-1".into()).await.unwrap().unwrap();
    let targets: Vec<&str> = incident.alerts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["web", "api"], "every alert, in its order");
    let keys: Vec<String> =
        store.incident_messages(incident.id.clone()).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["lookout/web@2/firing", "lookout/api@3/firing/1"]);
    let c = Connection::open(&path).unwrap();
    let detail: String = c.query_row("SELECT detail FROM incidents", [], |r| r.get(0)).unwrap();
    assert!(detail.contains("\"alerts\":[]"), "the document keeps no alerts: {detail}");
}

/// Diagnosis requests age by the store's clock: the conformance check, with requests aged in the file itself.
#[tokio::test]
async fn stale_diagnosis_requests_are_not_taken_and_old_ones_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diagnosis.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let raw = Connection::open(&path).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let age = async |id: i64, ms: i64| {
        let sql = "UPDATE diagnosis_requests SET requested_at = requested_at - ?2 WHERE id = ?1";
        assert_eq!(raw.execute(sql, [id, ms]).unwrap(), 1, "request {id}");
    };
    crate::conformance::stale_diagnosis_requests_are_not_taken_and_old_ones_deleted(&store, age).await;
}

/// Concurrent calls wait for the connection as tasks: they do not each take a thread of the blocking pool to
/// block on its lock (the soak had 27 such threads, and its memory grew with the most that ever waited at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_do_not_each_hold_a_blocking_thread() {
    let store = SqliteStore::in_memory().unwrap();
    let threads = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let (store, threads) = (store.clone(), threads.clone());
            tokio::spawn(async move {
                store
                    .with("test", move |_| {
                        threads.lock().unwrap().insert(std::thread::current().id());
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let used = threads.lock().unwrap().len();
    assert!(used <= 4, "64 concurrent calls ran on {used} blocking threads");
}
