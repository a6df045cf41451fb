//! Properties of the condition language: parsing and evaluating never panic, whatever the input.

use super::*;
use lookout_core::{Observation, ProbeKind, Timestamp};
use proptest::prelude::*;

fn any_observation() -> impl Strategy<Value = Observation> {
    (proptest::option::of(0u16..1000), ".{0,64}", any::<bool>(), proptest::option::of(any::<i64>())).prop_map(
        |(status, body, connected, cert)| {
            let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
            o.status = status;
            o.body = body;
            o.connected = connected;
            o.cert_not_after = cert.map(Timestamp);
            o
        },
    )
}

proptest! {
    /// Parsing never panics, whatever the input; errors point inside the input.
    #[test]
    fn parse_never_panics(src in ".{0,80}") {
        match Condition::parse(&src) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.start <= src.len());
                let _ = e.pointer(&src);
            }
        }
    }

    /// Conditions built from the grammar's pieces parse and evaluate without panicking on any observation.
    #[test]
    fn evaluate_never_panics(
        lhs in prop::sample::select(vec!["[STATUS]", "[BODY]", "[BODY].a[0].b", "len([BODY])", "has([BODY].x)",
            "[RESPONSE_TIME]", "[CONNECTED]", "[CERTIFICATE_EXPIRATION]", "[HEADER].X-Y"]),
        op in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "contains", "not contains", "matches"]),
        rhs in prop::sample::select(vec!["200", "\"x\"", "72h", "true", "any(1, \"a\")", "pat(*a*)", "1%", "\"^a.*\""]),
        obs in any_observation(),
    ) {
        let src = format!("{lhs} {op} {rhs}");
        if let Ok(c) = Condition::parse(&src) {
            let _ = c.evaluate(&obs);
            let _ = judge(std::slice::from_ref(&c), &obs);
        }
    }
}
