//! The dashboard in a real browser (headless Chromium through chromedriver): it shows a target go red when its
//! server starts answering 500 — without a reload, over server-sent events —, leads to the incident, and
//! acknowledges it with the button. Screenshots land in the test artifacts directory.

use std::path::PathBuf;
use std::time::Duration;

use lookout_config::Config;
use tokio::sync::watch;

use crate::support::webdriver::Browser;
use crate::support::{Target, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_a_target_go_red_and_acknowledges_its_incident() {
    let Some(browser) = Browser::start().await else { return };
    let site = Target::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"T\"\n\n\
         [[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"200ms\"\nconditions = [\"[STATUS] == 200\"]\nfailure_threshold = 1\nsuccess_threshold = 1\n",
        site.url("/")
    );
    let cfg =
        Config::parse(&text, &dir.path().join("lookout.toml"), &|k| (k == "T").then(|| "browser-token".to_string()))
            .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let base = format!("http://127.0.0.1:{port}");
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    let row_class = || async { browser.attribute("#target-site", "class").await.unwrap_or_default() };
    browser
        .wait_for("the dashboard", Duration::from_secs(15), || async {
            browser.goto(&format!("{base}/")).await;
            row_class().await == "state-ok"
        })
        .await;
    browser.screenshot(&artifacts.join("1-dashboard-healthy.png")).await;

    // The server breaks; the open page turns red on its own.
    site.set(500, "<script>alert(1)</script>");
    browser
        .wait_for("the target turn red", Duration::from_secs(15), || async { row_class().await == "state-firing" })
        .await;
    let reason = browser.text("#target-site .reason").await.unwrap_or_default();
    assert_eq!(reason, "[STATUS] (500) == 200");
    let alerts = browser.run("return document.querySelectorAll('script:not([src])').length").await;
    assert_eq!(alerts, 0, "no script came from the server's answer");
    browser.screenshot(&artifacts.join("2-dashboard-firing.png")).await;

    // To the incident, and acknowledge it with the button (the token as a user would have saved it).
    browser
        .wait_for("a link to the incident", Duration::from_secs(10), || async {
            browser.find("main ul a[href^='/incidents/']").await.is_some()
        })
        .await;
    // The page refreshes itself several times a second: follow the link's address rather than a node that may
    // be replaced between finding and clicking it.
    let href = browser.attribute("main ul a[href^='/incidents/']", "href").await.unwrap();
    browser.goto(&format!("{base}{href}")).await;
    browser
        .wait_for("the incident page", Duration::from_secs(10), || async {
            browser.find("button[data-action='ack']").await.is_some()
        })
        .await;
    browser
        .run("localStorage.setItem('lookoutToken', 'browser-token'); localStorage.setItem('lookoutName', 'alice')")
        .await;
    browser.click("button[data-action='ack']").await;
    browser
        .wait_for("the acknowledgement", Duration::from_secs(10), || async {
            browser.text("main").await.unwrap_or_default().contains("acknowledged by alice")
        })
        .await;
    browser.screenshot(&artifacts.join("3-incident-acknowledged.png")).await;
    let url = browser.run("return location.pathname").await;
    let id = url.as_str().unwrap().trim_start_matches("/incidents/").to_string();
    let req = lookout_http::HttpRequest::get(
        format!("{base}/api/v1/incidents/{id}").parse().unwrap(),
        Duration::from_secs(5),
    );
    let body: serde_json::Value = serde_json::from_str(&lookout_http::fetch(&req).await.body).unwrap();
    assert_eq!(body["incident"]["ack"]["by"], "alice");
    eprintln!("screenshots in {}", artifacts.display());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}

/// With `public_reads = false` the dashboard still works in a browser: without a token it shows only the sign-in
/// form (no data); with the token in localStorage it loads, and turns red on its own (the event stream is read
/// with the token too).
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_works_with_private_reads_once_the_token_is_stored() {
    let Some(browser) = Browser::start().await else { return };
    let site = Target::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"T\"\npublic_reads = false\n\n\
         [[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"200ms\"\nconditions = [\"[STATUS] == 200\"]\nfailure_threshold = 1\nsuccess_threshold = 1\n",
        site.url("/")
    );
    let cfg =
        Config::parse(&text, &dir.path().join("lookout.toml"), &|k| (k == "T").then(|| "private-token".to_string()))
            .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let base = format!("http://127.0.0.1:{port}");
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    browser
        .wait_for("the sign-in form", Duration::from_secs(15), || async {
            browser.goto(&format!("{base}/")).await;
            browser.run("var f = document.getElementById('sign-in'); return !!f && !f.hidden").await == true
        })
        .await;
    assert!(browser.find("#target-site").await.is_none(), "no data without a token");
    browser.screenshot(&artifacts.join("private-1-sign-in.png")).await;

    // A wrong token is refused and forgotten.
    browser.run("localStorage.setItem('lookoutToken', 'wrong')").await;
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for("the refusal", Duration::from_secs(10), || async {
            browser.text("#sign-in-result").await.unwrap_or_default().contains("refused")
        })
        .await;
    assert_eq!(browser.run("return localStorage.getItem('lookoutToken')").await, serde_json::Value::Null);

    browser.run("localStorage.setItem('lookoutToken', 'private-token')").await;
    browser.goto(&format!("{base}/")).await;
    let row_class = || async { browser.attribute("#target-site", "class").await.unwrap_or_default() };
    browser.wait_for("the dashboard", Duration::from_secs(15), || async { row_class().await == "state-ok" }).await;
    site.set(500, "down");
    browser
        .wait_for("the target turn red without a reload", Duration::from_secs(15), || async {
            row_class().await == "state-firing"
        })
        .await;
    browser.screenshot(&artifacts.join("private-2-dashboard-firing.png")).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
