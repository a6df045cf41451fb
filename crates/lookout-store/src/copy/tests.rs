//! `lookout store copy` against real stores: a SQLite store holding every kind of row (written through the
//! [`Store`] API as lookout writes them, then rolled up so results exist raw, packed and aggregated) is copied to a
//! real PostgreSQL ([`crate::testing`]) and from there to a new SQLite file; all three must count the same and
//! answer every read the same, and the PostgreSQL copy must hand out fresh ids afterwards.

use lookout_core::{AlertState, LogCount, Phase, Timestamp, Timings, Transition, TransitionKind, key};
use lookout_engine::IncidentBook;

use super::*;
use crate::testing::postgres_or_skip;
use crate::{
    Horizons, LogRecord, LogWindowWrite, NewMessage, NewSilence, OutboxStore, Record, ResultRow, SentFromMemory, Store,
};

const DAY: i64 = 86_400_000;
/// A UTC midnight (2024-10-04), so days and hours align as in production.
const T0: i64 = 20_000 * DAY;
/// "Now" for the roll-up: two days of results behind it.
const NOW: i64 = T0 + 2 * DAY;

fn result(target: &str, at: i64, ok: bool, latency_ms: f64) -> ResultRow {
    ResultRow {
        target: target.into(),
        at: Timestamp(at),
        ok,
        status: Some(if ok { 200 } else { 503 }),
        latency_ms,
        error: (!ok).then(|| "HTTP 503 Service Unavailable".into()),
        failed_conditions: if ok { vec![] } else { vec!["[STATUS] (503) == 200".into()] },
        timings: Timings {
            connect_ms: Some(0.25),
            first_byte_ms: Some(latency_ms - 1.0),
            total_ms: latency_ms,
            ..Timings::default()
        },
        body_excerpt: (!ok).then(|| "<h1>maintenance</h1>".into()),
    }
}

fn transition(kind: TransitionKind, target: &str, at: i64, alert: &str) -> Transition {
    Transition {
        target: target.into(),
        kind,
        at: Timestamp(at),
        alert_id: Some(alert.into()),
        failing_since: Some(Timestamp(at - 20_000)),
        reasons: vec!["[STATUS] (503) == 200".into()],
        consecutive: 3,
        diagnosis: None,
    }
}

fn message(channel: &str, key: String) -> NewMessage {
    NewMessage { channel: channel.into(), payload: format!("{{\"key\":\"{key}\"}}"), key, ..NewMessage::default() }
}

