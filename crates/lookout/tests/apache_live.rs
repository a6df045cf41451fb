//! The founding incident on a real Apache + mod_php: a page requires a file under a name that does not exist;
//! lookout probing the site and tailing Apache's own logs fires the alerts, and the webhook arrives.

use std::time::Duration;

use lookout_config::Config;
use tokio::sync::watch;

use crate::support::Receiver;
use crate::support::apache::Apache;

const INDEX: &str =
    "<?php require_once __DIR__ . '/inc/settings.php'; ?>\n<h1>Shop</h1>\n<p>currency: <?= $currency ?></p>\n";
const SETTINGS: &str = "<?php $currency = 'EUR';\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_required_file_on_apache_fires_probe_and_log_alerts() {
    let Some(apache) = Apache::start(&[("index.php", INDEX), ("inc/settings.php", SETTINGS)]) else { return };
    let healthy = lookout_probe::fetch(&lookout_probe::HttpRequest::get(
        apache.url("/").parse().unwrap(),
        Duration::from_secs(5),
    ))
    .await;
    assert_eq!(healthy.status, Some(200), "{}", healthy.body);
    assert!(healthy.body.contains("currency: EUR"), "{}", healthy.body);

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let text = format!(
        r#"[store]
path = "{db}"

[[target]]
name = "site"
url = "{url}"
interval = "200ms"
timeout = "2s"
conditions = ["[STATUS] == 200", "[BODY] not contains \"Fatal error\""]
failure_threshold = 2
success_threshold = 2

[target.diagnose]
error_log = "{error}"

[[log]]
name = "apache"
access = "{access}"
error = "{error}"
window = "5s"
min_requests = 3
fire_when = ["[5XX_RATIO] > 20%", "[ERROR_LOG] matches \"PHP (Fatal|Parse) error\""]

[[notify]]
name = "ops"
type = "webhook"
url = "{hook}"
retry_initial = "100ms"
"#,
        db = dir.path().join("lookout.sqlite").display(),
        url = apache.url("/"),
        access = apache.access_log.display(),
        error = apache.error_log.display(),
        hook = receiver.url(),
    );
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
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
    let log = receiver.wait_for_target("apache", "firing", Duration::from_secs(15)).await;
    eprintln!("probe alert and log alert within {:?} of the broken deploy", broke.elapsed());
    assert!(log.body["diagnosis"].as_str().is_some_and(|d| d.contains("does not exist")), "{}", log.body);
    let reasons = log.body["reasons"].to_string();
    assert!(
        reasons.contains("[ERROR_LOG] (PHP Warning:  require_once(")
            || reasons.contains("[ERROR_LOG] (PHP Fatal error:"),
        "{reasons}"
    );
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
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}
