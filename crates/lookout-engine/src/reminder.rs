//! When a firing alert is reminded of: every route's `repeat_interval` after it fired, and — for a target held
//! back while a parent was down — once its parents are up again. Pure: the caller passes the time and, when a
//! decision needs them, the facts only the outbox knows (was the firing message delivered, is it still waiting).
//!
//! Reminders are numbered from the firing time, so their idempotency keys are the same after a restart and
//! nothing already enqueued is enqueued twice.

use std::collections::HashMap;
use std::time::Duration;

use lookout_core::Timestamp;

/// What is due for one firing alert on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Reminder number `n` (1, 2, …: one per repeat interval since the alert fired).
    Remind(u32),
    /// A target held back behind a parent whose parents are all up again, before its first repeat interval:
    /// it is announced (reminder 0) unless its firing message was delivered or is still waiting. Ask the outbox,
    /// then call [`Reminders::announce`].
    AskWhetherTold,
}

/// The reminders enqueued so far, per (alert id, channel): `lookout run`'s working memory.
#[derive(Debug, Default)]
pub struct Reminders {
    enqueued: HashMap<(String, String), u32>,
}

impl Reminders {
    /// What is due at `now` for an alert firing since `since`, on a channel whose route repeats every `repeat`.
    /// `parents_up`: the target depends on parents and none of them is firing.
    pub fn due(
        &self,
        alert_id: &str,
        channel: &str,
        since: Timestamp,
        now: Timestamp,
        repeat: Duration,
        parents_up: bool,
    ) -> Due {
        let n = (now.since(since).as_millis() / repeat.as_millis().max(1)) as u32;
        let last = self.enqueued.get(&(alert_id.to_string(), channel.to_string()));
        match (n, last) {
            (0, None) if parents_up => Due::AskWhetherTold,
            (0, _) => Due::Nothing,
            (n, Some(&k)) if k >= n => Due::Nothing,
            (n, _) => Due::Remind(n),
        }
    }

    /// The answer to [`Due::AskWhetherTold`]: `Some(0)` when the held-back alert must be announced now. Once its
    /// firing message was delivered, the question is not asked again.
    pub fn announce(&mut self, alert_id: &str, channel: &str, delivered: bool, waiting: bool) -> Option<u32> {
        if delivered {
            self.enqueued.insert((alert_id.to_string(), channel.to_string()), 0);
        }
        (!delivered && !waiting).then_some(0)
    }

    /// Forgets every alert but those `firing` names: a resolved alert is never reminded of, and its entries would
    /// otherwise stay for the life of the process (one per alert and channel, ever).
    pub fn keep_only<'a>(&mut self, firing: impl IntoIterator<Item = &'a str>) {
        let firing: std::collections::HashSet<&str> = firing.into_iter().collect();
        self.enqueued.retain(|(alert, _), _| firing.contains(alert.as_str()));
    }

    /// How many (alert, channel) entries are kept.
    pub fn len(&self) -> usize {
        self.enqueued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.enqueued.is_empty()
    }

    /// Reminder `n` was enqueued (recorded in the store).
    pub fn enqueued(&mut self, alert_id: &str, channel: &str, n: u32) {
        self.enqueued.insert((alert_id.to_string(), channel.to_string()), n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(1_795_615_200_000 + s * 1000)
    }

    #[test]
    fn one_reminder_per_repeat_interval_counted_from_the_firing_time() {
        let mut r = Reminders::default();
        assert_eq!(r.due("a", "ops", at(0), at(59), MIN, false), Due::Nothing);
        assert_eq!(r.due("a", "ops", at(0), at(60), MIN, false), Due::Remind(1));
        r.enqueued("a", "ops", 1);
        assert_eq!(r.due("a", "ops", at(0), at(119), MIN, false), Due::Nothing, "reminder 1 is not enqueued twice");
        assert_eq!(r.due("a", "ops", at(0), at(185), MIN, false), Due::Remind(3), "a missed tick skips to the current");
        assert_eq!(r.due("a", "pager", at(0), at(60), MIN, false), Due::Remind(1), "channels count separately");
        assert_eq!(
            r.due("b", "ops", at(0), at(0), Duration::ZERO, false),
            Due::Nothing,
            "a zero interval never divides by zero"
        );
    }

    #[test]
    fn resolved_alerts_are_forgotten() {
        let mut r = Reminders::default();
        r.enqueued("a", "ops", 1);
        r.enqueued("b", "ops", 2);
        r.enqueued("b", "pager", 2);
        r.keep_only(["b"]);
        assert_eq!(r.len(), 2, "only b's entries stay");
        assert_eq!(r.due("b", "ops", at(0), at(150), MIN, false), Due::Nothing, "b's count is kept");
        r.keep_only([]);
        assert!(r.is_empty());
    }

    #[test]
    fn after_a_restart_the_numbers_continue_from_the_firing_time() {
        // A fresh book (restart) two and a half intervals after firing: reminder 2, the same key as before.
        let r = Reminders::default();
        assert_eq!(r.due("a", "ops", at(0), at(150), MIN, false), Due::Remind(2));
    }

    #[test]
    fn a_held_back_child_is_announced_once_its_parents_are_up_unless_it_was_told() {
        let mut r = Reminders::default();
        assert_eq!(r.due("c", "ops", at(0), at(10), MIN, true), Due::AskWhetherTold);
        assert_eq!(r.announce("c", "ops", false, true), None, "its firing message still waits: it goes by itself");
        assert_eq!(r.announce("c", "ops", false, false), Some(0), "held back and not waiting: announce it");
        r.enqueued("c", "ops", 0);
        assert_eq!(r.due("c", "ops", at(0), at(20), MIN, true), Due::Nothing, "announced once");

        let mut told = Reminders::default();
        assert_eq!(told.announce("d", "ops", true, false), None);
        assert_eq!(told.due("d", "ops", at(0), at(20), MIN, true), Due::Nothing, "delivered: never asked again");
        assert_eq!(told.due("d", "ops", at(0), at(60), MIN, true), Due::Remind(1), "reminders go on as usual");
    }
}
