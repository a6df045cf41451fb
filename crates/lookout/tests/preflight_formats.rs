//! `lookout preflight` for CI, run as the real executable: the founding incident's site as SARIF (what code
//! scanning reads) and as GitHub Actions annotations, and a legacy site adopting the gate with a baseline.

use std::path::Path;
use std::process::Command;

use crate::support::{lookout_bin, site};

/// Runs `lookout preflight ARGS... DIR` in `cwd`: (exit code, stdout, stderr).
fn preflight(args: &[&str], dir: &Path, cwd: &Path) -> (i32, String, String) {
    let out = Command::new(lookout_bin()).current_dir(cwd).arg("preflight").args(args).arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The founding incident: `index.php` requires `inc/settings.phpp`; the file is `inc/settings.php`.
fn founding_site() -> tempfile::TempDir {
    site(&[
        ("index.php", "<?php\n/* the shop */\nrequire_once __DIR__ . '/inc/settings.phpp';\necho 'hello';\n"),
        ("inc/settings.php", "<?php $db = 'shop';\n"),
    ])
}

#[test]
fn the_founding_incident_as_sarif_names_rule_file_and_line() {
    let dir = founding_site();
    let real = dir.path().canonicalize().unwrap();
    let (code, out, err) = preflight(&["--format", "sarif"], dir.path(), dir.path());
    assert_eq!(code, 1, "{out}{err}");
    let log: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["$schema"], "https://json.schemastore.org/sarif-2.1.0.json");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "lookout preflight");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules: Vec<&str> =
        run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(rules.contains(&"missing") && rules.contains(&"case-only"), "{rules:?}");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{out}");
    let r = &results[0];
    assert_eq!(r["ruleId"], "missing");
    assert_eq!(r["level"], "error");
    assert!(r["message"]["text"].as_str().unwrap().ends_with("does not exist; did you mean settings.php?"), "{r}");
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "index.php");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 3);
    assert_eq!(loc["region"]["startColumn"], 1);
    assert_eq!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"], format!("file://{}/", real.display()));
}

#[test]
fn the_founding_incident_as_github_annotations() {
    let dir = founding_site();
    let real = dir.path().canonicalize().unwrap();
    // Run from the "checkout" (the temp dir's parent) on the site's directory: the annotation names the file
    // from the checkout, so it lands on the right file of the pull request.
    let parent = real.parent().unwrap();
    let name = real.file_name().unwrap().to_str().unwrap();
    let (code, out, err) = preflight(&["--format", "github"], Path::new(name), parent);
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "::error file={name}/index.php,line=3,col=1,title=missing::require_once target {}/inc/settings.phpp does not exist; did you mean settings.php?",
            real.display()
        )]
    );
    // Run inside it: plain relative names.
    let (_, out, _) = preflight(&["--format", "github"], Path::new("."), &real);
    assert!(out.starts_with("::error file=index.php,line=3,col=1,title=missing::"), "{out}");
}

#[test]
fn a_baseline_lets_a_legacy_site_adopt_the_gate_and_fails_only_new_errors() {
    let dir = site(&[
        ("index.php", "<?php\nrequire_once __DIR__ . '/inc/settings.phpp';\necho 'hello';\n"),
        ("inc/settings.php", "<?php $db = 'shop';\n"),
        ("lib/util.php", "<?php\n"),
    ]);
    let work = tempfile::tempdir().unwrap();
    let baseline = work.path().join("preflight-baseline.json");
    let b = baseline.to_str().unwrap();

    // Today's errors recorded: exit 0 even though there is one.
    let (code, out, err) = preflight(&["--write-baseline", b], dir.path(), work.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote 1 error (1 entry) to the baseline"), "{out}");
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(written["entries"][0]["file"], "index.php");
    assert_eq!(written["entries"][0]["kind"], "missing");
    assert_eq!(written["entries"][0]["expression"], "__DIR__ . '/inc/settings.phpp'");
    assert_eq!(written["entries"][0]["count"], 1);

    // With the baseline the gate passes.
    let (code, out, err) = preflight(&["--baseline", b], dir.path(), work.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 errors"), "{out}");
    assert!(out.contains("1 known error matched, 0 entries fixed"), "{out}");

    // Lines move above the known error and a new broken require is added: only the new one fails.
    std::fs::write(
        dir.path().join("index.php"),
        "<?php\n// header\n// more\nrequire_once __DIR__ . '/inc/settings.phpp';\nrequire __DIR__ . '/lib/utils.php';\n",
    )
    .unwrap();
    let (code, out, err) = preflight(&["--baseline", b], dir.path(), work.path());
    assert_eq!(code, 1, "{out}{err}");
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].starts_with("index.php:5:1: error: require target "), "{out}");
    assert!(errors[0].ends_with("/lib/utils.php does not exist; did you mean util.php?"), "{out}");
    assert!(!out.contains("settings.phpp does not exist"), "{out}");

    // The same in GitHub format: one annotation, the new one.
    let (code, out, _) = preflight(&["--baseline", b, "--format", "github"], dir.path(), work.path());
    assert_eq!(code, 1);
    assert_eq!(out.lines().filter(|l| l.starts_with("::error ")).count(), 1, "{out}");

    // The old one fixed (and the new one): the summary says the baseline entry can go.
    std::fs::write(
        dir.path().join("index.php"),
        "<?php\nrequire_once __DIR__ . '/inc/settings.php';\nrequire __DIR__ . '/lib/util.php';\n",
    )
    .unwrap();
    let (code, out, err) = preflight(&["--baseline", b], dir.path(), work.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "index.php: info: baseline entry fixed, remove it from the baseline: missing `__DIR__ . '/inc/settings.phpp'`"
        ),
        "{out}"
    );
    assert!(out.contains("0 known errors matched, 1 entry fixed"), "{out}");
}

#[test]
fn a_missing_or_malformed_baseline_is_a_usage_error_naming_the_file() {
    let dir = founding_site();
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nope.json");
    let (code, out, err) = preflight(&["--baseline", missing.to_str().unwrap()], dir.path(), work.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("--baseline {}", missing.display())), "{err}");

    let bad = work.path().join("bad.json");
    std::fs::write(&bad, "{\"findings\": []}").unwrap();
    let (code, out, err) = preflight(&["--baseline", bad.to_str().unwrap()], dir.path(), work.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("--baseline {}: not a preflight baseline", bad.display())), "{err}");
}
