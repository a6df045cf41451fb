//! `[[log]]` sources through the real runtime: a 5xx burst or a PHP fatal error in the logs fires the same
//! alert path and webhook as a failed probe; counts survive rotation and SIGKILL exactly.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use lookout_config::Config;
use lookout_store::Store;
use tokio::sync::watch;

use crate::support::{Receiver, spawn_run, wait_until, write_config};

pub(crate) fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    f.write_all(text.as_bytes()).unwrap();
}

pub(crate) fn access_line(i: usize, status: u16) -> String {
    format!(
        "10.0.{}.{} - - [25/Nov/2026:14:36:22 +0000] \"GET /index.php HTTP/1.1\" {status} 12 \"-\" \"test\"",
        i / 250 % 250,
        i % 250
    )
}

fn config(dir: &Path, hook: &str, extra: &str) -> String {
    format!(
        "[store]\npath = \"{}\"\n\n[[log]]\nname = \"apache\"\naccess = \"{}\"\nerror = \"{}\"\nmin_requests = 10\n{extra}\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook}\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n",
        dir.join("lookout.sqlite").display(),
        dir.join("access.log").display(),
        dir.join("error.log").display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_burst_in_the_access_log_fires_and_resolves_through_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    // History before lookout starts is not alerted on (start_at = "end").
    append(&access, &(0..50).map(|i| access_line(i, 500)).collect::<Vec<_>>());
    let receiver = Receiver::start().await;
    let text = config(dir.path(), &receiver.url(), "window = \"3s\"\nfire_when = [\"[5XX_RATIO] > 20%\"]");
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));

    tokio::time::sleep(Duration::from_millis(500)).await;
    append(&access, &(0..40).map(|i| access_line(i, 200)).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty(), "healthy traffic and old history must not alert");

    let written = Instant::now();
    append(&access, &(0..30).map(|i| access_line(i, 500)).collect::<Vec<_>>());
    let firing = receiver.wait_for("/firing", Duration::from_secs(10)).await;
    let latency = written.elapsed();
    eprintln!("5xx burst → webhook in {latency:?}");
    assert_eq!(firing.body["target"], "apache");
    assert_eq!(firing.body["reasons"], serde_json::json!(["[5XX_RATIO] (42.9%) > 20%"]));
    assert_eq!(receiver.problems(), Vec::<String>::new());

    // Garbage is counted as malformed, never fatal.
    append(&access, &["\u{1}binary\u{0}garbage".to_string(), "not a log line".to_string(), "x".repeat(5000)]);
    // Healthy traffic after the window has passed resolves it.
    for _ in 0..8 {
        append(&access, &(0..20).map(|i| access_line(i, 200)).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    receiver.wait_for("/resolved", Duration::from_secs(10)).await;
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let totals = store.log_totals("apache".into()).await.unwrap();
    assert_eq!(totals.requests, 40 + 30 + 160, "history skipped, everything after counted once");
    assert_eq!(totals.classes[4], 30);
    assert_eq!(totals.malformed, 3);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_php_fatal_error_in_the_error_log_fires() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let text =
        config(dir.path(), &receiver.url(), "fire_when = [\"[ERROR_LOG] matches \\\"PHP (Fatal|Parse) error\\\"\"]");
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The error log does not exist yet when lookout starts; Apache creates it.
    append(
        &dir.path().join("error.log"),
        &["[Wed Nov 25 14:36:22.477068 2026] [php:error] [pid 10643:tid 10643] [client 127.0.0.1:42820] PHP Fatal error:  Uncaught Error: Failed opening required '/var/www/html/inc/settings.phpp' (include_path='.:/usr/share/php') in /var/www/html/index.php:3".to_string()],
    );
    let firing = receiver.wait_for("/firing", Duration::from_secs(10)).await;
    let reason = firing.body["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("[ERROR_LOG] (PHP Fatal error:  Uncaught Error: Failed opening required"), "{reason}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_are_exact_across_rotations_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let receiver = Receiver::start().await;
    let config = write_config(
        dir.path(),
        &config(dir.path(), &receiver.url(), "start_at = \"beginning\"\nfire_when = [\"[REQUESTS] < 0\"]"),
    );
    let mut lookout = spawn_run(&config);

    // A writer appends numbered requests and rotates (rename + create) now and then; lookout is killed with
    // SIGKILL in the middle and restarted.
    let path = access.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        for round in 0..30 {
            let lines: Vec<String> =
                (0..200).map(|i| access_line(n + i, if i % 10 == 0 { 500 } else { 200 })).collect();
            n += lines.len();
            append(&path, &lines);
            if round % 6 == 5 {
                std::fs::rename(&path, path.with_file_name(format!("access.log.{round}"))).unwrap();
            }
            std::thread::sleep(Duration::from_millis(60));
        }
        n
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    lookout.kill().unwrap();
    lookout.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lookout = spawn_run(&config);
    let total = tokio::task::spawn_blocking(move || writer.join().unwrap()).await.unwrap() as u64;

    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    wait_until("every line counted", Duration::from_secs(20), || async {
        store.log_totals("apache".into()).await.unwrap().requests >= total
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    lookout.kill().unwrap();
    lookout.wait().unwrap();
    let totals = store.log_totals("apache".into()).await.unwrap();
    assert_eq!(totals.requests, total, "nothing lost, nothing doubled");
    assert_eq!(totals.classes[4], total / 10);
    assert_eq!(totals.malformed, 0);
}
