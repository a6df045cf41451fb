//! The live side of a `[[log]]` source: tails its access and error logs, turns what was read into
//! [`LogBatch`] events (counts, failing clients, error messages, and the cursors to persist with them).
//!
//! A file that cannot be read is never silent: the batch says since when and why (the engine fails the source
//! with that reason once it lasts longer than the window), and the warning is logged once, then at most once a
//! minute with the number of failed reads in between, and once more when reading works again.
//!
//! Also here, for the pipeline: what of a batch's window is persisted ([`window_write`]) and how the windows are
//! put back at start ([`restore_windows`]), so that a restart inside a firing window changes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_config::LogSource;
use lookout_core::{Event, LogBatch, LogCount, Timestamp, Unreadable};
use lookout_engine::{Engine, Outcome, WindowEntry};
use lookout_logs::distinct::HashSet64;
use lookout_logs::fast::TimeCache;
use lookout_logs::tail::{Cursor, Tailer};
use lookout_store::{LogWindowWrite, Store, StoreError};
use tokio::sync::{mpsc, watch};

/// How often the files are polled.
const POLL: Duration = Duration::from_millis(100);
/// A batch is sent at least this often, even if empty, so the engine's window slides.
const TICK: Duration = Duration::from_secs(1);
/// Bytes read per file per poll, so one huge backlog cannot starve the rest. A poll that reaches it is followed
/// by the next at once, not after [`POLL`]: with 4 MiB per 100 ms, ingestion stopped at ~240,000 lines/s of 170
/// bytes. 8 MiB (~50,000 lines) per batch halves the store transactions a backlog costs (one each) against 4 MiB,
/// for ~8 MB more peak RSS (`bench/live_logs.sh`).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Error-log messages passed on per batch.
const MAX_ERROR_LINES: usize = 50;
/// Request durations passed on per batch (the percentiles of a busy second come from its first 20,000).
const MAX_DURATIONS: usize = 20_000;
/// A failure that goes on is warned about at most this often (it is polled ten times a second).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One file's read failures: since when, why, and the warnings about them (rate-limited).
#[derive(Debug, Default)]
struct Health {
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    since: Timestamp,
    started: Instant,
    reason: String,
    failures: u64,
    warned_at: Instant,
    /// Failed reads since the last warning.
    suppressed: u64,
}

/// What to log about one read.
#[derive(Debug, PartialEq, Eq)]
enum Say {
    Nothing,
    /// A warning; `suppressed` failed reads were not warned about since the previous one.
    Warn {
        suppressed: u64,
    },
    /// Reading works again after `failures` failed reads.
    Recovered {
        failures: u64,
        after: Duration,
    },
}

impl Health {
    /// A failed read: warn on the first, on a new reason, and then at most every [`WARN_EVERY`].
    fn failed(&mut self, reason: String, now: Instant, wall: Timestamp) -> Say {
        match &mut self.failing {
            Some(f) if f.reason == reason => {
                f.failures += 1;
                if now.duration_since(f.warned_at) >= WARN_EVERY {
                    let suppressed = std::mem::take(&mut f.suppressed);
                    f.warned_at = now;
                    Say::Warn { suppressed }
                } else {
                    f.suppressed += 1;
                    Say::Nothing
                }
            }
            Some(f) => {
                let suppressed = std::mem::take(&mut f.suppressed);
                f.reason = reason;
                f.failures += 1;
                f.warned_at = now;
                Say::Warn { suppressed }
            }
            None => {
                self.failing =
                    Some(Failing { since: wall, started: now, reason, failures: 1, warned_at: now, suppressed: 0 });
                Say::Warn { suppressed: 0 }
            }
        }
    }

    fn succeeded(&mut self, now: Instant) -> Say {
        match self.failing.take() {
            Some(f) => Say::Recovered { failures: f.failures, after: now.duration_since(f.started) },
            None => Say::Nothing,
        }
    }

    fn unreadable(&self) -> Option<Unreadable> {
        self.failing.as_ref().map(|f| Unreadable { since: f.since, reason: f.reason.clone() })
    }
}

