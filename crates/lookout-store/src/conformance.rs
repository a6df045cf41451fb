//! The store conformance suite: what every [`Store`] backend must do, written once, generic over the backend.
//! Every backend runs all of it; a behaviour that holds for one backend only is not in here but in that backend's
//! own tests (for SQLite: concurrent opens, schema versions, bad paths, in `sqlite/tests.rs`).
//!
//! Each check is a `pub(crate) async fn` that takes a fresh, empty store (`&S` where `S: Store`), or a
//! [`Harness`] when it needs to open the same store again. [`suite!`] turns every check into a `#[tokio::test]`
//! for one backend.
//!
//! Adding a backend: implement [`Harness`] for it (where its fresh stores live, how one is opened again) and
//! invoke the suite once in that backend's tests, inside a module so the test names say which backend failed:
//!
//! ```ignore
//! mod conformance {
//!     crate::conformance::suite!(super::PostgresHarness::new().await);
//!     // Or, for a backend that needs a server, with attributes for every test:
//!     // crate::conformance::suite!(super::PostgresHarness::new().await, #[ignore = "needs PostgreSQL"]);
//! }
//! ```
//!
//! Adding a check: write the function here and add its name to the list in [`suite!`] (`store:` for a check
//! taking a store, `harness:` for one taking the harness); every backend then runs it.

use lookout_core::{AlertState, IncidentChange, LogCount, Phase, Timestamp, Timings, Transition, TransitionKind};

use crate::{LogRecord, LogWindowWrite, NewMessage, NewSilence, Record, ResultRow, SentFromMemory, Store, StoreError};

mod checks;
pub(crate) use checks::{
    check_leases_give_each_target_to_one_agent_per_location,
    forwarded_events_are_consumed_exactly_once_with_their_record,
    location_states_are_upserted_and_forgotten_with_their_target,
};
mod diagnosis;
pub(crate) use diagnosis::{
    diagnosis_requests_are_taken_once_by_their_agent_and_answered,
    stale_diagnosis_requests_are_not_taken_and_old_ones_deleted,
};

/// How the suite gets stores of one backend. One harness serves one test: the suite makes a new one per test.
pub(crate) trait Harness {
    type S: Store;

    /// A new, empty store (called at most once per harness). It must persist what it is given, so that
    /// [`Harness::reopen`] finds it again.
    async fn fresh(&self) -> Self::S;

    /// The store [`Harness::fresh`] made, opened again as after a restart; the earlier handle has been dropped.
    async fn reopen(&self) -> Self::S;
}

