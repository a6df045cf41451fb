//! Examples of the condition language: what parses, what each condition says about an observation or a log
//! window, and what every parse error tells the user.

use super::*;
use lookout_core::{Observation, ProbeError, ProbeErrorKind, ProbeKind, Timestamp};

fn obs(status: u16, body: &str) -> Observation {
    let mut o = Observation::new("t", ProbeKind::Http, Timestamp(1_000_000));
    o.connected = true;
    o.status = Some(status);
    o.body = body.to_string();
    o.timings.total_ms = 120.4;
    o.headers.push(("content-type".into(), "application/json; charset=utf-8".into()));
    o
}

fn check(cond: &str, o: &Observation) -> (bool, String) {
    Condition::parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}")).evaluate(o)
}

fn err(cond: &str) -> String {
    match Condition::parse(cond) {
        Ok(_) => panic!("{cond:?} should not parse"),
        Err(e) => e.message,
    }
}

#[test]
fn status_and_response_time() {
    let o = obs(500, "");
    assert_eq!(check("[STATUS] == 200", &o), (false, "[STATUS] (500) == 200".into()));
    assert!(check("[STATUS] != 200", &o).0);
    assert!(check("[STATUS] >= 500", &o).0);
    assert!(!check("[STATUS] < 500", &o).0);
    assert!(check("[RESPONSE_TIME] < 500", &o).0);
    assert!(check("[RESPONSE_TIME] <= 120", &o).0);
    assert!(check("[RESPONSE_TIME] < 1s", &o).0);
    assert!(!check("[RESPONSE_TIME] > 500ms", &o).0);
    assert!(check("200 < [STATUS]", &o).0, "placeholder may be on the right");
}

#[test]
fn body_contains_catches_php_fatal_error_served_with_200() {
    let o = obs(200, "<b>Fatal error</b>: Uncaught Error: Failed opening required 'inc/settings.phpp'");
    let (ok, desc) = check("[BODY] not contains \"Fatal error\"", &o);
    assert!(!ok);
    assert!(desc.starts_with("[BODY] (<b>Fatal error</b>: Uncaught"), "{desc}");
    assert!(desc.ends_with("not contains \"Fatal error\""), "{desc}");
    assert!(check("[BODY] contains \"Fatal\"", &o).0);
    assert!(check("[BODY] matches \"Failed opening required '[^']+'\"", &o).0);
    assert!(!check("[BODY] matches \"^OK$\"", &o).0);
}

