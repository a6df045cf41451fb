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
    let main = browser.text("main").await.unwrap_or_default();
    assert!(!main.contains("(alice)"), "who acknowledged is said once, not 'by alice (alice)': {main}");
    browser.screenshot(&artifacts.join("3-incident-acknowledged.png")).await;
    let url = browser.run("return location.pathname").await;
    let id = url.as_str().unwrap().trim_start_matches("/incidents/").to_string();
    let req = lookout_http::HttpRequest::get(
        format!("{base}/api/v1/incidents/{id}").parse().unwrap(),
        Duration::from_secs(5),
    );
    let body: serde_json::Value = serde_json::from_str(&lookout_http::fetch(&req).await.body).unwrap();
    assert_eq!(body["incident"]["ack"]["by"], "alice");

    // Pause the target from the dashboard, then resume it.
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for("the Pause button", Duration::from_secs(10), || async {
            browser.find("button[data-action='pause'][data-target='site']").await.is_some()
        })
        .await;
    browser.click("button[data-action='pause'][data-target='site']").await;
    browser
        .wait_for("the target paused", Duration::from_secs(10), || async {
            row_class().await == "state-paused"
                && browser.text("#target-site").await.unwrap_or_default().contains("paused by alice")
        })
        .await;
    browser.screenshot(&artifacts.join("4-dashboard-paused.png")).await;
    browser.click("button[data-action='resume'][data-target='site']").await;
    browser
        .wait_for("the target resumed", Duration::from_secs(10), || async {
            let class = row_class().await;
            !class.is_empty() && class != "state-paused"
        })
        .await;
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

/// The server page in a real browser: this machine's readings (memory, CPU, filesystems) as charts with axes,
/// units and hover values; and what was read before a restart is still there after it.
#[tokio::test(flavor = "multi_thread")]
async fn the_server_page_charts_the_host_and_keeps_its_readings_across_a_restart() {
    use lookout_store::Store;
    let Some(browser) = Browser::start().await else { return };
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n[host]\ninterval = \"200ms\"\n"
    );
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg.clone(), stop_rx, None));
    let base = format!("http://127.0.0.1:{port}");
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let charts = || async { browser.run("return document.querySelectorAll('svg.chart').length").await };
    let captions = || async {
        let got = browser.run("return [...document.querySelectorAll('figcaption b')].map(e => e.textContent)").await;
        serde_json::from_value::<Vec<String>>(got).unwrap_or_default()
    };
    // Each host part is read at its own moment of the interval: wait for the memory, a filesystem and the load.
    browser
        .wait_for("charts of the host's memory, filesystems and load", Duration::from_secs(20), || async {
            browser.goto(&format!("{base}/server?hours=1")).await;
            let got = captions().await;
            ["MEMORY_USED_RATIO", "FS_USED_RATIO", "LOAD1"].iter().all(|r| got.iter().any(|c| c == r))
        })
        .await;
    let ticks =
        browser.run("return [...document.querySelectorAll('svg.chart text.tick')].map(e => e.textContent)").await;
    let ticks: Vec<String> = serde_json::from_value(ticks).unwrap();
    assert!(ticks.iter().any(|t| t == "100.0%"), "a ratio's axis in percent: {ticks:?}");
    assert!(ticks.iter().any(|t| t.len() == 5 && t.as_bytes()[2] == b':'), "times on the x axis: {ticks:?}");
    let hover = browser.run("return document.querySelector('svg.chart circle.point title').textContent").await;
    assert!(hover.as_str().is_some_and(|t| t.contains(" UTC: ") && t.contains("readings)")), "{hover}");
    browser.screenshot(&artifacts.join("5-server-page.png")).await;

    // Stop, and start again: the readings of before are read back from the store.
    stop.send(true).unwrap();
    runtime.await.unwrap().unwrap();
    let stopped = lookout_core::Timestamp::now();
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let hour_ago = lookout_core::Timestamp(stopped.0 - 3_600_000);
    let before = store.readings_between("host-memory".into(), hour_ago, stopped, 1000).await.unwrap();
    assert!(before.len() >= 2, "{before:?}");
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    browser
        .wait_for("the page after the restart", Duration::from_secs(20), || async {
            browser.goto(&format!("{base}/server?hours=1")).await;
            charts().await.as_u64().unwrap_or(0) >= 3
        })
        .await;
    let after = store.readings_between("host-memory".into(), hour_ago, stopped, 1000).await.unwrap();
    assert_eq!(after, before, "the readings of before the restart are all still there");
    stop.send(true).unwrap();
    runtime.await.unwrap().unwrap();
}

