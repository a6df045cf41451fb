//! The holding store's bookkeeping, without a store: what stays in memory, and what a record is written with.
//! (Real faults — a full disk, a lock, a read-only or corrupted file — are in the integration tests,
//! `store_faults.rs`.)

use lookout_core::{AlertState, Timestamp, Transition, TransitionKind};
use lookout_store::{NewMessage, Record, ResultRow};

use super::*;

fn result(target: &str, at: i64) -> Record {
    Record {
        result: Some(ResultRow {
            target: target.into(),
            at: Timestamp(at),
            ok: true,
            status: Some(200),
            latency_ms: 1.0,
            error: None,
            failed_conditions: Vec::new(),
            timings: Default::default(),
            body_excerpt: None,
        }),
        state: Some((target.into(), AlertState::default())),
        ..Record::default()
    }
}

fn message(key: &str) -> NewMessage {
    NewMessage { channel: "ops".into(), key: key.into(), payload: "{}".into(), ..NewMessage::default() }
}

#[test]
fn bounding_drops_only_superseded_results_and_keeps_every_transition_and_message() {
    let mut held = Held::default();
    for i in 0..(MAX_HELD as i64 + 10) {
        held.journal.push_back(Entry::Record(result(if i % 2 == 0 { "a" } else { "b" }, i)));
    }
    let transition = Transition {
        target: "a".into(),
        kind: TransitionKind::Firing,
        at: Timestamp(5),
        alert_id: Some("a@5".into()),
        failing_since: None,
        reasons: Vec::new(),
        consecutive: 2,
        diagnosis: None,
    };
    let essential = Record { transitions: vec![transition], messages: vec![message("k")], ..result("a", 5) };
    held.journal.insert(5, Entry::Record(essential));
    bound(&mut held);
    assert!(held.journal.len() <= MAX_HELD / 2 + 2, "bounded: {}", held.journal.len());
    assert_eq!(held.dropped_results as usize + held.journal.len(), MAX_HELD + 11, "every drop is counted");
    let records: Vec<&Record> = held
        .journal
        .iter()
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(records.iter().any(|r| !r.transitions.is_empty() && !r.messages.is_empty()), "the transition stays");
    // The newest record of each target stays, so the stored alert state ends up the latest.
    let last = |t: &str| records.iter().rev().find(|r| r.state.as_ref().is_some_and(|(x, _)| x == t)).cloned();
    assert_eq!(last("a").and_then(|r| r.result.clone()).map(|r| r.at), Some(Timestamp(MAX_HELD as i64 + 8)));
    assert_eq!(last("b").and_then(|r| r.result.clone()).map(|r| r.at), Some(Timestamp(MAX_HELD as i64 + 9)));
}

#[test]
fn a_message_sent_from_memory_is_written_with_its_fate_and_then_forgotten() {
    let mut held = Held { next_id: -1, ..Held::default() };
    let record =
        Record { messages: vec![message("lookout/a@1/firing"), message("lookout/b@1/firing")], ..Record::default() };
    remember(&mut held, &record);
    assert_eq!(held.messages.iter().map(|m| m.msg.id).collect::<Vec<_>>(), [-1, -2], "negative ids, in order");
    held.messages[0].msg.delivered_at = Some(Timestamp(42));
    held.messages[0].msg.attempts = 1;
    let written = with_fates(&held, record.clone());
    let fate = written.messages[0].sent.clone().expect("the delivered one carries its fate");
    assert_eq!((fate.delivered_at, fate.attempts), (Some(Timestamp(42)), 1));
    assert_eq!(written.messages[1].sent.as_ref().and_then(|s| s.delivered_at), None, "the other is still pending");
    // Being sent: the record waits, so a delivery is never written as pending.
    held.messages[1].sending_until = Some(tokio::time::Instant::now() + Duration::from_secs(5));
    assert!(record_is_being_sent(&held, &record));
    forget_messages(&mut held, &record);
    assert!(held.messages.is_empty());
}

