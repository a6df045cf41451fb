//! Pausing a target through the API (the dashboard's Pause and Resume buttons): with the token only; while paused
//! the target is not probed and nothing is sent about it, the API and the dashboard say who paused it; a resume
//! starts the probes again and a failure found then is sent as usual.

use std::time::Duration;

use lookout_config::Config;
use tokio::sync::watch;

use crate::support::{Receiver, Target, free_port, http_call, http_get, http_send, wait_until};

const TOKEN: &str = "pause-token";

async fn post(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    http_send(http::Method::POST, url, token, Some(body)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_target_is_not_probed_nor_told_about_until_it_is_resumed() {
    let site = Target::start().await;
    let hook = Receiver::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"T\"\n\n\
         [host]\nenabled = false\n\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"100ms\"\n\n\
         [[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"100ms\"\nconditions = [\"[STATUS] == 200\"]\nfailure_threshold = 1\n",
        hook.url(),
        site.url("/")
    );
    let cfg =
        Config::parse(&text, &dir.path().join("lookout.toml"), &|k| (k == "T").then(|| TOKEN.to_string())).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let base = format!("http://127.0.0.1:{port}");
    let results = || async {
        let (_, body) = http_get(&format!("{base}/api/v1/targets/site/results?from=0")).await;
        serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0)
    };
    wait_until("the first results", Duration::from_secs(10), || async { results().await > 2 }).await;

    let pause = format!("{base}/api/v1/targets/site/pause");
    assert_eq!(post(&pause, None, "{}").await.0, 401, "a pause needs the token");
    let (status, body) = post(&format!("{base}/api/v1/targets/nope/pause"), Some(TOKEN), "{}").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&pause, Some(TOKEN), r#"{"by": "alice", "note": "swapping a disk"}"#).await;
    assert_eq!(status, 200, "{body}");
    let silence: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((silence["pause"].as_bool(), silence["created_by"].as_str()), (Some(true), Some("alice")), "{body}");
    let (status, body) = post(&pause, Some(TOKEN), "{}").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already paused (by alice)"), "{body}");

    // The probes stop within a second; the server breaks meanwhile, and nobody is told.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    site.set(500, "down for maintenance");
    let before = results().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(results().await, before, "a paused target is not probed");
    assert!(hook.received().is_empty(), "nothing sent about a paused target: {:?}", hook.received());
    let (_, targets) = http_get(&format!("{base}/api/v1/targets")).await;
    let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
    assert_eq!(targets[0]["paused"]["created_by"], "alice", "{targets}");
    assert_eq!(targets[0]["paused"]["comment"], "swapping a disk", "{targets}");
    let (_, page) = http_get(&format!("{base}/")).await;
    assert!(page.contains("paused by alice") && page.contains(": swapping a disk"), "the dashboard says so");
    assert!(page.contains(r#"data-action="resume" data-target="site""#), "with a Resume button");

    // Resumed: probed again, and the failure it finds now is sent.
    let resume = format!("{base}/api/v1/targets/site/resume");
    assert_eq!(http_call(http::Method::POST, &resume, None).await.0, 401);
    let (status, body) = http_call(http::Method::POST, &resume, Some(TOKEN)).await;
    assert_eq!(status, 204, "{body}");
    hook.wait_for_target("site", "firing", Duration::from_secs(10)).await;
    assert!(results().await > before, "probed again");
    let (status, body) = http_call(http::Method::POST, &resume, Some(TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    let (_, page) = http_get(&format!("{base}/")).await;
    assert!(page.contains(r#"data-action="pause" data-target="site""#), "a Pause button again");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
