//! The outbox's view through the holding store: the store's pending messages, minus what was marked while it
//! could not be written, plus the messages held in memory (negative ids). Marks of memory messages stay in
//! memory until their record is written with them; marks of stored messages the store refuses are held too.

use lookout_core::{AlertState, Incident, LogCount, TimelineEntry, Timestamp, Transition};
use lookout_store::{
    NewSilence, OutboxMessage, OutboxStore, Record, Result, ResultBucket, ResultRow, Silence, Store, StoreError,
};

use super::{Entry, HoldingStore, Mark, MemMessage, Problem, READ_LIMIT, SENDING_LEASE, SLOW_WRITE};

fn pending(m: &OutboxMessage) -> bool {
    m.delivered_at.is_none() && m.abandoned_at.is_none() && m.suppressed_at.is_none()
}

/// Whether a mark takes a stored message out of the pending ones.
fn settles(mark: &Mark) -> bool {
    matches!(mark, Mark::Delivered(..) | Mark::Abandoned(..) | Mark::Suppressed(..))
}

/// A read of the store, given [`READ_LIMIT`] while holding (a locked or broken store must not stall sending).
async fn limited<T>(holding: bool, read: impl Future<Output = Result<T>>) -> Result<T> {
    if !holding {
        return read.await;
    }
    match tokio::time::timeout(READ_LIMIT, read).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Query { op: "read", message: "the store did not answer in time".into() }),
    }
}

impl<S: Store> HoldingStore<S> {
    /// A stored message as the outbox should see it now (`None` if a held mark settled it).
    fn overlay(&self, mut m: OutboxMessage) -> Option<OutboxMessage> {
        let mut held = self.held();
        match held.marked.get(&m.id) {
            Some(mark) if settles(mark) => return None,
            Some(Mark::Failed(_, next, e)) => {
                m.next_attempt_at = *next;
                m.last_error = Some(e.clone());
            }
            _ => {}
        }
        held.seen.insert(m.id, m.clone());
        Some(m)
    }

    /// Applies `f` to the memory messages among `ids`; returns the stored ones (positive ids).
    fn in_memory(&self, ids: Vec<i64>, f: impl Fn(&mut MemMessage)) -> Vec<i64> {
        let mut held = self.held();
        let (memory, stored): (Vec<i64>, Vec<i64>) = ids.into_iter().partition(|id| *id < 0);
        for m in held.messages.iter_mut().filter(|m| memory.contains(&m.msg.id)) {
            f(m);
        }
        stored
    }

    /// Marks stored messages: through to the store, or held (and overlaid) when it refuses.
    async fn mark(&self, mark: Mark) -> Result<()> {
        let ids = match &mark {
            Mark::Attempted(ids)
            | Mark::Delivered(ids, ..)
            | Mark::Abandoned(ids, ..)
            | Mark::Suppressed(ids, ..)
            | Mark::Failed(ids, ..) => ids.clone(),
        };
        if ids.is_empty() {
            return Ok(());
        }
        let mut error = None;
        if !self.is_holding() {
            match tokio::time::timeout(SLOW_WRITE, self.write_mark(mark.clone())).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => error = Some(Problem::Refused(e.to_string())),
                Err(_) => {
                    error = Some(Problem::Slow(format!("an outbox update took longer than {} s", SLOW_WRITE.as_secs())))
                }
            }
        }
        let mut held = self.held();
        for id in &ids {
            held.marked.insert(*id, mark.clone());
        }
        self.hold(&mut held, Entry::Mark(mark), error);
        Ok(())
    }
}

