//! nginx and PHP-FPM traced together (issue 15: several process groups): the failing request is nginx's status
//! line and FPM's FastCGI request at once, and counts once; the verdict names the process that failed to open the
//! file (FPM), not the first one named; and nothing is left traced.

use crate::support::php_fpm::PhpFpm;
use crate::support::tracing::{MISNAMED_REQUIRE, assert_untraced, diagnose, get, shown, tracing_allowed};

#[tokio::test(flavor = "multi_thread")]
async fn nginx_and_fpm_traced_together_count_each_request_once_and_name_fpm() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "the broken page answers 500 through nginx");
    let nginx = fpm.nginx_master().expect("nginx's pid file");
    // nginx first: the label of the first process named used to be the one the verdict gave.
    let args = ["--pid", &nginx.to_string(), "--process", PhpFpm::COMM, "--url", &fpm.url("/"), "--requests", "4"];
    let out = diagnose(args.iter().map(|s| s.to_string()).chain(["--duration".into(), "3s".into()]).collect()).await;
    let all = shown("(nginx and PHP-FPM)", &out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    let missing = fpm.docroot.join("inc/settings.phpp");
    assert!(first.starts_with(&format!("Probable root cause: {} does not exist", missing.display())), "{stdout}");
    assert!(first.contains(&format!("by {} pid ", PhpFpm::COMM)), "the process that failed: {stdout}");
    assert!(first.contains("in 4 of 4 failing requests, 0 of 0 successful"), "each request once: {stdout}");
    assert_untraced(fpm.workers(), fpm.master(), "after tracing nginx and FPM");
    for p in lookout_diagnose::trace::with_children(nginx) {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        assert!(status.lines().any(|l| l == "TracerPid:\t0"), "nginx pid {p} still traced: {status}");
    }
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "nginx still serves");

    // The same as JSON, for scripts: the counts, the workers that failed, and the routine lookups set apart.
    let out = diagnose(
        args.iter().map(|s| s.to_string()).chain(["--duration".into(), "20s".into(), "--json".into()]).collect(),
    )
    .await;
    let all = shown("(nginx and PHP-FPM, --json)", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    assert_eq!((v["failing_requests"].as_u64(), v["ok_requests"].as_u64()), (Some(4), Some(0)), "{v:#}");
    assert_eq!(v["candidates"][0]["path"], missing.display().to_string(), "{v:#}");
    let workers = fpm.workers();
    let pids = v["candidates"][0]["pids"].as_array().expect("pids");
    assert!(pids.iter().all(|p| p.as_i64().is_some_and(|p| workers.contains(&(p as i32)))), "FPM's: {v:#}");
    let routine = v["routine"].as_array().expect("routine lookups are listed apart");
    assert!(routine.iter().all(|r| r["path"] != v["candidates"][0]["path"]), "{v:#}");
    // Its requests failed, so the failing path has run: the trace ends soon after them, not after 20 s.
    let traced_ms = v["traced_ms"].as_u64().expect("traced_ms");
    assert!(traced_ms < 20_000, "ended early: {v:#}");
}