/// Writes every kind of row a store holds, the way lookout writes them.
async fn fill<S: Store>(s: &S) {
    // Two days of results for two targets, every 7th failing; then the roll-up: the first day is aggregated
    // (failures and recoveries kept raw, marked rolled), the second day's successes older than an hour packed.
    for target in ["api", "web"] {
        let records: Vec<Record> = (0..2 * 1440)
            .map(|i| {
                let r = result(target, T0 + i * 60_000 + 1_500, i % 7 != 3, 5.0 + ((i * 37) % 196) as f64 + 0.25);
                // And readings, which the roll-up turns into per-minute and per-hour rows.
                let reading = crate::Reading {
                    target: target.into(),
                    at: Timestamp(T0 + i * 60_000 + 1_500),
                    name: "BUSY_WORKERS".into(),
                    value: (i % 5) as f64 + 0.5,
                };
                Record { result: Some(r), readings: vec![reading], ..Record::default() }
            })
            .collect();
        s.record_all(records).await.unwrap();
    }
    let horizons = Horizons {
        pack: Timestamp(NOW - 3_600_000),
        raw: Timestamp(NOW - DAY),
        detail: Timestamp(NOW - 14 * DAY),
        hourly: Timestamp(NOW - 400 * DAY),
    };
    let done = s.roll_up(horizons).await.unwrap();
    assert!(done.rolled > 0 && done.packed > 0 && done.deleted > 0, "{done:?}");

    // Incidents: "shop" opened by web, joined by api, both resolved; "blog" still open. Each change carries its
    // timeline entries, transitions and messages as the pipeline writes them.
    let mut book = IncidentBook::default();
    let mut records = Vec::new();
    let events = [
        ("shop", TransitionKind::Firing, "web", T0 + 1_000, "web@1"),
        ("shop", TransitionKind::Firing, "api", T0 + 5_000, "api@2"),
        ("shop", TransitionKind::Resolved, "web", T0 + 60_000, "web@1"),
        ("shop", TransitionKind::Resolved, "api", T0 + 70_000, "api@2"),
        ("blog", TransitionKind::Firing, "blog", T0 + 80_000, "blog@3"),
    ];
    for (group, kind, target, at, alert) in events {
        let t = transition(kind, target, at, alert);
        let change = book.on_transition(group, &t).unwrap();
        let state = AlertState {
            phase: if kind == TransitionKind::Firing { Phase::Firing } else { Phase::Ok },
            consecutive_failures: 3,
            alert_id: (kind == TransitionKind::Firing).then(|| alert.to_string()),
            since: Timestamp(at),
            ..AlertState::default()
        };
        let location = crate::LocationState {
            target: target.into(),
            location: "eu-west".into(),
            state: state.clone(),
            at: Timestamp(at),
            ok: kind != TransitionKind::Firing,
            latency_ms: 41.5,
            status: (kind != TransitionKind::Firing).then_some(200),
            reason: (kind == TransitionKind::Firing).then(|| "HTTP 503 Service Unavailable".into()),
        };
        records.push(Record {
            state: Some((target.into(), state)),
            locations: vec![location, location_us(target, at)],
            transitions: vec![t],
            messages: vec![message("ops", key::transition(alert, kind)), message("team", key::transition(alert, kind))],
            incidents: vec![change],
            ..Record::default()
        });
    }
    s.record_all(records).await.unwrap();
    let blog = s.live_incidents().await.unwrap().0.pop().unwrap();
    let ack = lookout_engine::incident::acknowledge(&blog, "alice", Timestamp(T0 + 90_000)).unwrap();
    s.record(Record { incidents: vec![ack], ..Record::default() }).await.unwrap();

    // The outbox in every state: delivered (with a note), failed and waiting, abandoned, suppressed, sent from
    // memory, pending.
    let all = s.messages(100).await.unwrap();
    let ids = |key: &str, channel: &str| {
        all.iter().filter(|m| m.key.contains(key) && m.channel == channel).map(|m| m.id).collect::<Vec<_>>()
    };
    s.mark_attempted(ids("web@1", "ops")).await.unwrap();
    s.mark_delivered(ids("web@1", "ops"), Timestamp(T0 + 2_000), Some("template fell back".into())).await.unwrap();
    s.mark_attempted(ids("api@2", "ops")).await.unwrap();
    s.mark_failed(ids("api@2", "ops"), Timestamp(NOW + 60_000), "connection refused".into()).await.unwrap();
    s.mark_abandoned(ids("web@1", "team"), Timestamp(T0 + 3_000), "HTTP 400".into()).await.unwrap();
    s.mark_suppressed(ids("blog@3", "team"), Timestamp(T0 + 81_000), "silenced by #1".into()).await.unwrap();
    let sent = SentFromMemory {
        created_at: Timestamp(T0 + 4_000),
        attempts: 1,
        next_attempt_at: Timestamp(T0 + 4_000),
        delivered_at: Some(Timestamp(T0 + 4_500)),
        ..SentFromMemory::default()
    };
    let from_memory = NewMessage { sent: Some(sent), group_key: "g".into(), ..message("pager", key::firing("web@1")) };
    s.record(Record { messages: vec![from_memory], forget: vec!["gone".into()], ..Record::default() }).await.unwrap();

    // Silences: one in force, one expired by hand.
    let silence = |comment: &str| NewSilence {
        matchers: vec!["group=blog".into(), "severity!=info".into()],
        starts_at: Timestamp(T0),
        ends_at: Timestamp(NOW + 365 * DAY),
        created_by: "alice".into(),
        comment: comment.into(),
        pause: comment == "deploy",
    };
    s.add_silence(silence("migration")).await.unwrap();
    let expired = s.add_silence(silence("deploy")).await.unwrap();
    assert!(s.expire_silence(expired, Timestamp(T0 + 100_000)).await.unwrap());

    // Log sources: cursors, per-minute counts, window entries.
    for (source, n) in [("access", 3), ("shop-logs", 5)] {
        let counts = (0..n)
            .map(|m| LogCount {
                minute: T0 / 1000 + 60 * m,
                requests: 100 + m as u64,
                classes: [0, 90, 3, 2, 5],
                malformed: 1,
            })
            .collect();
        s.record(Record {
            log: Some(LogRecord {
                source: source.into(),
                cursors: vec![
                    ("access".into(), format!("{{\"inode\":12,\"offset\":{n}}}")),
                    ("error".into(), "{\"inode\":13,\"offset\":7}".into()),
                ],
                counts,
                window: Some(LogWindowWrite { entry: Some((T0 / 1000 + n, format!("{{\"n\":{n}}}"))), keep_from: 0 }),
            }),
            ..Record::default()
        })
        .await
        .unwrap();
    }
}

