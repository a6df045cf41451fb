//! Reminders of alerts still firing: the engine's [`Reminders`](lookout_engine::Reminders) decides what is due
//! at the engine's time; this asks the outbox the facts a decision needs and enqueues the reminders.

use lookout_core::{Transition, TransitionKind, key};
use lookout_engine::Due;
use lookout_store::{NewMessage, Record, Store};

use super::consume::Pipeline;
use super::messages::payload;

impl<S: Store> Pipeline<S> {
    /// Enqueues the reminders due now, every route's `repeat_interval` after an alert fired, and announces a
    /// target held back behind a parent once the parents are up again.
    pub(super) async fn remind(&mut self) {
        let now = self.engine.now();
        let mut messages = Vec::new();
        let mut enqueued = Vec::new();
        let firing: Vec<(String, lookout_core::AlertState)> =
            self.engine.firing().map(|(t, s)| (t.clone(), s.clone())).collect();
        self.reminders.keep_only(firing.iter().filter_map(|(_, s)| s.alert_id.as_deref()));
        for (target, state) in &firing {
            let Some(alert_id) = &state.alert_id else { continue };
            let t = Transition {
                target: target.clone(),
                kind: TransitionKind::Firing,
                at: state.since,
                alert_id: Some(alert_id.clone()),
                failing_since: state.failing_since,
                reasons: state.last_reason.clone().into_iter().collect(),
                consecutive: state.consecutive_failures,
                diagnosis: None,
            };
            let incident = self.engine.incidents().of_alert(alert_id);
            let Some(base) = self.notification(&t, None, incident) else { continue };
            let parents = self.depends_on.get(target.as_str()).map(Vec::as_slice).unwrap_or_default();
            let parents_up = self.engine.parents_up(parents);
            for d in lookout_notify::destinations(&base, &self.routes, &self.channel_names) {
                let n = match self.reminders.due(alert_id, &d.channel, state.since, now, d.repeat_interval, parents_up)
                {
                    Due::Nothing => continue,
                    Due::Remind(n) => n,
                    Due::AskWhetherTold => {
                        let firing = key::firing(alert_id);
                        let delivered =
                            self.store.was_delivered(d.channel.clone(), firing.clone()).await.unwrap_or(true);
                        let waiting = self
                            .store
                            .pending_in_group(d.channel.clone(), base.group.clone())
                            .await
                            .map_or(true, |p| p.iter().any(|m| m.key.starts_with(&firing)));
                        match self.reminders.announce(alert_id, &d.channel, delivered, waiting) {
                            Some(n) => n,
                            None => continue,
                        }
                    }
                };
                let reminder = base.reminder(n, now);
                if let Some(payload) = payload(&reminder) {
                    messages.push(NewMessage {
                        channel: d.channel.clone(),
                        key: reminder.idempotency_key.clone(),
                        payload,
                        group_key: reminder.group.clone(),
                        wait: std::time::Duration::ZERO,
                        sent: None,
                    });
                    enqueued.push((alert_id.clone(), d.channel.clone(), n));
                }
            }
        }
        if messages.is_empty() {
            return;
        }
        let count = messages.len();
        match self.store.record(Record { messages, ..Record::default() }).await {
            Ok(()) => {
                tracing::info!(count, "Reminders of firing alerts enqueued.");
                for (alert_id, channel, n) in enqueued {
                    self.reminders.enqueued(&alert_id, &channel, n);
                }
                self.waker.wake();
            }
            Err(e) => tracing::warn!(error = %e, "Cannot enqueue reminders; trying again on the next tick."),
        }
    }
}
