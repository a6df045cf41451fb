//! What each channel makes of a delivery, checked field by field against the receivers' documented formats.

use lookout_core::{Diagnosis, Timestamp, Transition, TransitionKind};
use serde_json::Value;

use crate::{Delivery, Meta, Notification};

fn notification(target: &str, kind: TransitionKind, incident_resolved: bool) -> Notification {
    let t = Transition {
        target: target.into(),
        kind,
        at: Timestamp(1_795_617_382_000),
        alert_id: Some(format!("{target}@1795617322000")),
        failing_since: Some(Timestamp(1_795_617_302_000)),
        reasons: if kind == TransitionKind::Firing {
            vec!["[STATUS] (500) == 200 <!channel> & more".into()]
        } else {
            vec![]
        },
        consecutive: 3,
        diagnosis: (kind == TransitionKind::Firing).then(|| Diagnosis {
            verdict: "Probable root cause: /var/www/inc/settings.phpp does not exist".into(),
            source: "trace".into(),
            ..Diagnosis::default()
        }),
    };
    let meta = Meta {
        incident: Some("2026-11-25-shop-1".into()),
        incident_resolved,
        group: "shop".into(),
        severity: "critical".into(),
        labels: [("team".to_string(), "web".to_string())].into(),
    };
    Notification::from_transition(&t, None, meta).unwrap()
}

fn delivery(ns: Vec<Notification>) -> Delivery {
    Delivery { key: "lookout/site@1795617322000/firing".into(), notifications: ns }
}

