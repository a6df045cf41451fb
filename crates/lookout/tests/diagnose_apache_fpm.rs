//! `lookout diagnose` on a real Apache (mpm_event + mod_proxy_fcgi) in front of PHP-FPM — the stack Debian's
//! `a2enconf php8.2-fpm` sets up — diagnosed as well as nginx + FPM (issue 15, items 5 and 7): tracing the FPM
//! workers names a missing required file and an unreadable one, a healthy site gives "no failing requests",
//! Apache's `AH01071: Got error 'PHP message: …'` lines name the file without tracing, and a lookout killed
//! mid-trace leaves every worker serving.

use std::process::Output;
use std::time::Duration;

use crate::support::apache_fpm::ApacheFpm;
use crate::support::tracing::{
    MISNAMED_REQUIRE, assert_eacces_verdict, assert_untraced, diagnose, get, root_only, routine_listed, shown,
    sigkill_mid_trace, tracing_allowed,
};

/// `lookout diagnose --process php-fpm8.2 --url URL --duration 3s`, as a user would run it.
async fn diagnose_fpm(url: String) -> Output {
    crate::support::tracing::diagnose_process(ApacheFpm::COMM, url).await
}

/// No FPM process is left traced or stopped.
fn untraced(site: &ApacheFpm, when: &str) {
    assert_untraced(site.workers(), site.master(), when);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_missing_required_file_by_tracing_and_from_apaches_error_log() {
    if !tracing_allowed() {
        return;
    }
    let Some(site) = ApacheFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    assert_eq!(get(&site.url("/")).await.0, Some(500), "the broken page answers 500 through Apache");
    let missing = site.docroot.join("inc/settings.phpp");
    let meant = site.docroot.join("inc/settings.php");

    // Tracing FPM's workers: Apache's requests arrive as FastCGI records, as nginx's do.
    let out = diagnose_fpm(site.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown("--process php-fpm8.2", &out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
        "{stdout}"
    );
    assert!(first.contains(&format!("by {} pid ", ApacheFpm::COMM)), "{stdout}");
    assert!(first.contains("in 5 of 5 failing requests, 0 of 0 successful"), "{stdout}");
    assert!(first.ends_with(&format!("; did you mean {}?", meant.display())), "{stdout}");
    untraced(&site, "after the trace");

    // Apache's own error log, format not given: proxy_fcgi's `AH01071: Got error 'PHP message: …'` lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = site.error_log.to_str().unwrap().to_string();
    let text = std::fs::read_to_string(&site.error_log).unwrap();
    assert!(text.contains("AH01071: Got error 'PHP message: "), "Apache logged the PHP message: {text}");
    let access = std::fs::read_to_string(&site.access_log).unwrap();
    assert_eq!(access.matches("\"GET / HTTP/1.1\" 500 ").count(), 6, "Apache answered 500 each time: {access}");
    let out = diagnose(vec!["--error-log".into(), log.clone()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown("--error-log", &out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "Probable root cause: {} does not exist (required by {}:1; ",
            missing.display(),
            site.docroot.join("index.php").display()
        )),
        "{stdout}"
    );
    assert!(first.ends_with(&format!("; did you mean {}?", meant.display())), "{stdout}");
    assert_eq!(stdout.matches("\n[").count(), 1, "one finding: {stdout}");
    assert!(stdout.contains(&format!("{log} (apache format, ")), "the format was recognised: {stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_unreadable_required_file_with_eacces() {
    if !tracing_allowed() {
        return;
    }
    let Some(site) = ApacheFpm::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\n<h1>Shop</h1>\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = site.docroot.join("inc/settings.php");
    root_only(&secret);
    assert_eq!(get(&site.url("/")).await.0, Some(500), "root-owned 0600: the www-data worker cannot read it");
    let out = diagnose_fpm(site.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown("--process php-fpm8.2", &out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = assert_eacces_verdict(&stdout, &secret);
    assert!(first.contains("in 5 of 5 failing requests"), "{stdout}");
    untraced(&site, "after the trace");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_site_has_no_failing_requests_and_every_request_is_seen() {
    if !tracing_allowed() {
        return;
    }
    let Some(site) = ApacheFpm::start(&[("index.php", "<?php echo 'shop';\n")]) else { return };
    assert_eq!(get(&site.url("/")).await, (Some(200), "shop".to_string()));
    let out = diagnose_fpm(site.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown("--process php-fpm8.2", &out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Every one of the 5 requests Apache passed on was seen as a FastCGI request answered 200.
    assert!(stdout.starts_with("No failing requests were seen while tracing (5 successful)"), "{stdout}");
    untraced(&site, "after the trace");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_worker_keeps_serving_untraced_after_sigkill_of_lookout_mid_trace() {
    if !tracing_allowed() {
        return;
    }
    let Some(site) = ApacheFpm::start(&[("index.php", "<?php echo 'alive';\n")]) else { return };
    let args = ["--process".to_string(), ApacheFpm::COMM.to_string()];
    sigkill_mid_trace(&args, &site.url("/"), || site.workers(), site.master(), false).await;
}

/// The whole site down (no successful request to compare with), Apache negotiating `DirectoryIndex index.html
/// index.php` with no index.html in the docroot: the missing require is the verdict, and neither FPM's
/// `.user.ini` lookups nor Apache's index.html miss are listed as "also failing" — FPM traced alone, and FPM and
/// Apache together.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outage_lists_no_routine_lookup() {
    if !tracing_allowed() {
        return;
    }
    let Some(site) = ApacheFpm::start_with_index(MISNAMED_REQUIRE, "index.html index.php") else {
        return;
    };
    assert!(!site.docroot.join("index.html").exists());
    assert_eq!(get(&site.url("/")).await.0, Some(500), "every request to / fails");
    let missing = site.docroot.join("inc/settings.phpp");
    let apache = site.apache_master().expect("Apache's pid file").to_string();
    for args in [vec!["--process", ApacheFpm::COMM], vec!["--process", ApacheFpm::COMM, "--pid", &apache]] {
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend(["--url", &site.url("/"), "--duration", "3s"].map(String::from));
        let out = diagnose(args.clone()).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = shown(&args.join(" "), &out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        let first = stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
            "{args:?}: {stdout}"
        );
        assert!(first.contains(", 0 of 0 successful)"), "{args:?}: a full outage: {stdout}");
        assert_eq!(routine_listed(&stdout), Vec::<&str>::new(), "{args:?}: {stdout}");
    }
    untraced(&site, "after the traces");
}
