//! An incident's impact measured against a generated access log (across a rotation) and stored probe results
//! with known answers, and the fallback to lookout's per-minute counts when the log is gone.

use std::path::Path;

use lookout_config::Config;
use lookout_core::{LogCount, Timestamp, Transition, TransitionKind};
use lookout_engine::IncidentBook;
use lookout_logs::distinct::ClientKey;
use lookout_store::{LogRecord, Record, ResultRow, Store};

/// 2026-11-25T14:00:00Z in Unix seconds.
const T0: i64 = 1_795_615_200;

fn ts(rel_secs: i64) -> Timestamp {
    Timestamp((T0 + rel_secs) * 1000)
}

fn clf_time(rel_secs: i64) -> String {
    let t = T0 + rel_secs;
    let (h, m, s) = ((t / 3600) % 24, (t / 60) % 60, t % 60);
    format!("25/Nov/2026:{h:02}:{m:02}:{s:02} +0000")
}

/// One request a second from 13:50:00 to 14:09:59. From 14:01:30 to 14:04:59 every request fails, from 13 clients
/// (10.0.1.0-12) alternating two browsers; a stray 500 at 13:52 lies outside the incident. Before 14:00 the lines
/// are in the rotated file.
fn write_logs(dir: &Path) {
    let (mut rotated, mut current) = (String::new(), String::new());
    for rel in -600i64..600 {
        let broken = (90..300).contains(&rel);
        let (client, status) = match rel {
            _ if broken => (format!("10.0.1.{}", rel.rem_euclid(13)), 500),
            -480 => ("10.0.9.9".to_string(), 500),
            _ => (format!("10.0.0.{}", rel.rem_euclid(7)), 200),
        };
        let ua = if rel % 2 == 0 { "Firefox" } else { "Chrome" };
        let line =
            format!("{client} - - [{}] \"GET /shop/cart.php HTTP/1.1\" {status} 512 \"-\" \"{ua}\"\n", clf_time(rel));
        if rel < 0 { &mut rotated } else { &mut current }.push_str(&line);
    }
    std::fs::write(dir.join("access.log.1"), rotated).unwrap();
    std::fs::write(dir.join("access.log"), current).unwrap();
}

fn config(dir: &Path, clients: &str) -> Config {
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:9/\"\ngroup = \"shop\"\n\n\
         [[log]]\nname = \"apache\"\naccess = \"access.log\"\ngroup = \"shop\"\nclients = \"{clients}\"\n"
    );
    Config::parse(&text, &dir.join("lookout.toml"), &|_| None).unwrap()
}

fn transition(kind: TransitionKind, at: i64) -> Transition {
    Transition {
        target: "site".into(),
        kind,
        at: ts(at),
        alert_id: Some("site@1".into()),
        failing_since: Some(ts(95)),
        reasons: vec!["[STATUS] (500) == 200".into()],
        consecutive: 2,
        diagnosis: None,
    }
}

/// Writes a result of target `site` at each second given, failing from 14:01:40 to 14:05:00 (with the failed
/// condition when `reasons`).
async fn write_results(store: &impl Store, at: impl Iterator<Item = i64>, reasons: bool) {
    for rel in at {
        let ok = !(100..=300).contains(&rel);
        let row = ResultRow {
            target: "site".into(),
            at: ts(rel),
            ok,
            status: Some(if ok { 200 } else { 500 }),
            latency_ms: 1.0,
            error: None,
            failed_conditions: if ok || !reasons { vec![] } else { vec!["[STATUS] (500) == 200".into()] },
            timings: Default::default(),
            body_excerpt: None,
        };
        store.record(Record { result: Some(row), ..Record::default() }).await.unwrap();
    }
}