#[test]
fn slack_block_kit_is_within_limits_and_escaped() {
    let many: Vec<Notification> =
        (0..25).map(|i| notification(&format!("web-{i}"), TransitionKind::Firing, false)).collect();
    for d in [delivery(vec![notification("site", TransitionKind::Firing, false)]), delivery(many)] {
        let body = crate::slack::body(&d);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()), "a text fallback");
        assert!(blocks.len() <= 50);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => {}
                "section" => {
                    let text = b["text"]["text"].as_str().unwrap();
                    assert_eq!(b["text"]["type"], "mrkdwn");
                    assert!(text.chars().count() <= 3000);
                    assert!(!text.contains("<!channel>"), "no mention from a log: {text}");
                }
                "context" => assert!(b["elements"].as_array().unwrap().len() <= 10),
                other => panic!("unexpected block {other}"),
            }
        }
    }
    let mut parent = notification("db", TransitionKind::Firing, false);
    parent.affected = vec!["web".into(), "api".into()];
    let with_children = crate::slack::body(&delivery(vec![parent.clone()]));
    assert!(
        with_children["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("*Also failing (depend on it):* web, api")
    );
    assert!(crate::email::text(&delivery(vec![parent])).contains("Also failing (depend on it): web, api"));
    let single = crate::slack::body(&delivery(vec![notification("site", TransitionKind::Firing, false)]));
    assert_eq!(single["blocks"][0]["text"]["text"], "🔴 FIRING: site is DOWN: [STATUS] (500) == 200 <!channel> & more");
    let section = single["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(section.contains("&lt;!channel&gt; &amp; more"), "{section}");
    assert!(section.contains("*Probable cause:* Probable root cause: /var/www/inc/settings.phpp does not exist"));
    let many = crate::slack::body(&delivery(
        (0..25).map(|i| notification(&format!("web-{i}"), TransitionKind::Firing, false)).collect(),
    ));
    assert!(many["blocks"][0]["text"]["text"].as_str().unwrap().starts_with("25 alerts FIRING in shop: web-0, web-1"));
    assert_eq!(many["blocks"][11]["text"]["text"], "…and 15 more alerts in this group.");
}

#[test]
fn pagerduty_triggers_per_incident_and_resolves_only_when_the_incident_does() {
    let firing = delivery(vec![notification("site", TransitionKind::Firing, false)]);
    let events = crate::pagerduty::events("R0UT1NGKEY0000000000000000000000", &firing);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["event_action"], "trigger");
    assert_eq!(e["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(e["dedup_key"], "lookout/2026-11-25-shop-1");
    assert_eq!(e["payload"]["severity"], "critical");
    assert_eq!(e["payload"]["source"], "site");
    assert_eq!(e["payload"]["timestamp"], "2026-11-25T14:36:22.000Z");
    assert!(e["payload"]["summary"].as_str().unwrap().len() <= 1024);
    assert_eq!(
        e["payload"]["custom_details"]["diagnosis"],
        "Probable root cause: /var/www/inc/settings.phpp does not exist"
    );

    // One alert of a still-open incident resolves: nothing to tell PagerDuty.
    let partial = delivery(vec![notification("site", TransitionKind::Resolved, false)]);
    assert!(crate::pagerduty::events("k", &partial).is_empty());
    // The last one resolves it.
    let closed = delivery(vec![notification("site", TransitionKind::Resolved, true)]);
    let events = crate::pagerduty::events("k", &closed);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0],
        serde_json::json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "lookout/2026-11-25-shop-1"})
    );
    // A storm of one incident is one event.
    let storm = delivery((0..500).map(|i| notification(&format!("web-{i}"), TransitionKind::Firing, false)).collect());
    let events = crate::pagerduty::events("k", &storm);
    assert_eq!(events.len(), 1);
    assert!(events[0]["payload"]["summary"].as_str().unwrap().starts_with("500 alerts firing in shop: web-0, web-1"));
    assert!(events[0]["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
}

#[test]
fn alertmanager_alerts_carry_labels_annotations_and_ends_at() {
    let now = Timestamp(1_795_617_400_000);
    let ttl = std::time::Duration::from_secs(3600);
    let body =
        crate::alertmanager::body(&delivery(vec![notification("site", TransitionKind::Firing, false)]), ttl, now);
    let a = &body[0];
    assert_eq!(
        a["labels"],
        serde_json::json!({"alertname": "site", "group": "shop", "severity": "critical", "source": "lookout", "team": "web"})
    );
    assert_eq!(a["annotations"]["incident"], "2026-11-25-shop-1");
    assert_eq!(a["startsAt"], "2026-11-25T14:35:02.000Z");
    assert_eq!(a["endsAt"], now.plus(ttl).to_rfc3339());
    let resolved =
        crate::alertmanager::body(&delivery(vec![notification("site", TransitionKind::Resolved, true)]), ttl, now);
    assert_eq!(resolved[0]["endsAt"], "2026-11-25T14:36:22.000Z", "ends when it resolved");
    assert_eq!(resolved[0]["labels"], a["labels"], "the same alert at Alertmanager");
}

#[test]
fn webhook_template_renders_or_falls_back() {
    let d = delivery(vec![notification("site", TransitionKind::Firing, false)]);
    let body = crate::webhook::render_template(r#"{"text": "{{ summary }} ({{ alerts | length }})"}"#, &d).unwrap();
    assert_eq!(body, r#"{"text": "site is DOWN: [STATUS] (500) == 200 <!channel> & more (1)"}"#);
    let err = crate::webhook::render_template("{{ no_such_field }}", &d).unwrap_err();
    assert!(err.contains("undefined"), "{err}");
    let default = crate::webhook::default_body(&d).unwrap();
    assert_eq!(default["version"], 1);
    assert_eq!(default["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(default["idempotency_key"], "lookout/site@1795617322000/firing");
}

#[test]
fn email_subject_parts_and_message_id() {
    let d = delivery(vec![notification("site", TransitionKind::Firing, false)]);
    assert_eq!(crate::email::subject(&d), "[lookout] FIRING: site is DOWN: [STATUS] (500) == 200 <!channel> & more");
    let html = crate::email::html(&d);
    assert!(html.contains("&lt;!channel&gt; &amp; more") && !html.contains("<!channel>"), "{html}");
    assert!(crate::email::text(&d).contains("Probable cause: Probable root cause: /var/www/inc/settings.phpp"));
    assert_eq!(
        crate::email::message_id("lookout/site@1795617322000/firing"),
        "<lookout.site.1795617322000.firing@lookout>"
    );
    let resolved = delivery(vec![notification("site", TransitionKind::Resolved, true)]);
    assert!(crate::email::subject(&resolved).starts_with("[lookout] RESOLVED: site is back UP"));
    let _: Value = serde_json::to_value(&resolved.notifications[0]).unwrap();
}

#[tokio::test]
async fn a_failed_send_never_reveals_the_secret_url_path() {
    use crate::Notifier;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url: http::Uri = format!("http://127.0.0.1:{port}/services/T000/B000/SECRETTOKEN").parse().unwrap();
    let slack = crate::Slack::new("slack".into(), url, std::time::Duration::from_secs(1));
    let d = delivery(vec![notification("site", TransitionKind::Firing, false)]);
    let err = slack.send(&d).await.unwrap_err();
    assert!(matches!(err, crate::SendError::Retry(_)), "a closed port is worth retrying: {err}");
    assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
}

/// The README's webhook payload is the one sent: the same fields, no more and no fewer (a reminder's `reminder`
/// and a parent's `affected` are absent from an ordinary message, as the README says).
#[test]
fn the_readmes_webhook_payload_has_exactly_the_fields_sent() {
    let readme = include_str!("../../../README.md");
    let section = readme.split("### Webhook payload").nth(1).expect("the README's payload section");
    let block = section.split("```json\n").nth(1).and_then(|b| b.split("\n```").next()).expect("its JSON block");
    let documented: Value = serde_json::from_str(block).expect("the README's payload is JSON");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<_>>();
    let sent =
        crate::webhook::default_body(&delivery(vec![notification("site", TransitionKind::Firing, false)])).unwrap();
    assert_eq!(keys(&documented), keys(&sent));
    assert!(section.contains("`\"reminder\": N`") && section.contains("`affected`"));
}
