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
        "): [ERROR_LOG] (PHP Warning:  require_once(",
        "PHP Fatal error:  Uncaught Error: Failed opening required",
        "» DIAGNOSIS: Probable root cause: ",
        "/www/inc/settings.conf does not exist (",
        "/www/inc/settings.conff?",
        "after the fix): webhook delivered: \"shop is back UP after",
        "after the fix): webhook delivered: \"shop-logs is back UP after",
        "4 webhook messages received, 4 distinct: each delivered exactly once",
        "» POSTMORTEM draft written: ",
        "requests failed with 5xx between ",
        "1 distinct client affected",
        "Demo complete.",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let firing = stdout.find("ALERT FIRING").unwrap();
    let resolved = stdout.find("RESOLVED").unwrap();
    assert!(firing < resolved);
}