/// Instantiates every conformance check as a `#[tokio::test]` in the calling module, for the backend whose
/// [`Harness`] `$harness` builds (evaluated once per test, inside the async test body, so it may `.await`).
/// Attributes after it (`#[ignore = "..."]`, `#[cfg(...)]`) go on every generated test.
macro_rules! suite {
    ($harness:expr $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance::suite!(@all ($harness) [$(#[$attr])*]
            store: [
                record_is_atomic_and_readable,
                outbox_is_keyed_and_fifo_per_channel,
                log_cursor_and_counts_are_written_together_and_add_up,
                log_window_entries_are_kept_while_in_the_window,
                incidents_round_trip_with_their_timeline,
                a_stale_incident_change_is_refused_with_everything_recorded_beside_it,
                an_alert_s_messages_are_found_by_its_id_only,
                a_storm_is_one_transaction_and_its_incident_keeps_every_alert,
                results_and_counts_between_two_times,
                results_are_aggregated_by_the_store,
                silences_are_added_listed_and_expired,
                a_message_sent_from_memory_is_recorded_with_its_fate,
                reads_answer_the_same_across_the_roll_up,
                each_form_of_result_is_kept_for_its_own_horizon,
                agents_beat_and_one_of_them_leads,
                location_states_are_upserted_and_forgotten_with_their_target,
                forwarded_events_are_consumed_exactly_once_with_their_record,
                check_leases_give_each_target_to_one_agent_per_location,
                diagnosis_requests_are_taken_once_by_their_agent_and_answered,
                readings_read_the_same_across_the_roll_up_and_go_at_their_horizon,
            ]
            harness: [
                survives_reopen_and_prunes,
            ]
        );
    };
    (@all ($harness:expr) $attrs:tt store: [$($check:ident),* $(,)?] harness: [$($hcheck:ident),* $(,)?]) => {
        $( $crate::conformance::suite!(@store ($harness) $attrs $check); )*
        $( $crate::conformance::suite!(@harness ($harness) $attrs $hcheck); )*
    };
    (@store ($harness:expr) [$(#[$attr:meta])*] $check:ident) => {
        $(#[$attr])*
        #[tokio::test]
        async fn $check() {
            let harness = $harness;
            let store = $crate::conformance::Harness::fresh(&harness).await;
            $crate::conformance::$check(&store).await;
        }
    };
    (@harness ($harness:expr) [$(#[$attr:meta])*] $check:ident) => {
        $(#[$attr])*
        #[tokio::test]
        async fn $check() {
            let harness = $harness;
            $crate::conformance::$check(&harness).await;
        }
    };
}
pub(crate) use suite;

pub(crate) async fn record_is_atomic_and_readable<S: Store>(s: &S) {
    let state = AlertState {
        phase: Phase::Firing,
        consecutive_failures: 3,
        alert_id: Some("site@3000".into()),
        ..Default::default()
    };
    s.record(Record {
        result: Some(result("site", 3000, false)),
        state: Some(("site".into(), state.clone())),
        transitions: vec![firing("site")],
        messages: vec![msg("ops", "k1"), msg("team", "k1")],
        forget: vec![],
        log: None,
        incidents: vec![],
        locations: vec![],
        readings: vec![],
        consumed: vec![],
    })
    .await
    .unwrap();
    assert_eq!(s.alert_states().await.unwrap(), vec![("site".to_string(), state)]);
    assert_eq!(s.recent_results("site".into(), 10).await.unwrap(), vec![result("site", 3000, false)]);
    assert_eq!(s.transitions(Some("site".into())).await.unwrap(), vec![firing("site")]);
    assert_eq!(s.transitions(Some("other".into())).await.unwrap(), vec![]);
    assert_eq!(s.messages(10).await.unwrap().len(), 2);
    s.record(Record { forget: vec!["site".into()], ..Record::default() }).await.unwrap();
    assert_eq!(s.alert_states().await.unwrap(), vec![]);
}

pub(crate) async fn outbox_is_keyed_and_fifo_per_channel<S: Store>(s: &S) {
    let rec = |m| Record { messages: vec![m], ..Record::default() };
    s.record(rec(msg("ops", "k1"))).await.unwrap();
    s.record(rec(msg("ops", "k1"))).await.unwrap();
    s.record(rec(msg("ops", "k2"))).await.unwrap();
    s.record(rec(msg("team", "k3"))).await.unwrap();
    let head = s.next_pending("ops".into()).await.unwrap().unwrap();
    assert_eq!(head.key, "k1");
    assert_eq!(head.attempts, 0);

    let later = Timestamp(head.created_at.0 + 60_000);
    s.mark_attempted(vec![head.id]).await.unwrap();
    s.mark_failed(vec![head.id], later, "connection refused".into()).await.unwrap();
    let head = s.next_pending("ops".into()).await.unwrap().unwrap();
    assert_eq!(head.key, "k2", "k1 waits until it may be retried; k2 is due first now");
    let k1 = s.pending_in_group("ops".into(), String::new()).await.unwrap();
    assert_eq!(k1.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["k1", "k2"], "one group, oldest first");
    assert_eq!((k1[0].attempts, k1[0].next_attempt_at), (1, later));
    assert_eq!(k1[0].last_error.as_deref(), Some("connection refused"));

    s.mark_attempted(vec![k1[0].id, k1[1].id]).await.unwrap();
    s.mark_delivered(vec![k1[0].id, k1[1].id], later, Some("template failed".into())).await.unwrap();
    s.mark_delivered(vec![k1[0].id], Timestamp(later.0 + 5), None).await.unwrap();
    assert_eq!(s.next_pending("ops".into()).await.unwrap(), None, "k1 was enqueued once and delivered once");
    assert!(s.was_delivered("ops".into(), "k1".into()).await.unwrap());
    assert!(!s.was_delivered("team".into(), "k1".into()).await.unwrap());
    let team = s.next_pending("team".into()).await.unwrap().unwrap();
    assert_eq!(team.key, "k3");
    // A refusal for good: kept with its reason, never selected again.
    s.mark_attempted(vec![team.id]).await.unwrap();
    s.mark_abandoned(vec![team.id], later, "receiver answered HTTP 400".into()).await.unwrap();
    assert_eq!(s.next_pending("team".into()).await.unwrap(), None);
    s.record(rec(msg("team", "k4"))).await.unwrap();
    let k4 = s.next_pending("team".into()).await.unwrap().unwrap();
    s.mark_suppressed(vec![k4.id], later, "silenced by #1".into()).await.unwrap();
    assert_eq!(s.next_pending("team".into()).await.unwrap(), None, "a suppressed message is not sent");

    let all = s.messages(10).await.unwrap();
    let k1 = all.iter().find(|m| m.key == "k1").unwrap();
    assert_eq!(k1.delivered_at, Some(later), "a delivered message is never re-marked");
    assert_eq!(k1.attempts, 2);
    assert_eq!(all.len(), 4);
    let k3 = all.iter().find(|m| m.key == "k3").unwrap();
    assert_eq!((k3.abandoned_at, k3.delivered_at), (Some(later), None));
    assert_eq!(k3.last_error.as_deref(), Some("receiver answered HTTP 400"));
    let k2 = all.iter().find(|m| m.key == "k2").unwrap();
    assert_eq!(k2.last_error.as_deref(), Some("template failed"), "a delivery's note is kept");
    let k4 = all.iter().find(|m| m.key == "k4").unwrap();
    assert_eq!((k4.suppressed_at, k4.last_error.as_deref()), (Some(later), Some("silenced by #1")));
}

pub(crate) async fn log_cursor_and_counts_are_written_together_and_add_up<S: Store>(s: &S) {
    let count =
        |minute, requests, s5xx| LogCount { minute, requests, classes: [0, requests - s5xx, 0, 0, s5xx], malformed: 1 };
    for (cursor, counts) in
        [("{\"offset\":10}", vec![count(60, 5, 1)]), ("{\"offset\":20}", vec![count(60, 3, 0), count(120, 4, 4)])]
    {
        s.record(Record {
            log: Some(LogRecord {
                source: "web".into(),
                cursors: vec![("access".into(), cursor.into())],
                counts,
                ..LogRecord::default()
            }),
            ..Record::default()
        })
        .await
        .unwrap();
    }
    assert_eq!(s.log_cursor("web".into(), "access".into()).await.unwrap().as_deref(), Some("{\"offset\":20}"));
    assert_eq!(s.log_cursor("web".into(), "error".into()).await.unwrap(), None);
    let t = s.log_totals("web".into()).await.unwrap();
    assert_eq!((t.requests, t.classes[4], t.classes[1], t.malformed), (12, 5, 7, 3));
    assert_eq!(s.log_totals("other".into()).await.unwrap().requests, 0);
}

pub(crate) async fn incidents_round_trip_with_their_timeline<S: Store>(s: &S) {
    let mut book = lookout_engine::IncidentBook::default();
    // 2026-11-25T14:00:00Z
    let t0 = 1_795_615_200_000;
    let opened = book.on_transition("shop", &transition(TransitionKind::Firing, "web", t0, "web@1")).unwrap();
    assert!(s.open_incident_groups().await.unwrap().is_empty(), "none before the first");
    s.record(with_incident(opened.clone())).await.unwrap();
    let joined = book.on_transition("shop", &transition(TransitionKind::Firing, "api", t0 + 5000, "api@2")).unwrap();
    s.record(with_incident(joined)).await.unwrap();
    assert_eq!(s.open_incident_groups().await.unwrap(), ["shop"]);

    let (live, seqs) = s.live_incidents().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "2026-11-25-shop-1");
    assert_eq!(live[0].alerts.len(), 2);
    assert_eq!(live[0].revision, 2);
    assert_eq!(seqs, vec![("2026-11-25".to_string(), "shop".to_string(), 1)]);

    for (target, alert, at) in [("web", "web@1", t0 + 60_000), ("api", "api@2", t0 + 70_000)] {
        let change = book.on_transition("shop", &transition(TransitionKind::Resolved, target, at, alert)).unwrap();
        s.record(with_incident(change)).await.unwrap();
    }
    let stored = s.incident("2026-11-25-shop-1".into()).await.unwrap().unwrap();
    assert_eq!(stored.status, lookout_core::IncidentStatus::Resolved);
    assert_eq!(stored.resolved_at, Some(Timestamp(t0 + 70_000)));
    assert!(s.live_incidents().await.unwrap().0.is_empty(), "a finished incident is not live");
    let kinds: Vec<&str> = s.timeline(stored.id.clone()).await.unwrap().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "first-failure",
            "first-failure",
            "alert-fired",
            "alert-fired",
            "alert-resolved",
            "alert-resolved",
            "resolved"
        ],
        "ordered by time"
    );
    assert_eq!(s.incidents(10).await.unwrap(), vec![stored]);
    assert_eq!(s.incident("nope".into()).await.unwrap(), None);
    assert!(s.open_incident_groups().await.unwrap().is_empty(), "a resolved incident is not open");
    for (group, target, at) in [("web", "site", t0 + 90_000), ("db", "pg", t0 + 95_000)] {
        let alert = format!("{target}@3");
        let opened = book.on_transition(group, &transition(TransitionKind::Firing, target, at, &alert));
        s.record(with_incident(opened.unwrap())).await.unwrap();
    }
    assert_eq!(s.open_incident_groups().await.unwrap(), ["db", "web"], "each open group once, by name");
    let open: Vec<String> = s.open_incidents(10).await.unwrap().into_iter().map(|i| i.group).collect();
    assert_eq!(open, ["db", "web"], "newest first");
    assert_eq!(s.open_incidents(1).await.unwrap().len(), 1);
}

pub(crate) async fn a_stale_incident_change_is_refused_with_everything_recorded_beside_it<S: Store>(s: &S) {
    let mut book = lookout_engine::IncidentBook::default();
    let t0 = 1_795_615_200_000;
    let opened = book.on_transition("site", &transition(TransitionKind::Firing, "site", t0, "site@1")).unwrap();
    s.record(with_incident(opened.clone())).await.unwrap();
    // Someone acknowledges it from the CLI...
    let ack = lookout_engine::incident::acknowledge(&opened.incident, "alice", Timestamp(t0 + 1000)).unwrap();
    s.record(with_incident(ack)).await.unwrap();
    // ...while the daemon resolves its stale copy, together with a transition and a message.
    let stale = book.on_transition("site", &transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")).unwrap();
    let record = Record {
        transitions: vec![transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")],
        messages: vec![msg("ops", "lookout/site@1/resolved")],
        ..with_incident(stale)
    };
    let err = s.record(record).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict { incident } if incident == "2026-11-25-site-1"), "{err}");
    assert!(s.transitions(None).await.unwrap().is_empty(), "nothing of the refused record was written");
    assert!(s.messages(10).await.unwrap().is_empty());
    let stored = s.incident(opened.incident.id.clone()).await.unwrap().unwrap();
    assert_eq!(stored.ack.as_ref().map(|a| a.by.as_str()), Some("alice"), "the acknowledgement stands");

    // Reloading and redoing the change works, and keeps the acknowledgement.
    let (live, seqs) = s.live_incidents().await.unwrap();
    book.restore(live, seqs);
    let redo = book.on_transition("site", &transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")).unwrap();
    s.record(with_incident(redo)).await.unwrap();
    let stored = s.incident(opened.incident.id.clone()).await.unwrap().unwrap();
    assert_eq!(stored.status, lookout_core::IncidentStatus::Resolved);
    assert_eq!(stored.ack.map(|a| a.by), Some("alice".into()));

    // A second open incident for a group is refused even from a writer that did not know of the first.
    let mut other = lookout_engine::IncidentBook::default();
    let a = other.on_transition("shop", &transition(TransitionKind::Firing, "web", t0, "web@1")).unwrap();
    s.record(with_incident(a)).await.unwrap();
    let mut unaware = lookout_engine::IncidentBook::default();
    unaware.restore(vec![], vec![("2026-11-25".into(), "shop".into(), 1)]);
    let b = unaware.on_transition("shop", &transition(TransitionKind::Firing, "api", t0, "api@1")).unwrap();
    assert_eq!(b.incident.id, "2026-11-25-shop-2");
    assert!(matches!(s.record(with_incident(b)).await, Err(StoreError::Conflict { .. })));
}

pub(crate) async fn an_alert_s_messages_are_found_by_its_id_only<S: Store>(s: &S) {
    let messages = vec![
        msg("ops", "lookout/a_b@1/firing"),
        msg("ops", "lookout/a_b@1/resolved"),
        msg("ops", "lookout/axb@1/firing"),
    ];
    s.record(Record { messages, ..Record::default() }).await.unwrap();
    let keys: Vec<String> = s.alert_messages("a_b@1".into()).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["lookout/a_b@1/firing", "lookout/a_b@1/resolved"], "`_` is not a wildcard");
}

pub(crate) async fn a_storm_is_one_transaction_and_its_incident_keeps_every_alert<S: Store>(s: &S) {
    let mut book = lookout_engine::IncidentBook::default();
    let t0 = 1_795_615_200_000;
    let storm = |book: &mut lookout_engine::IncidentBook, range: std::ops::Range<i64>| -> Vec<Record> {
        range
            .map(|i| {
                let (target, alert) = (format!("web-{i}"), format!("web-{i}@{i}"));
                let t = transition(TransitionKind::Firing, &target, t0 + i, &alert);
                let change = book.on_transition("shop", &t).unwrap();
                Record {
                    transitions: vec![t],
                    messages: vec![msg("ops", &lookout_core::key::firing(&alert))],
                    ..with_incident(change)
                }
            })
            .collect()
    };
    let first = storm(&mut book, 0..300);
    assert!(first[1..].iter().all(|r| r.incidents[0].incident.alerts.len() == 1), "each change carries its alert");
    s.record_all(first).await.unwrap();
    let stored = s.incident("2026-11-25-shop-1".into()).await.unwrap().unwrap();
    assert_eq!(stored.alerts.len(), 300);
    assert_eq!(stored.revision, 300);
    let order: Vec<String> = stored.alerts.iter().map(|a| a.target.clone()).collect();
    assert_eq!(order, (0..300).map(|i| format!("web-{i}")).collect::<Vec<_>>(), "in the order they joined");
    assert_eq!(s.incidents(5).await.unwrap(), vec![stored.clone()]);
    assert_eq!(s.live_incidents().await.unwrap().0, vec![stored.clone()]);
    let messages = s.incident_messages(stored.id.clone()).await.unwrap();
    assert_eq!(messages.len(), 300, "every alert's message in one read");
    assert_eq!(messages[299].key, "lookout/web-299@299/firing");

    // A batch with a stale change in the middle is refused whole: nothing of it is written.
    let mut next = storm(&mut book, 300..310);
    let mut stale = lookout_engine::IncidentBook::default();
    stale.restore(vec![stored.clone()], vec![]);
    let mut stale_record = storm(&mut stale, 310..311);
    stale_record[0].incidents[0].expected_revision = Some(1);
    next.insert(5, stale_record.remove(0));
    assert!(matches!(s.record_all(next).await, Err(StoreError::Conflict { .. })));
    assert_eq!(s.incident(stored.id.clone()).await.unwrap().unwrap(), stored, "the whole batch rolled back");
    assert_eq!(s.transitions(None).await.unwrap().len(), 300);
    assert_eq!(s.messages(1000).await.unwrap().len(), 300);
}

pub(crate) async fn results_and_counts_between_two_times<S: Store>(s: &S) {
    for (at, ok) in [(1000, true), (2000, false), (3000, false), (4000, true)] {
        s.record(Record { result: Some(result("site", at, ok)), ..Record::default() }).await.unwrap();
    }
    let rows = s.results_between("site".into(), Timestamp(2000), Timestamp(3000)).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.at.0).collect::<Vec<_>>(), [2000, 3000]);
    s.record(Record { result: Some(result("site", 86_400_000 + 5, true)), ..Record::default() }).await.unwrap();
    assert_eq!(s.daily_uptime("site".into(), Timestamp(0)).await.unwrap(), vec![(0, 2, 4), (1, 1, 1)]);
    let counts =
        (0..3).map(|m| LogCount { minute: 60 * m, requests: 10, classes: [0, 9, 0, 0, 1], malformed: 0 }).collect();
    s.record(Record {
        log: Some(LogRecord { source: "web".into(), cursors: vec![], counts, ..LogRecord::default() }),
        ..Record::default()
    })
    .await
    .unwrap();
    let between = s.log_counts_between("web".into(), Timestamp(60_500), Timestamp(130_000)).await.unwrap();
    assert_eq!(between.iter().map(|c| c.minute).collect::<Vec<_>>(), [60, 120]);
}

/// Pages read counts and percentiles, never every result: slices and nearest-rank percentiles as documented.
pub(crate) async fn results_are_aggregated_by_the_store<S: Store>(s: &S) {
    for (i, (at, ok)) in [(1000, true), (1500, false), (2500, true), (3999, true), (9000, true)].into_iter().enumerate()
    {
        let mut r = result("site", at, ok);
        r.latency_ms = 10.0 * (i + 1) as f64;
        s.record(Record { result: Some(r), ..Record::default() }).await.unwrap();
    }
    s.record(Record { result: Some(result("other", 1200, false)), ..Record::default() }).await.unwrap();
    let buckets = s.result_buckets("site".into(), Timestamp(1000), Timestamp(4000), 1000).await.unwrap();
    let got: Vec<(i64, u64, u64, f64)> =
        buckets.iter().map(|b| (b.start.0, b.total, b.ok, b.mean_latency_ms)).collect();
    assert_eq!(got, [(1000, 2, 1, 15.0), (2000, 1, 1, 30.0), (3000, 1, 1, 40.0)]);
    let p =
        s.latency_percentiles("site".into(), Timestamp(0), Timestamp(4000), vec![0.0, 0.5, 0.95, 1.0]).await.unwrap();
    assert_eq!(p, [Some(10.0), Some(30.0), Some(40.0), Some(40.0)]);
    let none = s.latency_percentiles("site".into(), Timestamp(5000), Timestamp(6000), vec![0.5]).await.unwrap();
    assert_eq!(none, [None]);
    assert!(s.result_buckets("nope".into(), Timestamp(0), Timestamp(9999), 1000).await.unwrap().is_empty());
}

pub(crate) async fn silences_are_added_listed_and_expired<S: Store>(s: &S) {
    let now = Timestamp::now();
    let silence = |hours: i64| NewSilence {
        matchers: vec!["group=shop".into()],
        starts_at: now,
        ends_at: Timestamp(now.0 + hours * 3_600_000),
        created_by: "alice".into(),
        comment: "deploy".into(),
        pause: hours > 1,
    };
    let a = s.add_silence(silence(2)).await.unwrap();
    let b = s.add_silence(silence(1)).await.unwrap();
    let active = s.silences(false, now).await.unwrap();
    assert_eq!(active.iter().map(|x| x.id).collect::<Vec<_>>(), [b, a], "newest first");
    assert_eq!(active.iter().map(|x| x.pause).collect::<Vec<_>>(), [false, true], "a pause is kept as one");
    assert!(active[0].active(now));
    assert!(s.expire_silence(a, now).await.unwrap());
    assert!(!s.expire_silence(a, now).await.unwrap(), "already expired");
    assert!(!s.expire_silence(999, now).await.unwrap());
    assert_eq!(s.silences(false, now).await.unwrap().len(), 1);
    let all = s.silences(true, now).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].expired_at, Some(now));
    assert!(!all[1].active(now));
    // Ended by time.
    assert!(s.silences(false, Timestamp(now.0 + 3 * 3_600_000)).await.unwrap().is_empty());
}

/// What a store holds survives closing and opening it again; pruning results keeps everything else.
pub(crate) async fn survives_reopen_and_prunes<H: Harness>(h: &H) {
    {
        let s = h.fresh().await;
        for at in [1000, 2000, 3000] {
            s.record(Record { result: Some(result("site", at, true)), ..Record::default() }).await.unwrap();
        }
        s.record(Record { messages: vec![msg("ops", "k")], ..Record::default() }).await.unwrap();
    }
    let s = h.reopen().await;
    assert_eq!(s.recent_results("site".into(), 10).await.unwrap().len(), 3);
    assert_eq!(s.prune_results(Timestamp(2500)).await.unwrap(), 2);
    assert_eq!(s.recent_results("site".into(), 10).await.unwrap().len(), 1);
    assert_eq!(s.messages(10).await.unwrap().len(), 1, "pruning results keeps the outbox");
}

const DAY: i64 = 86_400_000;
/// A UTC midnight (2024-10-04), so days and hours are aligned as in production.
const T0: i64 = 20_000 * DAY;

/// `days` of a result every `step_ms` from [`T0`] (1.5 s past each step), every 7th failing, latencies spread
/// from 5 to 200 ms.
fn history(target: &str, days: i64, step_ms: i64) -> Vec<Record> {
    (0..days * DAY / step_ms)
        .map(|i| {
            let mut r = result(target, T0 + i * step_ms + 1_500, i % 7 != 3);
            r.latency_ms = 5.0 + ((i * 37) % 196) as f64 + 0.25;
            // Successes as probes make them (no body kept), so the raw window's are packed.
            if r.ok {
                r.body_excerpt = None;
            }
            Record { result: Some(r), ..Record::default() }
        })
        .collect()
}

/// Everything a page, the status page and an impact read, at once.
async fn read_all<S: Store>(
    s: &S,
    from: i64,
    to: i64,
) -> (Vec<(i64, u64, u64)>, Vec<(i64, u64, u64, f64)>, Vec<(i64, u64, u64, f64)>) {
    let buckets = |v: Vec<crate::ResultBucket>| -> Vec<(i64, u64, u64, f64)> {
        v.into_iter().map(|b| (b.start.0, b.total, b.ok, (b.mean_latency_ms * 1e6).round() / 1e6)).collect()
    };
    (
        s.daily_uptime("api".into(), Timestamp(from)).await.unwrap(),
        buckets(s.result_buckets("api".into(), Timestamp(from), Timestamp(to), 3_600_000).await.unwrap()),
        buckets(s.result_buckets("api".into(), Timestamp(from), Timestamp(to), 300_000).await.unwrap()),
    )
}

/// Four days of results, then the roll-up of all but the last two: uptime, hourly and 5-minute charts answer
/// exactly as before, percentiles within a histogram bucket (min and max exactly); beyond the raw window the
/// failures and the first success after each stay readable; running it again changes nothing.
pub(crate) async fn reads_answer_the_same_across_the_roll_up<S: Store>(s: &S) {
    let now = T0 + 4 * DAY;
    s.record_all(history("api", 4, 60_000)).await.unwrap();
    s.record_all(history("other", 1, 600_000)).await.unwrap();
    let qs = vec![0.0, 0.5, 0.9, 0.95, 0.99, 1.0];
    let before = read_all(s, T0, now).await;
    let p_before = s.latency_percentiles("api".into(), Timestamp(T0), Timestamp(now), qs.clone()).await.unwrap();
    let old_before = s.results_between("api".into(), Timestamp(T0), Timestamp(T0 + DAY)).await.unwrap();
    let recent_before = s.recent_results("api".into(), 5).await.unwrap();
    assert_eq!(before.0.len(), 4);
    assert_eq!(before.2.len(), 4 * 288);

    let horizons = crate::Horizons {
        pack: Timestamp(now - 3_600_000),
        raw: Timestamp(now - 2 * DAY),
        detail: Timestamp(now - 14 * DAY),
        hourly: Timestamp(now - 400 * DAY),
    };
    let done = s.roll_up(horizons).await.unwrap();
    assert_eq!(done.rolled, 2 * 1440 + 144, "two days of \"api\", all of \"other\"");
    // Every 7th fails, and the result after each failure is its recovery: 2 of 7 stay raw.
    assert!(done.deleted > 2 * 1440 * 5 / 7 - 5, "{done:?}");
    // The raw window's successes older than an hour (not the first after a failure) are packed.
    assert!(done.packed > 2 * 1440 * 5 / 7 - 60, "{done:?}");
    assert_eq!(read_all(s, T0, now).await, before, "uptime and charts read the same from the aggregates");
    let p_after = s.latency_percentiles("api".into(), Timestamp(T0), Timestamp(now), qs.clone()).await.unwrap();
    for (b, a) in p_before.iter().zip(&p_after) {
        let (b, a) = (b.unwrap_or(f64::NAN), a.unwrap_or(f64::NAN));
        assert!((a / b - 1.0).abs() < 0.095, "percentiles within a histogram bucket: {p_before:?} vs {p_after:?}");
    }
    assert_eq!((p_after[0], p_after[5]), (p_before[0], p_before[5]), "min and max are exact");
    // Inside the raw window: exact.
    let recent = s.latency_percentiles("api".into(), Timestamp(now - DAY), Timestamp(now), qs.clone()).await.unwrap();
    assert!(recent.iter().all(|p| p.is_some_and(|v| (v * 4.0).fract() == 0.0)), "raw values: {recent:?}");

    let old_after = s.results_between("api".into(), Timestamp(T0), Timestamp(T0 + DAY)).await.unwrap();
    let expected: Vec<_> = old_before
        .iter()
        .enumerate()
        .filter(|(i, r)| !r.ok || i.checked_sub(1).is_some_and(|p| !old_before[p].ok))
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(old_after.len(), 206 * 2, "each failure and its recovery");
    assert_eq!(old_after, expected, "kept rows are returned whole");
    assert_eq!(s.recent_results("api".into(), 5).await.unwrap(), recent_before);

    assert_eq!(s.roll_up(horizons).await.unwrap(), crate::RollUp::default(), "nothing left to count");
    assert_eq!(read_all(s, T0, now).await, before, "a second run counts nothing twice");

    // A result that arrives late (written from memory after a store outage) is counted by the next run.
    s.record(Record { result: Some(result("api", T0 + 1_000, true)), ..Record::default() }).await.unwrap();
    assert_eq!(s.roll_up(horizons).await.unwrap().rolled, 1);
    let uptime = s.daily_uptime("api".into(), Timestamp(T0)).await.unwrap();
    assert_eq!((uptime[0].1, uptime[0].2), (before.0[0].1 + 1, before.0[0].2 + 1));
}

/// Raw rows go after the raw horizon, failures and 5-minute aggregates after the detail horizon (hourly data then
/// answers finer questions by the hour), hourly aggregates after theirs.
pub(crate) async fn each_form_of_result_is_kept_for_its_own_horizon<S: Store>(s: &S) {
    let now = T0 + 10 * DAY;
    s.record_all(history("api", 10, 600_000)).await.unwrap();
    let horizons = crate::Horizons {
        pack: Timestamp(now - 3_600_000),
        raw: Timestamp(now - 2 * DAY),
        detail: Timestamp(now - 7 * DAY),
        hourly: Timestamp(now - 9 * DAY),
    };
    s.roll_up(horizons).await.unwrap();
    let uptime = s.daily_uptime("api".into(), Timestamp(T0)).await.unwrap();
    assert_eq!(uptime.iter().map(|d| d.0).collect::<Vec<_>>(), (T0 / DAY + 1..T0 / DAY + 10).collect::<Vec<_>>());
    assert!(uptime.iter().all(|d| d.2 == 144), "{uptime:?}");
    let at = |from: i64, to: i64| async move {
        s.results_between("api".into(), Timestamp(from), Timestamp(to)).await.unwrap()
    };
    assert!(at(T0, now - 7 * DAY - 1).await.is_empty(), "failures past the detail horizon are gone");
    let kept = at(now - 7 * DAY, now - 2 * DAY - 1).await;
    assert!(kept.iter().any(|r| !r.ok));
    // Each success kept follows a failure (the first one's may be just before the range).
    assert!(kept.windows(2).all(|w| w[0].ok != w[1].ok), "failures and their recoveries: {kept:?}");
    assert_eq!(at(now - 2 * DAY, now).await.len(), 2 * 144, "the raw window is whole");
    // Day 2 is past the detail horizon: per-minute questions are answered per hour.
    let minutes = s
        .result_buckets("api".into(), Timestamp(T0 + 2 * DAY), Timestamp(T0 + 2 * DAY + 3_599_999), 60_000)
        .await
        .unwrap();
    assert_eq!(minutes.iter().map(|b| (b.start.0 - T0 - 2 * DAY, b.total)).collect::<Vec<_>>(), [(0, 6)]);
    // Day 5 is inside it: per 5 minutes (one result in every other one).
    let minutes = s
        .result_buckets("api".into(), Timestamp(T0 + 5 * DAY), Timestamp(T0 + 5 * DAY + 3_599_999), 60_000)
        .await
        .unwrap();
    assert_eq!(minutes.len(), 6);
}

fn result(target: &str, at: i64, ok: bool) -> ResultRow {
    ResultRow {
        target: target.into(),
        at: Timestamp(at),
        ok,
        status: Some(if ok { 200 } else { 500 }),
        latency_ms: 12.5,
        error: None,
        failed_conditions: if ok { vec![] } else { vec!["[STATUS] (500) == 200".into()] },
        timings: Timings { connect_ms: Some(0.2), total_ms: 12.5, ..Timings::default() },
        body_excerpt: Some("<h1>hi</h1>".into()),
    }
}

fn firing(target: &str) -> Transition {
    Transition {
        target: target.into(),
        kind: TransitionKind::Firing,
        at: Timestamp(3000),
        alert_id: Some(format!("{target}@3000")),
        failing_since: Some(Timestamp(1000)),
        reasons: vec!["[STATUS] (500) == 200".into()],
        consecutive: 3,
        diagnosis: None,
    }
}

/// A message lookout sent while its store could not be written is recorded as delivered — never pending, so it is
/// not sent again — and one it could not deliver yet keeps its attempts and next attempt.
pub(crate) async fn a_message_sent_from_memory_is_recorded_with_its_fate<S: Store>(store: &S) {
    let delivered = SentFromMemory {
        created_at: Timestamp(1_000),
        attempts: 1,
        next_attempt_at: Timestamp(1_000),
        delivered_at: Some(Timestamp(1_500)),
        last_error: None,
        abandoned_at: None,
        suppressed_at: None,
    };
    let failing = SentFromMemory {
        attempts: 2,
        next_attempt_at: Timestamp(9_000),
        delivered_at: None,
        last_error: Some("HTTP 503".into()),
        ..delivered.clone()
    };
    let messages = vec![
        NewMessage { sent: Some(delivered), ..msg("ops", "k/delivered") },
        NewMessage { sent: Some(failing), ..msg("ops", "k/failing") },
    ];
    store.record(Record { messages, ..Record::default() }).await.unwrap();
    let head = store.next_pending("ops".into()).await.unwrap().expect("the undelivered one is pending");
    assert_eq!((head.key.as_str(), head.attempts, head.next_attempt_at), ("k/failing", 2, Timestamp(9_000)));
    assert_eq!(head.last_error.as_deref(), Some("HTTP 503"));
    let all = store.messages(10).await.unwrap();
    let sent = all.iter().find(|m| m.key == "k/delivered").unwrap();
    assert_eq!((sent.delivered_at, sent.created_at, sent.attempts), (Some(Timestamp(1_500)), Timestamp(1_000), 1));
    assert!(store.was_delivered("ops".into(), "k/delivered".into()).await.unwrap());
}

fn msg(channel: &str, key: &str) -> NewMessage {
    NewMessage {
        channel: channel.into(),
        key: key.into(),
        payload: format!("{{\"key\":\"{key}\"}}"),
        ..NewMessage::default()
    }
}

fn transition(kind: TransitionKind, target: &str, at: i64, alert: &str) -> Transition {
    Transition {
        target: target.into(),
        kind,
        at: Timestamp(at),
        alert_id: Some(alert.into()),
        failing_since: Some(Timestamp(at - 20_000)),
        reasons: vec![],
        consecutive: 2,
        diagnosis: None,
    }
}

fn with_incident(change: IncidentChange) -> Record {
    Record { incidents: vec![change], ..Record::default() }
}

/// A log batch's window entry is written with the batch; entries that slid out (before `keep_from`) are deleted;
/// the entries come back oldest first, per source.
pub(crate) async fn log_window_entries_are_kept_while_in_the_window<S: Store>(s: &S) {
    let write = |source: &str, entry: Option<(i64, &str)>, keep_from: i64| Record {
        log: Some(LogRecord {
            source: source.into(),
            window: Some(LogWindowWrite { entry: entry.map(|(sec, e)| (sec, e.to_string())), keep_from }),
            ..LogRecord::default()
        }),
        ..Record::default()
    };
    s.record(write("web", Some((100, "a")), 90)).await.unwrap();
    s.record(write("web", Some((100, "b")), 90)).await.unwrap();
    s.record(write("other", Some((101, "x")), 0)).await.unwrap();
    s.record(write("web", Some((105, "c")), 95)).await.unwrap();
    assert_eq!(s.log_window("web".into(), 0).await.unwrap(), ["a", "b", "c"]);
    assert_eq!(s.log_window("web".into(), 101).await.unwrap(), ["c"]);
    // A tick with nothing to add still deletes what slid out.
    s.record(write("web", None, 101)).await.unwrap();
    assert_eq!(s.log_window("web".into(), 0).await.unwrap(), ["c"]);
    assert_eq!(s.log_window("other".into(), 0).await.unwrap(), ["x"]);
    assert!(s.log_window("nobody".into(), 0).await.unwrap().is_empty());
}

fn agent(name: &str, location: &str) -> crate::AgentInfo {
    crate::AgentInfo {
        name: name.into(),
        location: location.into(),
        version: "0.1.0".into(),
        config_hash: "abc".into(),
        started_at: Timestamp(1_000),
        mounts: Vec::new(),
    }
}

/// Agents are listed after their first heartbeat; the leader lease goes to one holder at a time, is renewed by
/// it, refused to others until it expires or is released, and then taken over.
pub(crate) async fn agents_beat_and_one_of_them_leads<S: Store>(s: &S) {
    use std::time::Duration;
    assert!(s.agents().await.unwrap().is_empty());
    s.heartbeat(agent("b", "eu")).await.unwrap();
    s.heartbeat(agent("a", "local")).await.unwrap();
    let mounts = vec!["/".to_string(), "/srv/data".to_string()];
    s.heartbeat(crate::AgentInfo { config_hash: "def".into(), mounts: mounts.clone(), ..agent("a", "local") })
        .await
        .unwrap();
    // Another process (another start) under a live agent's name is refused, and changes nothing.
    let twin = crate::AgentInfo { started_at: Timestamp(2_000), config_hash: "twin".into(), ..agent("a", "eu") };
    assert!(matches!(s.heartbeat(twin).await, Err(StoreError::NameTaken { name }) if name == "a"));
    // Leaving frees the name at once (only the process that beat can leave).
    s.heartbeat(agent("c", "eu")).await.unwrap();
    let c2 = crate::AgentInfo { started_at: Timestamp(2_000), ..agent("c", "eu") };
    s.leave(c2.clone()).await.unwrap();
    assert!(
        matches!(s.heartbeat(c2.clone()).await, Err(StoreError::NameTaken { .. })),
        "another start cannot leave for it"
    );
    s.leave(agent("c", "eu")).await.unwrap();
    s.heartbeat(c2).await.unwrap();
    let agents: Vec<crate::AgentRow> = s.agents().await.unwrap().into_iter().filter(|a| a.info.name != "c").collect();
    assert_eq!(agents.iter().map(|a| a.info.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(agents[0].info.config_hash, "def", "a heartbeat refreshes what the agent says");
    assert_eq!((&agents[0].info.mounts, &agents[1].info.mounts), (&mounts, &Vec::new()), "its machine's mounts too");
    let now = Timestamp::now().0;
    assert!(agents.iter().all(|a| (a.last_seen.0 - now).abs() < 60_000 && !a.leader), "{agents:?}");

    let lease = |holder: &str, ttl_ms: u64| {
        s.acquire_lease(crate::LEADER_LEASE.into(), holder.into(), Duration::from_millis(ttl_ms))
    };
    let first = lease("a", 60_000).await.unwrap();
    assert_eq!(first.holder, "a");
    assert_eq!(lease("b", 60_000).await.unwrap(), first, "held: refused to another");
    let renewed = lease("a", 120_000).await.unwrap();
    assert_eq!(renewed.holder, "a");
    assert!(renewed.expires_at.0 > first.expires_at.0, "renewed by its holder");
    let leaders: Vec<_> = s.agents().await.unwrap().into_iter().filter(|a| a.leader).map(|a| a.info.name).collect();
    assert_eq!(leaders, ["a"]);

    s.release_lease(crate::LEADER_LEASE.into(), "b".into()).await.unwrap();
    assert_eq!(lease("b", 60_000).await.unwrap().holder, "a", "only the holder releases");
    s.release_lease(crate::LEADER_LEASE.into(), "a".into()).await.unwrap();
    assert_eq!(lease("b", 1).await.unwrap().holder, "b", "released: the next one takes it");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(lease("a", 60_000).await.unwrap().holder, "a", "expired: taken over");
    // Two agents racing for a free lease: exactly one wins.
    s.release_lease(crate::LEADER_LEASE.into(), "a".into()).await.unwrap();
    let (x, y) = tokio::join!(lease("a", 60_000), lease("b", 60_000));
    assert_eq!(x.unwrap().holder, y.unwrap().holder);
}

/// A status page's readings every 10 s for 3 days: read per hour, they are the same raw, per minute and per hour
/// (means, minima, maxima, counts); the per-hour rows older than the hourly horizon are gone.
pub(crate) async fn readings_read_the_same_across_the_roll_up_and_go_at_their_horizon<S: Store>(s: &S) {
    let now = T0 + 3 * DAY;
    let mut records = Vec::new();
    for i in 0..(3 * 8640) {
        let at = T0 + i * 10_000;
        let busy = (i % 7) as f64;
        let readings = vec![
            crate::Reading { target: "apache".into(), at: Timestamp(at), name: "BUSY_WORKERS".into(), value: busy },
            crate::Reading {
                target: "apache".into(),
                at: Timestamp(at),
                name: "WORKER_SATURATION".into(),
                value: busy / 10.0,
            },
        ];
        records.push(Record { readings, ..Record::default() });
    }
    for chunk in records.chunks(2000) {
        s.record_all(chunk.to_vec()).await.unwrap();
    }
    let read = || s.readings_between("apache".into(), Timestamp(T0), Timestamp(now), 3_600_000);
    let before = read().await.unwrap();
    assert_eq!(before.len(), 2 * 72, "two names, 72 hours");
    let first = &before[0];
    assert_eq!((first.name.as_str(), first.start, first.n), ("BUSY_WORKERS", Timestamp(T0), 360));
    assert_eq!((first.min, first.max), (0.0, 6.0));
    assert!(s.readings_between("nobody".into(), Timestamp(T0), Timestamp(now), 60_000).await.unwrap().is_empty());

    // Raw after a day, per minute after two, per hour after that; nothing past 2.5 days back is kept.
    let horizons = crate::Horizons {
        pack: Timestamp(now - 3_600_000),
        raw: Timestamp(now - DAY),
        detail: Timestamp(now - 2 * DAY),
        hourly: Timestamp(T0 + 12 * 3_600_000),
    };
    s.roll_up(horizons).await.unwrap();
    let after = read().await.unwrap();
    let kept: Vec<&crate::ReadingBucket> = before.iter().filter(|b| b.start.0 >= T0 + 12 * 3_600_000).collect();
    assert_eq!(after.len(), kept.len(), "the first 12 hours are past the hourly horizon");
    for (a, b) in after.iter().zip(kept) {
        assert_eq!((a.name.as_str(), a.start, a.n, a.min, a.max), (b.name.as_str(), b.start, b.n, b.min, b.max));
        assert!((a.mean - b.mean).abs() < 1e-9, "{a:?} vs {b:?}");
    }
    // Per minute, the rolled-up day reads as one point a minute.
    let minutes =
        s.readings_between("apache".into(), Timestamp(now - 2 * DAY), Timestamp(now - DAY - 1), 60_000).await.unwrap();
    assert_eq!(minutes.len(), 2 * 1440);
    assert!(minutes.iter().all(|b| b.n == 6));
    // Running it again changes nothing.
    s.roll_up(horizons).await.unwrap();
    assert_eq!(read().await.unwrap(), after);
}
