//! The pipeline's timed loops: each target's probe on its interval, and the pruning of old results.

use std::sync::Arc;
use std::time::Duration;

use lookout_config::Target;
use lookout_core::{Event, Timestamp};
use lookout_store::Store;
use tokio::sync::{mpsc, watch};

/// Probes one target every `interval`, at its own phase of it (see [`phase_delay`]), until `shutdown`; a probe
/// under way then is finished first.
pub(super) async fn probe(target: Target, tx: mpsc::Sender<Event>, mut shutdown: watch::Receiver<bool>) {
    let first = phase_delay(&target.name, target.interval, Timestamp::now().as_millis());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        // A probe under way at a stop is finished (its timeout bounds it) and its result sent: the server
        // answered it, so it is recorded.
        let obs = lookout_probe::probe(&target).await;
        if tx.send(Event::Probe(obs)).await.is_err() {
            return;
        }
    }
}

/// How long until a target's next check: each target has a fixed phase within its interval, from a hash of its
/// name, so 10,000 targets every 10 s are checked evenly through each 10 s rather than in a burst (flat load on
/// the servers, the network and the store), and a restart keeps every target's rhythm.
pub(super) fn phase_delay(name: &str, interval: Duration, now_ms: i64) -> Duration {
    let period = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1);
    // Stable across builds and restarts, unlike std's hasher.
    let phase = (lookout_core::hash::fnv1a(name.as_bytes()) % period as u64) as i64;
    Duration::from_millis((phase - now_ms).rem_euclid(period) as u64)
}

/// Deletes results older than `retention`, hourly.
pub(super) async fn prune<S: Store>(store: Arc<S>, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let before = Timestamp(Timestamp::now().as_millis() - retention.as_millis() as i64);
        match store.prune_results(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "Pruned old probe results."),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Cannot prune old probe results."),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // The same moment of every interval, whenever lookout starts.
        let a = phase_delay("shop", interval, 1_000);
        let b = phase_delay("shop", interval, 1_000 + 10_000 * 7 + 2_500);
        assert_eq!((a.as_millis() as i64 - 2_500).rem_euclid(10_000), b.as_millis() as i64);
    }
}
