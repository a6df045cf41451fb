//! `lookout diagnose --process php-fpm8.2` on a real nginx + PHP-FPM: the workers speak FastCGI, not HTTP, and
//! their requests are still told apart and judged — a missing required file and an unreadable one are named, a
//! healthy site gives "no failing requests", and a lookout killed mid-trace leaves every worker serving.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::lookout_bin;
use crate::support::php_fpm::PhpFpm;
use crate::support::tracing::{
    MISNAMED_REQUIRE, assert_untraced, diagnose_process as diagnose_fpm, get, routine_listed, tracing_allowed,
};

/// What lookout printed (shown in the test's output).
fn shown(out: &Output) -> String {
    crate::support::tracing::shown("(nginx + PHP-FPM)", out)
}

/// No FPM process is left traced or stopped.
fn untraced(fpm: &PhpFpm, when: &str) {
    assert_untraced(fpm.workers(), fpm.master(), when);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_missing_required_file_from_fastcgi_requests() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "the broken page answers 500 through nginx");
    let out = diagnose_fpm(PhpFpm::COMM, fpm.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let missing = fpm.docroot.join("inc/settings.phpp");
    let meant = fpm.docroot.join("inc/settings.php");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
        "{stdout}"
    );
    assert!(first.contains(&format!("by {} pid ", PhpFpm::COMM)), "{stdout}");
    assert!(first.contains("in 5 of 5 failing requests, 0 of 0 successful"), "{stdout}");
    assert!(first.ends_with(&format!("; did you mean {}?", meant.display())), "{stdout}");
    untraced(&fpm, "after the trace");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_unreadable_required_file_with_eacces() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\n<h1>Shop</h1>\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = fpm.docroot.join("inc/settings.php");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "root-owned 0600: the www-data worker cannot read it");
    let out = diagnose_fpm(PhpFpm::COMM, fpm.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "Probable root cause: {} cannot be opened by the server (permission denied) (EACCES in ",
            secret.display()
        )),
        "{stdout}"
    );
    assert!(first.contains("in 5 of 5 failing requests"), "{stdout}");
    assert!(first.ends_with(&format!("lacks read (r) on {} (owner 0:0, mode 600)", secret.display())), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_site_has_no_failing_requests_and_every_request_is_seen() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[("index.php", "<?php echo 'shop';\n")]) else { return };
    assert_eq!(get(&fpm.url("/")).await, (Some(200), "shop".to_string()));
    // By every name FPM goes by: its command, the unversioned name, its pool's process title.
    for name in [PhpFpm::COMM, "php-fpm", "php-fpm: pool www"] {
        let out = diagnose_fpm(name, fpm.url("/")).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = shown(&out);
        assert_eq!(out.status.code(), Some(1), "--process {name:?}: {all}");
        // Every one of the 5 requests was seen as a FastCGI request answered 200 (before, FPM's were never seen).
        assert!(
            stdout.starts_with("No failing requests were seen while tracing (5 successful)"),
            "--process {name:?}: {stdout}"
        );
    }
    untraced(&fpm, "after the traces");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_worker_keeps_serving_untraced_after_sigkill_of_lookout_mid_trace() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[("index.php", "<?php echo 'alive';\n")]) else { return };
    let workers = fpm.workers();
    // `--pid` of the master traces it and its workers.
    let mut child = Command::new(lookout_bin())
        .args(["diagnose", "--pid", &fpm.master().to_string(), "--duration", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let traced = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("TracerPid:") && l != "TracerPid:\t0"))
    };
    let mut attached = false;
    for _ in 0..100 {
        if fpm.workers().iter().all(|p| traced(*p)) && traced(fpm.master()) {
            attached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Traffic through the traced workers (3 workers, so each is likely mid-syscall at the kill).
    for _ in 0..6 {
        assert_eq!(get(&fpm.url("/")).await, (Some(200), "alive".to_string()));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(attached, "lookout attached to the master and every worker");
    tokio::time::sleep(Duration::from_millis(200)).await;
    untraced(&fpm, "after SIGKILL");
    for _ in 0..9 {
        assert_eq!(get(&fpm.url("/")).await, (Some(200), "alive".to_string()), "every worker keeps serving");
    }
    untraced(&fpm, "after serving");
    assert_eq!(fpm.workers(), workers, "the same workers: none died and was replaced");
}

/// The whole site down (no successful request to compare with), nginx negotiating `index index.html index.php`
/// with no index.html in the docroot: the missing require is the verdict, and neither FPM's `.user.ini` lookups
/// nor nginx's index.html miss are listed as "also failing" — with nginx traced as well as FPM.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outage_on_nginx_and_fpm_lists_no_routine_lookup() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start_with_index(MISNAMED_REQUIRE, "index.html index.php") else {
        return;
    };
    assert!(!fpm.docroot.join("index.html").exists());
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "every request to / fails");
    let missing = fpm.docroot.join("inc/settings.phpp");
    let nginx = fpm.nginx_master().expect("nginx's pid file").to_string();
    for args in [
        // nginx's own index.html miss (then index.php found) is seen too when nginx is traced. First: a second
        // trace of the same nginx worker has been seen to miss its path syscalls.
        vec!["--process", PhpFpm::COMM, "--pid", &nginx],
        vec!["--process", PhpFpm::COMM],
    ] {
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend(["--url", &fpm.url("/"), "--duration", "3s"].map(String::from));
        let out = crate::support::tracing::diagnose(args.clone()).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = shown(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        let first = stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
            "{args:?}: {stdout}"
        );
        assert!(first.contains(", 0 of 0 successful)"), "{args:?}: a full outage: {stdout}");
        assert_eq!(routine_listed(&stdout), Vec::<&str>::new(), "{args:?}: {stdout}");
    }
    untraced(&fpm, "after the traces");
}

