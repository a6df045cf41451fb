use std::sync::Arc;
use std::time::Duration;

use lookout_core::{Clock, Event, LogBatch, ManualClock, Phase, Timestamp, TransitionKind, Unreadable};

use super::*;
use crate::condition::Condition;
use crate::engine::{Engine, TargetPolicy};

fn engine(clock: &Arc<ManualClock>, window: Duration) -> Engine {
    let mut engine = Engine::new(clock.clone());
    let rules = LogRules {
        fire_when: vec![
            Condition::parse("[5XX_RATIO] > 5%").unwrap(),
            Condition::parse("[ERROR_LOG] matches \"PHP Fatal error\"").unwrap(),
        ],
        window,
        min_requests: 10,
    };
    engine.add_log(
        "apache",
        rules,
        TargetPolicy {
            failure_threshold: 1,
            success_threshold: 1,
            pending_for: Duration::ZERO,
            ..TargetPolicy::default()
        },
    );
    engine
}

fn batch(clock: &ManualClock, requests: u64, e5xx: u64) -> Event {
    Event::Log(LogBatch {
        target: "apache".into(),
        at: clock.now(),
        requests,
        status_5xx: e5xx,
        failing_clients: (0..e5xx).collect(),
        ..LogBatch::default()
    })
}

fn blind(clock: &ManualClock, since: Timestamp) -> Event {
    Event::Log(LogBatch {
        target: "apache".into(),
        at: clock.now(),
        unreadable: Some(Unreadable {
            since,
            reason: "cannot read /var/log/apache2/access.log: Permission denied (os error 13)".into(),
        }),
        ..LogBatch::default()
    })
}

#[test]
fn a_source_that_cannot_read_for_longer_than_its_window_fails_with_the_reason_and_resolves_when_it_reads() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let mut e = engine(&clock, Duration::from_secs(3));
    let since = clock.now();
    // Shorter than MIN_BLIND (the window is shorter still): only warned about by the source.
    for _ in 0..9 {
        let out = e.observe(&blind(&clock, since)).unwrap();
        assert!(out.verdict.ok && out.transitions.is_empty() && out.state.error.is_none(), "{out:?}");
        clock.advance(Duration::from_secs(1));
    }
    clock.advance(Duration::from_secs(1));
    let out = e.observe(&blind(&clock, since)).unwrap();
    assert_eq!(out.transitions.len(), 1);
    let t = &out.transitions[0];
    assert_eq!(t.kind, TransitionKind::Firing);
    assert_eq!(
        t.reasons,
        [format!(
            "cannot read /var/log/apache2/access.log: Permission denied (os error 13) since {}",
            since.to_rfc3339_seconds()
        )]
    );
    assert_eq!(out.state.phase, Phase::Firing);
    assert_eq!(out.state.status(), "error");
    assert_eq!(out.state.error.as_deref(), Some(t.reasons[0].as_str()));
    assert_eq!(out.state.last_reason, out.state.error);

    clock.advance(Duration::from_secs(1));
    let out = e.observe(&blind(&clock, since)).unwrap();
    assert!(out.transitions.is_empty(), "still firing, not fired again");
    clock.advance(Duration::from_secs(1));
    let out = e.observe(&batch(&clock, 20, 0)).unwrap();
    assert_eq!(out.transitions[0].kind, TransitionKind::Resolved, "reading again resolves it");
    assert_eq!(out.state.status(), "ok");
    assert_eq!(out.state.error, None);
}

#[test]
fn a_long_window_waits_as_long_before_calling_the_source_blind() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let mut e = engine(&clock, Duration::from_secs(60));
    let since = clock.now();
    clock.advance(Duration::from_secs(59));
    assert!(e.observe(&blind(&clock, since)).unwrap().verdict.ok);
    clock.advance(Duration::from_secs(1));
    assert!(!e.observe(&blind(&clock, since)).unwrap().verdict.ok);
}

