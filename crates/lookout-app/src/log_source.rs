//! The live side of a `[[log]]` source: tails its access and error logs, turns what was read into
//! [`LogBatch`] events (counts, failing clients, error messages, and the cursors to persist with them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_config::LogSource;
use lookout_core::{Event, LogBatch, LogCount, Timestamp};
use lookout_logs::tail::{Cursor, Tailer};
use lookout_store::Store;
use tokio::sync::{mpsc, watch};

/// How often the files are polled.
const POLL: Duration = Duration::from_millis(100);
/// A batch is sent at least this often, even if empty, so the engine's window slides.
const TICK: Duration = Duration::from_secs(1);
/// Bytes read per file per poll, so one huge backlog cannot starve the rest.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Error-log messages passed on per batch.
const MAX_ERROR_LINES: usize = 50;
/// Request durations passed on per batch (the percentiles of a busy second come from its first 20,000).
const MAX_DURATIONS: usize = 20_000;

/// Reads one source's files; owned by the blocking pool while it reads.
pub struct SourceReader {
    source: LogSource,
    access: Option<Tailer>,
    error: Option<Tailer>,
    /// When a malformed line was last logged as a sample (at most one a minute, so a wrong format cannot
    /// flood the logs).
    last_sample: Option<Instant>,
}

impl SourceReader {
    /// Resumes from the cursors saved in the store (if any).
    pub async fn resume<S: Store>(source: LogSource, store: &S) -> Result<SourceReader, lookout_store::StoreError> {
        let cursor = |file: &'static str| {
            let name = source.name.clone();
            async move {
                store
                    .log_cursor(name, file.to_string())
                    .await
                    .map(|c| c.and_then(|json| serde_json::from_str::<Cursor>(&json).ok()))
            }
        };
        let access_cursor = cursor("access").await?;
        let error_cursor = cursor("error").await?;
        let access = source.access.as_ref().map(|p| Tailer::new(p, access_cursor, source.start_at));
        let error = source.error.as_ref().map(|p| Tailer::new(p, error_cursor, source.start_at));
        Ok(SourceReader { source, access, error, last_sample: None })
    }

    /// Reads what is new in both files into one batch.
    pub fn read(&mut self) -> LogBatch {
        let now = Timestamp::now();
        let mut batch = LogBatch { target: self.source.name.clone(), at: now, ..LogBatch::default() };
        let mut counts: Vec<LogCount> = Vec::new();
        if let Some(t) = &mut self.access {
            match t.poll(MAX_BATCH_BYTES) {
                Ok(b) => {
                    for e in &b.events {
                        tracing::info!(source = %self.source.name, file = %t.path().display(), "{e}");
                    }
                    let mut failing = std::collections::HashSet::new();
                    let mut sample: Option<(&[u8], &'static str)> = None;
                    for line in b.lines() {
                        if let Err(why) =
                            count_access_line(&self.source, line, now, &mut batch, &mut counts, &mut failing)
                        {
                            sample.get_or_insert((line, why.as_str()));
                        }
                    }
                    if let Some((line, why)) = sample
                        && self.last_sample.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                    {
                        self.last_sample = Some(Instant::now());
                        let text: String =
                            String::from_utf8_lossy(&line[..line.len().min(300)]).escape_debug().collect();
                        tracing::warn!(source = %self.source.name, reason = why, sample = %text, "Malformed access-log lines (counted, not parsed); check the format.");
                    }
                    batch.malformed += b.too_long;
                    batch.failing_clients = failing.into_iter().collect();
                    batch.cursors.push(("access".into(), cursor_json(&b.cursor)));
                }
                Err(e) => {
                    tracing::warn!(source = %self.source.name, file = %t.path().display(), error = %e, "Cannot read the access log.")
                }
            }
        }
        if let Some(t) = &mut self.error {
            match t.poll(MAX_BATCH_BYTES) {
                Ok(b) => {
                    for line in b.lines() {
                        if batch.error_lines.len() >= MAX_ERROR_LINES {
                            break;
                        }
                        let text = String::from_utf8_lossy(line);
                        let message = match lookout_logs::error_log::parse(self.source.error_format, &text) {
                            Some(r) => r.message.to_string(),
                            None => text.into_owned(),
                        };
                        batch.error_lines.push(message);
                    }
                    batch.cursors.push(("error".into(), cursor_json(&b.cursor)));
                }
                Err(e) => {
                    tracing::warn!(source = %self.source.name, file = %t.path().display(), error = %e, "Cannot read the error log.")
                }
            }
        }
        if batch.malformed > 0 {
            let minute = now.as_millis().div_euclid(60_000) * 60;
            bucket(&mut counts, minute).malformed += batch.malformed;
        }
        batch.counts = counts;
        batch
    }
}

fn cursor_json(c: &Cursor) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

fn bucket(counts: &mut Vec<LogCount>, minute: i64) -> &mut LogCount {
    let i = match counts.iter().position(|c| c.minute == minute) {
        Some(i) => i,
        None => {
            counts.push(LogCount { minute, ..LogCount::default() });
            counts.len() - 1
        }
    };
    &mut counts[i]
}

/// Counts one access-log line; a malformed one is counted as such and its reason returned.
fn count_access_line(
    source: &LogSource,
    line: &[u8],
    now: Timestamp,
    batch: &mut LogBatch,
    counts: &mut Vec<LogCount>,
    failing: &mut std::collections::HashSet<u64>,
) -> Result<(), lookout_logs::access::Malformed> {
    match source.format.parse_line(line) {
        Err(why) => {
            batch.malformed += 1;
            Err(why)
        }
        Ok(rec) => {
            if source.vhost.as_deref().is_some_and(|v| v != rec.vhost) {
                return Ok(());
            }
            let minute = rec.time.unwrap_or(now.as_millis().div_euclid(1000)).div_euclid(60) * 60;
            let c = bucket(counts, minute);
            c.requests += 1;
            let class = usize::from(rec.status / 100).clamp(1, 5) - 1;
            c.classes[class] += 1;
            batch.requests += 1;
            if let Some(us) = rec.duration_us
                && batch.durations_us.len() < MAX_DURATIONS
            {
                batch.durations_us.push(us);
            }
            if (500..600).contains(&rec.status) {
                batch.status_5xx += 1;
                failing.insert(source.clients.hash(rec.client, rec.user_agent));
            }
            Ok(())
        }
    }
}

/// Polls the source until shutdown, sending a batch whenever something was read, and at least every second.
pub async fn run<S: Store>(
    source: LogSource,
    store: Arc<S>,
    tx: mpsc::Sender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = source.name.clone();
    let mut reader = match SourceReader::resume(source, store.as_ref()).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(source = %name, error = %e, "Cannot resume the log source; it is not followed.");
            return;
        }
    };
    let mut last_sent = Instant::now() - TICK;
    loop {
        let Some(mut r) = reader.take() else { return };
        let (r, batch) = match tokio::task::spawn_blocking(move || {
            let b = r.read();
            (r, b)
        })
        .await
        {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(source = %name, error = %e, "The log reader failed; the source is no longer followed.");
                return;
            }
        };
        reader = Some(r);
        let read_something = batch.requests > 0 || batch.malformed > 0 || !batch.error_lines.is_empty();
        if read_something || last_sent.elapsed() >= TICK {
            if tx.send(Event::Log(batch)).await.is_err() {
                return;
            }
            last_sent = Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}
