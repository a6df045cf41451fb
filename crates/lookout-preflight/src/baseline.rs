//! A baseline, like PHPStan's: `--write-baseline F` records today's errors, `--baseline F` lets only new ones fail
//! the gate — so a legacy application can adopt preflight today and fix its old findings one by one.
//!
//! An entry is (file, kind, expression as written) with a count, **without line numbers**: an edit above a known
//! finding moves it, and a moved finding must not count as new. The count keeps a second copy of the same broken
//! include in the same file from hiding behind the first. Entries that no longer occur are reported ("fixed,
//! remove from the baseline") so the baseline only ever shrinks.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::rule_id;
use crate::{Error, Report, Severity};

/// What the file says it is (a JSON file of something else is refused, not taken for an empty baseline).
const FORMAT: &str = "lookout-preflight-baseline";

/// The file: `{"format": "lookout-preflight-baseline", "version": 1, "entries": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format: String,
    pub version: u32,
    pub entries: Vec<Entry>,
}

/// One known error, counted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative to the PATH given, as findings show it.
    pub file: String,
    /// The finding's kind (`missing`, `case-only`, …: the SARIF rule id).
    pub kind: String,
    /// The include's expression as written.
    pub expression: String,
    pub count: usize,
}

/// What applying a baseline did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The baseline file, as given.
    pub file: String,
    /// Errors the baseline matched (no longer printed, no longer failing the gate).
    pub matched: usize,
    /// Entries (with the count that no longer occurs) that are fixed: remove them from the baseline.
    pub fixed: Vec<Entry>,
}

type Key = (String, String, String);

fn key_of(f: &crate::Finding) -> Key {
    (f.file.clone(), rule_id(f.kind).to_owned(), f.expression.clone())
}

/// Today's errors as a baseline (infos are not: they never fail the gate).
pub fn of(report: &Report) -> Baseline {
    let mut counts: BTreeMap<Key, usize> = BTreeMap::new();
    for f in report.findings.iter().filter(|f| f.severity == Severity::Error) {
        *counts.entry(key_of(f)).or_default() += 1;
    }
    let entries =
        counts.into_iter().map(|((file, kind, expression), count)| Entry { file, kind, expression, count }).collect();
    Baseline { format: FORMAT.to_owned(), version: 1, entries }
}

/// Writes `baseline` to `path` as pretty JSON (stable order: file, kind, expression — diffs stay small).
pub fn write(baseline: &Baseline, path: &Path) -> Result<(), Error> {
    let err = |why: String| Error::Baseline { path: path.to_path_buf(), why };
    let mut text = serde_json::to_string_pretty(baseline).map_err(|e| err(e.to_string()))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| err(e.to_string()))
}

/// Reads a baseline; a missing file, bad JSON or a file that is not a baseline is a usage error naming the file.
pub fn load(path: &Path) -> Result<Baseline, Error> {
    let err = |why: String| Error::Baseline { path: path.to_path_buf(), why };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let baseline: Baseline =
        serde_json::from_slice(&text).map_err(|e| err(format!("not a preflight baseline: {e}")))?;
    if baseline.format != FORMAT || baseline.version != 1 {
        return Err(err(format!(
            "not a preflight baseline (format {:?} version {}; expected {FORMAT:?} version 1)",
            baseline.format, baseline.version
        )));
    }
    Ok(baseline)
}

/// Removes the errors `baseline` knows from `report` (up to each entry's count, in file order), recounts the
/// errors and records what matched and what is fixed in `report.baseline`.
pub fn apply(report: &mut Report, baseline: &Baseline, file: &str) {
    let mut left: BTreeMap<Key, usize> = BTreeMap::new();
    for e in &baseline.entries {
        *left.entry((e.file.clone(), e.kind.clone(), e.expression.clone())).or_default() += e.count;
    }
    let mut matched = 0;
    report.findings.retain(|f| {
        if f.severity != Severity::Error {
            return true;
        }
        match left.get_mut(&key_of(f)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                matched += 1;
                false
            }
            _ => true,
        }
    });
    let fixed = left
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((file, kind, expression), count)| Entry { file, kind, expression, count })
        .collect();
    report.summary.errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    report.baseline = Some(Applied { file: file.to_owned(), matched, fixed });
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
