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
use crate::{AnyStore, CheckClaim, Store, StoreError};

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

fn claim(agent: &str, targets: &[String], want: usize) -> CheckClaim {
    CheckClaim {
        agent: agent.into(),
        location: "eu".into(),
        targets: targets.to_vec(),
        want,
        ttl: std::time::Duration::from_secs(60),
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i:05}")).collect()
}

/// Two agents claiming at the same moment on two connections, round after round (the leases released between
/// rounds): never the same target to both, never more than each one's share; a heartbeat later each has its share
/// exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_claiming_at_once_never_get_the_same_check() {
    let Some(pg) = postgres_or_skip() else { return };
    let store = crate::open(&config(&pg.fresh_database().await)).await.unwrap();
    let targets = names(1000);
    for round in 0..10 {
        let (a, b) =
            tokio::join!(store.claim_checks(claim("a", &targets, 500)), store.claim_checks(claim("b", &targets, 500)));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.len() <= 500 && b.len() <= 500, "round {round}: {} and {}", a.len(), b.len());
        let a_set: std::collections::HashSet<&String> = a.iter().collect();
        let both: Vec<&String> = b.iter().filter(|t| a_set.contains(t)).collect();
        assert!(both.is_empty(), "round {round}: given to both a and b: {both:?}");
        let holders = store.check_holders().await.unwrap();
        assert_eq!(holders.len(), a.len() + b.len(), "round {round}");
        let a = store.claim_checks(claim("a", &targets, 500)).await.unwrap();
        let b = store.claim_checks(claim("b", &targets, 500)).await.unwrap();
        assert_eq!((a.len(), b.len()), (500, 500), "round {round}: each its share after one more heartbeat");
        assert!(a.iter().all(|t| !b.contains(t)));
        let (x, y) =
            tokio::join!(store.release_checks("a".into(), "eu".into()), store.release_checks("b".into(), "eu".into()));
        x.unwrap();
        y.unwrap();
    }
}

/// A lease another agent is taking right now (its row locked by an open transaction) is skipped, not waited for:
/// the claim returns at once with the next free targets.
#[tokio::test]
async fn a_claim_skips_leases_being_taken_instead_of_waiting() {
    let Some(pg) = postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let store = crate::open(&config(&url)).await.unwrap();
    let targets = names(20);
    assert!(store.claim_checks(claim("seed", &targets, 0)).await.unwrap().is_empty());
    let mut other = pg.connect(db_name(&url)).await.unwrap();
    let tx = other.transaction().await.unwrap();
    let locked = tx
        .query("SELECT target FROM check_leases WHERE target < 't00005' ORDER BY target FOR UPDATE", &[])
        .await
        .unwrap();
    assert_eq!(locked.len(), 5);
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), store.claim_checks(claim("a", &targets, 5)))
        .await
        .expect("the claim waited for the locked rows")
        .unwrap();
    assert_eq!(got, targets[5..10], "the locked ones skipped");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    tx.rollback().await.unwrap();
    assert_eq!(store.claim_checks(claim("a", &targets, 10)).await.unwrap(), targets[..10], "free again");
}

/// Ten thousand targets at a location shared by two agents: a heartbeat's claim stays a handful of statements
/// whatever the count (a list compared row by row with `= ANY` would take seconds here).
#[tokio::test]
async fn a_claim_over_ten_thousand_targets_is_quick() {
    let Some(pg) = postgres_or_skip() else { return };
    let store = crate::open(&config(&pg.fresh_database().await)).await.unwrap();
    let targets = names(10_000);
    let timed = async |agent: &str| {
        let started = std::time::Instant::now();
        let held = store.claim_checks(claim(agent, &targets, 5_000)).await.unwrap();
        (held.len(), started.elapsed())
    };
    let (n, first) = timed("a").await;
    assert_eq!(n, 5_000);
    let (n, second) = timed("b").await;
    assert_eq!(n, 5_000);
    let mut steady = Vec::new();
    for agent in ["a", "b", "a", "b", "a", "b"] {
        let (n, took) = timed(agent).await;
        assert_eq!(n, 5_000);
        steady.push(took);
    }
    steady.sort();
    let median = steady[steady.len() / 2];
    eprintln!("claim of 10,000 targets: first {first:?} (seeding), second {second:?}, heartbeats {steady:?}");
    assert!(median < std::time::Duration::from_millis(500), "a heartbeat's claim took {median:?}: {steady:?}");
}

