//! PostgreSQL's tests, against a real server ([`crate::testing`]: `initdb` + `pg_ctl` in a temporary directory, one
//! per test process, a fresh database per test): the conformance suite every backend runs, opened through
//! [`crate::open`] as `lookout` opens it, and what only this backend does — agents opening a new database at the
//! same moment, a server that is not there, a schema from a newer lookout.
//!
//! Without PostgreSQL installed every test here prints `SKIPPED: …` and passes; under `LOOKOUT_REQUIRE_ALL=1`
//! (CI) it fails ([`crate::testing::postgres_or_skip`]).

use std::path::PathBuf;

use lookout_config::{StoreBackend, StoreConfig};

use crate::conformance::Harness;
use crate::testing::{TestPostgres, postgres_or_skip};
use crate::{AnyStore, StoreError};

/// `[store] url = "…"`: the configuration `lookout` would read (retentions are not used by opening).
fn config(url: &str) -> StoreConfig {
    StoreConfig { backend: StoreBackend::Postgres { url: url.to_string() }, ..StoreConfig::sqlite(PathBuf::new()) }
}

/// The database's name, the last part of a URL from [`TestPostgres::fresh_database`].
fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// PostgreSQL stores for the conformance suite: a new database of the shared test server for each test, opened
/// (and reopened) through [`crate::open`] and [`AnyStore`].
struct PgDatabase {
    url: String,
}

impl PgDatabase {
    /// `None` (after a visible SKIPPED line) when PostgreSQL is not installed and that is allowed.
    async fn new() -> Option<PgDatabase> {
        let pg = postgres_or_skip()?;
        Some(PgDatabase { url: pg.fresh_database().await })
    }
}

impl Harness for PgDatabase {
    type S = AnyStore;

    async fn fresh(&self) -> AnyStore {
        crate::open(&config(&self.url)).await.unwrap()
    }

    async fn reopen(&self) -> AnyStore {
        crate::open(&config(&self.url)).await.unwrap()
    }
}

mod conformance {
    crate::conformance::suite!(match super::PgDatabase::new().await {
        Some(harness) => harness,
        None => return,
    });
}

/// The schema version a database records, and how many rows say it (exactly one, or migrations raced).
async fn schema(pg: &TestPostgres, url: &str) -> (i32, i64) {
    let c = pg.connect(db_name(url)).await.unwrap();
    let row = c.query_one("SELECT max(version), count(*) FROM lookout_schema", &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// Agents started together against a new database: every one opens it, the migrations run once (a second run of
/// `CREATE TABLE` would fail the open that ran it), and one version row says how far.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_new_database_migrate_it_once() {
    let Some(pg) = postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let cfg = config(&url);
            tokio::spawn(async move { crate::open(&cfg).await.map(drop) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let (version, rows) = schema(pg, &url).await;
    assert_eq!(rows, 1, "one version row");
    assert!(version >= 1, "migrated: version {version}");
    // Opening a migrated database again changes nothing.
    drop(crate::open(&config(&url)).await.unwrap());
    assert_eq!(schema(pg, &url).await, (version, 1));
}

/// Nothing listens at the URL's port: a connection error that names the server (without the password, in either
/// place a URL can carry one) and says what to check, quickly rather than after a long wait.
#[tokio::test]
async fn a_server_that_is_not_there_is_a_clear_error_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for url in [
        format!("postgresql://lookout:s3cret-pw@127.0.0.1:{port}/lookout"),
        format!("postgresql://lookout@127.0.0.1:{port}/lookout?password=s3cret-pw"),
    ] {
        let started = std::time::Instant::now();
        let e = crate::open(&config(&url)).await.unwrap_err();
        assert!(matches!(e, StoreError::Connect { .. }), "{e:?}");
        let text = e.to_string();
        assert!(!text.contains("s3cret") && !format!("{e:?}").contains("s3cret"), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(text.contains("check [store] url"), "{text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}

/// A database the server does not have: the server's own words, in a connection error.
#[tokio::test]
async fn a_database_that_does_not_exist_is_named_in_the_error() {
    let Some(pg) = postgres_or_skip() else { return };
    let e = crate::open(&config(&pg.url("no_such_db"))).await.unwrap_err();
    assert!(matches!(e, StoreError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("\"no_such_db\" does not exist"), "{e}");
}

/// A database a newer lookout migrated (its version row bumped by hand) is refused, and left as it was.
#[tokio::test]
async fn a_schema_from_a_newer_lookout_is_refused() {
    let Some(pg) = postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    drop(crate::open(&config(&url)).await.unwrap());
    let (known, _) = schema(pg, &url).await;
    let c = pg.connect(db_name(&url)).await.unwrap();
    c.execute("UPDATE lookout_schema SET version = version + 1", &[]).await.unwrap();
    let e = crate::open(&config(&url)).await.unwrap_err();
    let newer = i64::from(known) + 1;
    assert!(matches!(e, StoreError::TooNew { found, known: k } if found == newer && k == i64::from(known)), "{e:?}");
    assert!(e.to_string().contains("upgrade lookout"), "{e}");
    assert_eq!(schema(pg, &url).await, (known + 1, 1), "the refused open changed nothing");
}
