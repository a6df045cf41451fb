//! `lookout store copy`, the real binary against a real PostgreSQL (`lookout_store::testing`): a SQLite store moves
//! to PostgreSQL with its counts printed and verified, lookout then reads the copy through `[store] url`, a target
//! that holds data is refused, and a URL's password never reaches the output.

use lookout_core::{Timestamp, Timings, Transition, TransitionKind};
use lookout_store::{
    LogRecord, NewMessage, NewSilence, OutboxStore, Record, ResultRow, Store, testing::postgres_or_skip,
};

use crate::support::{lookout_bin, open_store, write_config};

fn lookout(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(lookout_bin()).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A few of each kind of row, written the way lookout writes them.
async fn fill(path: &std::path::Path) {
    let store = open_store(path);
    let t0 = 1_795_615_200_000; // 2026-11-25T14:00:00Z
    let mut records: Vec<Record> = (0..10)
        .map(|i| Record {
            result: Some(ResultRow {
                target: "shop".into(),
                at: Timestamp(t0 + i * 10_000),
                ok: i != 4,
                status: Some(if i == 4 { 500 } else { 200 }),
                latency_ms: 12.0 + i as f64,
                error: None,
                failed_conditions: vec![],
                timings: Timings { total_ms: 12.0 + i as f64, ..Timings::default() },
                body_excerpt: None,
            }),
            readings: vec![lookout_store::Reading {
                target: "shop".into(),
                at: Timestamp(t0 + i * 10_000),
                name: "BUSY_WORKERS".into(),
                value: i as f64,
            }],
            ..Record::default()
        })
        .collect();
    let firing = Transition {
        target: "shop".into(),
        kind: TransitionKind::Firing,
        at: Timestamp(t0 + 40_000),
        alert_id: Some("shop@1".into()),
        failing_since: Some(Timestamp(t0 + 40_000)),
        reasons: vec!["[STATUS] (500) == 200".into()],
        consecutive: 1,
        diagnosis: None,
    };
    let mut book = lookout_engine::IncidentBook::default();
    let change = book.on_transition("shop", &firing).unwrap();
    let key = lookout_core::key::firing("shop@1");
    records.push(Record {
        transitions: vec![firing],
        messages: vec![NewMessage { channel: "ops".into(), key, payload: "{}".into(), ..NewMessage::default() }],
        incidents: vec![change],
        log: Some(LogRecord {
            source: "access".into(),
            cursors: vec![("access".into(), "{\"offset\":42}".into())],
            ..LogRecord::default()
        }),
        ..Record::default()
    });
    store.record_all(records).await.unwrap();
    let id = store.next_pending("ops".into()).await.unwrap().unwrap().id;
    store.mark_delivered(vec![id], Timestamp(t0 + 41_000), None).await.unwrap();
    let silence = NewSilence {
        matchers: vec!["group=shop".into()],
        starts_at: Timestamp::now(),
        ends_at: Timestamp(Timestamp::now().0 + 3_600_000),
        created_by: "alice".into(),
        comment: "moving day".into(),
        pause: true,
    };
    store.add_silence(silence).await.unwrap();
}

/// The row of `table` in the printed counts: (source, target).
fn counts(out: &str, table: &str) -> Option<(u64, u64)> {
    let line = out.lines().find(|l| l.split_whitespace().next() == Some(table))?;
    let mut n = line.split_whitespace().skip(1).map(|w| w.parse::<u64>());
    Some((n.next()?.ok()?, n.next()?.ok()?))
}

#[tokio::test]
async fn a_sqlite_store_moves_to_postgresql_with_its_counts_verified() {
    let Some(pg) = postgres_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("lookout.sqlite");
    fill(&sqlite).await;
    // The test server trusts every local connection, so the password is ignored there, but not by the output.
    let url = pg.fresh_database().await.replace("postgres@", "postgres:s3cret-pw@");
    let sqlite_arg = sqlite.to_str().unwrap();

    let (code, out, err) = lookout(&["store", "copy", "--from", sqlite_arg, "--to", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("Copied sqlite:{sqlite_arg} to postgresql://postgres:***@127.0.0.1:")), "{out}");
    assert_eq!(counts(&out, "results"), Some((10, 10)), "{out}");
    assert_eq!(counts(&out, "targets"), Some((1, 1)), "{out}");
    assert_eq!(counts(&out, "readings"), Some((10, 10)), "{out}");
    assert_eq!(counts(&out, "outbox"), Some((1, 1)), "{out}");
    assert_eq!(counts(&out, "silences"), Some((1, 1)), "{out}");
    assert_eq!(counts(&out, "incidents"), Some((1, 1)), "{out}");
    assert_eq!(counts(&out, "incident_timeline"), Some((2, 2)), "{out}");
    assert_eq!(counts(&out, "log_cursors"), Some((1, 1)), "{out}");
    assert!(out.contains("All 16 tables match: 29 rows copied."), "{out}");
    assert!(!out.contains("s3cret") && !err.contains("s3cret"), "the password stays out: {out}{err}");

    // lookout reads the copy as its store.
    let config = write_config(dir.path(), &format!("[store]\nurl = \"{url}\"\n"));
    let config = config.to_str().unwrap();
    let (code, out, err) = lookout(&["silence", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("group=shop — moving day"), "{out}");
    let (code, out, err) = lookout(&["incidents", "--json", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2026-11-25-shop-1"), "{out}");

    // Copying again into it: refused, nothing merged.
    let (code, out, err) = lookout(&["store", "copy", "--from", sqlite_arg, "--to", &url]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("the target store already holds data (targets: 1 row, results: 10 rows"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let store =
        lookout_store::open(&lookout_config::Config::load(std::path::Path::new(config)).unwrap().store).await.unwrap();
    assert_eq!(store.messages(10).await.unwrap().len(), 1, "nothing was written twice");

    // And back to a new SQLite file, as JSON.
    let back = dir.path().join("back.sqlite");
    let (code, out, err) =
        lookout(&["store", "copy", "--json", "--from", &url, "--to", &format!("sqlite:{}", back.display())]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["matches"], true);
    assert_eq!(json["copied"], 29);
    assert!(json["from"].as_str().unwrap().contains("postgres:***@"), "{out}");
    let results = json["tables"].as_array().unwrap().iter().find(|t| t["table"] == "results").unwrap();
    assert_eq!((results["source"].as_u64(), results["target"].as_u64()), (Some(10), Some(10)));
    assert_eq!(open_store(&back).silences(true, Timestamp::now()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_source_or_a_wrong_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.sqlite");
    let to = dir.path().join("new.sqlite");
    let (code, _, err) = lookout(&["store", "copy", "--from", missing.to_str().unwrap(), "--to", to.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("there is no SQLite store at"), "{err}");
    assert!(!missing.exists() && !to.exists(), "nothing was created");
    let (code, _, err) = lookout(&["store", "copy", "--from", "mysql://root:pw@db/x", "--to", to.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("mysql:// is not a store") && !err.contains("pw@"), "{err}");
    let from = dir.path().join("a.sqlite");
    fill(&from).await;
    let (code, _, err) = lookout(&["store", "copy", "--from", from.to_str().unwrap(), "--to", from.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("name the same store"), "{err}");
}
