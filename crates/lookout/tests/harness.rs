//! The test harness itself: a test that finds a real component missing is skipped where everyone sees it.

/// Run as itself with `LOOKOUT_HARNESS_SKIP=1`, this test plays a test whose package is missing; run plainly,
/// it runs the test binary on that one test twice and reads what a person would see.
#[test]
fn a_skipped_test_is_listed_after_the_summary_and_fails_under_require_all() {
    if std::env::var("LOOKOUT_HARNESS_SKIP").is_ok_and(|v| v == "1") {
        crate::support::missing_package("frobnicator is not installed (apt-get install frobnicator)");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let name = "harness::a_skipped_test_is_listed_after_the_summary_and_fails_under_require_all";
    let run = |require_all: &str| {
        let out = std::process::Command::new(&me)
            .args(["--exact", name, "--test-threads", "1"])
            .env("LOOKOUT_HARNESS_SKIP", "1")
            .env("LOOKOUT_REQUIRE_ALL", require_all)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };

    let (ok, text) = run("0");
    assert!(ok, "a skip alone passes the run:\n{text}");
    let missing = "frobnicator is not installed (apt-get install frobnicator)";
    assert!(text.contains(&format!("SKIPPED {name}: {missing}")), "the skip is printed past the capture:\n{text}");
    let summary = text.find("test result: ok. 1 passed").expect("libtest's summary");
    let list = text.find("SKIPPED: 1 test (a real component is missing").expect("the closing list");
    assert!(list > summary, "the list comes after libtest's summary:\n{text}");
    assert!(text[list..].contains(&format!("  {name}: {missing}")), "{text}");

    let (ok, text) = run("1");
    assert!(!ok, "under LOOKOUT_REQUIRE_ALL=1 a skip fails:\n{text}");
    assert!(text.contains(&format!("SKIPPED but LOOKOUT_REQUIRE_ALL=1: {missing}")), "{text}");
}
