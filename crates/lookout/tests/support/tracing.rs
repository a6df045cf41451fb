//! What the diagnosis tests of every stack share: whether tracing is allowed here, running `lookout diagnose` as a
//! user would, and checking that no traced process is left traced or stopped.

use std::process::{Command, Output};
use std::time::Duration;

use super::lookout_bin;

/// Tracing another user's workers needs root here; says SKIPPED otherwise (a privilege, not a package).
pub fn tracing_allowed() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: tracing the server's www-data workers needs root here");
        return false;
    }
    true
}

/// `lookout diagnose ARGS`, run off the async runtime.
pub async fn diagnose(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(lookout_bin()).arg("diagnose").args(args).output().unwrap())
        .await
        .unwrap()
}

/// `lookout diagnose --process NAME --url URL --duration 3s`, as a user would run it.
pub async fn diagnose_process(name: &str, url: String) -> Output {
    let args = ["--process", name, "--url", &url, "--duration", "3s"];
    diagnose(args.iter().map(|s| s.to_string()).collect()).await
}

/// What lookout printed; also shown in the test's output (`--nocapture`), so a run documents the verdicts.
pub fn shown(what: &str, out: &Output) -> String {
    let s = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("lookout diagnose {what} said:\n{s}");
    s
}

/// GET `url`: (status, body).
pub async fn get(url: &str) -> (Option<u16>, String) {
    let r = lookout_http::fetch(&lookout_http::HttpRequest::get(url.parse().unwrap(), Duration::from_secs(5))).await;
    (r.status, r.body)
}

/// None of a pool's processes (its 3 workers and the master) is left traced or stopped.
pub fn assert_untraced(mut pids: Vec<i32>, master: i32, when: &str) {
    assert_eq!(pids.len(), 3, "{when}: the pool still has its 3 workers");
    pids.push(master);
    for p in pids {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        assert!(status.lines().any(|l| l == "TracerPid:\t0"), "{when}: pid {p} still traced: {status}");
        assert!(
            !status.lines().any(|l| l.starts_with("State:\tt") || l.starts_with("State:\tT")),
            "{when}: pid {p} left stopped"
        );
    }
}

/// A shop whose index.php requires `inc/settings.phpp` while `inc/settings.php` exists: the founding mistake.
pub const MISNAMED_REQUIRE: &[(&str, &str)] = &[
    ("index.php", "<?php require_once __DIR__ . '/inc/settings.phpp'; ?>\n<h1>Shop</h1>\n"),
    ("inc/settings.php", "<?php $currency = 'EUR';\n"),
];

/// The "also failing" lines that name a routine lookup (none may).
pub fn routine_listed(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.contains("also failing"))
        .filter(|l| [".user.ini", ".htaccess", "index.html"].iter().any(|r| l.contains(r)))
        .collect()
}
