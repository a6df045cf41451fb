//! Findings for CI: SARIF 2.1.0 for GitHub code scanning (and any SARIF viewer), and GitHub Actions workflow
//! commands (`::error file=…,line=…::…`) that annotate the pull request's diff without an upload step.

use serde_json::{Value, json};
use std::fmt::Write as _;

use lookout_core::text::printable;

use crate::{FindingKind, Report, Severity};

/// Every kind of finding, in the order of the SARIF rules (a rule's index is stable across runs).
pub const KINDS: [FindingKind; 7] = [
    FindingKind::Missing,
    FindingKind::CaseOnly,
    FindingKind::Dangling,
    FindingKind::Unreadable,
    FindingKind::Unresolved,
    FindingKind::ConstantDefinition,
    FindingKind::ComposerAutoload,
];

/// The kind's name as JSON spells it; the SARIF rule id and the `title` of a GitHub annotation.
pub fn rule_id(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Missing => "missing",
        FindingKind::CaseOnly => "case-only",
        FindingKind::Dangling => "dangling",
        FindingKind::Unreadable => "unreadable",
        FindingKind::Unresolved => "unresolved",
        FindingKind::ConstantDefinition => "constant-definition",
        FindingKind::ComposerAutoload => "composer-autoload",
    }
}

/// What a rule checks, in one sentence (SARIF `shortDescription`).
fn rule_says(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Missing => "An include or require target does not exist",
        FindingKind::CaseOnly => "An include target exists only under a name that differs by case (fails on Linux)",
        FindingKind::Dangling => "An include target is a symlink to nothing",
        FindingKind::Unreadable => "The web server's user cannot read an include target or enter its directory",
        FindingKind::Unresolved => "An include's path is known only at run time",
        FindingKind::ConstantDefinition => "One definition of a constant makes an include point to a missing file",
        FindingKind::ComposerAutoload => "A file or directory in Composer's generated autoload maps does not exist",
    }
}

/// The SARIF 2.1.0 log of `report`: one run, one rule per kind, one result per finding. `root_uri` is the PATH's
/// absolute `file://` URI (ending in `/`), given as `%SRCROOT%` so the relative result URIs can be resolved;
/// code scanning resolves them against the repository instead, so PATH should be the checkout's root there.
pub fn sarif(report: &Report, version: &str, root_uri: Option<&str>) -> Value {
    let rules: Vec<Value> = KINDS
        .iter()
        .map(|&k| {
            json!({
                "id": rule_id(k),
                "name": rule_id(k),
                "shortDescription": {"text": rule_says(k)},
                "defaultConfiguration": {"level": if k == FindingKind::Unresolved { "note" } else { "error" }},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = KINDS.iter().position(|&k| k == f.kind).unwrap_or(0);
            json!({
                "ruleId": rule_id(f.kind),
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri_of(&f.file), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)},
                    }
                }],
            })
        })
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": "lookout preflight",
            "version": version,
            "rules": rules,
        }},
        // Columns count characters (the tokenizer's), not SARIF's default UTF-16 code units.
        "columnKind": "unicodeCodePoints",
        "results": results,
    });
    if let (Some(root), Some(obj)) = (root_uri, run.as_object_mut()) {
        obj.insert("originalUriBaseIds".to_owned(), json!({"%SRCROOT%": {"uri": root}}));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    })
}

/// SARIF's level for a severity (`note` is what SARIF calls information).
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Info => "note",
    }
}

/// A relative path as a URI reference: forward slashes, everything but unreserved characters and `/`
/// percent-encoded (a file named `a b#c.php` must stay one path, not a path and a fragment).
pub fn uri_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.replace('\\', "/").as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GitHub Actions workflow commands, one line per finding: `::error file=F,line=N,col=M,title=KIND::MESSAGE`
/// (`::notice` for info). `prefix` is put before each file (the PATH as given, so the annotation lands on the
/// repository's file when PATH is a subdirectory); empty for none.
pub fn github(report: &Report, prefix: &str) -> String {
    let mut s = String::new();
    for f in &report.findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Info => "notice",
        };
        let file =
            if prefix.is_empty() { f.file.clone() } else { format!("{}/{}", prefix.trim_end_matches('/'), f.file) };
        s.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            escape_property(&file),
            f.line,
            f.column,
            escape_property(rule_id(f.kind)),
            escape_data(&f.message)
        ));
    }
    s
}

/// A workflow command's message: `%`, CR and LF escaped (GitHub's `escapeData`), so a hostile file name cannot
/// end the command early or start another.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value: as a message, and `:` and `,` too (GitHub's `escapeProperty`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The text report: `file:line:column: severity: message` lines, then the summary.
pub fn text(report: &Report) -> String {
    let mut s = String::with_capacity(report.findings.iter().map(|f| f.file.len() + f.message.len() + 24).sum());
    for f in &report.findings {
        let _ = writeln!(
            s,
            "{}:{}:{}: {}: {}",
            printable(&f.file),
            f.line,
            f.column,
            f.severity.as_str(),
            printable(&f.message)
        );
    }
    let m = &report.summary;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let unreadable =
        if m.files_unreadable > 0 { format!(" ({} could not be read)", m.files_unreadable) } else { String::new() };
    s.push_str(&format!(
        "preflight: {} read{unreadable}, {} found, {} resolved, {} unresolved{}; {}, {} ({:.2} s)\n",
        plural(m.files, "file", "files"),
        plural(m.includes, "include", "includes"),
        m.resolved,
        m.unresolved,
        if m.unresolved > 0
            && !report.findings.iter().any(|f| f.severity == Severity::Info && f.kind == FindingKind::Unresolved)
        {
            " (--show-unresolved lists them)"
        } else {
            ""
        },
        plural(m.errors, "error", "errors"),
        plural(m.infos, "info", "infos"),
        m.elapsed_ms as f64 / 1000.0
    ));
    s.push_str(&baseline_text(report));
    s
}

/// What `--baseline` did, as lines after the findings: how many it matched, and each entry that no longer
/// occurs (as info: the baseline should shrink).
pub fn baseline_text(report: &Report) -> String {
    let Some(b) = &report.baseline else { return String::new() };
    let mut s = String::new();
    for e in &b.fixed {
        s.push_str(&format!(
            "{}: info: baseline entry fixed, remove it from the baseline: {} `{}` ({} fewer than recorded)\n",
            printable(&e.file),
            e.kind,
            printable(&e.expression),
            e.count
        ));
    }
    s.push_str(&format!(
        "preflight: baseline {}: {} known error{} matched, {} entr{} fixed\n",
        printable(&b.file),
        b.matched,
        if b.matched == 1 { "" } else { "s" },
        b.fixed.len(),
        if b.fixed.len() == 1 { "y" } else { "ies" }
    ));
    s
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