/// A location whose view stays fine (no status: a TCP check).
fn location_us(target: &str, at: i64) -> crate::LocationState {
    crate::LocationState {
        target: target.into(),
        location: "us-east".into(),
        state: AlertState { since: Timestamp(at - DAY), ..AlertState::default() },
        at: Timestamp(at + 500),
        ok: true,
        latency_ms: 80.0,
        status: None,
        reason: None,
    }
}

/// Runtime state the copy leaves behind (`SKIPPED`): an event in flight and check leases.
async fn runtime_state<S: Store>(s: &S) {
    s.forward("agent-1".into(), vec!["{\"observation\":1}".into()]).await.unwrap();
    let claim = crate::CheckClaim {
        agent: "agent-1".into(),
        location: "eu-west".into(),
        targets: vec!["api".into(), "web".into()],
        want: 2,
        ttl: std::time::Duration::from_secs(60),
    };
    assert_eq!(s.claim_checks(claim).await.unwrap(), ["api", "web"]);
}

/// Everything the store answers, for comparing one store with another.
async fn reads<S: Store>(s: &S) -> String {
    let mut out = Vec::new();
    let incidents = s.incidents(100).await.unwrap();
    for i in &incidents {
        out.push(format!("{:?}", s.incident(i.id.clone()).await.unwrap()));
        out.push(format!("{:?}", s.timeline(i.id.clone()).await.unwrap()));
        out.push(format!("{:?}", s.incident_messages(i.id.clone()).await.unwrap()));
    }
    out.push(format!("{incidents:?}"));
    out.push(format!("{:?}", s.live_incidents().await.unwrap()));
    out.push(format!("{:?}", s.messages(1000).await.unwrap()));
    out.push(format!("{:?}", s.alert_messages("web@1".into()).await.unwrap()));
    for channel in ["ops", "team", "pager"] {
        out.push(format!("{:?}", s.next_pending(channel.into()).await.unwrap()));
    }
    out.push(format!("{:?}", s.silences(true, Timestamp(NOW)).await.unwrap()));
    out.push(format!("{:?}", s.silences(false, Timestamp(NOW)).await.unwrap()));
    out.push(format!("{:?}", s.alert_states().await.unwrap()));
    out.push(format!("{:?}", s.location_states().await.unwrap()));
    out.push(format!("{:?}", s.transitions(None).await.unwrap()));
    for target in ["api", "web"] {
        let (from, to) = (Timestamp(T0), Timestamp(NOW));
        out.push(format!("{:?}", s.results_between(target.into(), from, to).await.unwrap()));
        out.push(format!("{:?}", s.recent_results(target.into(), 50).await.unwrap()));
        out.push(format!("{:?}", s.daily_uptime(target.into(), from).await.unwrap()));
        out.push(format!("{:?}", s.result_buckets(target.into(), from, to, 3_600_000).await.unwrap()));
        out.push(format!("{:?}", s.result_buckets(target.into(), from, to, 300_000).await.unwrap()));
        let qs = vec![0.0, 0.5, 0.99, 1.0];
        out.push(format!("{:?}", s.latency_percentiles(target.into(), from, to, qs).await.unwrap()));
    }
    for source in ["access", "shop-logs"] {
        out.push(format!("{:?}", s.log_totals(source.into()).await.unwrap()));
        out.push(format!("{:?}", s.log_cursor(source.into(), "access".into()).await.unwrap()));
        out.push(format!("{:?}", s.log_cursor(source.into(), "error".into()).await.unwrap()));
        out.push(format!("{:?}", s.log_window(source.into(), 0).await.unwrap()));
        let (from, to) = (Timestamp(T0), Timestamp(NOW));
        out.push(format!("{:?}", s.log_counts_between(source.into(), from, to).await.unwrap()));
    }
    out.join("\n")
}