/// Runs a firing 5xx burst through one engine, "restarts" into another with the alert state and (if `restore`)
/// the persisted window entries, and returns the transitions of a quiet batch 2 s later.
fn restart(restore: bool) -> (Arc<ManualClock>, Engine, Vec<TransitionKind>) {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let mut before = engine(&clock, Duration::from_secs(30));
    let mut persisted: Vec<WindowEntry> = Vec::new();
    let mut keep_from = i64::MIN;
    let mut observe = |e: &mut Engine, ev: Event| {
        let out = e.observe(&ev).unwrap();
        let change = out.log_window.clone().unwrap();
        persisted.extend(change.entry);
        keep_from = change.keep_from;
        out
    };
    observe(&mut before, batch(&clock, 100, 0));
    clock.advance(Duration::from_secs(1));
    let out = observe(&mut before, batch(&clock, 20, 20));
    assert_eq!(out.transitions[0].kind, TransitionKind::Firing);
    clock.advance(Duration::from_secs(1));
    observe(&mut before, batch(&clock, 0, 0));
    assert_eq!(persisted.len(), 2, "a tick adds nothing to persist: {persisted:?}");
    let state = before.state("apache").unwrap().clone();

    clock.advance(Duration::from_secs(2));
    let mut after = engine(&clock, Duration::from_secs(30));
    after.restore("apache", state);
    if restore {
        let json = serde_json::to_string(&persisted).unwrap();
        let back: Vec<WindowEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, persisted);
        after.restore_log_window("apache", back.into_iter().filter(|e| e.sec >= keep_from).collect());
    }
    let out = after.observe(&batch(&clock, 1, 0)).unwrap();
    let kinds = out.transitions.iter().map(|t| t.kind).collect();
    (clock, after, kinds)
}

#[test]
fn a_restart_inside_a_firing_window_keeps_the_alert_firing_until_the_window_slides_past() {
    let (_, _, kinds) = restart(false);
    assert_eq!(kinds, [TransitionKind::Resolved], "without its window, a restart resolves the alert (the bug)");

    let (clock, mut after, kinds) = restart(true);
    assert!(kinds.is_empty(), "the restored window still holds the burst: {kinds:?}");
    assert_eq!(after.state("apache").unwrap().phase, Phase::Firing);
    for _ in 0..24 {
        clock.advance(Duration::from_secs(1));
        let out = after.observe(&batch(&clock, 1, 0)).unwrap();
        assert!(out.transitions.is_empty(), "{:?}", out.verdict);
    }
    // The burst was at the 2nd second of 30: it slides out 31 s after the first batch.
    clock.advance(Duration::from_secs(3));
    let out = after.observe(&batch(&clock, 1, 0)).unwrap();
    assert_eq!(out.transitions[0].kind, TransitionKind::Resolved, "{:?}", out.verdict);
}

#[test]
fn restored_entries_older_than_the_window_are_dropped_and_error_lines_come_back() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    let mut e = engine(&clock, Duration::from_secs(10));
    let now = clock.now().as_millis() / 1000;
    e.restore_log_window(
        "apache",
        vec![
            WindowEntry { sec: now - 20, requests: 50, status_5xx: 50, ..WindowEntry::default() },
            WindowEntry { sec: now - 5, error_lines: vec!["PHP Fatal error: boom".into()], ..WindowEntry::default() },
        ],
    );
    let out = e.observe(&batch(&clock, 0, 0)).unwrap();
    assert_eq!(out.verdict.failed_conditions.len(), 1, "{:?}", out.verdict);
    assert!(out.verdict.failed_conditions[0].starts_with("[ERROR_LOG] (PHP Fatal error: boom)"), "{:?}", out.verdict);
    e.restore_log_window("nobody", vec![WindowEntry::default()]);
}

/// The distinct failing clients of the window: a client failing in several batches and seconds counts once, and
/// leaves the count only when its last failing second slides out.
#[test]
fn clients_affected_counts_each_client_once_while_any_of_its_seconds_is_in_the_window() {
    let rules = LogRules { fire_when: Vec::new(), window: Duration::from_secs(10), min_requests: 1 };
    let mut window = LogWindow::default();
    let at = |sec: i64| Timestamp(1_795_615_200_000 + sec * 1000);
    let failing = |clients: &[u64]| LogBatch {
        target: "apache".into(),
        requests: clients.len() as u64,
        status_5xx: clients.len() as u64,
        failing_clients: clients.to_vec(),
        ..LogBatch::default()
    };
    let seen = |window: &mut LogWindow, sec: i64, clients: &[u64]| {
        let now_sec = at(sec).as_millis().div_euclid(1000);
        window.add(&WindowEntry::of(&failing(clients), now_sec));
        window.view(&rules, now_sec).clients_affected
    };
    assert_eq!(seen(&mut window, 0, &[1, 2, 2]), 2, "a client twice in one batch counts once");
    assert_eq!(seen(&mut window, 0, &[2, 3]), 3, "and twice in one second");
    assert_eq!(seen(&mut window, 5, &[1]), 3, "and in two seconds");
    assert_eq!(seen(&mut window, 10, &[]), 1, "second 0 slid out: only 1, seen again at 5, is left");
    assert_eq!(seen(&mut window, 15, &[4]), 1, "second 5 slid out too");
    assert_eq!(seen(&mut window, 16, &[4, 5]), 2);
}
