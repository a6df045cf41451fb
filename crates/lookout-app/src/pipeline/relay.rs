//! Several agents, one decider. Every agent probes its share of the checks and reads its own log sources, but only
//! the leader runs events through the engine: one alert state per target, one incident lifecycle, one set of
//! notifications and reminders, however many agents see the target. A follower hands its events to the leader
//! through the shared store ([`Store::forward`]); the leader takes them every [`POLL`] and records what they caused
//! in the same transaction that deletes them (`Record::consumed`), so each is handled exactly once even when the
//! leader dies half-way.
//!
//! ```text
//! follower: probes, log sources ──Event──► forwarded (store) ─┐
//! leader:   probes, log sources ──Event───────────────────────┴─► engine ─► record ─► outbox
//! ```
//!
//! Why through the store and not agent to agent: the store is already the one thing every agent reaches, it
//! survives the leader, and a new leader finds what the old one left unhandled. Each location's view of a target
//! is stored beside the target's state (`location_states`), so a new leader resumes the quorum where it stood.
//!
//! When the store is away a follower keeps its events in memory (at most [`UNSENT_CAP`], the oldest dropped and
//! counted beyond that) and hands them over when it returns; if it becomes the leader meanwhile (the store has been
//! away longer than a lease, see `crate::cluster`) it runs them through its own engine instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use lookout_core::{AlertState, Event, Observation};
use lookout_engine::Verdict;
use lookout_store::{LocationState, Store};

use super::consume::Pipeline;

/// How often the leader takes the events its followers handed over: the delay they add to an alert at most.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// Forwarded events taken at once.
const TAKE: usize = 2000;

/// How long a forwarded row handled but still present is left alone: its record is held in memory (the store
/// refused it) and will delete it when written. Past this it is handled again (counted twice, never lost).
const IN_FLIGHT_FOR: Duration = Duration::from_secs(120);

/// Events a follower keeps while the store is away: a few minutes of 10,000 targets' results.
const UNSENT_CAP: usize = 100_000;

/// A follower's hand-over state and a leader's view of what it took.
pub(super) struct Relay {
    /// The store is shared by several agents (else this agent always leads and nothing is forwarded).
    pub(super) shared: bool,
    pub(super) agent: String,
    /// Events not yet handed over, oldest first.
    unsent: VecDeque<Event>,
    /// Events dropped because `unsent` was full.
    dropped: u64,
    /// Whether the store refused the last hand-over (said once, not per batch).
    refused: bool,
    /// Forwarded rows handled whose deletion may not be written yet (a record held in memory): not taken again
    /// for [`IN_FLIGHT_FOR`], after which they are taken again rather than stall the rows behind them.
    in_flight: HashMap<i64, Instant>,
    /// Whether this agent led at the last look, to resume from the store when it starts to.
    was_leading: bool,
}

impl Relay {
    pub(super) fn new(shared: bool, agent: String) -> Relay {
        Relay {
            shared,
            agent,
            unsent: VecDeque::new(),
            dropped: 0,
            refused: false,
            in_flight: HashMap::new(),
            was_leading: false,
        }
    }
}

/// What a location's view of a target looks like after one of its results.
pub(super) fn location_state(
    obs: &Observation,
    location: &str,
    state: &AlertState,
    verdict: &Verdict,
) -> LocationState {
    LocationState {
        target: obs.target.clone(),
        location: location.to_string(),
        state: state.clone(),
        at: obs.at,
        ok: verdict.ok,
        latency_ms: obs.timings.total_ms,
        status: obs.status,
        reason: verdict.reason(),
    }
}

impl<S: Store> Pipeline<S> {
    /// Whether this agent decides now. On becoming the leader it first takes up where the last one stood: alert
    /// and location states, live incidents and log windows as stored.
    pub(super) async fn leads(&mut self) -> bool {
        // One machine always decides, also while it stops (its lease is given up then, the results in flight
        // are still its own to record).
        let now = !self.relay.shared || self.leading.as_ref().is_none_or(|l| *l.borrow());
        if now && !self.relay.was_leading && self.relay.shared {
            self.resume().await;
        }
        self.relay.was_leading = now;
        now
    }

