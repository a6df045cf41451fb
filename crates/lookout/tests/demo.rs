//! `lookout demo` runs to completion on its own, as a new user would run it.

use crate::support::lookout_bin;

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_to_completion() {
    let out = tokio::task::spawn_blocking(|| {
        assert_cmd::Command::new(lookout_bin())
            .arg("demo")
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "Step 1: Starting the web shop as its own process",
        "Step 3: Deploying the mistake: renaming inc/settings.conf to inc/settings.conff",
        "✗ shop: [STATUS] (500) == 200",
        "» ALERT FIRING for shop (from the probe, ",
        "» webhook delivered to the receiver: \"shop is DOWN: [STATUS] (500) == 200\"",
        "» ALERT FIRING for shop-logs (from the shop's own logs, ",
        // The reason quotes the message that matched, not the PHP Warning logged before it.
        "): [ERROR_LOG] (PHP Fatal error:  Uncaught Error: Failed opening required '/…) matches \"PHP (Fatal|Parse) error\"",
        "PHP Fatal error:  Uncaught Error: Failed opening required",
        "» DIAGNOSIS: Probable root cause: ",
        "/www/inc/settings.conf does not exist (",
        "/www/inc/settings.conff?",
        "after the fix): webhook delivered: \"shop is back UP after",
        "after the fix): webhook delivered: \"shop-logs is back UP after",
        "4 webhook messages received, 4 distinct: each delivered exactly once",
        "-shop-1 opened",
        "-shop-1 resolved",
        "/www/inc/settings.conf exists now: the missing file was restored",
        "» POSTMORTEM of incident ",
        " requests failed, 1 distinct client affected; Probable root cause: ",
        "Demo complete.",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let firing = stdout.find("ALERT FIRING").unwrap();
    let resolved = stdout.find("RESOLVED").unwrap();
    assert!(firing < resolved);
    // The draft is where the demo says, in the founding document's structure.
    let line = stdout.lines().find(|l| l.contains("» POSTMORTEM of incident ")).unwrap();
    let path = line.rsplit(" written to ").next().unwrap();
    let draft = std::fs::read_to_string(path).unwrap();
    for heading in ["## Summary", "## Timeline (UTC)", "## Root cause analysis", "## Impact assessment"] {
        assert!(draft.contains(heading), "{heading} missing in {path}");
    }
    assert!(draft.contains("Users affected: approximately 1 — distinct client addresses"), "{draft}");
    std::fs::remove_file(path).unwrap();
}
