//! The durable sender: one task per channel delivers that channel's outbox, retrying with exponential backoff
//! until the channel accepts.
//!
//! Messages reach the outbox in the same transaction as the transition that caused them, so nothing is lost;
//! they are marked delivered right after the channel accepts, so nothing delivered is sent again. The one window
//! left — a crash between the acceptance and the mark — resends after restart with the same idempotency key,
//! which receivers dedupe on.
//!
//! Grouping: when the first due message of a group is sent, every pending message of that group on the channel
//! goes with it, in one delivery — so 500 alerts of one group are one message, and a resolve never goes before
//! the firing message it answers. What [`Policy`] holds back is marked suppressed, with why.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lookout_core::{Phase, Timestamp};
use lookout_store::{OutboxMessage, OutboxStore};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::policy::{Policy, Situation, flapped};
use crate::{Delivery, Notification, Notifier, SendError};

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

/// Told of every outcome: (channel, `delivered` | `retry` | `abandoned` | `held_back`, how many messages).
pub type ResultObserver = Arc<dyn Fn(&str, &str, u64) + Send + Sync>;

pub struct Outbox<S: OutboxStore> {
    store: Arc<S>,
    channels: Vec<(Arc<dyn Notifier>, Backoff)>,
    policy: Arc<Policy>,
    wake_tx: watch::Sender<u64>,
    observer: ResultObserver,
}

/// A handle on the same channels and wake-ups: a leader-only sender starts it again after each election won.
impl<S: OutboxStore> Clone for Outbox<S> {
    fn clone(&self) -> Self {
        Outbox {
            store: self.store.clone(),
            channels: self.channels.clone(),
            policy: self.policy.clone(),
            wake_tx: self.wake_tx.clone(),
            observer: self.observer.clone(),
        }
    }
}

impl<S: OutboxStore> Outbox<S> {
    pub fn new(store: Arc<S>, channels: Vec<(Arc<dyn Notifier>, Backoff)>, policy: Policy) -> Self {
        let (wake_tx, _) = watch::channel(0);
        Outbox { store, channels, policy: Arc::new(policy), wake_tx, observer: Arc::new(|_, _, _| {}) }
    }

    /// Reports each outcome to `observer` (metrics).
    pub fn with_observer(mut self, observer: ResultObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Names of the configured channels, for enqueuing.
    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|(n, _)| n.name().to_string()).collect()
    }

    /// A handle that wakes the senders after new messages were recorded.
    pub fn waker(&self) -> OutboxWaker {
        OutboxWaker(self.wake_tx.clone())
    }

    /// Runs one sender per channel until `shutdown` turns true. A send in flight at shutdown is finished and
    /// recorded first (a process killed meanwhile sends it again at its next start, under the same key).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        for (notifier, backoff) in self.channels {
            let sender = Sender {
                store: self.store.clone(),
                notifier,
                backoff,
                policy: self.policy.clone(),
                observer: self.observer.clone(),
            };
            tasks.spawn(sender.run(self.wake_tx.subscribe(), shutdown.clone()));
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

struct Sender<S: OutboxStore> {
    store: Arc<S>,
    notifier: Arc<dyn Notifier>,
    backoff: Backoff,
    policy: Arc<Policy>,
    observer: ResultObserver,
}

/// The key of a delivery: the message's own for one, one derived from all of them for a group (so a resend of
/// the same group after a crash has the same key, and a different group a different one).
fn delivery_key(group: &str, keys: &[&str]) -> String {
    match keys {
        [one] => (*one).to_string(),
        _ => lookout_core::key::group(group, lookout_core::hash::fnv1a(keys.join("\n").as_bytes())),
    }
}

