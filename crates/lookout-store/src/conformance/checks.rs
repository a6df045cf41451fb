//! Conformance checks of what several agents sharing checks need from the store: location states, forwarded
//! events, check leases (listed in [`super::suite!`] like every other check).

use std::time::Duration;

use lookout_core::{AlertState, Phase, Timestamp, TransitionKind};

use super::{msg, transition, with_incident};
use crate::{CheckClaim, LocationState, Record, Store, StoreError};

fn location(target: &str, location: &str, at: i64, ok: bool) -> LocationState {
    LocationState {
        target: target.into(),
        location: location.into(),
        state: AlertState {
            phase: if ok { Phase::Ok } else { Phase::Firing },
            consecutive_failures: u32::from(!ok) * 3,
            since: Timestamp(at - 5_000),
            alert_id: (!ok).then(|| format!("{target}@{at}")),
            last_reason: (!ok).then(|| "[STATUS] (503) == 200".into()),
            ..AlertState::default()
        },
        at: Timestamp(at),
        ok,
        latency_ms: 12.25,
        status: ok.then_some(200),
        reason: (!ok).then(|| "connection refused".into()),
    }
}

/// Every field comes back as written; a later write of a (target, location) replaces the earlier one and leaves
/// other locations alone; forgetting a target deletes its location states and its check leases, nothing else.
pub(crate) async fn location_states_are_upserted_and_forgotten_with_their_target<S: Store>(s: &S) {
    let eu = location("site", "eu", 10_000, false);
    let us = location("site", "us", 10_500, true);
    let other = location("api", "eu", 9_000, true);
    s.record(Record { locations: vec![eu.clone(), us.clone(), other.clone()], ..Record::default() }).await.unwrap();
    assert_eq!(s.location_states().await.unwrap(), [other.clone(), eu, us.clone()], "by target, then location");

    let eu_later = LocationState { latency_ms: 3.5, ..location("site", "eu", 20_000, true) };
    s.record(Record { locations: vec![eu_later.clone()], ..Record::default() }).await.unwrap();
    assert_eq!(s.location_states().await.unwrap(), [other.clone(), eu_later, us], "the latest write wins");

    let claim = |targets: &[&str]| CheckClaim {
        agent: "a".into(),
        location: "eu".into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        want: 2,
        ttl: Duration::from_secs(60),
    };
    assert_eq!(s.claim_checks(claim(&["api", "site"])).await.unwrap(), ["api", "site"]);
    s.record(Record { forget: vec!["site".into()], ..Record::default() }).await.unwrap();
    assert_eq!(s.location_states().await.unwrap(), [other], "a forgotten target's location states are gone");
    let holders = s.check_holders().await.unwrap();
    assert_eq!(holders, [("api".to_string(), "eu".to_string(), "a".to_string())], "and its check lease");
}

/// Events forwarded by two agents come back oldest first with increasing ids; a record deletes the events it
/// consumed in its own transaction — a record refused for a conflict deletes none — and ids are never reused.
pub(crate) async fn forwarded_events_are_consumed_exactly_once_with_their_record<S: Store>(s: &S) {
    s.forward("a".into(), vec![]).await.unwrap();
    assert!(s.forwarded(10).await.unwrap().is_empty());
    s.forward("a".into(), vec!["{\"n\":1}".into(), "{\"n\":2}".into()]).await.unwrap();
    s.forward("b".into(), vec!["{\"n\":3}".into()]).await.unwrap();
    let oldest = s.forwarded(2).await.unwrap();
    let seen: Vec<(&str, &str)> = oldest.iter().map(|f| (f.agent.as_str(), f.body.as_str())).collect();
    assert_eq!(seen, [("a", "{\"n\":1}"), ("a", "{\"n\":2}")]);
    assert!(oldest[0].id < oldest[1].id);
    let all = s.forwarded(10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!((all[2].agent.as_str(), all[2].body.as_str()), ("b", "{\"n\":3}"));
    assert!(all[1].id < all[2].id);

    // A record refused for a conflict (a stale incident change, as in the incident check) consumes nothing.
    let mut book = lookout_engine::IncidentBook::default();
    let t0 = 1_795_615_200_000;
    let opened = book.on_transition("site", &transition(TransitionKind::Firing, "site", t0, "site@1")).unwrap();
    s.record(with_incident(opened.clone())).await.unwrap();
    let ack = lookout_engine::incident::acknowledge(&opened.incident, "alice", Timestamp(t0 + 1000)).unwrap();
    s.record(with_incident(ack)).await.unwrap();
    let stale = book.on_transition("site", &transition(TransitionKind::Resolved, "site", t0 + 9000, "site@1")).unwrap();
    let refused = Record {
        consumed: vec![all[0].id, all[1].id],
        locations: vec![location("site", "eu", t0 + 9000, true)],
        ..with_incident(stale)
    };
    let err = s.record(refused).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(s.forwarded(10).await.unwrap(), all, "a refused record consumed nothing");
    assert!(s.location_states().await.unwrap().is_empty(), "nor wrote its location states");

    // Consumed together with what handling them produced, in one transaction.
    let handled =
        Record { consumed: vec![all[0].id, all[1].id], messages: vec![msg("ops", "k/forwarded")], ..Record::default() };
    s.record(handled).await.unwrap();
    assert_eq!(s.forwarded(10).await.unwrap(), [all[2].clone()]);
    assert_eq!(s.messages(10).await.unwrap().len(), 1);
    // Consuming the newest one too and forwarding again: the new event's id is larger (never reused).
    s.record_all(vec![Record { consumed: vec![all[2].id], ..Record::default() }]).await.unwrap();
    s.forward("b".into(), vec!["{\"n\":4}".into()]).await.unwrap();
    let next = s.forwarded(10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].id > all[2].id, "{next:?} after {all:?}");
}