impl<S: Store> OutboxStore for HoldingStore<S> {
    async fn next_pending(&self, channel: String) -> Result<Option<OutboxMessage>> {
        let (holding, memory) = {
            let held = self.held();
            let head = held
                .messages
                .iter()
                .filter(|m| m.msg.channel == channel && pending(&m.msg) && !m.writing)
                .min_by_key(|m| (m.msg.next_attempt_at, -m.msg.id))
                .map(|m| m.msg.clone());
            (held.holding, head)
        };
        if !holding && memory.is_none() {
            return self.inner.next_pending(channel).await;
        }
        // While holding, a store that cannot be read either leaves memory to answer (quietly: the self-alert
        // already says the store fails; the senders are woken when memory or the store has something new).
        let stored = match limited(holding, self.inner.next_pending(channel)).await {
            Ok(m) => m.and_then(|m| self.overlay(m)),
            Err(e) if !holding => return Err(e),
            Err(_) => None,
        };
        Ok(match (stored, memory) {
            (Some(s), Some(m)) => Some(if m.next_attempt_at < s.next_attempt_at { m } else { s }),
            (s, m) => s.or(m),
        })
    }

    async fn pending_in_group(&self, channel: String, group_key: String) -> Result<Vec<OutboxMessage>> {
        let (holding, mut memory) = {
            let mut held = self.held();
            let until = tokio::time::Instant::now() + SENDING_LEASE;
            let mut mine = Vec::new();
            for m in held.messages.iter_mut() {
                if m.msg.channel == channel && m.msg.group_key == group_key && pending(&m.msg) && !m.writing {
                    m.sending_until = Some(until);
                    mine.push(m.msg.clone());
                }
            }
            (held.holding, mine)
        };
        if !holding && memory.is_empty() {
            return self.inner.pending_in_group(channel, group_key).await;
        }
        // Oldest first: memory ids count down from -1.
        memory.sort_by_key(|m| (m.created_at, -m.id));
        let stored = match limited(holding, self.inner.pending_in_group(channel, group_key)).await {
            Ok(stored) => stored.into_iter().filter_map(|m| self.overlay(m)).collect(),
            Err(e) if !holding => return Err(e),
            Err(_) => Vec::new(),
        };
        Ok(stored.into_iter().chain(memory).collect())
    }

    async fn mark_attempted(&self, ids: Vec<i64>) -> Result<()> {
        let until = tokio::time::Instant::now() + SENDING_LEASE;
        let stored = self.in_memory(ids, |m| {
            m.msg.attempts = m.msg.attempts.saturating_add(1);
            m.sending_until = Some(until);
        });
        self.mark(Mark::Attempted(stored)).await
    }

    async fn mark_delivered(&self, ids: Vec<i64>, at: Timestamp, note: Option<String>) -> Result<()> {
        let stored = self.in_memory(ids, |m| {
            m.msg.delivered_at = Some(at);
            m.msg.last_error = note.clone();
            m.sending_until = None;
        });
        self.mark(Mark::Delivered(stored, at, note)).await
    }

    async fn mark_abandoned(&self, ids: Vec<i64>, at: Timestamp, error: String) -> Result<()> {
        let stored = self.in_memory(ids, |m| {
            m.msg.abandoned_at = Some(at);
            m.msg.last_error = Some(error.clone());
            m.sending_until = None;
        });
        self.mark(Mark::Abandoned(stored, at, error)).await
    }

    async fn mark_suppressed(&self, ids: Vec<i64>, at: Timestamp, reason: String) -> Result<()> {
        let stored = self.in_memory(ids, |m| {
            m.msg.suppressed_at = Some(at);
            m.msg.last_error = Some(reason.clone());
            m.sending_until = None;
        });
        self.mark(Mark::Suppressed(stored, at, reason)).await
    }

    async fn mark_failed(&self, ids: Vec<i64>, next_attempt_at: Timestamp, error: String) -> Result<()> {
        let stored = self.in_memory(ids, |m| {
            m.msg.next_attempt_at = next_attempt_at;
            m.msg.last_error = Some(error.clone());
            m.sending_until = None;
        });
        self.mark(Mark::Failed(stored, next_attempt_at, error)).await
    }