/// The pages at a desktop's 1400 px and a phone's 390 px, light and dark: the dashboard uses the width it has; on
/// a phone no page scrolls sideways and each target is a card with its values named; the dark scheme follows the
/// system. Screenshots of each land in the artifacts directory (`layout-*.png`).
#[tokio::test(flavor = "multi_thread")]
async fn the_pages_use_a_wide_screen_fit_a_phone_and_follow_the_systems_dark_mode() {
    let Some(browser) = Browser::start().await else { return };
    let ok = Target::start().await;
    let broken = Target::start().await;
    broken.set(500, "down");
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n[host]\nenabled = false\n"
    );
    for (name, site) in [("shop-front-page", &ok), ("checkout-api-with-a-long-name", &broken), ("blog", &ok)] {
        text.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"200ms\"\nconditions = [\"[STATUS] == 200\", \"[RESPONSE_TIME] < 500\"]\nfailure_threshold = 1\n",
            site.url("/")
        ));
    }
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let base = format!("http://127.0.0.1:{port}");
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");

    browser.viewport(1400, 900).await;
    browser
        .wait_for("the broken target firing", Duration::from_secs(15), || async {
            browser.goto(&format!("{base}/")).await;
            browser.attribute("#target-checkout-api-with-a-long-name", "class").await.as_deref() == Some("state-firing")
        })
        .await;
    let used = browser.run("return document.querySelector('main').getBoundingClientRect().width / innerWidth").await;
    assert!(used.as_f64().unwrap() > 0.95, "at 1400 px the page uses the screen: {used}");
    assert_eq!(browser.run("return innerWidth").await, 1400);
    // Times read as "12 s ago", the exact UTC time on hover.
    let since = browser.text("#target-checkout-api-with-a-long-name time").await.unwrap_or_default();
    let exact = browser.attribute("#target-checkout-api-with-a-long-name time", "title").await.unwrap_or_default();
    assert!(
        since.ends_with(" s ago") && exact.ends_with(" UTC") && exact.as_bytes().get(10) == Some(&b' '),
        "{since:?} {exact:?}"
    );
    browser.screenshot(&artifacts.join("layout-1400-dashboard.png")).await;

    browser.viewport(390, 844).await;
    let href = browser.attribute("main ul a[href^='/incidents/']", "href").await.expect("a link to the incident");
    for (page, file) in
        [("/", "dashboard"), (href.as_str(), "incident"), ("/incidents", "incidents"), ("/status", "status")]
    {
        browser.goto(&format!("{base}{page}")).await;
        browser
            .wait_for(&format!("{page} at 390 px"), Duration::from_secs(10), || async {
                browser.run("return document.readyState").await == "complete" && browser.find("main h1").await.is_some()
            })
            .await;
        let (scroll, inner) =
            (browser.run("return document.documentElement.scrollWidth").await, browser.run("return innerWidth").await);
        assert_eq!(inner, 390);
        assert!(scroll.as_u64().unwrap() <= 390, "{page} scrolls sideways on a phone: {scroll} px wide");
        browser.screenshot(&artifacts.join(format!("layout-390-{file}.png"))).await;
    }
    browser.goto(&format!("{base}/")).await;
    let card = browser.run("return getComputedStyle(document.querySelector('#target-blog')).display").await;
    assert_eq!(card, "block", "on a phone a target is a card");
    let label = browser
        .run("return getComputedStyle(document.querySelector('#target-blog td[data-label=\"state\"]'), '::before').content")
        .await;
    assert_eq!(label, "\"state\"", "each value says what it is");

    let background = || async { browser.run("return getComputedStyle(document.body).backgroundColor").await };
    assert_eq!(background().await, "rgb(250, 250, 250)");
    browser.color_scheme("dark").await;
    assert_eq!(background().await, "rgb(17, 17, 19)", "the dark scheme follows the system");
    let row = browser
        .run("return getComputedStyle(document.querySelector('#target-checkout-api-with-a-long-name')).backgroundColor")
        .await;
    assert_eq!(row, "rgb(58, 20, 20)", "a firing target stays marked in the dark");
    browser.screenshot(&artifacts.join("layout-390-dashboard-dark.png")).await;
    browser.viewport(1400, 900).await;
    browser.screenshot(&artifacts.join("layout-1400-dashboard-dark.png")).await;
    eprintln!("screenshots in {}", artifacts.display());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
