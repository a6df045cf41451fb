//! The pipeline's timed loops: each target's probe on its interval, and the pruning of old results.

use std::sync::Arc;
use std::time::Duration;

use lookout_config::Target;
use lookout_core::{Event, Timestamp};
use lookout_store::Store;
use tokio::sync::{mpsc, watch};

/// Probes one target every `interval` (first run after a random fraction of it, so targets spread out).
pub(super) async fn probe(target: Target, tx: mpsc::Sender<Event>, mut shutdown: watch::Receiver<bool>) {
    let first = target.interval.mul_f64(fastrand::f64() * 0.1);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, target.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let obs = tokio::select! {
            o = lookout_probe::probe(&target) => o,
            _ = shutdown.changed() => return,
        };
        if tx.send(Event::Probe(obs)).await.is_err() {
            return;
        }
    }
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
