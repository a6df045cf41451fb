//! The pipeline's timed loops: each target's probe on its interval, and the pruning of old results.

use std::sync::Arc;
use std::time::Duration;

use lookout_config::{Config, Target};
use lookout_core::{Event, Timestamp};
use lookout_store::Store;
use tokio::sync::{mpsc, watch};

use crate::checks::{Assigned, is_mine, taken_over};
use crate::metrics::Metrics;

/// Probes one target every `interval`, at its own phase of it (see [`phase_delay`]), until `shutdown`; a probe
/// under way then is finished first. How late each check starts goes to `metrics` (`bench/scale.sh` reads it).
/// A tick when the target is not this agent's (another agent of its location holds it, see
/// [`crate::checks`]) is skipped, and so is one while the target is paused ([`crate::pause`]); each result says
/// it comes from `location`.
pub(super) async fn probe(
    target: TargetRef,
    location: Arc<str>,
    mut assigned: Assigned,
    paused: crate::pause::Paused,
    tx: mpsc::Sender<Event>,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let target = target.get();
    let first = phase_delay(&target.name, target.interval, Timestamp::now().as_millis());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut assignments = true;
    let mut memory = lookout_probe::Memory::default();
    loop {
        let scheduled = tokio::select! {
            at = ticker.tick() => Some(at),
            _ = shutdown.changed() => return,
            // Only when this agent's checks change (rarely): a check taken over may be owed a probe.
            changed = assigned.changed(), if assignments => {
                if changed.is_err() {
                    // The checks' task ended (one machine has none, or a stop): keep to the last assignment.
                    assignments = false;
                    continue;
                }
                if !taken_over(&assigned, &target.name) {
                    continue;
                }
                None
            }
        };
        if *shutdown.borrow() {
            return;
        }
        if !is_mine(&assigned, &target.name) || paused.borrow().contains(&target.name) {
            continue;
        }
        if let Some(at) = scheduled {
            metrics.probe_started(at.elapsed());
        }
        // A probe under way at a stop is finished (its timeout bounds it) and its result sent: the server
        // answered it, so it is recorded.
        // Boxed: a probe's future (the HTTP client's connect, TLS, hyper states) is ~11 KB, and inlined it would
        // sit in every target's task for good — 10,000 idle targets held ~100 MB that way. Boxed, it exists
        // only while the probe runs (a few at a time), and the loop's own future stays small (see the test).
        // The observation and the send's future (~600 bytes) live in the box too, for the same reason.
        let sent = Box::pin(async {
            let mut obs = lookout_probe::probe_with(target, &mut memory).await;
            obs.location = location.to_string();
            tx.send(Event::Probe(obs)).await.is_ok()
        })
        .await;
        if !sent {
            return;
        }
    }
}

/// The target a probe loop checks: the configuration's own (shared by every loop, the pipeline and the web: 10,000
/// targets are held once), or a copy of it when this agent changes it (its User-Agent names the location).
pub(crate) enum TargetRef {
    Shared(Arc<Config>, usize),
    Own(Box<Target>),
}

impl TargetRef {
    fn get(&self) -> &Target {
        match self {
            TargetRef::Shared(config, i) => &config.targets[*i],
            TargetRef::Own(t) => t,
        }
    }
}

/// The grain of targets' phases, in milliseconds: 10,000 targets every 10 s start ~10 at a time, 100 times a
/// second — flat at any scale a scrape or a server sees, and a tenth of the wake-ups of one phase per millisecond.
const PHASE_SLOT: i64 = 10;

/// How long until a target's next check: each target has a fixed phase within its interval, from a hash of its
/// name, so 10,000 targets every 10 s are checked evenly through each 10 s rather than in a burst (flat load on
/// the servers, the network and the store), and a restart keeps every target's rhythm.
///
/// Phases fall on whole [`PHASE_SLOT`]s: the checks of one slot start together and share the runtime's wake-ups
/// (timer, epoll, the pipeline's), instead of each waking the process on a millisecond of its own.
pub(crate) fn phase_delay(name: &str, interval: Duration, now_ms: i64) -> Duration {
    let period = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let slot = PHASE_SLOT.min(period);
    // Stable across builds and restarts, unlike std's hasher.
    let phase = (lookout_core::hash::fnv1a(name.as_bytes()) % (period / slot) as u64) as i64 * slot;
    Duration::from_millis((phase - now_ms).rem_euclid(period) as u64)
}

