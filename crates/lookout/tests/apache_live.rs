//! The founding incident on a real Apache + mod_php: a page requires a file under a name that does not exist;
//! lookout probing the site and tailing Apache's own logs fires the alerts of one incident, diagnoses it and
//! notifies; after the fix the incident resolves and `lookout postmortem` names the file, the duration and the
//! clients affected.

use std::time::Duration;

use lookout_config::Config;
use lookout_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::support::apache::Apache;
use crate::support::{Receiver, lookout_with_config, wait_until, write_config};

/// `GET path` from another loopback address (the whole of 127.0.0.0/8 is local), as another user would; returns
/// the status.
async fn get_from(source: &str, port: u16, path: &str) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: shopper\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response[..response.len().min(12)]).into_owned();
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

const INDEX: &str =
    "<?php require_once __DIR__ . '/inc/settings.php'; ?>\n<h1>Shop</h1>\n<p>currency: <?= $currency ?></p>\n";
const SETTINGS: &str = "<?php $currency = 'EUR';\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_required_file_on_apache_fires_probe_and_log_alerts() {
    let Some(apache) = Apache::start(&[("index.php", INDEX), ("inc/settings.php", SETTINGS)]) else { return };
    let healthy =
        lookout_http::fetch(&lookout_http::HttpRequest::get(apache.url("/").parse().unwrap(), Duration::from_secs(5)))
            .await;
    assert_eq!(healthy.status, Some(200), "{}", healthy.body);
    assert!(healthy.body.contains("currency: EUR"), "{}", healthy.body);

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let web_port = crate::support::free_port().await;
    let text = format!(
        r#"[store]
path = "{db}"

[web]
listen = "127.0.0.1:{web}"

[[target]]
name = "site"
url = "{url}"
interval = "200ms"
timeout = "2s"
conditions = ["[STATUS] == 200", "[BODY] not contains \"Fatal error\""]
failure_threshold = 2
success_threshold = 2
group = "shop"

[target.diagnose]
error_log = "{error}"

[[log]]
name = "apache"
access = "{access}"
error = "{error}"
window = "5s"
min_requests = 3
group = "shop"
fire_when = ["[5XX_RATIO] > 20%", "[ERROR_LOG] matches \"PHP (Fatal|Parse) error\""]

[[notify]]
name = "ops"
type = "webhook"
url = "{hook}"
retry_initial = "100ms"
"#,
        web = web_port,
        db = dir.path().join("lookout.sqlite").display(),
        url = apache.url("/"),
        access = apache.access_log.display(),
        error = apache.error_log.display(),
        hook = receiver.url(),
    );
    let config = write_config(dir.path(), &text);
    let cfg = Config::load(&config).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.received().is_empty(), "healthy: {:?}", receiver.received());

    // The deploy with the wrong file name.
    std::fs::rename(apache.docroot.join("inc/settings.php"), apache.docroot.join("inc/settings.phpp")).unwrap();
    let broke = std::time::Instant::now();
    let site = receiver.wait_for_target("site", "firing", Duration::from_secs(15)).await;
    assert_eq!(site.body["reasons"], serde_json::json!(["[STATUS] (500) == 200"]), "{}", site.body);
    // The verdict rides on the firing message: the file the page needs is gone, and what exists instead.
    let diagnosis = site.body["diagnosis"].as_str().unwrap_or_default();
    let missing = apache.docroot.join("inc/settings.php");
    let instead = apache.docroot.join("inc/settings.phpp");
    assert!(
        diagnosis.starts_with(&format!("Probable root cause: {} does not exist (required by ", missing.display())),
        "{diagnosis}"
    );
    assert!(diagnosis.ends_with(&format!("; did you mean {}?", instead.display())), "{diagnosis}");
    // Shoppers from three more addresses get the error too.
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for _ in 0..3 {
            assert_eq!(get_from(source, apache.port, "/").await, 500);
        }
    }
    let log = receiver.wait_for_target("apache", "firing", Duration::from_secs(15)).await;
    let incident = site.body["incident"].as_str().unwrap().to_string();
    assert!(incident.ends_with("-shop-1"), "{incident}");
    assert_eq!(log.body["incident"], incident.as_str(), "probe and log alerts share the incident");
    eprintln!("probe alert and log alert within {:?} of the broken deploy", broke.elapsed());
    assert!(log.body["diagnosis"].as_str().is_some_and(|d| d.contains("does not exist")), "{}", log.body);
    let reasons = log.body["reasons"].to_string();
    // The message that matched, not the PHP Warning mod_php logs before it.
    assert!(reasons.contains("[ERROR_LOG] (PHP Fatal error:"), "{reasons}");
    let error_log = std::fs::read_to_string(&apache.error_log).unwrap();
    assert!(error_log.contains("Failed opening required"), "{error_log}");
    assert!(error_log.contains("inc/settings.php"), "{error_log}");
    let access_log = std::fs::read_to_string(&apache.access_log).unwrap();
    assert!(access_log.contains("\"GET / HTTP/1.1\" 500"), "{access_log}");

    // The fix: the file gets its name back; OPcache revalidates within ~2 s, then the probe recovers.
    std::fs::rename(apache.docroot.join("inc/settings.phpp"), apache.docroot.join("inc/settings.php")).unwrap();
    receiver.wait_for_target("site", "resolved", Duration::from_secs(20)).await;
    receiver.wait_for_target("apache", "resolved", Duration::from_secs(20)).await;
    assert_eq!(receiver.problems(), Vec::<String>::new());
    let store = lookout_store::open(&Config::load(&config).unwrap().store).await.unwrap();
    wait_until("the incident to resolve", Duration::from_secs(10), || async {
        store.incident(incident.clone()).await.unwrap().is_some_and(|i| i.resolved_at.is_some())
    })
    .await;
    // Its page: the probe's and the log's alerts found one cause, shown once, under a heading that says what it
    // is (not "Probable root cause" twice).
    let (status, page) = crate::support::http_get(&format!("http://127.0.0.1:{web_port}/incidents/{incident}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page.matches("<section class=\"diagnosis\">").count(), 1, "one cause, one block: {page}");
    assert!(
        page.contains("<h2>Probable root cause</h2><p><b>&#x2f;"),
        "the verdict without the heading's words: {page}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();

    let recorded = store.incident(incident.clone()).await.unwrap().unwrap();
    let lasted = lookout_core::format_duration(Duration::from_secs(
        recorded.resolved_at.unwrap().since(recorded.first_failure_at).as_secs(),
    ));
    let draft = dir.path().join("postmortem.md");
    let draft_arg = draft.display().to_string();
    let (code, stdout, stderr) = lookout_with_config(&["postmortem", &incident, "-o", &draft_arg], &config).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("{incident}: ")), "{stdout}");
    assert!(stdout.contains(&format!(" for {lasted} (resolved); ")), "{stdout}");
    assert!(stdout.contains("4 distinct clients affected"), "the probe's 127.0.0.1 and three shoppers: {stdout}");
    let md = std::fs::read_to_string(&draft).unwrap();
    eprintln!("{md}");
    let settings = missing.display().to_string().replace('_', "\\_");
    for expected in [
        format!("Probable root cause: {settings} does not exist"),
        format!("({lasted}), "),
        "4 distinct client addresses received at least one".to_string(),
        "Users affected: approximately 4".to_string(),
        format!("What changed: {settings} exists now: the missing file was restored"),
        "Evidence from the error log:".to_string(),
    ] {
        assert!(md.contains(&expected), "{expected:?} not in the postmortem:\n{md}");
    }
    assert_eq!(md.matches("Evidence from the error log:").count(), 1, "both alerts found one cause: said once");
}
