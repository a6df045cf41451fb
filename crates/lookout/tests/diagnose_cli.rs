//! `lookout diagnose --error-log`: on a real Apache + mod_php whose page requires a misspelled file, the
//! verdict names the file and what was meant; bad input gets clear errors and exit codes.

use std::process::Command;
use std::time::Duration;

use crate::support::apache::Apache;
use crate::support::lookout_bin;

fn diagnose(args: &[&str]) -> std::process::Output {
    Command::new(lookout_bin()).arg("diagnose").args(args).output().unwrap()
}

const INDEX: &str = "<?php require_once __DIR__ . '/inc/settings.phpp'; ?>\n<h1>Shop</h1>\n";

#[tokio::test(flavor = "multi_thread")]
async fn names_the_misspelled_require_on_a_real_apache() {
    let Some(apache) = Apache::start(&[("index.php", INDEX), ("inc/settings.php", "<?php $currency = 'EUR';\n")])
    else {
        return;
    };
    for _ in 0..5 {
        let r = lookout_probe::fetch(&lookout_probe::HttpRequest::get(
            apache.url("/").parse().unwrap(),
            Duration::from_secs(5),
        ))
        .await;
        assert_eq!(r.status, Some(500));
    }
    // Apache writes the error log line by line; give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = apache.error_log.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || diagnose(&["--error-log", &log])).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let missing = apache.docroot.join("inc/settings.phpp");
    let meant = apache.docroot.join("inc/settings.php");
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "Probable root cause: {} does not exist (required by {}:1; 10 error-log lines from ",
            missing.display(),
            apache.docroot.join("index.php").display()
        )),
        "{stdout}"
    );
    assert!(first.ends_with(&format!("; did you mean {}?", meant.display())), "{stdout}");
    assert_eq!(stdout.matches("\n[").count(), 1, "one finding: {stdout}");

    let log = apache.error_log.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || diagnose(&["--error-log", &log, "--json"])).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["cause"], "missing");
    assert_eq!(v["findings"][0]["path"], missing.to_str().unwrap());
    assert_eq!(v["findings"][0]["hint"]["suggestions"][0], meant.to_str().unwrap());
    assert_eq!(v["findings"][0]["occurrences"], 10);
    assert!(v["verdict"].as_str().unwrap().starts_with("Probable root cause: "));
}

#[test]
fn nothing_found_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(&log, "[Wed Nov 25 14:36:25.000001 2026] [mpm_prefork:notice] [pid 1] AH00163: Apache/2.4.67 (Debian) configured -- resuming normal operations\n\u{1b}[31mgarbage\n").unwrap();
    let out = diagnose(&["--error-log", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No probable cause in the error log"));

    let out = diagnose(&["--error-log", "/nonexistent/error.log"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read the error log /nonexistent/error.log")
    );
    let out = diagnose(&["--error-log", log.to_str().unwrap(), "--error-format", "iis"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use apache or nginx"));
}

#[test]
fn hostile_log_lines_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(
        &log,
        "[Wed Nov 25 14:36:22 2026] [php:warn] [pid 1] [client 1.2.3.4:5] PHP Warning:  require_once(/nonexistent-x/a.php): Failed to open stream: No such file or directory in /nonexistent-x/\u{1b}[2Jindex.php on line 1\n",
    )
    .unwrap();
    let out = diagnose(&["--error-log", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "verdict and evidence are escaped: {stdout:?}");
    assert!(stdout.lines().next().unwrap().contains("/nonexistent-x/\\u{1b}[2Jindex.php:1"), "{stdout}");
}