fn pg_config(url: &str) -> lookout_config::StoreConfig {
    lookout_config::StoreConfig {
        backend: lookout_config::StoreBackend::Postgres { url: url.to_string() },
        ..lookout_config::StoreConfig::sqlite(std::path::PathBuf::new())
    }
}

#[tokio::test]
async fn a_store_moves_from_sqlite_to_postgresql_and_back_losing_nothing() {
    let Some(pg) = postgres_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = AnyStore::sqlite(&dir.path().join("source.sqlite")).unwrap();
    fill(&sqlite).await;
    runtime_state(&sqlite).await;
    let expected = reads(&sqlite).await;

    let url = pg.fresh_database().await;
    let postgres = crate::open(&pg_config(&url)).await.unwrap();
    // Small pages: every table (composite keys included) is read in many pages.
    let mut seen = Vec::new();
    let report =
        copy(&sqlite, &postgres, &CopyOptions { page_rows: 97 }, |p| seen.push((p.table.to_string(), p.copied)))
            .await
            .unwrap();
    assert!(report.matches(), "{report:?}");
    let count = |name: &str| report.tables.iter().find(|t| t.table == name).map(|t| t.target).unwrap_or(0);
    for table in TABLES {
        assert!(count(table.name) > 0, "the source holds rows of every table, {} too: {report:?}", table.name);
    }
    assert_eq!(report.copied, report.tables.iter().map(|t| t.source).sum::<u64>());
    assert!(count("results") > 97 * 3, "results span many pages: {report:?}");
    assert!(seen.iter().any(|(t, n)| t == "results" && *n == 97 * 2), "progress after each page: {seen:?}");
    assert_eq!(reads(&postgres).await, expected, "PostgreSQL answers as the SQLite store did");
    assert_eq!(postgres.location_states().await.unwrap().len(), 3 * 2, "three targets' views from two locations");
    assert!(postgres.forwarded(10).await.unwrap().is_empty(), "events in flight stay behind");
    assert!(postgres.check_holders().await.unwrap().is_empty(), "check leases are claimed afresh");

    let back = AnyStore::sqlite(&dir.path().join("back.sqlite")).unwrap();
    let report_back = copy(&postgres, &back, &CopyOptions::default(), |_| {}).await.unwrap();
    assert!(report_back.matches(), "{report_back:?}");
    assert_eq!(report_back.tables, report.tables, "the same counts after the round trip");
    assert_eq!(reads(&back).await, expected, "and the SQLite copy of the copy answers the same");

    // New rows on the PostgreSQL copy get fresh ids (the sequences were moved past the copied ids).
    let last_message = postgres.messages(1).await.unwrap()[0].id;
    postgres
        .record(Record { messages: vec![message("ops", "after-the-move".into())], ..Record::default() })
        .await
        .unwrap();
    let new = postgres.messages(1).await.unwrap().remove(0);
    assert_eq!((new.key.as_str(), new.id), ("after-the-move", last_message + 1));
    let last_silence = postgres.silences(true, Timestamp(NOW)).await.unwrap()[0].id;
    let silence = NewSilence {
        matchers: vec!["target=api".into()],
        starts_at: Timestamp(NOW),
        ends_at: Timestamp(NOW + DAY),
        created_by: "bob".into(),
        comment: "after".into(),
        pause: false,
    };
    assert_eq!(postgres.add_silence(silence).await.unwrap(), last_silence + 1);
    let late = Record {
        result: Some(result("new-target", NOW, true, 3.0)),
        transitions: vec![transition(TransitionKind::Firing, "web", NOW, "web@9")],
        log: Some(LogRecord {
            source: "access".into(),
            window: Some(LogWindowWrite { entry: Some((NOW / 1000, "{}".into())), keep_from: 0 }),
            ..LogRecord::default()
        }),
        ..Record::default()
    };
    postgres.record(late).await.unwrap();
    assert_eq!(postgres.recent_results("new-target".into(), 5).await.unwrap().len(), 1, "a new target gets an id");
    let mut book = IncidentBook::default();
    let (live, seqs) = postgres.live_incidents().await.unwrap();
    book.restore(live, seqs);
    let change = book.on_transition("shop", &transition(TransitionKind::Firing, "web", NOW, "web@9")).unwrap();
    assert_eq!(change.incident.id, "2024-10-06-shop-1");
    postgres.record(Record { incidents: vec![change], ..Record::default() }).await.unwrap();
    assert_eq!(postgres.timeline("2024-10-06-shop-1".into()).await.unwrap().len(), 2, "timeline ids are fresh too");

    // A store that holds anything is never a target: nothing is merged.
    let err = copy(&sqlite, &postgres, &CopyOptions::default(), |_| {}).await.unwrap_err().to_string();
    assert!(err.contains("the target store already holds data (targets: 3 rows"), "{err}");
    assert!(err.contains("outbox: 12 rows") && err.contains("an empty store"), "{err}");
    assert_eq!(postgres.messages(1000).await.unwrap().len(), 12, "and nothing was written");
}

