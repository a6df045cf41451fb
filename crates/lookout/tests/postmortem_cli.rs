//! `lookout postmortem --from-logs`: a draft in the founding document's structure, with measured numbers, from
//! logs of an outage lookout did not watch; hostile log content cannot break the Markdown.

use std::process::Command;

use crate::logs_cli::generate;
use crate::support::lookout_bin;

#[test]
fn retrospective_postmortem_from_logs() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    generate(&access);
    let error = dir.path().join("error.log");
    let mut lines = String::new();
    for s in 0..3 {
        lines.push_str(&format!("[Wed Nov 25 13:40:0{s}.000000 2026] [php:warn] [pid 4242:tid 4242] [client 10.0.1.2:5000] PHP Warning:  require_once(/nonexistent-lookout-pm/www/inc/settings.phpp): Failed to open stream: No such file or directory in /nonexistent-lookout-pm/www/index.php on line 3\n"));
        lines.push_str(&format!("[Wed Nov 25 13:40:0{s}.000100 2026] [php:error] [pid 4242:tid 4242] [client 10.0.1.2:5000] PHP Fatal error:  Uncaught Error: Failed opening required '/nonexistent-lookout-pm/www/inc/settings.phpp' (include_path='.:/usr/share/php') in /nonexistent-lookout-pm/www/index.php:3 `rm -rf` | <b>x</b>\n"));
    }
    std::fs::write(&error, lines).unwrap();
    let out_file = dir.path().join("postmortem.md");
    let out = Command::new(lookout_bin())
        .args(["postmortem", "--from-logs"])
        .arg(&access)
        .arg("--error-log")
        .arg(&error)
        .arg("-o")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "100 of 100 requests failed with 5xx between 2026-11-25T13:40:00Z and 2026-11-25T13:42:00Z (2m); 100 distinct clients affected"
    );
    let md = std::fs::read_to_string(&out_file).unwrap();
    for heading in [
        "## Summary",
        "## Timeline (UTC)",
        "## Root cause analysis",
        "## Impact assessment",
        "## Response and resolution",
        "## Lessons learned",
        "## Preventive measures",
    ] {
        assert!(md.contains(heading), "missing {heading}");
    }
    assert!(!md.contains("<b>") && !md.contains("<script>") && !md.contains("<img>"), "no HTML from the logs:\n{md}");
    assert!(
        md.contains("\\`rm -rf\\` \\| &lt;b&gt;x&lt;/b&gt;"),
        "backticks and pipes from the log are escaped:\n{md}"
    );
    insta::assert_snapshot!(md);

    let out = Command::new(lookout_bin())
        .args(["postmortem", "--from-logs"])
        .arg(&access)
        .args(["--window", "2026-11-25T12:00..2026-11-25T13:00"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no error window"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
