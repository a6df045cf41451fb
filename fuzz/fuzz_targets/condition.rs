//! Any text as a condition: parsing must never panic, an error must point inside the text, and a condition
//! that parses must evaluate (never fail) against a probe observation and a log window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_core::{Observation, ProbeKind, Timestamp};
use lookout_engine::Condition;
use lookout_engine::condition::LogView;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the condition; the rest, if any, is the body it is evaluated against.
    let (source, body) = text.split_once('\n').unwrap_or((text, r#"{"status":"UP","items":[1,2,{"a":null}]}"#));
    match Condition::parse(source) {
        Err(e) => {
            assert!(e.start <= source.len(), "error starts outside the text: {e:?}");
            assert!(e.len >= 1);
            let _ = e.pointer(source);
        }
        Ok(c) => {
            let mut obs = Observation::new("t", ProbeKind::Http, Timestamp(1_000_000));
            obs.connected = true;
            obs.status = Some(200);
            obs.body = body.to_string();
            obs.headers.push(("content-type".into(), "application/json".into()));
            obs.timings.total_ms = 12.5;
            let _ = c.evaluate(&obs);
            let _ = c.evaluate(&Observation::new("t", ProbeKind::Tcp, Timestamp(0)));
            let view = LogView {
                requests: 100,
                errors_5xx: 7,
                min_requests: 10,
                error_log: body.to_string(),
                clients_affected: 3,
                latency_ms: Some([1.0, 50.0, 900.0]),
            };
            let _ = c.evaluate_log(&view);
            let _ = c.evaluate_log(&LogView::default());
            let _ = c.to_string();
        }
    }
});
