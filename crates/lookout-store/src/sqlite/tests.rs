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
        crate::open(&self.config()).unwrap()
    }

    async fn reopen(&self) -> AnyStore {
        crate::open(&self.config()).unwrap()
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
