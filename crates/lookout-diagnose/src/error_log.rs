//! Root causes read from the error log alone: what PHP, Apache or nginx said they could not open, parse or
//! read — grouped by file, ranked by how often, with hints. This is the diagnosis that works without the
//! privilege to trace, and the only one for failures that make no syscall fail (PHP parse errors).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lookout_logs::error_log::{self, ErrorFormat};
use serde::Serialize;

use crate::hints::{self, Missing};

/// Error-log lines kept as evidence per finding.
const EVIDENCE_LINES: usize = 3;

pub use lookout_core::Cause;

/// One probable root cause.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    pub path: PathBuf,
    /// The script that needed it (`in /var/www/html/index.php:3`), when the log says.
    pub needed_by: Option<String>,
    pub occurrences: u64,
    /// Unix milliseconds of the first and last line.
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// For `Missing`: what exists nearby now.
    pub hint: Option<Missing>,
    /// Whether the path exists now (a missing file that exists now was fixed, or is a different problem).
    pub exists_now: bool,
    /// A few of the error-log lines behind it, verbatim.
    pub evidence: Vec<String>,
    /// One sentence for humans, the verdict first.
    pub summary: String,
}

impl Finding {
    /// The finding as an incident keeps it.
    pub fn diagnosis(&self) -> lookout_core::Diagnosis {
        lookout_core::Diagnosis {
            verdict: self.summary.clone(),
            cause: Some(self.cause),
            path: Some(self.path.display().to_string()),
            source: "error log".into(),
            evidence: self.evidence.clone(),
        }
    }
}

/// Reads `lines` of an error log and returns findings, most frequent first.
pub fn diagnose<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    format: ErrorFormat,
    since_ms: Option<i64>,
) -> Vec<Finding> {
    let mut by_key: HashMap<(Cause, PathBuf), Finding> = HashMap::new();
    let mut order: Vec<(Cause, PathBuf)> = Vec::new();
    for line in lines {
        let Some(rec) = error_log::parse(format, line) else { continue };
        if let (Some(since), Some(t)) = (since_ms, rec.time_ms)
            && t < since
        {
            continue;
        }
        let Some((cause, path, needed_by)) = classify(rec.message) else { continue };
        let key = (cause, path.clone());
        let f = by_key.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Finding {
                cause,
                path,
                needed_by: None,
                occurrences: 0,
                first_seen_ms: rec.time_ms,
                last_seen_ms: rec.time_ms,
                hint: None,
                exists_now: false,
                evidence: Vec::new(),
                summary: String::new(),
            }
        });
        f.occurrences += 1;
        f.last_seen_ms = rec.time_ms.or(f.last_seen_ms);
        if f.needed_by.is_none() {
            f.needed_by = needed_by;
        }
        if f.evidence.len() < EVIDENCE_LINES {
            f.evidence.push(line.trim_end().to_string());
        }
    }
    let mut findings: Vec<Finding> = order.into_iter().filter_map(|k| by_key.remove(&k)).collect();
    // The same file reported as missing by a warning and a fatal error is one finding, counted per line.
    findings.sort_by(|a, b| b.occurrences.cmp(&a.occurrences).then(cause_rank(a.cause).cmp(&cause_rank(b.cause))));
    for f in &mut findings {
        f.exists_now = f.path.symlink_metadata().is_ok();
        if f.cause == Cause::Missing {
            f.hint = hints::enoent(&f.path);
        }
        f.summary = summary(f);
    }
    findings
}

fn cause_rank(c: Cause) -> u8 {
    match c {
        Cause::ParseError => 0,
        Cause::Missing => 1,
        Cause::Unreadable => 2,
        Cause::Failing => 3,
    }
}

/// What a message says went wrong with which file.
fn classify(message: &str) -> Option<(Cause, PathBuf, Option<String>)> {
    let paths = error_log::paths_in(message);
    let needed_by = message
        .rsplit_once(" in /")
        .map(|(_, rest)| format!("/{}", rest.trim().trim_end_matches('.')))
        .map(|s| s.replace(" on line ", ":"));
    if message.contains("PHP Parse error") {
        let script = needed_by.as_deref()?.rsplit_once(':').map_or(needed_by.clone()?, |(p, _)| p.to_string());
        return Some((Cause::ParseError, PathBuf::from(script), needed_by));
    }
    let missing = message.contains("No such file or directory")
        || message.contains("Failed opening required")
        || message.contains("File does not exist");
    let denied = message.contains("Permission denied") || message.contains("permissions are missing");
    let cause = match (missing, denied) {
        (_, true) => Cause::Unreadable,
        (true, false) => Cause::Missing,
        _ => return None,
    };
    // The first path is the one that failed; a later `in /x.php` is the script that asked for it.
    let path = paths.first()?;
    let needed_by = needed_by.filter(|n| !n.starts_with(path));
    Some((cause, PathBuf::from(path), needed_by))
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
        Cause::Missing if f.exists_now => format!("{p} was missing ({by}{seen}); it exists now"),
        Cause::Missing => {
            let mut s = match &f.hint {
                Some(Missing::Directory { deepest_existing, missing, .. }) => format!(
                    "Probable root cause: {p} does not exist: directory {missing:?} is missing under {} ({by}{seen})",
                    deepest_existing.display()
                ),
                _ => format!("Probable root cause: {p} does not exist ({by}{seen})"),
            };
            if let Some(best) = f.hint.as_ref().and_then(|h| h.suggestions().first()) {
                s.push_str(&format!("; did you mean {}?", best.display()));
            }
            s
        }
        Cause::Unreadable => {
            let mode = std::fs::metadata(&f.path)
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    format!("; it is owned by uid {} gid {} with mode {:o}", m.uid(), m.gid(), m.mode() & 0o7777)
                })
                .unwrap_or_default();
            format!("Probable root cause: the web server may not read {p} (permission denied; {seen}){mode}")
        }
        Cause::ParseError => {
            let what = f
                .evidence
                .first()
                .and_then(|l| l.split_once("PHP Parse error:"))
                .map(|(_, m)| m.trim().to_string())
                .unwrap_or_default();
            format!("Probable root cause: PHP cannot parse {p} ({seen}): {what}")
        }
        // The error log classifies only the three above; a trace finds other errnos.
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
    // A partial first line (when starting mid-file) does not parse and is skipped.
    Ok(diagnose(text.lines(), format, since_ms))
}

