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

/// `lookout run` in this process on a config's text, stopped (and its clean exit checked) by [`Embedded::stop`].
struct Embedded {
    stop: watch::Sender<bool>,
    runtime: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    fn start(dir: &Path, text: &str) -> Embedded {
        let cfg = Config::parse(text, &dir.join("lookout.toml"), &|_| None).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        Embedded { stop, runtime: tokio::spawn(lookout::runtime::run(cfg, stop_rx, None)) }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.runtime).await.unwrap().unwrap().unwrap();
    }
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
    let lookout = Embedded::start(dir.path(), &text);

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
    lookout.stop().await;
}

/// The default levels: more than 2 % of the requests failing warns (`apache-warning`), more than 5 % pages
/// (`apache`), and only the worse is sent while both hold.
#[tokio::test(flavor = "multi_thread")]
async fn a_small_5xx_ratio_warns_a_large_one_pages_and_only_the_worse_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let receiver = Receiver::start().await;
    let text = config(dir.path(), &receiver.url(), "window = \"3s\"");
    let lookout = Embedded::start(dir.path(), &text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let traffic =
        |failing: usize| (0..200).map(|i| access_line(i, if i < failing { 500 } else { 200 })).collect::<Vec<_>>();
    let healthy = || async {
        for _ in 0..10 {
            append(&access, &traffic(0));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let sent = |target: &str, state: &str| {
        receiver.received().iter().filter(|r| r.body["target"] == target && r.body["state"] == state).count()
    };

    // 10 %: both levels hold; the page goes out, the warning does not while the page holds.
    append(&access, &traffic(20));
    let page = receiver.wait_for_target("apache", "firing", Duration::from_secs(10)).await;
    assert_eq!(page.body["severity"], "critical");
    assert_eq!(page.body["reasons"], serde_json::json!(["[5XX_RATIO] (10.0%) > 5%"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sent("apache-warning", "firing"), 0, "the warning is not sent while the page holds");
    healthy().await;
    receiver.wait_for_target("apache", "resolved", Duration::from_secs(10)).await;
    // Healthy traffic thins the ratio out: once the page has resolved at 4.75 % (hysteresis), the warning still
    // holding may be sent, never before.
    let order: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            (r.body["target"].as_str().unwrap_or("").to_string(), r.body["state"].as_str().unwrap_or("").to_string())
        })
        .collect();
    let at = |t: &str, s: &str| order.iter().position(|(a, b)| a == t && b == s);
    assert!(at("apache-warning", "firing").is_none_or(|w| w > at("apache", "resolved").unwrap()), "{order:?}");
    if at("apache-warning", "firing").is_some() {
        receiver.wait_for_target("apache-warning", "resolved", Duration::from_secs(10)).await;
    }
    let before = receiver.received().len();

    // 3 %: a warning only (once the healthy lines have left the 3 s window, which would thin the ratio out).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    append(&access, &traffic(6));
    let after = |target: &'static str, state: &'static str| {
        let receiver = &receiver;
        async move {
            for _ in 0..200 {
                let got = receiver.received().split_off(before);
                if let Some(r) = got.into_iter().find(|r| r.body["target"] == target && r.body["state"] == state) {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no {target} {state} within 10 s: {:?}", receiver.received());
        }
    };
    let warning = after("apache-warning", "firing").await;
    assert_eq!(warning.body["severity"], "warning");
    assert_eq!(warning.body["reasons"], serde_json::json!(["[5XX_RATIO] (3.0%) > 2%"]));
    healthy().await;
    after("apache-warning", "resolved").await;
    assert_eq!(sent("apache", "firing"), 1, "3 % does not page");
    assert_eq!(receiver.received().len(), before + 2, "one warning and its resolve");
    assert_eq!(receiver.problems(), Vec::<String>::new());

    // The source's counts are stored once, not once per level.
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let totals = store.log_totals("apache".into()).await.unwrap();
    assert_eq!((totals.requests, totals.classes[4]), (2 * 200 + 20 * 200, 26));
    assert_eq!(store.log_totals("apache-warning".into()).await.unwrap().requests, 0);
    lookout.stop().await;
}

/// Request times (`%D`) become each minute's percentiles, stored as the source's readings and charted on the
/// server page: lines of minutes long over close at once.
#[tokio::test(flavor = "multi_thread")]
async fn request_times_in_the_access_log_become_per_minute_percentiles_on_the_server_page() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let port = crate::support::free_port().await;
    let text = format!(
        "[store]\npath = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n[host]\nenabled = false\n\n[[log]]\nname = \"apache\"\naccess = \"{}\"\nformat = \"%h %l %u %t \\\"%r\\\" %>s %b %D\"\n",
        dir.path().join("lookout.sqlite").display(),
        access.display()
    );
    let lookout = Embedded::start(dir.path(), &text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Five minutes ago: 100 requests of 1 to 100 ms; four minutes ago: 20 of 2 s.
    let now = lookout_core::Timestamp::now().as_millis() / 1000;
    let (first, second) = (now / 60 * 60 - 300, now / 60 * 60 - 240);
    let line = |minute: i64, i: usize, us: u64| {
        let t = lookout_core::Timestamp((minute + (i % 60) as i64) * 1000).to_rfc3339_seconds();
        // 2026-12-01T07:30:05Z → [01/Dec/2026:07:30:05 +0000]
        let (date, time) = (&t[..10], &t[11..19]);
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let month = months[date[5..7].parse::<usize>().unwrap() - 1];
        format!(
            "10.0.0.{} - - [{}/{month}/{}:{time} +0000] \"GET / HTTP/1.1\" 200 12 {us}",
            i % 250,
            &date[8..10],
            &date[..4]
        )
    };
    let mut lines: Vec<String> = (1..=100).map(|i| line(first, i, i as u64 * 1000)).collect();
    lines.extend((0..20).map(|i| line(second, i, 2_000_000)));
    append(&access, &lines);

    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    let hour_ago = lookout_core::Timestamp((now / 60 * 60 - 3600) * 1000); // slices start on minutes
    let mut readings = Vec::new();
    for _ in 0..100 {
        readings =
            store.readings_between("apache".into(), hour_ago, lookout_core::Timestamp::now(), 60_000).await.unwrap();
        if readings.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let value = |name: &str, minute: i64| {
        readings.iter().find(|b| b.name == name && b.start.as_millis() == minute * 1000).map(|b| b.mean)
    };
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() <= want * 0.01 + 0.5);
    assert!(near(value("LATENCY_P50", first), 50.0), "{readings:?}");
    assert!(near(value("LATENCY_P95", first), 95.0), "{readings:?}");
    assert!(near(value("LATENCY_P99", first), 99.0), "{readings:?}");
    assert!(near(value("LATENCY_P95", second), 2000.0), "{readings:?}");

    let (status, page) = crate::support::http_get(&format!("http://127.0.0.1:{port}/server?hours=1")).await;
    assert_eq!(status, 200);
    for chart in
        ["aria-label=\"LATENCY_P50\"", "aria-label=\"LATENCY_P95\"", "aria-label=\"LATENCY_P99\"", "UTC: 2.0s (min"]
    {
        assert!(page.contains(chart), "no {chart} on the server page");
    }
    lookout.stop().await;
}

/// `lookout diagnose`'s own requests (its User-Agent) failing are not users failing: they neither fire the log
/// alert nor count; the same failures from users do.
#[tokio::test(flavor = "multi_thread")]
async fn lookout_s_own_diagnosis_requests_do_not_trip_the_log_alert() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    let receiver = Receiver::start().await;
    let text = config(dir.path(), &receiver.url(), "window = \"3s\"\nfire_when = [\"[5XX_RATIO] > 20%\"]");
    let lookout = Embedded::start(dir.path(), &text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let own = format!("\"{}\"", lookout_core::DIAGNOSE_USER_AGENT);
    append(&access, &(0..30).map(|i| access_line(i, 500).replace("\"test\"", &own)).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.received().is_empty(), "the diagnosis's requests fired: {:?}", receiver.received());
    append(&access, &(0..30).map(|i| access_line(i, 500)).collect::<Vec<_>>());
    receiver.wait_for_target("apache", "firing", Duration::from_secs(10)).await;
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    assert_eq!(store.log_totals("apache".into()).await.unwrap().requests, 30, "only the users' requests counted");
    lookout.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_php_fatal_error_in_the_error_log_fires() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let text =
        config(dir.path(), &receiver.url(), "fire_when = [\"[ERROR_LOG] matches \\\"PHP (Fatal|Parse) error\\\"\"]");
    let lookout = Embedded::start(dir.path(), &text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The error log does not exist yet when lookout starts; Apache creates it.
    append(
        &dir.path().join("error.log"),
        &["[Wed Nov 25 14:36:22.477068 2026] [php:error] [pid 10643:tid 10643] [client 127.0.0.1:42820] PHP Fatal error:  Uncaught Error: Failed opening required '/var/www/html/inc/settings.phpp' (include_path='.:/usr/share/php') in /var/www/html/index.php:3".to_string()],
    );
    let firing = receiver.wait_for("/firing", Duration::from_secs(10)).await;
    let reason = firing.body["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("[ERROR_LOG] (PHP Fatal error:  Uncaught Error: Failed opening required"), "{reason}");
    lookout.stop().await;
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
