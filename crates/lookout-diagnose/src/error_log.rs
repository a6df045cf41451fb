//! Root causes read from the error logs alone: what PHP, Apache, nginx or PHP-FPM said they could not open, parse
//! or reach — grouped by cause and file across every log given, ranked by how often, with hints. This is the
//! diagnosis that works without the privilege to trace, and the only one for failures that make no syscall fail
//! (PHP parse errors, open_basedir) or happen outside the traced processes (PHP-FPM down).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lookout_logs::error_log::{self, Entries, ErrorFormat};
use serde::Serialize;

use crate::hints::{self, Missing};

mod classify;

pub use classify::Detail;
pub use lookout_core::Cause;

/// Error-log entries kept as evidence per finding.
const EVIDENCE_LINES: usize = 3;
/// One piece of evidence is cut here (an entry may be a whole stack trace).
const EVIDENCE_CHARS: usize = 4000;

/// One probable root cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    /// The file (for `BackendDown` the socket, or `host:port`; for `Saturated` `pool NAME`).
    pub path: PathBuf,
    /// The script that needed it (`in /var/www/html/index.php:3`), when the log says.
    pub needed_by: Option<String>,
    /// Messages that said so (one log entry may carry several, e.g. PHP's warning and fatal error).
    pub occurrences: u64,
    /// Unix milliseconds of the first and last message.
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// For `Missing`: what exists nearby now.
    pub hint: Option<Missing>,
    /// For `Missing`: the existing path that differs from it only by case, at any step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_only: Option<PathBuf>,
    /// For `Missing`: it is a symlink, and this is the target that does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dangling_target: Option<PathBuf>,
    /// open_basedir's allowed paths, the backend that is down, the pool that is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    /// Whether the path exists now (a missing file that exists now was fixed, or is a different problem).
    pub exists_now: bool,
    /// A few of the error-log entries behind it, verbatim (an entry may span lines).
    pub evidence: Vec<String>,
    /// The first message that said so (one PHP message, without the log's prefix).
    pub message: String,
    /// One sentence for humans, the verdict first.
    pub summary: String,
}

impl Finding {
    /// The finding as an incident keeps it.
    pub fn diagnosis(&self) -> lookout_core::Diagnosis {
        // Only a file is a path an incident checks again at its resolution; a pool or a TCP address is not.
        let path = match self.cause {
            Cause::Saturated => None,
            _ if !self.path.is_absolute() => None,
            _ => Some(self.path.display().to_string()),
        };
        lookout_core::Diagnosis {
            verdict: self.summary.clone(),
            cause: Some(self.cause),
            path,
            source: "error log".into(),
            evidence: self.evidence.clone(),
        }
    }
}

/// What was read from one error log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRead {
    pub path: PathBuf,
    /// The format it was read in (detected when not given); `None` when no line fits any.
    pub format: Option<ErrorFormat>,
    pub entries: usize,
    /// Lines that fit no entry (skipped).
    pub malformed: u64,
}

/// The findings from several error logs, merged by cause and path, and what was read from each.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diagnosed {
    pub findings: Vec<Finding>,
    pub logs: Vec<LogRead>,
}

/// An error log that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the error log {}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Findings gathered over one or more logs; [`Gather::finish`] ranks them and adds hints.
#[derive(Default)]
struct Gather {
    by_key: HashMap<(Cause, PathBuf), Finding>,
    order: Vec<(Cause, PathBuf)>,
}