impl<S: OutboxStore> Sender<S> {
    async fn run(self, mut wake: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        let channel = self.notifier.name().to_string();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Mark wake-ups seen *before* reading, so a message recorded during the read wakes us again.
            wake.borrow_and_update();
            let sleep_for = match self.store.next_pending(channel.clone()).await {
                Err(e) => {
                    tracing::error!(%channel, error = %e, "Cannot read the outbox; retrying.");
                    Duration::from_secs(1)
                }
                Ok(None) => IDLE_RECHECK,
                Ok(Some(head)) if head.next_attempt_at > Timestamp::now() => {
                    head.next_attempt_at.since(Timestamp::now())
                }
                Ok(Some(head)) => {
                    // A send under way at a stop is finished and recorded (one attempt, bounded by the channel's
                    // timeout): the receiver may have it already, and sending it again after the restart would be
                    // a second delivery of one message.
                    match self.send_group(&channel, &head).await {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::error!(%channel, error = %e, "Cannot update the outbox; retrying.");
                            Duration::from_secs(1)
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

    /// Sends the head's group: everything of it that is pending, minus what the policy holds back.
    async fn send_group(&self, channel: &str, head: &OutboxMessage) -> lookout_store::Result<()> {
        let now = Timestamp::now();
        let pending = self.store.pending_in_group(channel.to_string(), head.group_key.clone()).await?;
        let mut batch: Vec<(OutboxMessage, Notification)> = Vec::new();
        for m in pending {
            match serde_json::from_str::<Notification>(&m.payload) {
                Ok(n) => batch.push((m, n)),
                Err(e) => {
                    let why = format!("the stored message is not a notification: {e}");
                    self.store.mark_abandoned(vec![m.id], now, why).await?;
                }
            }
        }
        let situation = self.situation(now).await?;
        // Decide what is held back, and why.
        let mut held: Vec<(i64, String)> = Vec::new();
        let tried: Vec<(u32, Notification)> = batch.iter().map(|(m, n)| (m.attempts, n.clone())).collect();
        for i in flapped(&tried) {
            held.push((batch[i].0.id, "flapped: resolved before it was sent".into()));
        }
        for (m, n) in &batch {
            if held.iter().any(|(id, _)| *id == m.id) {
                continue;
            }
            if let Some(why) = self.policy.suppress(n, &situation) {
                held.push((m.id, why));
            } else if n.state == "resolved" {
                // The firing message or any reminder of it.
                let firing_key = lookout_core::key::firing(&n.alert_id);
                let firing_pending = batch.iter().any(|(x, _)| x.key.starts_with(&firing_key));
                if !firing_pending && !self.store.was_delivered(channel.to_string(), firing_key).await? {
                    held.push((m.id, "its firing message was not sent on this channel".into()));
                }
            }
        }
        for (id, why) in &held {
            tracing::info!(%channel, id, reason = %why, "Notification held back.");
            self.store.mark_suppressed(vec![*id], now, why.clone()).await?;
        }
        if !held.is_empty() {
            (self.observer)(channel, "held_back", held.len() as u64);
        }
        // One message per alert per delivery: a later one of the same alert (its resolve) goes in the next.
        let mut alerts = HashSet::new();
        let (send, waiting): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .filter(|(m, _)| !held.iter().any(|(id, _)| *id == m.id))
            .partition(|(_, n)| alerts.insert(n.alert_id.clone()));
        // Those behind an earlier message of their alert (a resolve behind its firing) are due when it is: left
        // due now, the head of the next round would be one of them again, and a down receiver would be sent the
        // same firing message in a tight loop.
        let waiting: Vec<i64> = waiting.iter().map(|(m, _)| m.id).collect();
        if send.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = send.iter().map(|(m, _)| m.id).collect();
        let keys: Vec<&str> = send.iter().map(|(m, _)| m.key.as_str()).collect();
        let key = delivery_key(&head.group_key, &keys);
        let attempts = send.iter().map(|(m, _)| m.attempts).max().unwrap_or(0).saturating_add(1);
        let notifications = send
            .iter()
            .map(|(_, n)| {
                let mut n = n.clone();
                if n.state == "firing" {
                    n.affected = self.policy.affected(&n.target, &situation);
                }
                n
            })
            .collect();
        let delivery = Delivery { key: key.clone(), notifications };
        let count = ids.len();
        // Counted before the send: a send cut by a crash still counts as tried (flap damping relies on it).
        self.store.mark_attempted(ids.clone()).await?;
        match self.notifier.send(&delivery).await {
            Ok(note) => {
                match &note {
                    Some(n) => {
                        tracing::warn!(%channel, %key, count, attempts, note = %n, "Notification delivered, with a problem.")
                    }
                    None => tracing::info!(%channel, %key, count, attempts, "Notification delivered."),
                }
                (self.observer)(channel, "delivered", count as u64);
                self.store.mark_delivered(ids, Timestamp::now(), note).await
            }
            Err(SendError::Permanent(e)) => {
                tracing::error!(%channel, %key, count, attempts, error = %e, "Notification refused for good; not retrying.");
                (self.observer)(channel, "abandoned", count as u64);
                self.store.mark_abandoned(ids, Timestamp::now(), e).await
            }
            Err(SendError::Retry(e)) => {
                let delay = self.backoff.delay(attempts);
                tracing::warn!(%channel, %key, count, attempts, error = %e, retry_in = %lookout_core::format_duration(delay), "Notification not delivered; will retry.");
                (self.observer)(channel, "retry", count as u64);
                let next = Timestamp::now().plus(delay);
                if !waiting.is_empty() {
                    let why = format!("waits behind an earlier message of its alert: {e}");
                    self.store.mark_failed(waiting, next, why).await?;
                }
                self.store.mark_failed(ids, next, e).await
            }
        }
    }

    async fn situation(&self, now: Timestamp) -> lookout_store::Result<Situation> {
        let silences = self.store.silences(false, now).await?;
        let firing: HashSet<String> = if self.policy.depends_on.is_empty() {
            HashSet::new()
        } else {
            self.store
                .alert_states()
                .await?
                .into_iter()
                .filter(|(_, s)| s.phase == Phase::Firing)
                .map(|(t, _)| t)
                .collect()
        };
        Ok(Situation::new(now, silences, firing))
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

    struct Recorder(std::sync::Mutex<Vec<String>>);

    impl Notifier for Recorder {
        fn name(&self) -> &str {
            "rec"
        }
        fn send<'a>(&'a self, d: &'a Delivery) -> crate::SendFuture<'a> {
            self.0.lock().unwrap().extend(d.notifications.iter().map(|n| n.idempotency_key.clone()));
            Box::pin(async { Ok(None) })
        }
    }

    fn message(state: &str) -> lookout_store::NewMessage {
        let key = format!("lookout/a@1/{state}");
        let n = serde_json::json!({
            "version": 1, "idempotency_key": key, "alert_id": "a@1", "target": "a", "state": state,
            "at": "2026-11-25T14:00:00.000Z", "since": null, "duration_seconds": null, "summary": "s",
            "reasons": [], "diagnosis": null, "last_result": null, "group": "g"
        });
        lookout_store::NewMessage {
            channel: "rec".into(),
            key,
            payload: n.to_string(),
            group_key: "g".into(),
            ..Default::default()
        }
    }

    /// Fires and resolves before the channel sends anything; `cut`: the firing send had started when lookout died.
    async fn deliveries(cut: bool) -> (Vec<String>, Vec<lookout_store::OutboxMessage>) {
        use lookout_store::{AnyStore, Record, Store};
        let store = Arc::new(AnyStore::in_memory().unwrap());
        store.record(Record { messages: vec![message("firing")], ..Record::default() }).await.unwrap();
        if cut {
            let firing = store.next_pending("rec".into()).await.unwrap().unwrap();
            store.mark_attempted(vec![firing.id]).await.unwrap();
        }
        store.record(Record { messages: vec![message("resolved")], ..Record::default() }).await.unwrap();
        let rec = Arc::new(Recorder(std::sync::Mutex::new(Vec::new())));
        let backoff = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(10) };
        let outbox = Outbox::new(store.clone(), vec![(rec.clone() as Arc<dyn Notifier>, backoff)], Policy::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(outbox.run(stop_rx));
        for _ in 0..100 {
            if store.next_pending("rec".into()).await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
        let sent = rec.0.lock().unwrap().clone();
        (sent, store.messages(10).await.unwrap())
    }

    #[tokio::test]
    async fn a_firing_message_whose_send_was_cut_is_sent_again_then_its_resolve() {
        let (sent, _) = deliveries(true).await;
        assert_eq!(sent, ["lookout/a@1/firing", "lookout/a@1/resolved"], "the receiver may have the firing one");
        let (sent, stored) = deliveries(false).await;
        assert!(sent.is_empty(), "never tried: a flap, nothing sent: {sent:?}");
        assert!(stored.iter().all(|m| m.last_error.as_deref() == Some("flapped: resolved before it was sent")));
    }

    #[test]
    fn a_group_s_key_depends_on_all_its_messages() {
        assert_eq!(delivery_key("shop", &["lookout/a@1/firing"]), "lookout/a@1/firing");
        let two = delivery_key("shop", &["lookout/a@1/firing", "lookout/b@1/firing"]);
        assert!(two.starts_with("lookout/group/shop/"));
        assert_eq!(two, delivery_key("shop", &["lookout/a@1/firing", "lookout/b@1/firing"]));
        assert_ne!(two, delivery_key("shop", &["lookout/a@1/firing", "lookout/c@1/firing"]));
    }
}