/// The list of tables is checked against both real schemas: a table a migration adds must be copied or skipped
/// for a reason, and a column the copy does not know makes it refuse rather than drop it.
#[tokio::test]
async fn every_table_of_both_schemas_is_copied_or_skipped_for_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.sqlite");
    let AnyStore::Sqlite(sqlite) = AnyStore::sqlite(&path).unwrap() else { unreachable!() };
    check_schema(&sqlite, "source").await.unwrap();
    let mut names = sqlite.tables().await.unwrap();
    if let Some(pg) = postgres_or_skip() {
        let url = pg.fresh_database().await;
        let AnyStore::Postgres(postgres) = crate::open(&pg_config(&url)).await.unwrap() else { unreachable!() };
        check_schema(&postgres, "target").await.unwrap();
        let pg_names = postgres.tables().await.unwrap();
        let without = |v: &[String], t: &str| v.iter().filter(|n| *n != t).cloned().collect::<Vec<_>>();
        // PostgreSQL records its migrations in a table, SQLite in `user_version`.
        assert_eq!(without(&pg_names, "lookout_schema"), names, "both backends have the same tables");
        names = pg_names;
    }
    let listed: Vec<&str> = TABLES.iter().map(|t| t.name).chain(SKIPPED.iter().map(|s| s.0)).collect();
    for name in &names {
        assert!(listed.contains(&name.as_str()), "{name} is neither copied nor skipped");
    }

    // A column this build does not know: the copy refuses, naming it, before writing anything.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE outbox ADD COLUMN priority INTEGER").unwrap();
    drop(conn);
    let source = AnyStore::sqlite(&path).unwrap();
    let target = AnyStore::sqlite(&dir.path().join("b.sqlite")).unwrap();
    let err = copy(&source, &target, &CopyOptions::default(), |_| {}).await.unwrap_err().to_string();
    assert!(
        err.contains("the source store's schema is not the one this lookout copies (outbox.priority is unknown)"),
        "{err}"
    );
}

/// SQLite to SQLite, through the same code: a store moved to another disk keeps everything, ids included.
#[tokio::test]
async fn a_sqlite_store_copies_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let from = AnyStore::sqlite(&dir.path().join("a.sqlite")).unwrap();
    fill(&from).await;
    let to = AnyStore::sqlite(&dir.path().join("b.sqlite")).unwrap();
    let report = copy(&from, &to, &CopyOptions { page_rows: 1000 }, |_| {}).await.unwrap();
    assert!(report.matches(), "{report:?}");
    assert_eq!(reads(&to).await, reads(&from).await);
    // An empty source copies nothing and says so.
    let empty = AnyStore::sqlite(&dir.path().join("c.sqlite")).unwrap();
    let nothing = copy(&empty, &AnyStore::in_memory().unwrap(), &CopyOptions::default(), |_| {}).await.unwrap();
    assert_eq!((nothing.copied, nothing.matches()), (0, true));
}