/// The first agent of a fresh database takes every check; when two more arrive it gives two thirds up in one
/// claim. On a table never analysed that release was planned as a nested loop and took 11 s (bench/agents.sh),
/// longer than a lease: leases renewed at its start had run out at its end, and two agents probed them.
#[tokio::test]
async fn giving_up_two_thirds_of_ten_thousand_fresh_checks_is_quick() {
    let Some(pg) = postgres_or_skip() else { return };
    let store = crate::open(&config(&pg.fresh_database().await)).await.unwrap();
    let targets = names(10_000);
    assert_eq!(store.claim_checks(claim("a", &targets, 10_000)).await.unwrap().len(), 10_000);
    let started = std::time::Instant::now();
    assert_eq!(store.claim_checks(claim("a", &targets, 3_334)).await.unwrap().len(), 3_334);
    let took = started.elapsed();
    eprintln!("releasing 6,666 of 10,000 fresh leases: {took:?}");
    assert!(took < std::time::Duration::from_secs(2), "the release took {took:?}");
    assert_eq!(store.claim_checks(claim("b", &targets, 3_333)).await.unwrap().len(), 3_333);
}

/// Diagnosis requests age by the store's clock: the conformance check, with requests aged by a second connection.
#[tokio::test]
async fn stale_diagnosis_requests_are_not_taken_and_old_ones_deleted() {
    let Some(pg) = postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let store = crate::open(&config(&url)).await.unwrap();
    let raw = pg.connect(db_name(&url)).await.unwrap();
    let age = async |id: i64, ms: i64| {
        let sql = "UPDATE diagnosis_requests SET requested_at = requested_at - $2 WHERE id = $1";
        assert_eq!(raw.execute(sql, &[&id, &ms]).await.unwrap(), 1, "request {id}");
    };
    crate::conformance::stale_diagnosis_requests_are_not_taken_and_old_ones_deleted(&store, age).await;
}

/// An agent polling for diagnosis requests twice at the same moment (two connections), round after round: no
/// request is given to both, and together they take every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takes_never_get_the_same_diagnosis_request() {
    let Some(pg) = postgres_or_skip() else { return };
    let store = crate::open(&config(&pg.fresh_database().await)).await.unwrap();
    for round in 0..5 {
        let mut asked = Vec::new();
        for i in 0..50 {
            asked.push(store.request_diagnosis("a".into(), format!("t{i}"), None).await.unwrap());
        }
        let (x, y) = tokio::join!(store.take_diagnosis_requests("a".into()), store.take_diagnosis_requests("a".into()));
        let (x, y) = (x.unwrap(), y.unwrap());
        let mut ids: Vec<i64> = x.iter().chain(&y).map(|r| r.id).collect();
        ids.sort_unstable();
        let unique: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "round {round}: taken twice ({} and {})", x.len(), y.len());
        assert_eq!(ids, asked, "round {round}: every request taken ({} and {})", x.len(), y.len());
        assert!(store.take_diagnosis_requests("a".into()).await.unwrap().is_empty(), "round {round}");
    }
}

/// Requests another poll is taking right now (their rows locked by an open transaction) are skipped, not waited
/// for: the take returns at once with the others, and the locked ones are still there afterwards.
#[tokio::test]
async fn a_take_skips_diagnosis_requests_being_taken_instead_of_waiting() {
    let Some(pg) = postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let store = crate::open(&config(&url)).await.unwrap();
    let mut asked = Vec::new();
    for i in 0..6 {
        asked.push(store.request_diagnosis("a".into(), format!("t{i}"), None).await.unwrap());
    }
    let mut other = pg.connect(db_name(&url)).await.unwrap();
    let tx = other.transaction().await.unwrap();
    let locked = tx.query("SELECT id FROM diagnosis_requests WHERE id = ANY($1) FOR UPDATE", &[&&asked[..3]]).await;
    assert_eq!(locked.unwrap().len(), 3);
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), store.take_diagnosis_requests("a".into()))
        .await
        .expect("the take waited for the locked rows")
        .unwrap();
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), asked[3..], "the locked ones skipped");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    tx.rollback().await.unwrap();
    let rest = store.take_diagnosis_requests("a".into()).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), asked[..3], "free again");
}