#[tokio::test]
async fn impact_numbers_match_a_generated_log_with_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    write_logs(dir.path());
    let cfg = config(dir.path(), "address");
    let store = lookout_store::open(&cfg.store).await.unwrap();
    // Probe results every 10 s, failing from 14:01:40 to 14:05:00.
    write_results(&store, (0..=360).step_by(10), false).await;
    // The incident: first failure 14:01:35, alert 14:01:45, resolved 14:05:10.
    let mut book = IncidentBook::default();
    book.on_transition("shop", &transition(TransitionKind::Firing, 105)).unwrap();
    let incident = book.on_transition("shop", &transition(TransitionKind::Resolved, 310)).unwrap().incident;

    let impact = lookout_app::impact::measure(&store, &cfg, &incident, ts(10_000)).await;
    assert_eq!((impact.first_failure, impact.alerted, impact.end), (ts(95), ts(105), ts(310)));
    assert!(!impact.ongoing);
    assert_eq!(impact.duration().as_secs(), 215);
    assert_eq!(impact.time_to_alert().as_secs(), 10);

    let r = &impact.requests[0];
    // The window: one minute before the first failure (14:00:35) to the resolution (14:05:10), inclusive.
    assert_eq!((r.from, r.to), (ts(35), ts(310)));
    assert_eq!(r.total, 310 - 35 + 1, "one request a second");
    assert_eq!(r.failed, 210, "14:01:30-14:04:59; the stray 500 at 13:52 is outside");
    assert_eq!(r.clients, Some(13));
    assert_eq!(r.client_key, ClientKey::Address);
    assert_eq!(r.peak, Some((T0 + 120, 1.0)), "the first fully broken minute");
    assert!(r.exact && r.note.is_none());
    assert_eq!(r.measured_from, "access log access.log");
    assert_eq!(r.failing_paths[0].path, "/shop/cart.php");

    let p = &impact.probes[0];
    assert_eq!(p.target, "site");
    assert_eq!((p.total, p.failed), (28, 21), "checks at 14:00:40..14:05:10, failing 14:01:40..14:05:00");
    assert_eq!((p.down_from, p.down_until), (Some(ts(100)), Some(ts(310))));

    // Address + User-Agent: each of the 13 addresses came with two browsers.
    let by_pair =
        lookout_app::impact::measure(&store, &config(dir.path(), "address+user-agent"), &incident, ts(0)).await;
    assert_eq!(by_pair.requests[0].clients, Some(26));

    // An incident that began before the rotation is measured across both files.
    let mut early = incident.clone();
    early.first_failure_at = ts(-500);
    let across = lookout_app::impact::measure(&store, &cfg, &early, ts(0)).await;
    assert_eq!(across.requests[0].failed, 211, "the stray 500 at 13:52 is in the rotated file and now in the window");
    assert_eq!(across.requests[0].clients, Some(14));

    // The log is gone: lookout's per-minute counts answer, without clients, and say so.
    std::fs::remove_file(dir.path().join("access.log")).unwrap();
    std::fs::remove_file(dir.path().join("access.log.1")).unwrap();
    let counts = (0..6)
        .map(|m| {
            let failed = (m * 60..m * 60 + 60).filter(|s| (90..300).contains(s)).count() as u64;
            LogCount { minute: T0 + m * 60, requests: 60, classes: [0, 60 - failed, 0, 0, failed], malformed: 0 }
        })
        .collect();
    store
        .record(Record {
            log: Some(LogRecord { source: "apache".into(), cursors: vec![], counts, ..LogRecord::default() }),
            ..Record::default()
        })
        .await
        .unwrap();
    let fallback = lookout_app::impact::measure(&store, &cfg, &incident, ts(0)).await;
    let r = &fallback.requests[0];
    assert!(!r.exact);
    assert_eq!((r.total, r.failed), (360, 210), "whole minutes 14:00-14:05");
    assert_eq!(r.clients, None);
    assert_eq!(r.peak, Some((T0 + 120, 1.0)));
    assert!(r.note.as_deref().is_some_and(|n| n.starts_with("access.log could not be read: ")), "{:?}", r.note);
}

/// Three days later the raw results have been rolled up (raw window 24 h): the impact still finds the failures,
/// when the target was down and back, and counts its checks (the rolled-up 5 minutes pro-rated at the window's
/// edges); the postmortem drafted from it says the same as on the day.
#[tokio::test]
async fn an_incident_from_three_days_ago_has_the_same_impact_after_the_roll_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "address");
    let store = lookout_store::open(&cfg.store).await.unwrap();
    write_results(&store, (-3600..=3600).step_by(10), true).await;
    let mut book = IncidentBook::default();
    book.on_transition("shop", &transition(TransitionKind::Firing, 105)).unwrap();
    let incident = book.on_transition("shop", &transition(TransitionKind::Resolved, 310)).unwrap().incident;
    let on_the_day = lookout_app::impact::measure(&store, &cfg, &incident, ts(400)).await;

    let later = ts(3 * 86_400);
    let day = 86_400_000;
    let horizons = lookout_store::Horizons {
        pack: Timestamp(later.0 - 3_600_000),
        raw: Timestamp(later.0 - 2 * day),
        detail: Timestamp(later.0 - 7 * day),
        hourly: Timestamp(later.0 - 90 * day),
    };
    let done = store.roll_up(horizons).await.unwrap();
    assert_eq!(done.rolled, 721, "every result is older than the raw window");
    assert!(
        store.results_between("site".into(), ts(-3600), ts(99)).await.unwrap().is_empty(),
        "the successes before the incident are gone as rows"
    );
    let after = lookout_app::impact::measure(&store, &cfg, &incident, later).await;
    let (b, a) = (&on_the_day.probes[0], &after.probes[0]);
    assert_eq!((b.total, b.failed), (28, 21));
    assert_eq!((a.total, a.failed), (b.total, b.failed), "checks at 14:00:40..14:05:10, failing 14:01:40..14:05:00");
    assert_eq!((a.down_from, a.down_until), (Some(ts(100)), Some(ts(310))));

    let view = lookout_app::incidents::IncidentView {
        incident: incident.clone(),
        timeline: vec![],
        impact: after,
        server: vec![],
        curves: vec![],
    };
    let draft = lookout_app::postmortem::from_incident::render(&view);
    let same_day = lookout_app::incidents::IncidentView {
        incident,
        timeline: vec![],
        impact: on_the_day,
        server: vec![],
        curves: vec![],
    };
    assert_eq!(draft, lookout_app::postmortem::from_incident::render(&same_day));
    assert!(draft.contains("21 of 28 checks failed"), "{draft}");
}