    async fn was_delivered(&self, channel: String, prefix: String) -> Result<bool> {
        let holding = {
            let held = self.held();
            let in_memory = held
                .messages
                .iter()
                .any(|m| m.msg.channel == channel && m.msg.key.starts_with(&prefix) && m.msg.delivered_at.is_some());
            let marked = held.marked.iter().any(|(id, mark)| {
                matches!(mark, Mark::Delivered(..))
                    && held.seen.get(id).is_some_and(|m| m.channel == channel && m.key.starts_with(&prefix))
            });
            if in_memory || marked {
                return Ok(true);
            }
            held.holding
        };
        limited(holding, self.inner.was_delivered(channel, prefix)).await
    }

    async fn silences(&self, include_ended: bool, now: Timestamp) -> Result<Vec<Silence>> {
        let holding = self.is_holding();
        match limited(holding, self.inner.silences(include_ended, now)).await {
            Ok(s) => {
                if !include_ended {
                    self.held().silences = s.clone();
                }
                Ok(s)
            }
            Err(_) if holding && !include_ended => {
                Ok(self.held().silences.iter().filter(|s| s.active(now) || s.starts_at > now).cloned().collect())
            }
            Err(e) => Err(e),
        }
    }

    async fn alert_states(&self) -> Result<Vec<(String, AlertState)>> {
        let holding = self.is_holding();
        let stored = match limited(holding, self.inner.alert_states()).await {
            Ok(s) => {
                self.held().alert_states = s.clone();
                s
            }
            Err(_) if holding => self.held().alert_states.clone(),
            Err(e) => return Err(e),
        };
        let held = self.held();
        if held.states.is_empty() {
            return Ok(stored);
        }
        let mut states: std::collections::BTreeMap<String, AlertState> = stored.into_iter().collect();
        states.extend(held.states.iter().map(|(t, s)| (t.clone(), s.clone())));
        Ok(states.into_iter().collect())
    }
}

/// Everything but `record` reads (or writes, for silences) the store underneath: only the pipeline's writes
/// and the outbox's marks are held.
impl<S: Store> Store for HoldingStore<S> {
    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    async fn record_all(&self, records: Vec<Record>) -> Result<()> {
        HoldingStore::record_all(self, records).await
    }

    async fn add_silence(&self, silence: NewSilence) -> Result<i64> {
        self.inner.add_silence(silence).await
    }

    async fn expire_silence(&self, id: i64, at: Timestamp) -> Result<bool> {
        self.inner.expire_silence(id, at).await
    }

    async fn messages(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.inner.messages(limit).await
    }

    async fn recent_results(&self, target: String, limit: usize) -> Result<Vec<ResultRow>> {
        self.inner.recent_results(target, limit).await
    }

    async fn transitions(&self, target: Option<String>) -> Result<Vec<Transition>> {
        self.inner.transitions(target).await
    }

    async fn log_cursor(&self, source: String, file: String) -> Result<Option<String>> {
        self.inner.log_cursor(source, file).await
    }

    async fn log_window(&self, source: String, from_sec: i64) -> Result<Vec<String>> {
        self.inner.log_window(source, from_sec).await
    }

    async fn log_totals(&self, source: String) -> Result<LogCount> {
        self.inner.log_totals(source).await
    }

    async fn prune_results(&self, before: Timestamp) -> Result<usize> {
        self.inner.prune_results(before).await
    }

    async fn heartbeat(&self, agent: lookout_store::AgentInfo) -> Result<()> {
        self.inner.heartbeat(agent).await
    }

    async fn agents(&self) -> Result<Vec<lookout_store::AgentRow>> {
        self.inner.agents().await
    }

    async fn acquire_lease(
        &self,
        name: String,
        holder: String,
        ttl: std::time::Duration,
    ) -> Result<lookout_store::Lease> {
        self.inner.acquire_lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: String, holder: String) -> Result<()> {
        self.inner.release_lease(name, holder).await
    }

    async fn leave(&self, agent: lookout_store::AgentInfo) -> Result<()> {
        self.inner.leave(agent).await
    }

    async fn location_states(&self) -> Result<Vec<lookout_store::LocationState>> {
        self.inner.location_states().await
    }