fn claim(agent: &str, location: &str, targets: &[&str], want: usize, ttl_ms: u64) -> CheckClaim {
    CheckClaim {
        agent: agent.into(),
        location: location.into(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        want,
        ttl: Duration::from_millis(ttl_ms),
    }
}

/// Check leases: each target at a location goes to one agent at a time, in target order, up to each agent's
/// share; surplus is given up (the greatest names) and taken by others; an expired lease is taken over; an agent
/// never gets a target it does not know and gives up those it no longer knows; locations are independent.
pub(crate) async fn check_leases_give_each_target_to_one_agent_per_location<S: Store>(s: &S) {
    const MIN: u64 = 60_000;
    let all = ["t1", "t2", "t3", "t4"];
    let holders = || async { s.check_holders().await.unwrap() };
    let held_by = |rows: &[(String, String, String)], agent: &str, at: &str| -> Vec<String> {
        rows.iter().filter(|(_, l, h)| l == at && h == agent).map(|(t, _, _)| t.clone()).collect()
    };
    assert!(holders().await.is_empty());

    assert_eq!(s.claim_checks(claim("a", "eu", &all, 3, MIN)).await.unwrap(), ["t1", "t2", "t3"]);
    assert_eq!(s.claim_checks(claim("b", "eu", &all, 2, MIN)).await.unwrap(), ["t4"], "only what is left");
    // a's share shrinks (a third agent, say): it gives up its greatest target, which b then takes.
    assert_eq!(s.claim_checks(claim("a", "eu", &all, 2, MIN)).await.unwrap(), ["t1", "t2"]);
    assert_eq!(s.claim_checks(claim("b", "eu", &all, 2, MIN)).await.unwrap(), ["t3", "t4"]);
    // A heartbeat renews and changes nothing else.
    assert_eq!(s.claim_checks(claim("a", "eu", &all, 2, MIN)).await.unwrap(), ["t1", "t2"]);
    let rows = holders().await;
    assert_eq!(
        (held_by(&rows, "a", "eu"), held_by(&rows, "b", "eu")),
        (vec!["t1".into(), "t2".into()], vec!["t3".into(), "t4".into()])
    );
    assert_eq!(rows.len(), 4, "one holder per target: {rows:?}");

    // Another location is another set of leases.
    assert_eq!(s.claim_checks(claim("x", "us", &["t1", "t9"], 5, MIN)).await.unwrap(), ["t1", "t9"]);

    // A lease that expires (ttl 0: the agent stopped beating) is taken over by another agent.
    assert!(s.claim_checks(claim("a", "eu", &all, 2, 0)).await.unwrap().is_empty(), "held for no time");
    assert!(held_by(&holders().await, "a", "eu").is_empty(), "an expired lease is not listed");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(s.claim_checks(claim("b", "eu", &all, 4, MIN)).await.unwrap(), all);

    // c knows only t5: it is never given t1..t4 (held anyway) and b, which does not know t5, never gets t5.
    assert_eq!(s.claim_checks(claim("c", "eu", &["t5"], 0, MIN)).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.claim_checks(claim("b", "eu", &all, 10, MIN)).await.unwrap(), all, "t5 is free, but not b's");
    // b stops knowing t4 (its configuration changed): it gives it up, and c, which knows it, takes it.
    assert_eq!(s.claim_checks(claim("b", "eu", &["t1", "t2", "t3"], 10, MIN)).await.unwrap(), ["t1", "t2", "t3"]);
    assert_eq!(s.claim_checks(claim("c", "eu", &["t4", "t5"], 2, MIN)).await.unwrap(), ["t4", "t5"]);

    // A clean stop gives everything up at once; only that agent's, only at that location.
    s.release_checks("b".into(), "eu".into()).await.unwrap();
    let rows = holders().await;
    assert!(held_by(&rows, "b", "eu").is_empty(), "{rows:?}");
    assert_eq!(held_by(&rows, "c", "eu"), ["t4", "t5"]);
    assert_eq!(held_by(&rows, "x", "us"), ["t1", "t9"]);
    assert_eq!(s.claim_checks(claim("a", "eu", &all, 3, MIN)).await.unwrap(), ["t1", "t2", "t3"], "free at once");
    let expected: Vec<(String, String, String)> = [
        ("t1", "eu", "a"),
        ("t1", "us", "x"),
        ("t2", "eu", "a"),
        ("t3", "eu", "a"),
        ("t4", "eu", "c"),
        ("t5", "eu", "c"),
        ("t9", "us", "x"),
    ]
    .iter()
    .map(|(t, l, h)| (t.to_string(), l.to_string(), h.to_string()))
    .collect();
    assert_eq!(holders().await, expected, "ordered by target, location");
}