    async fn resume(&mut self) {
        // The other machines first: their alerts are this leader's to judge, not to close as unknown.
        self.learn_machines(true).await;
        match self.store.live_incidents().await {
            Ok((live, seqs)) => self.engine.incidents_mut().restore(live, seqs),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot load the live incidents on taking the lead; using this agent's own.")
            }
        }
        match self.store.alert_states().await {
            Ok(states) => {
                let mut retired = Vec::new();
                for (target, state) in states {
                    if self.meta.contains_key(&target) {
                        self.engine.restore(&target, state);
                    } else {
                        retired.push((target, state));
                    }
                }
                // The leader's config decides what is watched: alerts of targets it lacks are closed.
                if let Err(e) = self.retire(retired).await {
                    tracing::warn!(error = %e, "Cannot close the alerts of targets no longer configured.");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot load alert states on taking the lead; using this agent's own.")
            }
        }
        match self.store.location_states().await {
            Ok(states) => {
                for s in states {
                    self.engine.restore_location(&s.target, &s.location, s.state);
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot load location states on taking the lead."),
        }
        if let Err(e) = crate::log_source::restore_windows(&mut self.engine, self.store.as_ref()).await {
            tracing::warn!(error = %e, "Cannot load the log windows on taking the lead.");
        }
        self.relay.in_flight.clear();
        self.metrics.set_firing(self.engine.firing().count());
        tracing::info!(
            firing = self.engine.firing().count(),
            "Took the lead: alert states, incidents and windows resumed from the store."
        );
    }

    /// A follower hands `events` to the leader (kept in memory while the store is away).
    pub(super) async fn forward(&mut self, events: Vec<Event>) {
        for e in events {
            if self.relay.unsent.len() >= UNSENT_CAP {
                self.relay.unsent.pop_front();
                self.relay.dropped += 1;
            }
            self.relay.unsent.push_back(e);
        }
        self.flush_forward().await;
    }

    /// Hands over what is waiting, oldest first, until done or the store refuses.
    pub(super) async fn flush_forward(&mut self) {
        while !self.relay.unsent.is_empty() {
            let n = self.relay.unsent.len().min(TAKE);
            let bodies: Vec<String> =
                self.relay.unsent.iter().take(n).filter_map(|e| serde_json::to_string(e).ok()).collect();
            match self.store.forward(self.relay.agent.clone(), bodies).await {
                Ok(()) => {
                    self.relay.unsent.drain(..n);
                    if self.relay.refused {
                        tracing::info!(dropped = self.relay.dropped, "The store takes this agent's results again.");
                        self.relay.refused = false;
                    }
                }
                Err(e) => {
                    if !self.relay.refused {
                        tracing::warn!(error = %e, waiting = self.relay.unsent.len(), "Cannot hand results to the leader; keeping them until the store answers.");
                        self.relay.refused = true;
                    }
                    return;
                }
            }
        }
    }

    /// The leader's next events to handle: its own kept from before it led, then what followers handed over,
    /// with the ids of the forwarded rows they came from.
    pub(super) async fn take_forwarded(&mut self) -> (Vec<Event>, Vec<i64>) {
        let mut events: Vec<Event> = self.relay.unsent.drain(..).collect();
        let rows = match self.store.forwarded(TAKE).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot take forwarded results.");
                return (events, Vec::new());
            }
        };
        // Rows no longer there were deleted with their records: no longer in flight.
        let present: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        self.relay.in_flight.retain(|id, at| present.contains(id) && at.elapsed() < IN_FLIGHT_FOR);
        let mut consumed = Vec::new();
        for row in rows {
            if self.relay.in_flight.contains_key(&row.id) {
                continue;
            }
            self.relay.in_flight.insert(row.id, Instant::now());
            consumed.push(row.id);
            match serde_json::from_str::<Event>(&row.body) {
                Ok(e) => events.push(e),
                Err(e) => {
                    tracing::warn!(agent = %row.agent, error = %e, "Dropping a forwarded result this lookout cannot read (another version?).")
                }
            }
        }
        (events, consumed)
    }
}