/// Findings from an error-log file (read whole).
pub fn diagnose_file(path: &Path, format: ErrorFormat, since_ms: Option<i64>) -> std::io::Result<Vec<Finding>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(diagnose(text.lines(), format, since_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(dir: &Path) -> Vec<String> {
        let inc = dir.join("inc");
        let index = dir.join("index.php");
        let mut lines = Vec::new();
        for (i, client) in ["127.0.0.1:42820", "10.0.0.7:5000"].iter().enumerate() {
            lines.push(format!("[Wed Nov 25 14:36:2{i}.477068 2026] [php:warn] [pid 10643:tid 10643] [client {client}] PHP Warning:  require_once({}): Failed to open stream: No such file or directory in {} on line 3", inc.join("settings.phpp").display(), index.display()));
            lines.push(format!("[Wed Nov 25 14:36:2{i}.477100 2026] [php:error] [pid 10643:tid 10643] [client {client}] PHP Fatal error:  Uncaught Error: Failed opening required '{}' (include_path='.:/usr/share/php') in {}:3", inc.join("settings.phpp").display(), index.display()));
        }
        lines
    }

    #[test]
    fn a_misspelled_require_is_named_with_the_file_meant() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("inc")).unwrap();
        std::fs::write(dir.path().join("inc/settings.php"), "<?php").unwrap();
        let lines = incident(dir.path());
        let findings = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, None);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.cause, Cause::Missing);
        assert_eq!(f.path, dir.path().join("inc/settings.phpp"));
        assert_eq!(f.occurrences, 4);
        assert_eq!(f.evidence.len(), 3);
        assert_eq!(
            f.summary,
            format!(
                "Probable root cause: {} does not exist (required by {}:3; 4 error-log lines from 2026-11-25T14:36:20Z to 2026-11-25T14:36:21Z); did you mean {}?",
                dir.path().join("inc/settings.phpp").display(),
                dir.path().join("index.php").display(),
                dir.path().join("inc/settings.php").display()
            )
        );
        let since = findings[0].last_seen_ms;
        let later = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, since);
        assert_eq!(later[0].occurrences, 2, "--since drops older lines");
    }

    #[test]
    fn parse_errors_permission_problems_and_fixed_files() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("index.php");
        std::fs::write(&script, "<?php echo 'x'").unwrap();
        let lines = [
            format!("[Wed Nov 25 14:36:22 2026] [php:error] [pid 1] [client 1.2.3.4:5] PHP Parse error:  syntax error, unexpected end of file, expecting \",\" or \";\" in {} on line 2", script.display()),
            format!("[Wed Nov 25 14:36:23 2026] [core:error] [pid 1] [client 1.2.3.4:5] AH00035: access to /secret.php denied (filesystem path '{}') because search permissions are missing on a component of the path", dir.path().join("secret.php").display()),
            format!("[Wed Nov 25 14:36:24 2026] [php:warn] [pid 1] [client 1.2.3.4:5] PHP Warning:  include({}): Failed to open stream: No such file or directory in {} on line 1", script.display(), script.display()),
            "[Wed Nov 25 14:36:25 2026] [mpm_prefork:notice] [pid 1] AH00163: Apache/2.4.67 (Debian) configured -- resuming normal operations".to_string(),
            "garbage".to_string(),
        ];
        let findings = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, None);
        let causes: Vec<Cause> = findings.iter().map(|f| f.cause).collect();
        assert_eq!(causes, [Cause::ParseError, Cause::Missing, Cause::Unreadable]);
        assert_eq!(
            findings[0].summary,
            format!(
                "Probable root cause: PHP cannot parse {s} (1 error-log line from 2026-11-25T14:36:22Z to 2026-11-25T14:36:22Z): syntax error, unexpected end of file, expecting \",\" or \";\" in {s} on line 2",
                s = script.display()
            )
        );
        assert_eq!(findings[0].needed_by, Some(format!("{}:2", script.display())));
        assert!(findings[1].summary.ends_with("; it exists now"), "{}", findings[1].summary);
        assert!(findings[2].summary.contains("may not read"), "{}", findings[2].summary);
    }

    #[test]
    fn nginx_open_failures() {
        let line = r#"2026/11/25 14:36:22 [error] 1234#1234: *5 open() "/nonexistent-lookout-test/www/favicon.icoo" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /favicon.icoo HTTP/1.1", host: "localhost""#;
        let findings = diagnose([line], ErrorFormat::Nginx, None);
        assert_eq!(findings[0].cause, Cause::Missing);
        assert_eq!(findings[0].path, PathBuf::from("/nonexistent-lookout-test/www/favicon.icoo"));
        assert!(matches!(findings[0].hint, Some(Missing::Directory { .. })));
    }

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(when(Some(1_795_617_382_477)), "2026-11-25T14:36:22Z");
        assert_eq!(when(None), "?");
    }
}
