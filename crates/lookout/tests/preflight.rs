//! `lookout preflight` as a deploy gate, run as the real executable against sites in temp dirs: the founding
//! incident (a `require` of a misnamed file), a case-only rename, a root-only include for www-data, optional
//! includes, `include` written where it is no include, and the JSON shape.

use std::path::Path;
use std::process::Command;

use crate::support::{lookout_bin, missing_package, site};

/// Runs `lookout preflight ARGS...`: (exit code, stdout, stderr).
fn preflight(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(lookout_bin()).arg("preflight").args(args).arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_founding_incident_fails_the_gate_with_file_line_and_did_you_mean() {
    let dir = site(&[
        ("index.php", "<?php\n/* the shop */\nrequire_once __DIR__ . '/inc/settings.phpp';\necho 'hello';\n"),
        ("inc/settings.php", "<?php $db = 'shop';\n"),
    ]);
    let real = dir.path().canonicalize().unwrap();
    let (code, out, err) = preflight(&[], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "index.php:3:1: error: require_once target {}/inc/settings.phpp does not exist; did you mean settings.php?\n",
            real.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("preflight: 2 files read, 1 include found, 1 resolved, 0 unresolved; 1 error, 0 infos"),
        "{out}"
    );
    // The fix passes the gate.
    std::fs::rename(real.join("inc/settings.php"), real.join("inc/settings.phpp")).unwrap();
    let (code, out, _) = preflight(&[], dir.path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_case_only_rename_is_an_error_that_says_so() {
    let dir = site(&[("index.php", "<?php require 'lib/Database.php';"), ("lib/database.php", "<?php")]);
    let (code, out, _) = preflight(&[], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("index.php:1:7: error: require target "), "{out}");
    assert!(out.contains("lib/database.php, which differs only by case"), "{out}");
}

#[test]
fn a_root_only_include_is_an_error_for_the_web_user() {
    if !nix::unistd::Uid::effective().is_root() {
        missing_package("root (to make a root-owned 0600 include) for preflight --web-user");
        return;
    }
    if lookout_diagnose::hints::user_reader("www-data").is_none() {
        missing_package("the user www-data");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = site(&[("index.php", "<?php require __DIR__ . '/config.php';"), ("config.php", "<?php $secret = 1;")]);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path().join("config.php"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // As root, without --web-user: fine.
    let (code, out, _) = preflight(&[], dir.path());
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = preflight(&["--web-user", "www-data"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("index.php:1:7: error: require target "), "{out}");
    assert!(out.contains("it has owner root, mode 0600, which does not let www-data (uid 33) read it"), "{out}");
    // An unknown user is a usage error.
    let (code, _, err) = preflight(&["--web-user", "no-such-user-lookout"], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn optional_includes_are_info_and_pass_the_gate() {
    let dir = site(&[(
        "index.php",
        "<?php\nif (is_file(__DIR__ . '/local.php')) {\n    include __DIR__ . '/local.php';\n}\n@include 'maybe.php';\ninclude $theme . '/header.php';\n",
    )]);
    let (code, out, _) = preflight(&[], dir.path());
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("index.php:3:5: info: include target ") && lines[0].ends_with("(guarded by is_file)"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("index.php:5:2: info: include target ") && lines[1].ends_with("(silenced with @)"),
        "{out}"
    );
    assert!(lines[2].contains("1 unresolved (--show-unresolved lists them); 0 errors, 2 infos"), "{out}");
    let (_, out, _) = preflight(&["--show-unresolved"], dir.path());
    assert!(out.contains("index.php:6:1: info: include target `$theme . '/header.php'` cannot be resolved"), "{out}");
}

#[test]
fn include_in_strings_comments_and_heredocs_is_no_include() {
    let dir = site(&[(
        "index.php",
        "<p>include 'html.php';</p>\n<?php\n// require 'comment.php';\n# include 'hash.php';\n/* require_once 'block.php'; */\n\
         $a = \"require 'double.php'\";\n$b = 'include \"single.php\"';\n$c = <<<EOT\ninclude 'heredoc.php';\nEOT;\n\
         $d = <<<'N'\nrequire 'nowdoc.php';\nN;\n$e = str_replace(\"<?php include('x.php') ?>\", '', $s);\n$o->include('method.php');\n",
    )]);
    let (code, out, _) = preflight(&[], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 file read, 0 includes found"), "{out}");
}

#[test]
fn json_has_findings_and_summary() {
    let dir = site(&[("index.php", "<?php\n  include_once 'missing\u{1b}[31m.php';\n")]);
    let (code, out, _) = preflight(&["--format", "json"], dir.path());
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["file"], "index.php");
    assert_eq!((f["line"].as_u64(), f["column"].as_u64()), (Some(2), Some(3)));
    assert_eq!((f["severity"].as_str(), f["kind"].as_str()), (Some("error"), Some("missing")));
    assert_eq!(f["statement"], "include_once");
    assert_eq!(f["expression"], "'missing\u{1b}[31m.php'");
    assert!(f["resolved"].as_str().unwrap().ends_with("/missing\u{1b}[31m.php"));
    assert!(f["suggestion"].is_null());
    for key in ["files", "includes", "resolved", "unresolved", "errors", "infos", "elapsed_ms"] {
        assert!(v["summary"][key].is_u64(), "{key}: {v}");
    }
    assert_eq!(v["summary"]["errors"], 1);
    // The text form escapes what came from the file.
    let (_, text, _) = preflight(&[], dir.path());
    assert!(text.contains("missing\\u{1b}[31m.php") && !text.contains('\u{1b}'), "{text}");
    // A PATH that does not exist is a usage error.
    let (code, _, err) = preflight(&[], &dir.path().join("nope"));
    assert_eq!(code, 2);
    assert!(err.contains("no such file or directory"), "{err}");
}
