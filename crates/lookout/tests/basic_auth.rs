//! Targets and channels configured with credentials in their URL (`http://user:pass@host/`) authenticate with
//! `Authorization: Basic` and keep the credentials out of `Host`, against a real receiver on 127.0.0.1 that
//! answers 401 unless the header is right — the way a protected site or webhook receiver does.

use std::path::Path;

use lookout_config::Config;
use lookout_core::{Timestamp, Transition, TransitionKind};
use lookout_notify::{Delivery, Meta, Notification, from_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Answers 200 when `Authorization` is `expected`, 401 otherwise; reports every request head.
async fn protected_receiver(expected: &'static str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let ok = header(&head, "authorization") == vec![expected];
            let status = if ok { "200 OK" } else { "401 Unauthorized" };
            let _ = tx.send(head);
            let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, rx)
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

fn delivery() -> Delivery {
    let t = Transition {
        target: "site".into(),
        kind: TransitionKind::Firing,
        at: Timestamp(1_795_617_382_000),
        alert_id: Some("site@1795617322000".into()),
        failing_since: Some(Timestamp(1_795_617_302_000)),
        reasons: vec!["[STATUS] (500) == 200".into()],
        consecutive: 3,
        diagnosis: None,
    };
    let meta = Meta {
        incident: None,
        incident_resolved: false,
        group: "site".into(),
        severity: "critical".into(),
        labels: Default::default(),
    };
    let n = Notification::from_transition(&t, None, meta).unwrap();
    Delivery { key: "lookout/site@1795617322000/firing".into(), notifications: vec![n] }
}

fn channel(kind_and_keys: &str, env: &'static str) -> lookout_config::Notify {
    let text = format!("[[notify]]\nname = \"ops\"\n{kind_and_keys}\n");
    let cfg = Config::parse(&text, Path::new("lookout.toml"), &move |k| match k {
        "HOOK_URL" => Some(env.to_string()),
        "PD_KEY" => Some("key".into()),
        _ => None,
    })
    .unwrap();
    cfg.notify[0].clone()
}

// base64("hook:s3cr%t") with the password percent-decoded from "s3cr%25t".
const BASIC: &str = "Basic aG9vazpzM2NyJXQ=";

#[tokio::test]
async fn every_http_channel_sends_userinfo_as_basic_auth_not_in_host() {
    for kind in ["webhook", "alertmanager", "slack", "pagerduty"] {
        let (port, mut heads) = protected_receiver(BASIC).await;
        let url = format!("http://hook:s3cr%25t@127.0.0.1:{port}/hook");
        let keys = match kind {
            "slack" => format!("type = \"slack\"\nurl = \"{url}\""),
            "pagerduty" => format!("type = \"pagerduty\"\nrouting_key_env = \"PD_KEY\"\nurl = \"{url}\""),
            other => format!("type = \"{other}\"\nurl = \"{url}\""),
        };
        let notifier = from_config(&channel(&keys, ""));
        let sent = notifier.send(&delivery()).await;
        let head = heads.recv().await.unwrap();
        assert!(sent.is_ok(), "{kind}: {sent:?}\n{head}");
        assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")], "{kind}: {head}");
        assert!(!head.contains("s3cr"), "{kind}: {head}");
    }
}

#[tokio::test]
async fn a_webhook_url_from_the_environment_authenticates_too() {
    let (port, mut heads) = protected_receiver(BASIC).await;
    let url: &'static str = format!("http://hook:s3cr%25t@127.0.0.1:{port}/hook").leak();
    let notifier = from_config(&channel("type = \"webhook\"\nurl_env = \"HOOK_URL\"", url));
    let sent = notifier.send(&delivery()).await;
    let head = heads.recv().await.unwrap();
    assert!(sent.is_ok(), "{sent:?}\n{head}");
    assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")]);
}

#[tokio::test]
async fn a_configured_authorization_header_wins() {
    let (port, mut heads) = protected_receiver("Bearer t0ken").await;
    let keys = format!(
        "type = \"webhook\"\nurl = \"http://hook:s3cr%25t@127.0.0.1:{port}/hook\"\nheaders = {{ Authorization = \"Bearer t0ken\" }}"
    );
    let sent = from_config(&channel(&keys, "")).send(&delivery()).await;
    let head = heads.recv().await.unwrap();
    assert!(sent.is_ok(), "{sent:?}\n{head}");
    assert_eq!(header(&head, "authorization"), vec!["Bearer t0ken"]);
}

#[tokio::test]
async fn a_target_with_userinfo_authenticates_with_basic_and_keeps_host_clean() {
    // base64("admin:hunter2")
    let (port, mut heads) = protected_receiver("Basic YWRtaW46aHVudGVyMg==").await;
    let text = format!(
        "[[target]]\nname = \"site\"\nurl = \"http://admin:hunter2@127.0.0.1:{port}/health\"\nconditions = [\"[STATUS] == 200\"]\n"
    );
    let cfg = Config::parse(&text, Path::new("lookout.toml"), &|_| None).unwrap();
    let obs = lookout_probe::probe(&cfg.targets[0]).await;
    let head = heads.recv().await.unwrap();
    assert_eq!(obs.status, Some(200), "{head}");
    assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")], "{head}");
    assert!(!head.contains("hunter2"), "{head}");
    assert!(format!("{:?}", cfg.targets[0]).contains("admin:***@"), "Debug of the target is redacted");
    assert!(!format!("{:?}", cfg.targets[0]).contains("hunter2"));
}