impl Gather {
    fn add(&mut self, entries: &Entries, since_ms: Option<i64>) {
        for entry in &entries.entries {
            if let (Some(since), Some(t)) = (since_ms, entry.time_ms)
                && t < since
            {
                continue;
            }
            for message in &entry.messages {
                let Some(c) = classify::classify(message, entry) else { continue };
                let key = (c.cause, c.path.clone());
                let f = self.by_key.entry(key.clone()).or_insert_with(|| {
                    self.order.push(key);
                    Finding {
                        cause: c.cause,
                        path: c.path.clone(),
                        needed_by: None,
                        occurrences: 0,
                        first_seen_ms: entry.time_ms,
                        last_seen_ms: entry.time_ms,
                        hint: None,
                        case_only: None,
                        dangling_target: None,
                        detail: None,
                        exists_now: false,
                        evidence: Vec::new(),
                        message: lookout_core::text::truncate(message, EVIDENCE_CHARS),
                        summary: String::new(),
                    }
                });
                f.occurrences += 1;
                // Logs are read one after the other: the earliest and latest over all of them.
                f.first_seen_ms = min_some(f.first_seen_ms, entry.time_ms);
                f.last_seen_ms = max_some(f.last_seen_ms, entry.time_ms);
                if f.needed_by.is_none() {
                    f.needed_by = c.needed_by;
                }
                if f.detail.is_none() || matches!(c.detail, Some(Detail::OpenBasedir { .. })) {
                    f.detail = c.detail.or(f.detail.take());
                }
                let evidence = lookout_core::text::truncate(entry.text.trim_end(), EVIDENCE_CHARS);
                if f.evidence.len() < EVIDENCE_LINES && !f.evidence.contains(&evidence) {
                    f.evidence.push(evidence);
                }
            }
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self.order.into_iter().filter_map(|k| self.by_key.remove(&k)).collect();
        // The same file reported as missing by a warning and a fatal error is one finding, counted per message. A
        // full pool is a condition, not a root cause: it comes after every file.
        findings.sort_by(|a, b| {
            (a.cause == Cause::Saturated)
                .cmp(&(b.cause == Cause::Saturated))
                .then(b.occurrences.cmp(&a.occurrences))
                .then(cause_rank(a.cause).cmp(&cause_rank(b.cause)))
        });
        // A backend that is down as of the last thing the logs say explains every failure now; what failed
        // before it is history, however often it was logged.
        let latest = findings.iter().filter_map(|f| f.last_seen_ms).max();
        if let Some(i) = findings.iter().position(|f| f.cause == Cause::BackendDown && f.last_seen_ms == latest) {
            let down = findings.remove(i);
            findings.insert(0, down);
        }
        for f in &mut findings {
            f.exists_now = f.path.is_absolute() && f.path.symlink_metadata().is_ok();
            if f.cause == Cause::Missing {
                f.dangling_target = hints::dangling(&f.path);
                if f.dangling_target.is_none() {
                    f.hint = hints::enoent(&f.path);
                    f.case_only = hints::ignoring_case(&f.path);
                }
            }
            f.summary = summary(f);
        }
        findings
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Reads `lines` of an error log (in `format`, or recognised with [`ErrorFormat::Auto`]) and returns findings,
/// most frequent first.
pub fn diagnose<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    format: ErrorFormat,
    since_ms: Option<i64>,
) -> Vec<Finding> {
    let mut g = Gather::default();
    g.add(&error_log::entries::read(format, lines), since_ms);
    g.finish()
}

fn cause_rank(c: Cause) -> u8 {
    match c {
        Cause::BackendDown => 0,
        Cause::ParseError => 1,
        Cause::Missing => 2,
        Cause::Unreadable => 3,
        Cause::Failing => 4,
        Cause::Saturated => 5,
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "?".into(), |ms| lookout_core::Timestamp::from_millis(ms).to_rfc3339_seconds())
}

fn summary(f: &Finding) -> String {
    let p = f.path.display();
    let seen = format!(
        "{} error-log line{} from {} to {}",
        f.occurrences,
        if f.occurrences == 1 { "" } else { "s" },
        when(f.first_seen_ms),
        when(f.last_seen_ms)
    );
    let by = f.needed_by.as_deref().map(|s| format!("required by {s}; ")).unwrap_or_default();
    match f.cause {
        Cause::Missing if f.dangling_target.is_some() => format!(
            "Probable root cause: {p} is a symlink to {}, which does not exist (dangling; {by}{seen})",
            f.dangling_target.as_deref().unwrap_or(Path::new("?")).display()
        ),
        Cause::Missing if f.exists_now => format!("{p} was missing ({by}{seen}); it exists now"),
        Cause::Missing => {
            let mut s = match &f.hint {
                Some(Missing::Directory { deepest_existing, missing, .. }) => format!(
                    "Probable root cause: {p} does not exist: directory {missing:?} is missing under {} ({by}{seen})",
                    deepest_existing.display()
                ),
                _ => format!("Probable root cause: {p} does not exist ({by}{seen})"),
            };
            // The whole path found ignoring case says more than the nearest name in one directory.
            let best = match &f.case_only {
                Some(c) => Some((c.as_path(), hints::Difference::Case)),
                None => f.hint.as_ref().and_then(Missing::best),
            };
            if let Some((best, difference)) = best {
                s.push_str(&format!("; did you mean {}?", best.display()));
                if let Some(says) = difference.says() {
                    s.push_str(&format!(" ({says})"));
                }
            }
            s
        }
        Cause::Unreadable => match &f.detail {
            Some(Detail::OpenBasedir { allowed }) => format!(
                "Probable root cause: open_basedir restriction in effect: PHP may not open {p}, which is not within the allowed path(s) {} ({by}{seen}); add its directory to open_basedir or move the file under an allowed path",
                allowed.join(":")
            ),
            _ => {
                let mode = std::fs::metadata(&f.path)
                    .map(|m| {
                        use std::os::unix::fs::MetadataExt;
                        format!("; it is owned by uid {} gid {} with mode {:o}", m.uid(), m.gid(), m.mode() & 0o7777)
                    })
                    .unwrap_or_default();
                format!("Probable root cause: the web server may not read {p} (permission denied; {seen}){mode}")
            }
        },
        Cause::ParseError => {
            let what = f
                .message
                .split_once("PHP Parse error:")
                .map(|(_, m)| m.lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            format!("Probable root cause: PHP cannot parse {p} ({seen}): {what}")
        }
        Cause::BackendDown => {
            let (address, reason, service, php) = match &f.detail {
                Some(Detail::Backend { address, reason, service, php }) => {
                    (address.as_str(), reason.as_str(), service.as_deref(), *php)
                }
                _ => ("?", "not answering", None, true),
            };
            if php {
                format!(
                    "Probable root cause: PHP-FPM is not answering at {address} ({reason}; {seen}): start or restart {}",
                    service.unwrap_or("PHP-FPM")
                )
            } else {
                format!(
                    "Probable root cause: the upstream server is not answering at {address} ({reason}; {seen}): start or restart it"
                )
            }
        }
        Cause::Saturated => {
            let (pool, max) = match &f.detail {
                Some(Detail::Saturation { pool, max_children }) => {
                    (pool.as_str(), max_children.map(|n| format!(" ({n})")).unwrap_or_default())
                }
                _ => ("?", String::new()),
            };
            format!(
                "Probable cause: PHP-FPM pool {pool} is saturated: it reached pm.max_children{max} ({seen}); requests wait for a free worker and may time out: raise pm.max_children if memory allows, or find what makes requests slow"
            )
        }
        // The error log classifies only the causes above; a trace finds other errnos.
        Cause::Failing => format!("Probable root cause: the server cannot use {p} ({seen})"),
    }
}

/// The verdict when nothing in the log explains the failures.
pub const NOTHING_FOUND: &str = "No probable cause in the error log: no file that could not be opened, read or parsed. If PHP runs with log_errors=Off, only a trace of the workers can tell";

/// Findings from the last `max_bytes` of an error-log file (what a running server wrote recently).
pub fn diagnose_tail(
    path: &Path,
    format: ErrorFormat,
    since_ms: Option<i64>,
    max_bytes: u64,
) -> std::io::Result<Vec<Finding>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max_bytes).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    // A partial first line (when starting mid-file) does not parse and is skipped (or joined to nothing).
    Ok(diagnose(text.lines(), format, since_ms))
}

/// Findings from an error-log file (read whole).
pub fn diagnose_file(path: &Path, format: ErrorFormat, since_ms: Option<i64>) -> std::io::Result<Vec<Finding>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(diagnose(text.lines(), format, since_ms))
}

/// Findings from several error logs (nginx's and FPM's, say), each read whole in `format` (or recognised on its
/// own with [`ErrorFormat::Auto`]), merged by cause and path.
pub fn diagnose_files(paths: &[PathBuf], format: ErrorFormat, since_ms: Option<i64>) -> Result<Diagnosed, ReadError> {
    let mut g = Gather::default();
    let mut logs = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|source| ReadError { path: path.clone(), source })?;
        let text = String::from_utf8_lossy(&bytes);
        let entries = error_log::entries::read(format, text.lines());
        g.add(&entries, since_ms);
        logs.push(LogRead {
            path: path.clone(),
            format: entries.format,
            entries: entries.entries.len(),
            malformed: entries.malformed,
        });
    }
    Ok(Diagnosed { findings: g.finish(), logs })
}

#[cfg(test)]
mod tests;
