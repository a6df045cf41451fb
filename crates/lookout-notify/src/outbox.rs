//! The durable sender: one task per channel delivers that channel's outbox in order, retrying the head
//! message with exponential backoff until the channel accepts it.
//!
//! Messages reach the outbox in the same transaction as the transition that caused them, so nothing is lost;
//! a message is marked delivered right after the channel's 2xx, so nothing delivered is sent again. The one
//! window left — a crash between the 2xx and the mark — resends a message after restart with the same
//! idempotency key, which receivers dedupe on.

use std::sync::Arc;
use std::time::Duration;

use lookout_core::Timestamp;
use lookout_store::Store;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{Delivery, Notification, Notifier, SendError};

/// The stored payload as a delivery. A payload that does not parse can never be sent: abandoned.
fn delivery_of(msg: &lookout_store::OutboxMessage) -> Result<Delivery, SendError> {
    let n: Notification = serde_json::from_str(&msg.payload)
        .map_err(|e| SendError::Permanent(format!("the stored message is not a notification: {e}")))?;
    Ok(Delivery { key: msg.key.clone(), notifications: vec![n] })
}

/// Retry delays: `initial`, doubling per failed attempt, capped at `max`, with ±10% jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before the next attempt after `attempts` failed attempts (≥ 1).
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exp).min(self.max);
        let jitter = 0.9 + fastrand::f64() * 0.2;
        base.mul_f64(jitter).min(self.max)
    }
}

/// Longest a channel task sleeps without re-reading the outbox, as a safety net for missed wake-ups.
const IDLE_RECHECK: Duration = Duration::from_secs(30);

pub struct Outbox<S: Store> {
    store: Arc<S>,
    channels: Vec<(Arc<dyn Notifier>, Backoff)>,
    wake_tx: watch::Sender<u64>,
}

impl<S: Store> Outbox<S> {
    pub fn new(store: Arc<S>, channels: Vec<(Arc<dyn Notifier>, Backoff)>) -> Self {
        let (wake_tx, _) = watch::channel(0);
        Outbox { store, channels, wake_tx }
    }

    /// Names of the configured channels, for enqueuing.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|(n, _)| n.name().to_string()).collect()
    }

    /// A handle that wakes the senders after new messages were recorded.
    pub fn waker(&self) -> OutboxWaker {
        OutboxWaker(self.wake_tx.clone())
    }

    /// Runs one sender per channel until `shutdown` turns true. A send in flight at shutdown is abandoned and
    /// retried on the next start.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        for (notifier, backoff) in self.channels {
            let store = self.store.clone();
            let wake = self.wake_tx.subscribe();
            let shutdown = shutdown.clone();
            tasks.spawn(deliver_channel(store, notifier, backoff, wake, shutdown));
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Wakes the outbox senders.
#[derive(Clone)]
pub struct OutboxWaker(watch::Sender<u64>);

impl OutboxWaker {
    pub fn wake(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }
}

async fn deliver_channel<S: Store>(
    store: Arc<S>,
    notifier: Arc<dyn Notifier>,
    backoff: Backoff,
    mut wake: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let channel = notifier.name().to_string();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Mark wake-ups seen *before* reading, so a message recorded during the read wakes us again.
        wake.borrow_and_update();
        let sleep_for = match store.oldest_undelivered(channel.clone()).await {
            Err(e) => {
                tracing::error!(%channel, error = %e, "Cannot read the outbox; retrying.");
                Duration::from_secs(1)
            }
            Ok(None) => IDLE_RECHECK,
            Ok(Some(msg)) => {
                let now = Timestamp::now();
                if msg.next_attempt_at > now {
                    msg.next_attempt_at.since(now)
                } else {
                    let sent = match delivery_of(&msg) {
                        Ok(delivery) => tokio::select! {
                            r = notifier.send(&delivery) => r,
                            _ = shutdown.changed() => return,
                        },
                        Err(e) => Err(e),
                    };
                    let attempts = msg.attempts.saturating_add(1);
                    let recorded = match sent {
                        Ok(note) => {
                            match &note {
                                Some(n) => {
                                    tracing::warn!(%channel, key = %msg.key, attempts, note = %n, "Notification delivered, with a problem.")
                                }
                                None => tracing::info!(%channel, key = %msg.key, attempts, "Notification delivered."),
                            }
                            store.mark_delivered(msg.id, Timestamp::now(), note).await
                        }
                        Err(SendError::Permanent(e)) => {
                            tracing::error!(%channel, key = %msg.key, attempts, error = %e, "Notification refused for good; not retrying.");
                            store.mark_abandoned(msg.id, Timestamp::now(), e).await
                        }
                        Err(SendError::Retry(e)) => {
                            let delay = backoff.delay(attempts);
                            tracing::warn!(%channel, key = %msg.key, attempts, error = %e, retry_in = ?delay, "Notification not delivered; will retry.");
                            store.mark_failed(msg.id, attempts, Timestamp::now().plus(delay), e).await
                        }
                    };
                    match recorded {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::error!(%channel, error = %e, "Cannot update the outbox; retrying.");
                            Duration::from_secs(1)
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep_for) => {}
            r = wake.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(60) };
        let within = |d: Duration, secs: f64| {
            let s = d.as_secs_f64();
            s >= secs * 0.9 - 1e-9 && s <= secs * 1.1 + 1e-9
        };
        assert!(within(b.delay(1), 1.0));
        assert!(within(b.delay(2), 2.0));
        assert!(within(b.delay(4), 8.0));
        assert!(b.delay(10) <= Duration::from_secs(60));
        assert!(b.delay(10) >= Duration::from_secs(54));
        assert!(b.delay(u32::MAX) <= Duration::from_secs(60));
    }
}