/// Logs what [`Health`] says about a read of `file` (`access log` or `error log`).
fn say(source: &str, file: &str, health: &Health, what: Say) {
    let reason = health.failing.as_ref().map_or("", |f| f.reason.as_str());
    match what {
        Say::Nothing => {}
        Say::Warn { suppressed: 0 } => {
            tracing::warn!(%source, reason, "Cannot read the {file}; the source is blind until it can.")
        }
        Say::Warn { suppressed } => tracing::warn!(
            %source,
            reason,
            suppressed,
            "Still cannot read the {file} ({suppressed} more failed reads since the last warning)."
        ),
        Say::Recovered { failures, after } => tracing::info!(
            %source,
            failures,
            after = %lookout_core::format_duration(after),
            "Reading the {file} again."
        ),
    }
}

/// Reads one source's files; owned by the blocking pool while it reads.
pub struct SourceReader {
    source: LogSource,
    access: Option<Tailer>,
    error: Option<Tailer>,
    /// When a malformed line was last logged as a sample (at most one a minute, so a wrong format cannot
    /// flood the logs).
    last_sample: Option<Instant>,
    access_health: Health,
    error_health: Health,
    /// The last access-log timestamp parsed: lines of one minute share it.
    times: TimeCache,
    /// The last read stopped at [`MAX_BATCH_BYTES`]: there is more to read now.
    more: bool,
    /// Request durations of the minutes still open, for their percentiles.
    latency: lookout_logs::latency::PerMinute,
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
        Ok(SourceReader {
            source,
            access,
            error,
            last_sample: None,
            access_health: Health::default(),
            error_health: Health::default(),
            times: TimeCache::default(),
            more: false,
            latency: Default::default(),
        })
    }

    /// Whether the last [`SourceReader::read`] left lines behind (it read as much as one batch takes).
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// Reads what is new in both files into one batch.
    pub fn read(&mut self) -> LogBatch {
        let now = Timestamp::now();
        self.more = false;
        let mut batch = LogBatch { target: self.source.name.clone(), at: now, ..LogBatch::default() };
        let mut counts: Vec<LogCount> = Vec::new();
        if let Some(t) = &mut self.access {
            match t.poll(MAX_BATCH_BYTES) {
                Ok(b) => {
                    self.more |= b.data.len() >= MAX_BATCH_BYTES;
                    let said = self.access_health.succeeded(Instant::now());
                    say(&self.source.name, "access log", &self.access_health, said);
                    for e in &b.events {
                        tracing::info!(source = %self.source.name, file = %t.path().display(), "{e}");
                    }
                    // Client hashes are well mixed already: the set need not hash them again (SipHash per 5xx line).
                    let mut failing = HashSet64::default();
                    let mut sample: Option<(&[u8], &'static str)> = None;
                    for line in b.lines() {
                        match count_access_line(
                            &self.source,
                            line,
                            now,
                            &mut self.times,
                            &mut batch,
                            &mut counts,
                            &mut failing,
                        ) {
                            Ok(Some((minute, us))) => self.latency.record(minute, us),
                            Ok(None) => {}
                            Err(why) => {
                                sample.get_or_insert((line, why.as_str()));
                            }
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
                    let reason = lookout_logs::tail::read_error(t.path(), &e);
                    let said = self.access_health.failed(reason, Instant::now(), now);
                    say(&self.source.name, "access log", &self.access_health, said);
                }
            }
        }
        if let Some(t) = &mut self.error {
            match t.poll(MAX_BATCH_BYTES) {
                Ok(b) => {
                    self.more |= b.data.len() >= MAX_BATCH_BYTES;
                    let said = self.error_health.succeeded(Instant::now());
                    say(&self.source.name, "error log", &self.error_health, said);
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
                    let reason = lookout_logs::tail::read_error(t.path(), &e);
                    let said = self.error_health.failed(reason, Instant::now(), now);
                    say(&self.source.name, "error log", &self.error_health, said);
                }
            }
        }
        if batch.malformed > 0 {
            let minute = now.as_millis().div_euclid(60_000) * 60;
            bucket(&mut counts, minute).malformed += batch.malformed;
        }
        batch.counts = counts;
        batch.latency = self.latency.close(now.as_millis().div_euclid(1000));
        batch.unreadable = match (self.access_health.unreadable(), self.error_health.unreadable()) {
            (Some(a), Some(e)) => {
                Some(Unreadable { since: a.since.min(e.since), reason: format!("{}; {}", a.reason, e.reason) })
            }
            (a, e) => a.or(e),
        };
        batch
    }
}

/// What a log batch's record persists of its source's window (see [`lookout_engine::WindowEntry`]).
pub(crate) fn window_write(outcome: &Outcome) -> Option<LogWindowWrite> {
    let change = outcome.log_window.as_ref()?;
    let entry = change.entry.as_ref().and_then(|e| match serde_json::to_string(e) {
        Ok(json) => Some((e.sec, json)),
        Err(err) => {
            tracing::error!(error = %err, "Cannot serialize a log window entry; a restart will not see it.");
            None
        }
    });
    Some(LogWindowWrite { entry, keep_from: change.keep_from })
}

/// Puts every log source's window back from the store, at start: what was in the window before a restart is
/// still there after it, so an alert firing on it neither resolves nor fires again.
pub(crate) async fn restore_windows<S: Store>(engine: &mut Engine, store: &S) -> Result<(), StoreError> {
    let now_sec = engine.now().as_millis().div_euclid(1000);
    let windows: Vec<(String, Duration)> = engine.log_windows().map(|(name, w)| (name.clone(), w)).collect();
    for (name, window) in windows {
        let from = now_sec.saturating_sub(window.as_secs().clamp(1, i64::MAX as u64) as i64) + 1;
        let entries: Vec<WindowEntry> = store
            .log_window(name.clone(), from)
            .await?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        if !entries.is_empty() {
            tracing::info!(source = %name, entries = entries.len(), "Resuming the log window.");
        }
        engine.restore_log_window(&name, entries);
    }
    Ok(())
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

/// Counts one access-log line; a malformed one is counted as such and its reason returned. A request with a
/// duration gives its minute and duration (µs).
fn count_access_line(
    source: &LogSource,
    line: &[u8],
    now: Timestamp,
    times: &mut TimeCache,
    batch: &mut LogBatch,
    counts: &mut Vec<LogCount>,
    failing: &mut HashSet64,
) -> Result<Option<(i64, u64)>, lookout_logs::access::Malformed> {
    match source.format.parse_line_cached(line, times) {
        Err(why) => {
            batch.malformed += 1;
            Err(why)
        }
        Ok(rec) => {
            // Another virtual host's request, or lookout's own diagnosis: not this source's users.
            if source.vhost.as_deref().is_some_and(|v| v != rec.vhost) || rec.is_lookout_diagnosis() {
                return Ok(None);
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
            Ok(rec.duration_us.map(|us| (minute, us)))
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
        let more = r.has_more();
        reader = Some(r);
        let read_something = batch.requests > 0 || batch.malformed > 0 || !batch.error_lines.is_empty();
        if read_something || last_sent.elapsed() >= TICK {
            if tx.send(Event::Log(batch)).await.is_err() {
                return;
            }
            last_sent = Instant::now();
        }
        if more {
            // A backlog: read on at once. `tx` is bounded, so this runs at the pipeline's pace, not ahead of it.
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_lasting_failure_is_warned_about_once_a_minute_with_the_count_in_between() {
        let mut h = Health::default();
        let start = Instant::now();
        let wall = Timestamp(1_000_000);
        let reason = || "cannot read /var/log/x: Permission denied (os error 13)".to_string();
        // Ten polls a second for two minutes and a bit.
        let mut warnings = Vec::new();
        for i in 0..1_205u64 {
            let now = start + Duration::from_millis(100 * i);
            match h.failed(reason(), now, wall) {
                Say::Nothing => {}
                said => warnings.push((i, said)),
            }
        }
        assert_eq!(
            warnings,
            [
                (0, Say::Warn { suppressed: 0 }),
                (600, Say::Warn { suppressed: 599 }),
                (1200, Say::Warn { suppressed: 599 })
            ]
        );
        let u = h.unreadable().unwrap();
        assert_eq!((u.since, u.reason), (wall, reason()), "since the first failure");

        // A new reason is said at once.
        let later = start + Duration::from_millis(120_600);
        assert_eq!(h.failed("cannot read /var/log/x: it is a FIFO".into(), later, wall), Say::Warn { suppressed: 4 });
        assert_eq!(h.unreadable().unwrap().since, wall, "still the same streak");
        // Reading again is said once, and clears it.
        assert_eq!(
            h.succeeded(later + Duration::from_secs(1)),
            Say::Recovered { failures: 1_206, after: Duration::from_millis(121_600) }
        );
        assert!(h.unreadable().is_none());
        assert_eq!(h.succeeded(later + Duration::from_secs(2)), Say::Nothing);
    }

    fn line(status: u16) -> String {
        format!("10.0.0.1 - - [25/Nov/2026:14:36:22 +0000] \"GET / HTTP/1.1\" {status} 12 \"-\" \"test\"\n")
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Reads on another thread, so that a reader blocked on a FIFO fails the test instead of hanging it.
    fn read_within(r: SourceReader) -> (SourceReader, LogBatch) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = r;
            let b = r.read();
            let _ = tx.send((r, b));
        });
        rx.recv_timeout(Duration::from_secs(5)).expect("the log source blocked")
    }

    /// A backlog bigger than one batch is read in batches that say there is more, so `run` reads on at once
    /// instead of waiting a poll interval between them (which capped ingestion at ~240,000 lines/s).
    #[tokio::test]
    async fn a_backlog_is_read_in_full_batches_that_say_there_is_more() {
        let dir = tempfile::tempdir().unwrap();
        let access = dir.path().join("access.log");
        append(&access, "");
        let text = format!("[[log]]\nname = \"apache\"\naccess = \"{}\"\nstart_at = \"beginning\"\n", access.display());
        let config = lookout_config::Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
        let one = line(500);
        let total = MAX_BATCH_BYTES * 5 / 2 / one.len();
        append(&access, &one.repeat(total));
        let store = lookout_store::AnyStore::in_memory().unwrap();
        let mut reader = SourceReader::resume(config.logs[0].clone(), &store).await.unwrap();
        let mut sizes = Vec::new();
        loop {
            let (r, b) = read_within(reader);
            reader = r;
            sizes.push((b.requests, reader.has_more()));
            if !reader.has_more() {
                break;
            }
        }
        let per_batch = (MAX_BATCH_BYTES / one.len()) as u64;
        assert_eq!(sizes.len(), 3, "{sizes:?}");
        assert!(sizes[..2].iter().all(|&(n, more)| more && n >= per_batch), "{sizes:?}");
        assert_eq!(sizes.iter().map(|(n, _)| n).sum::<u64>(), total as u64);
        let (_, empty) = read_within(reader);
        assert_eq!(empty.requests, 0);
    }

    #[tokio::test]
    async fn an_access_log_replaced_by_a_fifo_is_reported_unreadable_and_read_again_when_it_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let access = dir.path().join("access.log");
        append(&access, &line(200));
        let text = format!("[[log]]\nname = \"apache\"\naccess = \"{}\"\n", access.display());
        let config = lookout_config::Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
        let store = lookout_store::AnyStore::in_memory().unwrap();
        let reader = SourceReader::resume(config.logs[0].clone(), &store).await.unwrap();
        let (reader, b) = read_within(reader);
        assert!(b.unreadable.is_none());

        std::fs::remove_file(&access).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&access).status().unwrap().success());
        let (reader, first) = read_within(reader);
        let u = first.unreadable.clone().expect("a FIFO is unreadable");
        assert_eq!(
            u.reason,
            format!(
                "cannot read {}: it is a FIFO (named pipe), not a regular file (only regular files are read)",
                access.display()
            )
        );
        let (reader, again) = read_within(reader);
        assert_eq!(again.unreadable.map(|u| u.since), Some(u.since), "one streak, one start");

        std::fs::remove_file(&access).unwrap();
        append(&access, &line(500).repeat(500));
        let (_, b) = read_within(reader);
        assert!(b.unreadable.is_none());
        assert_eq!((b.requests, b.status_5xx), (500, 500), "the 500s written after the FIFO are counted");
    }
}
