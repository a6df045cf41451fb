//! Every channel through `lookout run`, against receivers on 127.0.0.1: Slack and PagerDuty stand-ins that check
//! the documented payloads field by field, a real Alertmanager read back through its API, a real SMTP server with
//! STARTTLS and AUTH, webhook templates (and their fallback), and receivers that refuse for good.

use std::time::Duration;

use lookout_config::Config;
use lookout_store::Store;
use tokio::sync::watch;

use crate::support::Target;
use crate::support::channels::{
    PAGERDUTY_ACCEPTED, RealAlertmanager, Recorder, SmtpSink, check_nothing, check_pagerduty, check_slack,
};

const PD_KEY: &str = "R0UT1NGKEY0123456789abcdef012345";

#[tokio::test(flavor = "multi_thread")]
async fn one_incident_reaches_slack_pagerduty_alertmanager_email_and_webhooks() {
    let Some(am) = RealAlertmanager::start() else { return };
    let Some(smtp) = SmtpSink::start() else { return };
    let site = Target::start().await;
    let slack = Recorder::start(check_slack, 200, "ok").await;
    let pd = Recorder::start(check_pagerduty, 202, PAGERDUTY_ACCEPTED).await;
    let teams = Recorder::start(check_nothing, 200, "{}").await;
    let fallback = Recorder::start(check_nothing, 204, "").await;
    let refusing = Recorder::start(check_nothing, 400, r#"{"error":"unknown channel"}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let error_log = dir.path().join("error.log");
    std::fs::write(&error_log, "").unwrap();
    let text = format!(
        r#"[store]
path = "lookout.sqlite"

[[target]]
name = "site"
url = "{site}"
interval = "100ms"
conditions = ["[STATUS] == 200"]
failure_threshold = 1
success_threshold = 1
severity = "error"
labels = {{ team = "web" }}

[target.diagnose]
error_log = "{error_log}"

[[notify]]
name = "slack"
type = "slack"
url_env = "TEST_SLACK_URL"
retry_initial = "100ms"

[[notify]]
name = "pagerduty"
type = "pagerduty"
routing_key_env = "TEST_PD_KEY"
url = "{pd}"
retry_initial = "100ms"

[[notify]]
name = "alertmanager"
type = "alertmanager"
url = "{am}"
retry_initial = "100ms"

[[notify]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{smtp_port}"
username = "lookout"
password_env = "TEST_SMTP_PASSWORD"
from = "Lookout <lookout@example.com>"
to = ["ops@example.com"]
ca_file = "{ca}"
retry_initial = "100ms"

[[notify]]
name = "mail-rejected"
type = "email"
smtp = "127.0.0.1:{smtp_port}"
username = "lookout"
password_env = "TEST_SMTP_PASSWORD"
from = "lookout@example.com"
to = ["reject@example.com"]
ca_file = "{ca}"
retry_initial = "100ms"

[[notify]]
name = "teams"
type = "webhook"
url = "{teams}"
template = '{{"text": "{{{{ summary }}}}", "incident": "{{{{ incident }}}}", "alerts": {{{{ alerts | length }}}}}}'

[[notify]]
name = "fallback"
type = "webhook"
url = "{fallback}"
template = '{{{{ no_such_field }}}}'

[[notify]]
name = "refusing"
type = "webhook"
url = "{refusing}"
retry_initial = "100ms"
"#,
        site = site.url("/"),
        error_log = error_log.display(),
        pd = pd.url("/v2/enqueue"),
        am = am.url(),
        smtp_port = smtp.port,
        ca = smtp.ca_file.display(),
        teams = teams.url("/teams"),
        fallback = fallback.url("/hook"),
        refusing = refusing.url("/hook"),
    );
    let env = |k: &str| match k {
        "TEST_SLACK_URL" => Some(slack.url("/services/T000/B000/XXXX")),
        "TEST_PD_KEY" => Some(PD_KEY.to_string()),
        "TEST_SMTP_PASSWORD" => Some("s3cret".to_string()),
        _ => None,
    };
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &env).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));

    // The deploy breaks the page; the error log says why (Apache writes local time).
    let now = std::process::Command::new("date").arg("+%a %b %d %H:%M:%S.000000 %Y").output().unwrap();
    let now = String::from_utf8(now.stdout).unwrap();
    std::fs::write(&error_log, format!("[{}] [php:error] [pid 4242] [client 10.0.0.7:5123] PHP Fatal error:  Uncaught Error: Failed opening required '/nonexistent-lookout-test/www/inc/settings.phpp' (include_path='.:/usr/share/php') in /nonexistent-lookout-test/www/index.php:3\n", now.trim())).unwrap();
    site.set(500, "<b>Internal Server Error</b>");
    let wait = Duration::from_secs(15);

    let s = slack.wait_for("a Slack message", wait, |_| true).await;
    assert_eq!(s.path, "/services/T000/B000/XXXX");
    assert_eq!(s.body["blocks"][0]["text"]["text"], "🔴 FIRING: site is DOWN: [STATUS] (500) == 200");
    let section = s.body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains(
            "*Probable cause:* Probable root cause: /nonexistent-lookout-test/www/inc/settings.phpp does not exist"
        ),
        "{section}"
    );

    let trigger = pd.wait_for("a PagerDuty trigger", wait, |r| r.body["event_action"] == "trigger").await;
    let incident = trigger.body["payload"]["custom_details"]["incident"].as_str().unwrap().to_string();
    assert_eq!(trigger.body["dedup_key"], format!("lookout/{incident}").as_str());
    assert_eq!(trigger.body["payload"]["severity"], "error");
    assert!(
        trigger.body["payload"]["custom_details"]["diagnosis"]
            .as_str()
            .unwrap()
            .contains("settings.phpp does not exist")
    );

    let mut active = Vec::new();
    for _ in 0..100 {
        active = am.alerts().await;
        if !active.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["labels"]["alertname"], "site");
    assert_eq!(active[0]["labels"]["severity"], "error");
    assert_eq!(active[0]["labels"]["team"], "web");
    assert_eq!(active[0]["annotations"]["incident"], incident.as_str());
    assert!(active[0]["annotations"]["diagnosis"].as_str().unwrap().contains("settings.phpp"));

    let t = teams.wait_for("the Teams webhook", wait, |_| true).await;
    assert!(t.headers.iter().any(|(k, v)| k == "idempotency-key" && v.starts_with("lookout/site@")), "{:?}", t.headers);
    assert_eq!(
        t.raw,
        format!(r#"{{"text": "site is DOWN: [STATUS] (500) == 200", "incident": "{incident}", "alerts": 1}}"#)
    );
    let f = fallback.wait_for("the fallback webhook", wait, |_| true).await;
    assert_eq!(f.body["version"], 1, "the default body when the template fails: {}", f.raw);
    assert_eq!(f.body["target"], "site");
    refusing.wait_for("the refusing webhook", wait, |_| true).await;

    let mut mails = Vec::new();
    for _ in 0..150 {
        mails = smtp.messages();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (envelope, raw) = mails.first().expect("an e-mail arrived");
    assert_eq!(envelope["tls"], true, "STARTTLS was used");
    assert_eq!(envelope["user"], "lookout", "AUTH was used");
    assert_eq!(envelope["to"], serde_json::json!(["ops@example.com"]));
    assert!(raw.contains("Subject: [lookout] FIRING: site is DOWN: [STATUS] (500) == 200"), "{raw}");
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
    assert!(raw.contains("Content-Type: text/plain") && raw.contains("Content-Type: text/html"), "{raw}");
    assert!(raw.contains("Message-ID: <lookout.site"), "{raw}");
    assert!(raw.contains("X-Lookout-Key: lookout/site@"), "{raw}");

    // Recovery: every channel that resolves hears of it.
    site.set(200, "ok");
    let r = slack
        .wait_for("a Slack resolve", wait, |r| {
            r.body["blocks"][0]["text"]["text"].as_str().is_some_and(|t| t.starts_with("✅ RESOLVED"))
        })
        .await;
    assert!(r.body["text"].as_str().unwrap().contains("back UP"));
    let resolve = pd.wait_for("a PagerDuty resolve", wait, |r| r.body["event_action"] == "resolve").await;
    assert_eq!(resolve.body["dedup_key"], format!("lookout/{incident}").as_str());
    let mut gone = false;
    for _ in 0..100 {
        if am.alerts().await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the alert resolved at Alertmanager: {:?}", am.alerts().await);
    let mut resolved_mail = false;
    for _ in 0..150 {
        if smtp.messages().iter().any(|(_, raw)| raw.contains("Subject: [lookout] RESOLVED: site is back UP")) {
            resolved_mail = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resolved_mail, "a RESOLVED e-mail");

    // What the outbox kept: refusals abandoned with the reason (not retried), the template failure noted.
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = store.messages(100).await.unwrap();
        if messages.iter().all(|m| m.delivered_at.is_some() || m.abandoned_at.is_some() || m.suppressed_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let of = |channel: &str| messages.iter().filter(|m| m.channel == channel).collect::<Vec<_>>();
    for channel in ["refusing", "mail-rejected"] {
        let ms = of(channel);
        let (firing, resolved) = match ms.as_slice() {
            [a, b] if a.key.ends_with("/firing") => (a, b),
            [a, b] => (b, a),
            other => panic!("{channel}: {other:?}"),
        };
        assert!(firing.abandoned_at.is_some() && firing.delivered_at.is_none(), "{firing:?}");
        assert_eq!(firing.attempts, 1, "a refusal is not retried");
        let why = firing.last_error.as_deref().unwrap();
        assert!(why.starts_with("receiver answered HTTP 400") || why.contains("550"), "{firing:?}");
        assert!(resolved.suppressed_at.is_some(), "no resolve of a firing message the receiver refused: {resolved:?}");
        assert_eq!(resolved.last_error.as_deref(), Some("its firing message was not sent on this channel"));
    }
    for m in of("fallback") {
        assert!(m.delivered_at.is_some());
        assert!(m.last_error.as_deref().unwrap().starts_with("template failed, sent the default body: "), "{m:?}");
    }
    for channel in ["slack", "pagerduty", "alertmanager", "mail", "teams"] {
        let ms = of(channel);
        assert_eq!(ms.len(), 2, "{channel}: firing and resolved");
        assert!(ms.iter().all(|m| m.delivered_at.is_some()), "{channel}: {ms:?}");
    }
    assert_eq!(refusing.received().len(), 1, "one attempt, and its resolve held back");
    let view = lookout_app::incidents::timeline(&store, &store.incident(incident.clone()).await.unwrap().unwrap())
        .await
        .unwrap();
    assert!(
        view.iter().any(|e| e
            .text
            .starts_with("site firing notification to refusing abandoned after 1 attempt: receiver answered HTTP 400")),
        "{view:#?}"
    );
    assert_eq!(slack.problems(), Vec::<String>::new());
    assert_eq!(pd.problems(), Vec::<String>::new());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
