//! What the diagnosis tests of every stack share: whether tracing is allowed here, running `lookout diagnose` as a
//! user would, and checking that no traced process is left traced or stopped.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::lookout_bin;

/// Tracing another user's workers needs root here; says SKIPPED otherwise (a failure under
/// `LOOKOUT_REQUIRE_ALL=1`: [`super::missing_package`]).
pub fn tracing_allowed() -> bool {
    if !nix::unistd::geteuid().is_root() {
        super::missing_package("tracing the server's www-data workers needs root here");
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

/// SIGKILL of `lookout diagnose ARGS` in the middle of a trace of a pool serving `url` (a page answering `alive`):
/// once every worker (and the master, with `master_traced`) is traced and requests pass through them, lookout is
/// killed; then none is left traced or stopped, every worker keeps serving, and none died and was replaced.
pub async fn sigkill_mid_trace(
    args: &[String],
    url: &str,
    workers: impl Fn() -> Vec<i32>,
    master: i32,
    master_traced: bool,
) {
    let before = workers();
    let mut child = Command::new(lookout_bin())
        .arg("diagnose")
        .args(args)
        .args(["--duration", "30s"])
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
        if workers().iter().all(|p| traced(*p)) && (!master_traced || traced(master)) {
            attached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Traffic through the traced workers (3 workers, so each is likely mid-syscall at the kill).
    for _ in 0..6 {
        assert_eq!(get(url).await, (Some(200), "alive".to_string()));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(attached, "lookout attached to every worker{}", if master_traced { " and the master" } else { "" });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_untraced(workers(), master, "after SIGKILL");
    for _ in 0..9 {
        assert_eq!(get(url).await, (Some(200), "alive".to_string()), "every worker keeps serving");
    }
    assert_untraced(workers(), master, "after serving");
    assert_eq!(workers(), before, "the same workers: none died and was replaced");
}

/// Makes `path` readable by its owner only: root here, so the www-data workers are refused (the EACCES outage).
pub fn root_only(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The verdict (first line of `stdout`) names `path` as unreadable with EACCES and says which permission the worker
/// lacks on it; returned for the test's own checks.
pub fn assert_eacces_verdict<'a>(stdout: &'a str, path: &std::path::Path) -> &'a str {
    let first = stdout.lines().next().unwrap_or_default();
    let p = path.display();
    let head = format!("Probable root cause: {p} cannot be opened by the server (permission denied) (EACCES in ");
    assert!(first.starts_with(&head), "{stdout}");
    assert!(first.ends_with(&format!("lacks read (r) on {p} (owner 0:0, mode 600)")), "{stdout}");
    first
}