/// Rolls results older than `raw_retention` up into aggregates and deletes what is past each form's retention,
/// hourly (the store's `roll_up`: idempotent, so a crash or a skipped hour is caught up by the next run).
pub(super) async fn prune<S: Store>(
    store: Arc<S>,
    retention: Duration,
    raw_retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match store.roll_up(horizons(Timestamp::now(), retention, raw_retention)).await {
            Ok(done) if done.rolled > 0 || done.deleted > 0 => {
                tracing::info!(rolled = done.rolled, deleted = done.deleted, "Rolled up old probe results.");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Cannot roll up old probe results."),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The cut-off times of one roll-up: raw results for `raw_retention` (successes packed per hour after an hour);
/// failures and 5-minute aggregates for
/// `retention`; hourly aggregates for `retention` or 90 days, whichever is longer (the status page's 90 days).
pub(super) fn horizons(now: Timestamp, retention: Duration, raw_retention: Duration) -> lookout_store::Horizons {
    let ago = |d: Duration| Timestamp(now.as_millis().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    lookout_store::Horizons {
        pack: ago(Duration::from_secs(3600)),
        raw: ago(raw_retention),
        detail: ago(retention),
        hourly: ago(retention.max(lookout_config::HOURLY_RETENTION_MIN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_keep_raw_results_two_days_failures_a_week_and_hours_ninety_days() {
        let now = Timestamp(1_795_617_382_123);
        let day = 86_400_000;
        let h = horizons(now, Duration::from_secs(7 * 86400), Duration::from_secs(2 * 86400));
        assert_eq!((h.raw.0, h.detail.0, h.hourly.0), (now.0 - 2 * day, now.0 - 7 * day, now.0 - 90 * day));
        let h = horizons(now, Duration::from_secs(400 * 86400), Duration::MAX);
        assert_eq!((h.detail.0, h.hourly.0), (now.0 - 400 * day, now.0 - 400 * day));
        assert!(h.raw.0 < 0, "an absurd retention saturates instead of overflowing");
    }

    #[test]
    fn an_idle_target_costs_little_memory() {
        let text = "[[target]]\nname = \"shop\"\nurl = \"http://127.0.0.1:9/\"\n";
        let config = lookout_config::Config::parse(text, std::path::Path::new("t.toml"), &|_| None);
        let Some(target) = config.ok().and_then(|c| c.targets.into_iter().next()) else {
            panic!("the config parses");
        };
        let (tx, _rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let (_all, assigned) = watch::channel(None);
        let (_none, paused) = watch::channel(Arc::default());
        let metrics = Arc::new(Metrics::new());
        let task = probe(TargetRef::Own(Box::new(target)), "local".into(), assigned, paused, tx, shutdown, metrics);
        // Each target's task holds this future for as long as lookout runs (10,000 targets: × 10,000): a ticker,
        // the channels, select! state and a reference to its target (a probe inlined was ~11 KB, the target held
        // by value ~700 bytes more, and its heap parts a third copy of the configuration).
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "the probe loop's future is {size} bytes: box what it awaits");
    }

    #[test]
    fn ten_thousand_targets_are_spread_evenly_over_their_interval_and_keep_their_phase() {
        let interval = Duration::from_secs(10);
        let mut buckets = [0usize; 10];
        for i in 0..10_000 {
            let d = phase_delay(&format!("target-{i}"), interval, 1_795_617_382_123);
            assert!(d < interval);
            buckets[(d.as_millis() / 1000) as usize] += 1;
        }
        let max = buckets.iter().max().copied().unwrap_or(0);
        assert!(max <= 1500, "no second carries more than 1.5x the mean of 1,000: {buckets:?}");
        // Phases fall on whole slots, also when the interval is not a multiple of one.
        for i in 0..100 {
            let d = phase_delay(&format!("target-{i}"), Duration::from_millis(1005), 0);
            assert!(d.as_millis().is_multiple_of(10) && d < Duration::from_millis(1005), "{d:?}");
        }
        assert!(phase_delay("shop", Duration::from_millis(3), 1) < Duration::from_millis(3));
        // The same moment of every interval, whenever lookout starts.
        let a = phase_delay("shop", interval, 1_000);
        let b = phase_delay("shop", interval, 1_000 + 10_000 * 7 + 2_500);
        assert_eq!((a.as_millis() as i64 - 2_500).rem_euclid(10_000), b.as_millis() as i64);
    }
}