#[test]
fn json_paths_len_has() {
    let o = obs(200, r#"{"status":"UP","data":{"items":[{"id":7},{"id":8}],"n":2.5},"errors":null}"#);
    assert!(check("[BODY].status == UP", &o).0);
    assert!(check("[BODY].status == \"UP\"", &o).0);
    assert!(check("[BODY].data.items[1].id == 8", &o).0);
    assert!(check("[BODY].data.n > 2", &o).0);
    assert!(check("len([BODY].data.items) == 2", &o).0);
    assert!(check("len([BODY].status) == 2", &o).0);
    assert!(check("has([BODY].data) == true", &o).0);
    assert!(check("has([BODY].nope) == false", &o).0);
    assert_eq!(
        check("[BODY].data.items[5].id == 1", &o),
        (false, "[BODY].data.items[5].id (<no such JSON path>) == 1".into())
    );
    let not_json = obs(200, "hello");
    assert_eq!(check("[BODY].a == 1", &not_json), (false, "[BODY].a (<body is not JSON>) == 1".into()));
}

#[test]
fn any_pat_header_connected() {
    let o = obs(204, "service ready");
    assert!(check("[STATUS] == any(200, 204)", &o).0);
    assert!(!check("[STATUS] == any(200, 201)", &o).0);
    assert!(check("[STATUS] != any(500, 502, 503)", &o).0);
    assert!(check("[BODY] == pat(*ready*)", &o).0);
    assert!(check("[BODY] == pat(service*)", &o).0);
    assert!(!check("[BODY] == pat(*down*)", &o).0);
    assert!(check("[HEADER].Content-Type contains \"json\"", &o).0);
    assert!(!check("[HEADER].X-Missing == 1", &o).0);
    assert!(check("[CONNECTED] == true", &o).0);
}

#[test]
fn certificate_expiration_compares_durations() {
    let mut o = obs(200, "");
    o.cert_not_after = Some(Timestamp(1_000_000 + 2 * 86_400_000));
    assert!(!check("[CERTIFICATE_EXPIRATION] > 72h", &o).0);
    assert!(check("[CERTIFICATE_EXPIRATION] > 24h", &o).0);
    let plain = obs(200, "");
    assert_eq!(
        check("[CERTIFICATE_EXPIRATION] > 72h", &plain),
        (false, "[CERTIFICATE_EXPIRATION] (<no certificate>) > 72h".into())
    );
}

#[test]
fn missing_values_fail_every_comparison() {
    let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
    o.error = Some(ProbeError { kind: ProbeErrorKind::Refused, message: "connection refused".into() });
    assert_eq!(check("[STATUS] == 200", &o), (false, "[STATUS] (<no response>) == 200".into()));
    assert!(!check("[STATUS] != 200", &o).0);
    assert!(!check("[BODY] not contains \"x\"", &o).0);
    assert!(check("[CONNECTED] == false", &o).0);
}

#[test]
fn judge_combines_conditions_and_errors() {
    let conds: Vec<Condition> = ["[STATUS] == 200", "[BODY] not contains \"Fatal error\""]
        .iter()
        .map(|c| Condition::parse(c).unwrap())
        .collect();
    let v = judge(&conds, &obs(500, "Fatal error"));
    assert!(!v.ok);
    assert_eq!(v.failed_conditions.len(), 2);
    assert!(judge(&conds, &obs(200, "fine")).ok);

    let mut refused = Observation::new("t", ProbeKind::Tcp, Timestamp(0));
    refused.error = Some(ProbeError { kind: ProbeErrorKind::Refused, message: "connection refused".into() });
    let expect_closed = [Condition::parse("[CONNECTED] == false").unwrap()];
    assert!(judge(&expect_closed, &refused).ok, "a port expected closed passes");
    let v = judge(&[], &refused);
    assert!(!v.ok, "an error alone fails the check");
    assert_eq!(v.reason().as_deref(), Some("refused: connection refused"));
}

#[test]
fn every_parse_error_says_what_to_do() {
    assert_eq!(
        err("[STATUS] 200"),
        "no operator found: use one of ==, !=, <, <=, >, >=, contains, not contains, matches"
    );
    assert_eq!(
        err("[STAUS] == 200"),
        "unknown placeholder [STAUS] (did you mean [STATUS]?); known: [STATUS], [RESPONSE_TIME], [BODY], [CONNECTED], [CERTIFICATE_EXPIRATION], [DNS_RCODE], [PROTOCOL], [HEADER], [REQUESTS], [5XX], [5XX_RATIO], [ERROR_LOG], [CLIENTS_AFFECTED], [LATENCY_P50], [LATENCY_P95], [LATENCY_P99], and the readings of status pages and the host ([BUSY_WORKERS], [FS_USED_RATIO], …: README, \"Server status pages\")"
    );
    assert_eq!(err("== 200"), "nothing on the left of \"==\": put a placeholder such as [STATUS] there");
    assert_eq!(err("[STATUS] =="), "nothing on the right of \"==\": put the expected value there");
    assert_eq!(err("[BODY] contains \"abc"), "unterminated string: add the closing \"");
    assert_eq!(err("[BODY] matches \"(unclosed\""), "invalid regular expression: error: unclosed group");
    assert_eq!(
        err("[BODY] matches 42"),
        "matches needs a quoted regular expression on the right, e.g. matches \"^OK\""
    );
    assert_eq!(err("[STATUS] < \"abc\""), "< compares numbers or durations, but \"abc\" is neither");
    assert_eq!(err("[STATUS] > true"), "> compares numbers or durations, but \"true\" is neither");
    assert_eq!(
        err("[CERTIFICATE_EXPIRATION] > 72"),
        "[CERTIFICATE_EXPIRATION] compares with a duration such as 72h or 30d"
    );
    assert_eq!(
        err("[RESPONSE_TIME] < 10parsecs"),
        "\"10parsecs\" is neither a number nor a duration (unknown unit (use ms, s, m, h, d or w))"
    );
    assert_eq!(
        err("lenn([BODY]) == 1"),
        "unknown function lenn(...) (did you mean len(...)?): use len, has, any or pat"
    );
    assert_eq!(err("len([BODY] == 1"), "unbalanced brackets or parentheses");
    assert_eq!(err("200 == 200"), "neither side is a placeholder: compare something observed, e.g. [STATUS] == 200");
    assert_eq!(err("any(1,2) == [STATUS]"), "any(...) and pat(...) go on the right-hand side");
    assert_eq!(err("[STATUS] < any(1,2)"), "any(...) and pat(...) only work with == and !=, not <");
    assert_eq!(err("[STATUS] == any()"), "any() needs at least one value");
    assert_eq!(err("[STATUS].x == 1"), "[STATUS] takes no path; only [BODY] and [HEADER] do");
    assert_eq!(err("[HEADER] == 1"), "[HEADER] needs a header name, e.g. [HEADER].Content-Type");
    assert_eq!(err("[BODY].a[x] == 1"), "array index must be a non-negative integer, e.g. [0]");
    assert_eq!(err("[BODY]x == 1"), "expected .key or [index] after [BODY], e.g. [BODY].data.items[0]");
    assert_eq!(err("[BODY].a. == 1"), "empty key in JSON path");
    assert_eq!(err("[STATUS == 1"), "unbalanced brackets or parentheses");
}

#[test]
fn error_pointer_marks_the_offending_text() {
    let src = "[STAUS] == 200";
    let e = Condition::parse(src).unwrap_err();
    assert_eq!(e.pointer(src), "    [STAUS] == 200\n    ^^^^^^^");
    let src = "[STATUS] == 200 && [BODY] matches \"(\"";
    let e = Condition::parse(src).unwrap_err();
    assert!(e.message.contains("neither a number") || e.message.contains("regular"), "{}", e.message);
}

#[test]
fn log_conditions_fire_when_they_hold() {
    let view = LogView {
        requests: 30,
        errors_5xx: 10,
        min_requests: 10,
        error_log: "PHP Fatal error:  Uncaught Error: Failed opening required '/x/settings.phpp'".into(),
        clients_affected: 3,
        latency_ms: Some([12.0, 480.0, 1900.0]),
    };
    let c = |s: &str| Condition::parse(s).unwrap();
    assert!(c("[LATENCY_P95] > 300").evaluate_log(&view).0);
    assert_eq!(c("[LATENCY_P99] < 1s").evaluate_log(&view), (false, "[LATENCY_P99] (1900) < 1s".into()));
    assert_eq!(
        c("[LATENCY_P50] > 1").evaluate_log(&LogView::default()).1,
        "[LATENCY_P50] (<no request durations in the log (add %D to the LogFormat)>) > 1"
    );
    assert_eq!(c("[5XX_RATIO] > 5%").evaluate_log(&view), (true, "[5XX_RATIO] (33.3%) > 5%".into()));
    assert!(!c("[5XX_RATIO] > 50%").evaluate_log(&view).0);
    assert!(c("[ERROR_LOG] matches \"PHP (Fatal|Parse) error\"").evaluate_log(&view).0);
    assert!(c("[CLIENTS_AFFECTED] >= 3").evaluate_log(&view).0);
    assert!(c("[5XX] == 10").evaluate_log(&view).0);
    let quiet = LogView { requests: 5, errors_5xx: 5, min_requests: 10, ..LogView::default() };
    assert_eq!(
        c("[5XX_RATIO] > 5%").evaluate_log(&quiet),
        (false, "[5XX_RATIO] (<too few requests>) > 5%".into()),
        "below min_requests the ratio does not fire"
    );
    let v = judge_log(&[c("[5XX_RATIO] > 5%"), c("[ERROR_LOG] contains \"Parse error\"")], &view);
    assert!(!v.ok);
    assert_eq!(v.failed_conditions, vec!["[5XX_RATIO] (33.3%) > 5%".to_string()]);
    assert!(judge_log(&[c("[5XX_RATIO] > 50%")], &view).ok);
    assert!(c("[5XX_RATIO] > 1%").uses_log_placeholders() && !c("[5XX_RATIO] > 1%").uses_probe_placeholders());
    // The reason quotes the message that matched, not the warning logged before it.
    let both =
        LogView { error_log: "PHP Warning:  require_once(x): Failed\nPHP Fatal error:  Uncaught Error".into(), ..view };
    let (fired, reason) = c("[ERROR_LOG] matches \"PHP (Fatal|Parse) error\"").evaluate_log(&both);
    assert!(fired && reason.starts_with("[ERROR_LOG] (PHP Fatal error:  Uncaught Error) matches"), "{reason}");
    let (_, reason) = c("[ERROR_LOG] contains \"Uncaught\"").evaluate_log(&both);
    assert!(reason.starts_with("[ERROR_LOG] (PHP Fatal error:"), "{reason}");
    assert!(c("[STATUS] == 200").uses_probe_placeholders());
}

#[test]
fn non_ascii_input_is_an_error_not_a_panic() {
    assert!(Condition::parse("é<1").is_err());
    assert!(Condition::parse("[BODY] contains \"ü>ä\"").is_ok());
    assert!(Condition::parse("[BODY]ü == 1").is_err());
}

#[test]
fn operators_inside_quotes_are_text() {
    let o = obs(200, "a == b");
    assert!(check("[BODY] contains \"a == b\"", &o).0);
    assert!(check("[BODY] contains \"==\"", &o).0);
}

#[test]
fn unknown_operators_are_parse_errors_not_always_failing_conditions() {
    // `===` used to parse as `==` against the string "= 200": a condition that could never hold.
    for (cond, op, meant) in [
        ("[STATUS] === 200", "===", Some("==")),
        ("[STATUS] !== 200", "!==", Some("!=")),
        ("[STATUS] => 200", "=>", Some(">=")),
        ("[STATUS] =< 200", "=<", Some("<=")),
        ("[STATUS] <> 200", "<>", Some("!=")),
        ("[STATUS] = 200", "=", Some("==")),
        ("[STATUS] >== 200", ">==", None),
        ("[STATUS] ! 200", "!", None),
    ] {
        let e = Condition::parse(cond).expect_err(cond);
        assert!(e.message.starts_with(&format!("unknown operator {op:?}")), "{cond}: {}", e.message);
        if let Some(m) = meant {
            assert!(e.message.contains(&format!("did you mean {m}?")), "{cond}: {}", e.message);
        }
        assert_eq!((e.start, e.len), (9, op.len()), "{cond}: points at the operator");
    }
    assert!(err("[STATUS] == =200").starts_with("unexpected '='"));
    assert!(err("[STATUS] != !200").starts_with("unexpected '!'"));
    // Operators inside quotes and brackets are text, and the known ones still parse, with or without spaces.
    let o = obs(200, "a => b");
    assert!(check("[BODY] == \"a => b\"", &o).0);
    assert!(check("[STATUS]==200", &o).0);
    assert!(check("[STATUS]>=200", &o).0);
    assert!(check("[STATUS] == any(200, 204)", &o).0);
}

#[test]
fn dns_rcode_protocol_and_address_literals() {
    let mut dns = Observation::new("t", ProbeKind::Dns, Timestamp(0));
    dns.connected = true;
    dns.dns_rcode = Some(0);
    dns.body = "127.0.0.7".into();
    assert!(check("[DNS_RCODE] == NOERROR", &dns).0);
    assert_eq!(check("[DNS_RCODE] == NXDOMAIN", &dns), (false, "[DNS_RCODE] (NOERROR) == NXDOMAIN".into()));
    assert!(check("[BODY] == 127.0.0.7", &dns).0, "an address literal is a word, not a bad number");
    assert!(!check("[BODY] == 127.0.0.1", &dns).0);
    assert!(check("[BODY] == \"127.0.0.7\"", &dns).0);
    assert!(check("[BODY] contains ::1", &Observation { body: "::1".into(), ..dns.clone() }).0);

    let silent = Observation::new("t", ProbeKind::Dns, Timestamp(0));
    assert_eq!(check("[DNS_RCODE] == NOERROR", &silent), (false, "[DNS_RCODE] (<no DNS response>) == NOERROR".into()));

    let mut h2 = Observation::new("t", ProbeKind::Http, Timestamp(0));
    h2.protocol = Some(lookout_core::HttpVersion::Http2);
    assert!(check("[PROTOCOL] == HTTP/2", &h2).0);
    assert!(!check("[PROTOCOL] == HTTP/1.1", &h2).0);
    let plain = Observation::new("t", ProbeKind::Http, Timestamp(0));
    assert_eq!(check("[PROTOCOL] == HTTP/2", &plain), (false, "[PROTOCOL] (<no HTTP response>) == HTTP/2".into()));
    assert_eq!(
        err("[DNS_CODE] == NOERROR").split(';').next(),
        Some("unknown placeholder [DNS_CODE] (did you mean [DNS_RCODE]?)")
    );
    assert!(err("[BODY] == 127.0.0.1.5").contains("neither a number nor a duration"));
}

#[test]
fn status_readings_are_placeholders_and_fire_when_rules_fail_an_observation_when_they_hold() {
    let mut o = Observation::new("apache-status", ProbeKind::Status, Timestamp(0));
    o.status = Some(200);
    o.connected = true;
    o.readings = vec![("BUSY_WORKERS".into(), 5.0), ("WORKER_LIMIT".into(), 5.0), ("WORKER_SATURATION".into(), 1.0)];
    let saturated = Condition::parse("[WORKER_SATURATION] >= 95%").unwrap().fire_when();
    let busy = Condition::parse("[BUSY_WORKERS] > 3").unwrap().fire_when();
    let v = judge(&[saturated.clone(), busy], &o);
    assert!(!v.ok);
    assert_eq!(v.failed_conditions, ["[WORKER_SATURATION] (100.0%) >= 95%", "[BUSY_WORKERS] (5) > 3"]);
    // Below the threshold: nothing holds, the observation passes.
    o.readings = vec![("WORKER_SATURATION".into(), 0.4)];
    assert!(judge(std::slice::from_ref(&saturated), &o).ok);
    // A reading the page does not give has no value: the rule does not hold (the page's own failure is the error).
    o.readings.clear();
    let queue = Condition::parse("[LISTEN_QUEUE] > 0").unwrap().fire_when();
    assert!(judge(&[queue], &o).ok);
    // The same placeholder as an ordinary condition must hold.
    let healthy = Condition::parse("[LISTEN_QUEUE] == 0").unwrap();
    let v = judge(&[healthy], &o);
    assert!(!v.ok && v.failed_conditions[0].contains("not read from this source"), "{v:?}");
    // An unknown reading is a parse error that lists the known ones.
    let e = Condition::parse("[BUSY_WORKER] > 1").unwrap_err();
    assert!(e.message.contains("did you mean [BUSY_WORKERS]?"), "{}", e.message);
}

#[test]
fn hysteresis_keeps_a_firing_rule_holding_until_the_value_is_back_past_a_lower_threshold() {
    let mut o = Observation::new("host-memory", ProbeKind::Host, Timestamp(0));
    o.connected = true;
    let rule = Condition::parse("[MEMORY_USED_RATIO] >= 90%").unwrap().fire_when().with_hysteresis(0.05);
    let at = |o: &mut Observation, v: f64| o.readings = vec![("MEMORY_USED_RATIO".into(), v)];
    at(&mut o, 0.88);
    assert!(judge_while(std::slice::from_ref(&rule), &o, false).ok, "not firing: 88 % is below 90 %");
    let v = judge_while(std::slice::from_ref(&rule), &o, true);
    assert!(!v.ok, "firing: 88 % is still above 85.5 %");
    assert_eq!(v.failed_conditions, ["[MEMORY_USED_RATIO] (88.0%) >= 85.5%"]);
    at(&mut o, 0.85);
    assert!(judge_while(std::slice::from_ref(&rule), &o, true).ok, "85 % clears it");
    // Below a threshold, the other way: `< 8h` fires at 7 h and keeps firing up to 8.4 h.
    let ttf = Condition::parse("[TIME_TO_FULL] < 8h").unwrap().fire_when().with_hysteresis(0.05);
    o.readings = vec![("TIME_TO_FULL".into(), 8.2 * 3_600_000.0)];
    assert!(judge_while(std::slice::from_ref(&ttf), &o, false).ok);
    assert!(!judge_while(std::slice::from_ref(&ttf), &o, true).ok);
    // Nothing to move on an equality or a string.
    let eq = Condition::parse("[LISTEN_QUEUE] == 0").unwrap().with_hysteresis(0.05);
    assert!(eq.deciding(true).source() == "[LISTEN_QUEUE] == 0");
}