    /// Straight to the store: an agent whose forward fails keeps the events and retries (they are not the
    /// pipeline's records, so not the journal's).
    async fn forward(&self, agent: String, bodies: Vec<String>) -> Result<()> {
        self.inner.forward(agent, bodies).await
    }

    async fn forwarded(&self, limit: usize) -> Result<Vec<lookout_store::Forwarded>> {
        self.inner.forwarded(limit).await
    }

    async fn claim_checks(&self, claim: lookout_store::CheckClaim) -> Result<Vec<String>> {
        self.inner.claim_checks(claim).await
    }

    async fn release_checks(&self, agent: String, location: String) -> Result<()> {
        self.inner.release_checks(agent, location).await
    }

    async fn check_holders(&self) -> Result<Vec<(String, String, String)>> {
        self.inner.check_holders().await
    }

    /// Straight to the store, like forwarding: a diagnosis is asked for and answered within seconds or not at all,
    /// so nothing of it is kept in memory while the store is away (the message goes without it).
    async fn request_diagnosis(&self, agent: String, target: String, since: Option<Timestamp>) -> Result<i64> {
        self.inner.request_diagnosis(agent, target, since).await
    }

    async fn take_diagnosis_requests(&self, agent: String) -> Result<Vec<lookout_store::DiagnosisRequest>> {
        self.inner.take_diagnosis_requests(agent).await
    }

    async fn answer_diagnosis(&self, id: i64, answer: String) -> Result<()> {
        self.inner.answer_diagnosis(id, answer).await
    }

    async fn diagnosis_answer(&self, id: i64) -> Result<Option<String>> {
        self.inner.diagnosis_answer(id).await
    }

    /// Straight to the store, like pruning: nothing of it needs to wait in the journal (the next run redoes it).
    async fn roll_up(&self, horizons: lookout_store::Horizons) -> Result<lookout_store::RollUp> {
        self.inner.roll_up(horizons).await
    }

    async fn incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        self.inner.incidents(limit).await
    }

    async fn incident(&self, id: String) -> Result<Option<Incident>> {
        self.inner.incident(id).await
    }

    async fn open_incidents(&self, limit: usize) -> Result<Vec<Incident>> {
        self.inner.open_incidents(limit).await
    }

    async fn open_incident_groups(&self) -> Result<Vec<String>> {
        self.inner.open_incident_groups().await
    }

    async fn live_incidents(&self) -> Result<(Vec<Incident>, Vec<(String, String, u32)>)> {
        self.inner.live_incidents().await
    }

    async fn timeline(&self, id: String) -> Result<Vec<TimelineEntry>> {
        self.inner.timeline(id).await
    }

    async fn alert_messages(&self, alert_id: String) -> Result<Vec<OutboxMessage>> {
        self.inner.alert_messages(alert_id).await
    }

    async fn incident_messages(&self, id: String) -> Result<Vec<OutboxMessage>> {
        self.inner.incident_messages(id).await
    }

    async fn results_between(&self, target: String, from: Timestamp, to: Timestamp) -> Result<Vec<ResultRow>> {
        self.inner.results_between(target, from, to).await
    }

    async fn daily_uptime(&self, target: String, from: Timestamp) -> Result<Vec<(i64, u64, u64)>> {
        self.inner.daily_uptime(target, from).await
    }

    async fn result_buckets(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<ResultBucket>> {
        self.inner.result_buckets(target, from, to, bucket_ms).await
    }

    async fn latency_percentiles(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        qs: Vec<f64>,
    ) -> Result<Vec<Option<f64>>> {
        self.inner.latency_percentiles(target, from, to, qs).await
    }

    async fn readings_between(
        &self,
        target: String,
        from: Timestamp,
        to: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<lookout_store::ReadingBucket>> {
        self.inner.readings_between(target, from, to, bucket_ms).await
    }

    async fn log_counts_between(&self, source: String, from: Timestamp, to: Timestamp) -> Result<Vec<LogCount>> {
        self.inner.log_counts_between(source, from, to).await
    }
}
