//! Recording at scale, through the real pipeline and a real SQLite store on disk (no network: events are fed in
//! directly with `Monitor::run_on`).
//!
//! 1. A storm: N targets of one group fail at once (N = 500, 2,000, 5,000); the time until every firing alert is
//!    recorded — transition, alert state, incident join, timeline entries and one outbox message each. Goal: 5,000
//!    in ≤ 1 s, and linear: the time per alert at 5,000 within 2× of that at 500 (the ratio is printed).
//! 2. Sustained results: 100,000 passing results of 10,000 targets; goal ≥ 20,000 results/s.
//!
//! `cargo bench -p lookout-app --bench storm` (release). Prints one line per measurement and PASS/FAIL per goal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_app::activity::Activity;
use lookout_app::health::Health;
use lookout_app::metrics::Metrics;
use lookout_app::pipeline::Monitor;
use lookout_config::Config;
use lookout_core::{Event, Observation, ProbeKind, Timestamp, TransitionKind};
use tokio::sync::{broadcast, mpsc, watch};

fn config(dir: &std::path::Path, targets: usize) -> Config {
    let mut text = String::from(
        "[store]\npath = \"lookout.sqlite\"\n\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\n",
    );
    for i in 0..targets {
        text.push_str(&format!(
            "[[target]]\nname = \"web-{i}\"\nurl = \"http://127.0.0.1:9/{i}\"\ninterval = \"10s\"\n\
             conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 1\ngroup = \"shop\"\n\n"
        ));
    }
    match Config::parse(&text, &dir.join("lookout.toml"), &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("bench config: {e}"),
    }
}

fn observation(i: usize, status: u16) -> Event {
    let mut obs = Observation::new(format!("web-{i}"), ProbeKind::Http, Timestamp::now());
    obs.connected = true;
    obs.status = Some(status);
    obs.timings.total_ms = 3.0;
    Event::Probe(obs)
}

/// Starts the pipeline over a fresh store; returns the event sender, the activity feed and the stop switch.
async fn start(
    dir: &std::path::Path,
    targets: usize,
) -> (mpsc::Sender<Event>, broadcast::Receiver<Activity>, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let cfg = config(dir, targets);
    let store = Arc::new(lookout_store::open(&cfg.store).await.expect("open the store"));
    let (activity, feed) = broadcast::channel(1 << 16);
    let monitor =
        Monitor::start(cfg, store, Arc::new(Metrics::new()), Health::default(), Some(activity)).await.expect("start");
    let (tx, rx) = mpsc::channel(200_000);
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(monitor.run_on(rx, stop_rx));
    (tx, feed, stop, run)
}

/// Waits until `n` activities matching `want` were announced (announced = recorded); a lagging feed counts what
/// it skipped only for `Checked` (the caller's choice of `lagged_counts`).
async fn wait_for(
    feed: &mut broadcast::Receiver<Activity>,
    n: usize,
    want: impl Fn(&Activity) -> bool,
    lagged_counts: bool,
) {
    let mut seen = 0;
    while seen < n {
        match feed.recv().await {
            Ok(a) if want(&a) => seen += 1,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(k)) if lagged_counts => seen += k as usize,
            Err(broadcast::error::RecvError::Lagged(k)) => panic!("activity feed lagged by {k}: enlarge it"),
            Err(broadcast::error::RecvError::Closed) => panic!("the pipeline stopped after {seen} of {n}"),
        }
    }
}

async fn storm(n: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tx, mut feed, stop, run) = start(dir.path(), n).await;
    let started = Instant::now();
    for i in 0..n {
        tx.send(observation(i, 500)).await.expect("send");
    }
    wait_for(&mut feed, n, |a| matches!(a, Activity::Transition(t) if t.kind == TransitionKind::Firing), false).await;
    let took = started.elapsed();
    let _ = stop.send(true);
    let _ = run.await;
    took
}

async fn sustained(targets: usize, results: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let (tx, mut feed, stop, run) = start(dir.path(), targets).await;
    let started = Instant::now();
    let feeder = tokio::spawn(async move {
        for k in 0..results {
            if tx.send(observation(k % targets, 200)).await.is_err() {
                return;
            }
        }
    });
    wait_for(&mut feed, results, |a| matches!(a, Activity::Checked { .. }), true).await;
    let secs = started.elapsed().as_secs_f64();
    let _ = feeder.await;
    let _ = stop.send(true);
    let _ = run.await;
    results as f64 / secs
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

#[tokio::main]
async fn main() {
    let mut per_alert = Vec::new();
    for n in [500, 2_000, 5_000] {
        let took = storm(n).await;
        let each = took.as_secs_f64() / n as f64;
        per_alert.push(each);
        println!(
            "storm: {n:>5} alerts of one group recorded in {:>6.3} s ({:>7.0} alerts/s)",
            took.as_secs_f64(),
            1.0 / each
        );
        if n == 5_000 {
            println!("  goal 5,000 in <= 1 s: {}", verdict(took <= Duration::from_secs(1)));
        }
    }
    let ratio = per_alert[2] / per_alert[0];
    println!(
        "linearity: time per alert at 5,000 / at 500 = {ratio:.2} (quadratic would be ~10): {}",
        verdict(ratio <= 2.0)
    );
    let rate = sustained(10_000, 100_000).await;
    println!(
        "sustained: {rate:>7.0} results/s over 100,000 results of 10,000 targets; goal >= 20,000/s: {}",
        verdict(rate >= 20_000.0)
    );
}
