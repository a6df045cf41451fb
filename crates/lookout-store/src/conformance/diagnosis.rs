//! Conformance checks of the diagnosis requests between the leader and the agents (listed in [`super::suite!`]
//! like every other check), and one each backend's tests call with its own way to age a request (the store's
//! clock cannot be moved through [`Store`]).

use lookout_core::Timestamp;

use crate::{DiagnosisRequest, Store};

/// Requests come back to their own agent only, oldest first, once; `since` round-trips, known or not; an answer
/// is `None` until given, then the text as written (`null` too), and `None` for a request the store never had.
pub(crate) async fn diagnosis_requests_are_taken_once_by_their_agent_and_answered<S: Store>(s: &S) {
    assert!(s.take_diagnosis_requests("a".into()).await.unwrap().is_empty(), "nothing asked yet");
    let since = Timestamp(1_795_615_200_000);
    let a1 = s.request_diagnosis("a".into(), "site".into(), Some(since)).await.unwrap();
    let b1 = s.request_diagnosis("b".into(), "api".into(), None).await.unwrap();
    let a2 = s.request_diagnosis("a".into(), "shop".into(), None).await.unwrap();
    assert!(a1 < b1 && b1 < a2, "ids increase: {a1}, {b1}, {a2}");

    let taken = s.take_diagnosis_requests("a".into()).await.unwrap();
    assert_eq!(
        taken,
        [
            DiagnosisRequest { id: a1, target: "site".into(), since: Some(since) },
            DiagnosisRequest { id: a2, target: "shop".into(), since: None },
        ],
        "a's, oldest first"
    );
    assert!(s.take_diagnosis_requests("a".into()).await.unwrap().is_empty(), "taken once");
    assert_eq!(
        s.take_diagnosis_requests("b".into()).await.unwrap(),
        [DiagnosisRequest { id: b1, target: "api".into(), since: None }]
    );
    assert!(s.take_diagnosis_requests("b".into()).await.unwrap().is_empty());

    assert_eq!(s.diagnosis_answer(a1).await.unwrap(), None, "not answered yet");
    let answer = r#"{"verdict":"PHP Fatal error in index.php:3","evidence":["…"]}"#;
    s.answer_diagnosis(a1, answer.into()).await.unwrap();
    assert_eq!(s.diagnosis_answer(a1).await.unwrap().as_deref(), Some(answer));
    assert_eq!(s.diagnosis_answer(a2).await.unwrap(), None, "only the request answered");
    s.answer_diagnosis(b1, "null".into()).await.unwrap();
    assert_eq!(s.diagnosis_answer(b1).await.unwrap().as_deref(), Some("null"), "nothing found is an answer too");
    assert_eq!(s.diagnosis_answer(a2 + 1000).await.unwrap(), None, "an unknown request");
    s.answer_diagnosis(a2 + 1000, "null".into()).await.unwrap();
    // A later request of an agent that took its earlier ones is taken as usual.
    let a3 = s.request_diagnosis("a".into(), "site".into(), None).await.unwrap();
    assert!(a3 > a2);
    assert_eq!(s.take_diagnosis_requests("a".into()).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [a3]);
}

/// A request nobody took within 60 s is not given out any more (the leader stopped waiting); one written more
/// than an hour ago is deleted with the next request, answered or not, and one younger than that is kept.
/// `age(id, ms)` moves a request's `requested_at` back by `ms`.
pub(crate) async fn stale_diagnosis_requests_are_not_taken_and_old_ones_deleted<S: Store>(
    s: &S,
    age: impl AsyncFn(i64, i64),
) {
    const MIN: i64 = 60_000;
    let stale = s.request_diagnosis("a".into(), "site".into(), None).await.unwrap();
    let fresh = s.request_diagnosis("a".into(), "shop".into(), None).await.unwrap();
    age(stale, MIN + 1_000).await;
    age(fresh, MIN - 10_000).await;
    let taken: Vec<i64> = s.take_diagnosis_requests("a".into()).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(taken, [fresh], "the one untaken for over a minute is left");

    s.answer_diagnosis(fresh, "null".into()).await.unwrap();
    age(fresh, 61 * MIN).await;
    age(stale, 58 * MIN).await;
    assert_eq!(s.diagnosis_answer(fresh).await.unwrap().as_deref(), Some("null"), "kept until the next request");
    let next = s.request_diagnosis("b".into(), "api".into(), None).await.unwrap();
    assert_eq!(s.diagnosis_answer(fresh).await.unwrap(), None, "over an hour old: deleted");
    s.answer_diagnosis(stale, "{}".into()).await.unwrap();
    assert_eq!(s.diagnosis_answer(stale).await.unwrap().as_deref(), Some("{}"), "59 minutes old: kept");
    assert_eq!(s.take_diagnosis_requests("b".into()).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [next]);
}
