use super::*;
use crate::extract::Keyword;
use crate::{Finding, FindingKind, Summary};

fn finding(file: &str, line: u32, severity: Severity, kind: FindingKind, expression: &str) -> Finding {
    Finding {
        file: file.to_owned(),
        line,
        column: 1,
        severity,
        kind,
        statement: Keyword::Require,
        expression: expression.to_owned(),
        resolved: None,
        suggestion: None,
        message: format!("{expression} is broken"),
    }
}

fn report(findings: Vec<Finding>) -> Report {
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    Report { findings, summary: Summary { errors, ..Summary::default() }, ..Report::default() }
}

fn legacy() -> Report {
    report(vec![
        finding("index.php", 3, Severity::Error, FindingKind::Missing, "'a.php'"),
        finding("index.php", 9, Severity::Error, FindingKind::Missing, "'a.php'"),
        finding("lib/x.php", 2, Severity::Error, FindingKind::CaseOnly, "'Lib.php'"),
        finding("lib/x.php", 4, Severity::Info, FindingKind::Missing, "'local.php'"),
    ])
}

#[test]
fn a_baseline_counts_errors_per_file_kind_and_expression_without_lines() {
    let b = of(&legacy());
    assert_eq!(b.format, "lookout-preflight-baseline");
    let entries: Vec<(&str, &str, &str, usize)> =
        b.entries.iter().map(|e| (e.file.as_str(), e.kind.as_str(), e.expression.as_str(), e.count)).collect();
    assert_eq!(entries, [("index.php", "missing", "'a.php'", 2), ("lib/x.php", "case-only", "'Lib.php'", 1)]);
}

#[test]
fn known_errors_pass_even_when_moved_and_only_new_ones_remain() {
    let b = of(&legacy());
    // Lines moved (an edit above), one new broken include, one new copy of a known one.
    let mut today = report(vec![
        finding("index.php", 13, Severity::Error, FindingKind::Missing, "'a.php'"),
        finding("index.php", 19, Severity::Error, FindingKind::Missing, "'a.php'"),
        finding("index.php", 25, Severity::Error, FindingKind::Missing, "'a.php'"),
        finding("index.php", 30, Severity::Error, FindingKind::Missing, "'new.php'"),
        finding("lib/x.php", 2, Severity::Error, FindingKind::CaseOnly, "'Lib.php'"),
        finding("lib/x.php", 4, Severity::Info, FindingKind::Missing, "'local.php'"),
    ]);
    apply(&mut today, &b, "preflight-baseline.json");
    let left: Vec<(u32, &str)> = today.findings.iter().map(|f| (f.line, f.expression.as_str())).collect();
    assert_eq!(left, [(25, "'a.php'"), (30, "'new.php'"), (4, "'local.php'")]);
    assert_eq!(today.summary.errors, 2);
    let applied = today.baseline.as_ref().unwrap();
    assert_eq!(applied.matched, 3);
    assert!(applied.fixed.is_empty());
}

#[test]
fn fixed_entries_are_listed_and_nothing_fails() {
    let b = of(&legacy());
    let mut today = report(vec![finding("index.php", 3, Severity::Error, FindingKind::Missing, "'a.php'")]);
    apply(&mut today, &b, "b.json");
    assert!(today.findings.is_empty());
    assert_eq!(today.summary.errors, 0);
    let applied = today.baseline.unwrap();
    assert_eq!(applied.matched, 1);
    let fixed: Vec<(&str, &str, usize)> =
        applied.fixed.iter().map(|e| (e.file.as_str(), e.expression.as_str(), e.count)).collect();
    assert_eq!(fixed, [("index.php", "'a.php'", 1), ("lib/x.php", "'Lib.php'", 1)]);
}

#[test]
fn the_kind_is_part_of_the_key() {
    // The same expression, now a case-only mismatch instead of a missing file, is a new error.
    let b = of(&report(vec![finding("i.php", 1, Severity::Error, FindingKind::Missing, "'a.php'")]));
    let mut today = report(vec![finding("i.php", 1, Severity::Error, FindingKind::CaseOnly, "'a.php'")]);
    apply(&mut today, &b, "b.json");
    assert_eq!(today.summary.errors, 1);
    assert_eq!(today.baseline.unwrap().fixed.len(), 1);
}

#[test]
fn write_then_load_round_trips_and_bad_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.json");
    let b = of(&legacy());
    write(&b, &path).unwrap();
    assert_eq!(load(&path).unwrap(), b);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"line\""), "{text}");

    let missing = dir.path().join("nope.json");
    let e = load(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&format!("--baseline {}: ", missing.display())), "{e}");

    for bad in [
        "{",
        "[]",
        r#"{"format":"other","version":1,"entries":[]}"#,
        r#"{"format":"lookout-preflight-baseline","version":2,"entries":[]}"#,
        r#"{"format":"lookout-preflight-baseline","version":1,"entries":[{"file":"a","kind":"missing","expression":"x","count":1,"line":3}]}"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--baseline {}: not a preflight baseline", path.display())), "{bad}: {e}");
    }
}