/// A commit that is late but lands (another process held SQLite's write lock for 2.5 s, within its busy timeout)
/// holds the record for that while and writes it, without an alert about the store: a busy machine pages nobody.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_write_that_lands_is_held_briefly_without_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let cfg = lookout_config::Config::parse(
        "[store]\npath = \"lookout.sqlite\"\n",
        &dir.path().join("lookout.toml"),
        &|_| None,
    )
    .unwrap();
    let store = Arc::new(lookout_store::open(&cfg.store).await.unwrap());
    let (holding, _redo) = HoldingStore::new(store.clone(), Health::default(), Arc::new(Metrics::new()));
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                  c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(2.5)\nc.execute('COMMIT')\n";
    let mut locker = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on every machine the tests run on)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(locker.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    holding.record(result("a", 1)).await.unwrap();
    assert!(holding.is_holding(), "the write took longer than SLOW_WRITE: held");
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(holding.clone().write_held(stop_rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while holding.is_holding() {
        assert!(
            holding.held().self_alert.is_none(),
            "no alert while the store is only slow: {:?}",
            holding.held().error
        );
        assert!(tokio::time::Instant::now() < deadline, "the late write landed and holding ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = locker.wait();
    assert!(holding.held().self_alert.is_none());
    assert_eq!(store.recent_results("a".into(), 5).await.unwrap().len(), 1, "written once");
    assert!(store.messages(10).await.unwrap().is_empty(), "no message about the store");
}

/// A copy in memory whose record is being written is handed to no sender: once the write commits, the store has
/// the message pending too, and a sender handed both sent it twice (CI: the self-alert's resolve, 7 ms apart).
#[tokio::test]
async fn a_message_whose_record_is_being_written_is_handed_to_no_sender() {
    use lookout_store::OutboxStore;
    let store = Arc::new(lookout_store::AnyStore::in_memory().unwrap());
    let (holding, _redo) = HoldingStore::new(store, Health::default(), Arc::new(Metrics::new()));
    let record = Record { messages: vec![message("lookout/x@1/resolved")], ..Record::default() };
    {
        let mut held = holding.held();
        held.holding = true;
        remember(&mut held, &record);
        held.journal.push_back(Entry::Record(record.clone()));
    }
    let head = holding.next_pending("ops".into()).await.unwrap();
    assert_eq!(head.map(|m| m.key), Some("lookout/x@1/resolved".to_string()), "sendable from memory");

    flag_writing(&mut holding.held(), &record, true);
    assert_eq!(holding.next_pending("ops".into()).await.unwrap(), None, "not while its record is written");
    assert!(holding.pending_in_group("ops".into(), String::new()).await.unwrap().is_empty());

    // The write failed: sendable again.
    flag_writing(&mut holding.held(), &record, false);
    assert!(holding.next_pending("ops".into()).await.unwrap().is_some());
}

/// Once the journal is written and the self-alert's resolve is on its way, the alert does not fire again — not by
/// the slow-store escalation (CI: the same firing message made anew, sent after its resolve on one channel and
/// suppressed with it as a flap on the other) — and a store that refuses again then is a new spell, a new alert.
#[tokio::test]
async fn the_self_alert_fires_once_per_spell_and_not_again_while_its_resolve_is_written() {
    let store = Arc::new(lookout_store::AnyStore::in_memory().unwrap());
    let (holding, _redo) = HoldingStore::new(store, Health::default(), Arc::new(Metrics::new()));
    *holding.channels.lock().unwrap() = vec!["ops".into(), "pager".into()];
    let firing_keys = |held: &Held| -> Vec<String> {
        held.messages.iter().filter(|m| m.msg.key.ends_with("/firing")).map(|m| m.msg.key.clone()).collect()
    };
    let first = {
        let mut held = holding.held();
        held.holding = true;
        held.since = Some(Timestamp(Timestamp::now().0 - 60_000));
        held.error = Some("database is locked".into());
        holding.fire_self_alert(&mut held);
        assert_eq!(firing_keys(&held).len(), 2, "one firing message per channel");
        let first = held.self_alert.as_ref().map(|a| a.id.clone()).unwrap();
        // The store took the journal: the records, and with them the copies in memory, are gone.
        held.journal.clear();
        held.messages.clear();
        holding.recovered(&mut held);
        assert_eq!(held.messages.len(), 2, "the resolve, one per channel");
        assert!(held.messages.iter().all(|m| m.msg.key.ends_with("/resolved")));
        assert!(held.holding, "holding lasts until the resolve is written");
        first
    };
    holding.escalate();
    assert!(firing_keys(&holding.held()).is_empty(), "no firing message again while the resolve is on its way");
    // The store refuses again: a new spell, a new alert (its own keys), since now.
    let mut held = holding.held();
    holding.fire_self_alert(&mut held);
    let second = held.self_alert.as_ref().map(|a| a.id.clone()).unwrap();
    assert_ne!(second, first);
    assert_eq!(firing_keys(&held).len(), 2);
    assert!(firing_keys(&held).iter().all(|k| k.contains(&second)));
    assert!(held.since.is_some_and(|s| Timestamp::now().since(s) < Duration::from_secs(5)), "since now");
}
