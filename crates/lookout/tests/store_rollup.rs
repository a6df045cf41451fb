//! The store stays small and the pages stay right: 100 days of probe results, rolled up by `lookout run`'s own
//! loop (raw window 24 h), give the status page the same 90 daily uptime bars as the raw results did.

use std::time::Duration;

use lookout_config::Config;
use lookout_core::Timestamp;
use lookout_store::{Record, ResultRow, Store};
use tokio::sync::watch;

use crate::support::{Target, free_port};

const DAY: i64 = 86_400_000;

/// The status page's bars (`title`s: "date: uptime") except today's, its uptime line, and the dashboard's
/// 7- and 30-day uptime.
async fn status_page(port: u16) -> (Vec<String>, String, String) {
    let page = get(port, "/status").await;
    let mut bars: Vec<String> = page
        .split("class=\"bar bar-")
        .skip(1)
        .map(|b| b.split("\"></span>").next().unwrap_or("").to_string())
        .collect();
    bars.pop();
    let uptime = page.split("<small class=\"uptime\">").nth(1).and_then(|u| u.split('<').next()).unwrap_or("");
    let dashboard = get(port, "/").await;
    let week_and_month = dashboard
        .split("<td data-label=\"uptime 24 h / 7 d / 30 d\">")
        .skip(1)
        .filter_map(|c| c.split("</td>").next())
        .find(|c| c.matches(" / ").count() == 2)
        .and_then(|c| c.split_once(" / "))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default();
    (bars, uptime.to_string(), week_and_month)
}

async fn get(port: u16, path: &str) -> String {
    let req = lookout_http::HttpRequest {
        url: format!("http://127.0.0.1:{port}{path}").parse().unwrap(),
        method: http::Method::GET,
        headers: vec![],
        body: None,
        follow_redirects: false,
        verify_tls: true,
        timeout: Duration::from_secs(5),
        max_body: 4 << 20,
    };
    lookout_http::fetch(&req).await.body
}

async fn run_and_read(
    dir: &std::path::Path,
    url: &str,
    store_keys: &str,
    rolled: impl AsyncFn() -> bool,
) -> (Vec<String>, String, String) {
    let port = free_port().await;
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n{store_keys}\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[target]]\nname = \"site\"\nurl = \"{url}\"\ninterval = \"1h\"\n"
    );
    let cfg = Config::parse(&text, &dir.join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !rolled().await {
        assert!(tokio::time::Instant::now() < deadline, "the roll-up did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut page = (Vec::new(), String::new(), String::new());
    for _ in 0..200 {
        page = status_page(port).await;
        if page.0.len() == 89 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), runtime).await.unwrap().unwrap().unwrap();
    page
}

#[tokio::test(flavor = "multi_thread")]
async fn ninety_days_of_uptime_read_the_same_after_lookout_rolls_them_up() {
    let site = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.sqlite");
    let store = lookout_store::open(&lookout_config::StoreConfig::sqlite(path.clone())).await.unwrap();
    let now = Timestamp::now().as_millis();
    let first = (now / DAY - 100) * DAY;
    // A result every 10 minutes for 100 days; every 7th day has a bad hour, every 3rd a single failure.
    let records: Vec<Record> = (0..(now - first) / 600_000)
        .map(|i| {
            let at = first + i * 600_000;
            let (day, minute) = ((at - first) / DAY, (at % DAY) / 60_000);
            let ok = !((day % 7 == 0 && (600..660).contains(&minute)) || (day % 3 == 0 && minute == 720));
            let row = ResultRow {
                target: "site".into(),
                at: Timestamp(at),
                ok,
                status: Some(if ok { 200 } else { 503 }),
                latency_ms: 20.0 + (i % 50) as f64,
                error: None,
                failed_conditions: if ok { vec![] } else { vec!["[STATUS] (503) == 200".into()] },
                timings: Default::default(),
                body_excerpt: None,
            };
            Record { result: Some(row), ..Record::default() }
        })
        .collect();
    let written = records.len();
    store.record_all(records).await.unwrap();
    let old_rows = || {
        let store = store.clone();
        async move { store.results_between("site".into(), Timestamp(first), Timestamp(now - 3 * DAY)).await.unwrap().len() }
    };
    let raw_old = old_rows().await;
    assert!(raw_old > 13_000, "{raw_old} of {written}");

    // Everything kept raw: the roll-up has nothing to do.
    let raw =
        run_and_read(dir.path(), &site.url("/"), "retention = \"400d\"\nraw_retention = \"400d\"", async || true).await;
    assert_eq!(old_rows().await, raw_old);
    assert_eq!(raw.0.len(), 89, "{raw:?}");
    assert!(raw.0.iter().any(|b| b.starts_with("degraded") || b.starts_with("down")), "{raw:?}");
    assert!(raw.1.contains("over 90 days"), "{raw:?}");
    assert!(raw.2.contains('%') && raw.2.contains(" / "), "the dashboard's 7- and 30-day uptime: {raw:?}");

    // The defaults (raw 24 h, failures 7 d, hours 90 d): lookout rolls up at start.
    let rolled = run_and_read(dir.path(), &site.url("/"), "", async || old_rows().await < 100).await;
    assert_eq!(rolled, raw, "the same bars and uptime from the aggregates");
    // Whole days, midnight to midnight: a window starting at, say, 12:05 would hold the 12:10 recovery of a
    // failure it left out, and the share of successes would depend on the time of day the test runs.
    let (from, to) = (((now - 7 * DAY) / DAY + 1) * DAY, ((now - 3 * DAY) / DAY) * DAY);
    let kept = store.results_between("site".into(), Timestamp(from), Timestamp(to)).await.unwrap();
    assert!(
        !kept.is_empty() && kept.iter().filter(|r| r.ok).count() <= kept.len() / 2,
        "failures and recoveries stay raw"
    );
}
