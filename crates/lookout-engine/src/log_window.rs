//! A log source's sliding window, and what of it outlives a restart.
//!
//! Each batch's contribution is a [`WindowEntry`] at the engine's second. The pipeline persists the entries with
//! the batch (in the same transaction as its counts and cursors) and [`crate::Engine::restore_log_window`] puts
//! them back at start, so a restart inside a firing window neither resolves the alert nor opens a new incident.
//!
//! Also here: a source that cannot read its files for longer than its window (at least [`MIN_BLIND`]) fails with
//! that reason instead of judging a window that only looks quiet because nothing is read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use hdrhistogram::Histogram;
use lookout_core::{LogBatch, Timestamp};
use serde::{Deserialize, Serialize};

use crate::condition::{LogView, Verdict, judge_log_while};
use crate::engine::LogRules;

/// Error-log messages kept per window.
const WINDOW_ERROR_LINES: usize = 100;

const MAX_DURATION_US: u64 = 3_600_000_000;

/// A source that cannot read for less than this is only warned about (a rotation that briefly left the wrong
/// mode); for longer it fails, even with a shorter window, so a blind source is never mistaken for a quiet one.
pub const MIN_BLIND: Duration = Duration::from_secs(10);

/// What one log batch added to its source's window, at the engine's second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEntry {
    pub sec: i64,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub status_5xx: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_clients: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub durations_us: Vec<u64>,
}

impl WindowEntry {
    fn of(batch: &LogBatch, sec: i64) -> WindowEntry {
        WindowEntry {
            sec,
            requests: batch.requests,
            status_5xx: batch.status_5xx,
            failing_clients: batch.failing_clients.clone(),
            error_lines: batch.error_lines.clone(),
            durations_us: batch.durations_us.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.requests == 0 && self.status_5xx == 0 && self.error_lines.is_empty() && self.durations_us.is_empty()
    }
}

/// What to persist of a log source's window after a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowChange {
    /// What the batch added; `None` for a batch that added nothing (a tick that only slides the window).
    pub entry: Option<WindowEntry>,
    /// Entries of seconds before this one have slid out of the window: they may be deleted.
    pub keep_from: i64,
}

/// A log source's recent traffic in one-second buckets, by the engine's clock.
#[derive(Default)]
pub(crate) struct LogWindow {
    /// Per second: requests, 5xx, and the distinct clients that failed in it.
    seconds: VecDeque<(i64, u64, u64, HashSet<u64>)>,
    /// Each failing client of the window, with the number of its seconds it failed in: kept as seconds come and
    /// go, so a batch costs its own clients, not a recount of the whole window (a busy log sends ten batches a
    /// second into a window of minutes).
    clients: HashMap<u64, u32>,
    errors: VecDeque<(i64, String)>,
    /// Request durations (µs) per second, for percentiles.
    durations: VecDeque<(i64, Histogram<u64>)>,
}

impl LogWindow {
    /// Adds a batch at `now_sec` and judges the window; returns the verdict, what to persist, and the reason if the
    /// verdict is that the source is blind.
    pub(crate) fn observe(
        &mut self,
        rules: &LogRules,
        batch: &LogBatch,
        now: Timestamp,
        firing: bool,
    ) -> (Verdict, WindowChange, Option<String>) {
        let now_sec = now.as_millis().div_euclid(1000);
        let entry = WindowEntry::of(batch, now_sec);
        self.add(&entry);
        let keep_from = now_sec - window_secs(rules) + 1;
        let change = WindowChange { entry: (!entry.is_empty()).then_some(entry), keep_from };
        let blind = batch.unreadable.as_ref().filter(|u| now.since(u.since) >= rules.window.max(MIN_BLIND));
        if let Some(u) = blind {
            let reason = format!("{} since {}", u.reason, u.since.to_rfc3339_seconds());
            let verdict = Verdict { ok: false, failed_conditions: Vec::new(), error: Some(reason.clone()) };
            return (verdict, change, Some(reason));
        }
        (judge_log_while(&rules.fire_when, &self.view(rules, now_sec), firing), change, None)
    }

    /// Puts back entries persisted before a restart (oldest first); what has slid out meanwhile is dropped at the
    /// next view.
    pub(crate) fn restore(&mut self, entries: impl IntoIterator<Item = WindowEntry>) {
        for e in entries {
            if self.seconds.back().is_some_and(|(sec, ..)| *sec > e.sec) {
                continue;
            }
            self.add(&e);
        }
    }

    fn add(&mut self, e: &WindowEntry) {
        let now_sec = e.sec;
        match self.seconds.back_mut() {
            Some((sec, requests, e5xx, _)) if *sec == now_sec => {
                *requests += e.requests;
                *e5xx += e.status_5xx;
            }
            _ => self.seconds.push_back((now_sec, e.requests, e.status_5xx, HashSet::new())),
        }
        if let Some((.., second)) = self.seconds.back_mut() {
            for &c in &e.failing_clients {
                if second.insert(c) {
                    *self.clients.entry(c).or_default() += 1;
                }
            }
        }
        for line in &e.error_lines {
            self.errors.push_back((now_sec, line.clone()));
        }
        if !e.durations_us.is_empty() {
            if self.durations.back().is_none_or(|(sec, _)| *sec != now_sec)
                && let Ok(h) = Histogram::new_with_bounds(1, MAX_DURATION_US, 2)
            {
                self.durations.push_back((now_sec, h));
            }
            if let Some((_, h)) = self.durations.back_mut() {
                for us in &e.durations_us {
                    let _ = h.record((*us).clamp(1, MAX_DURATION_US));
                }
            }
        }
        while self.errors.len() > WINDOW_ERROR_LINES {
            self.errors.pop_front();
        }
    }

    fn view(&mut self, rules: &LogRules, now_sec: i64) -> LogView {
        let oldest = now_sec - window_secs(rules);
        while self.seconds.front().is_some_and(|(sec, ..)| *sec <= oldest) {
            let Some((.., gone)) = self.seconds.pop_front() else { break };
            for c in gone {
                if let std::collections::hash_map::Entry::Occupied(mut n) = self.clients.entry(c) {
                    *n.get_mut() -= 1;
                    if *n.get() == 0 {
                        n.remove();
                    }
                }
            }
        }
        while self.errors.front().is_some_and(|(sec, _)| *sec <= oldest) {
            self.errors.pop_front();
        }
        while self.durations.front().is_some_and(|(sec, _)| *sec <= oldest) {
            self.durations.pop_front();
        }
        let latency_ms = self.durations.iter().try_fold(None::<Histogram<u64>>, |acc, (_, h)| match acc {
            None => Some(Some(h.clone())),
            Some(mut all) => all.add(h).ok().map(|_| Some(all)),
        });
        let latency_ms = latency_ms
            .flatten()
            .filter(|h| !h.is_empty())
            .map(|h| [0.50, 0.95, 0.99].map(|q| h.value_at_quantile(q) as f64 / 1000.0));
        LogView {
            requests: self.seconds.iter().map(|(_, r, ..)| r).sum(),
            errors_5xx: self.seconds.iter().map(|(_, _, e, _)| e).sum(),
            min_requests: rules.min_requests,
            error_log: self.errors.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n"),
            clients_affected: self.clients.len() as u64,
            latency_ms,
        }
    }
}

/// The window's length in whole seconds (at least one).
fn window_secs(rules: &LogRules) -> i64 {
    rules.window.as_secs().clamp(1, i64::MAX as u64) as i64
}

#[cfg(test)]
#[path = "log_window_tests.rs"]
mod tests;