/// The same on Apache + mod_php (`DirectoryIndex index.html index.php`, no index.html) with a root-owned 0600
/// include: the verdict is the permission denial and index.html is not "also failing".
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outage_on_apache_mod_php_does_not_list_directory_index_negotiation() {
    if !tracing_allowed() {
        return;
    }
    let Some(apache) = crate::support::apache::Apache::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\nshop\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = apache.docroot.join("inc/settings.php");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(!apache.docroot.join("index.html").exists());
    let args = ["--pid", &apache.pid().to_string(), "--url", &apache.url("/"), "--duration", "3s"].map(String::from);
    let out = crate::support::tracing::diagnose(args.to_vec()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "Probable root cause: {} cannot be opened by the server (permission denied) (EACCES in ",
            secret.display()
        )),
        "{stdout}"
    );
    assert!(first.contains(", 0 of 0 successful)"), "a full outage: {stdout}");
    assert_eq!(routine_listed(&stdout), Vec::<&str>::new(), "{stdout}");
}

/// `lookout run` on nginx + PHP-FPM (issue 15 item 6): the target's `[target.diagnose]` names FPM's workers, and the
/// firing notification carries the root cause found by tracing them.
#[tokio::test(flavor = "multi_thread")]
async fn lookout_run_names_the_root_cause_on_nginx_and_fpm_in_the_firing_message() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    let hook = crate::support::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"lookout.sqlite\"\n[web]\nenabled = false\n\n[[target]]\nname = \"shop\"\nurl = \"{}\"\n\
             interval = \"500ms\"\nfailure_threshold = 2\n[target.diagnose]\nprocesses = [\"php-fpm8.2\"]\n\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            fpm.url("/"),
            hook.url()
        ),
    );
    let _run = crate::support::Running(crate::support::spawn_run(&config));
    let fired = hook.wait_for_target("shop", "firing", Duration::from_secs(30)).await;
    let body = fired.body.to_string();
    eprintln!("firing message: {body}");
    let missing = fpm.docroot.join("inc/settings.phpp");
    assert!(
        body.contains(&format!("{} does not exist", missing.display())),
        "the verdict rides on the message: {body}"
    );
    assert!(body.contains("php-fpm8.2"), "traced FPM's workers: {body}");
    untraced(&fpm, "after lookout run's trace");
}
