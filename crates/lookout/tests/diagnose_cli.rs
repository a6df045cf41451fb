//! `lookout diagnose --error-log`: on a real Apache + mod_php whose page requires a misspelled file, the
//! verdict names the file and what was meant; bad input gets clear errors and exit codes.

use std::process::Command;
use std::time::Duration;

use crate::support::apache::Apache;
use crate::support::{lookout_bin, missing_package};

fn diagnose(args: &[&str]) -> std::process::Output {
    Command::new(lookout_bin()).arg("diagnose").args(args).output().unwrap()
}

/// The one line on stderr: every error is printed once.
fn one_error(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error, printed once: {stderr}");
    lines[0].to_string()
}

/// A process to point `--pid` at, killed when dropped.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const INDEX: &str = "<?php require_once __DIR__ . '/inc/settings.phpp'; ?>\n<h1>Shop</h1>\n";

#[tokio::test(flavor = "multi_thread")]
async fn names_the_misspelled_require_on_a_real_apache() {
    let Some(apache) = Apache::start(&[("index.php", INDEX), ("inc/settings.php", "<?php $currency = 'EUR';\n")])
    else {
        return;
    };
    for _ in 0..5 {
        let r = lookout_http::fetch(&lookout_http::HttpRequest::get(
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

const TRACED_INDEX: &str =
    "<?php @file_exists(__DIR__ . '/optional.conf'); require_once __DIR__ . '/inc/settings.phpp'; ?>\n<h1>Shop</h1>\n";
const TRACED_OK: &str = "<?php @file_exists(dirname(__DIR__) . '/optional.conf'); ?>\nok\n";

#[tokio::test(flavor = "multi_thread")]
async fn traces_a_real_apache_and_names_the_file_not_the_noise() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("tracing Apache's www-data workers needs root here");
        return;
    }
    // DirectoryIndex is "index.html index.php": every request for a directory first fails to find index.html.
    let Some(apache) = Apache::start(&[
        ("index.php", TRACED_INDEX),
        ("ok/index.php", TRACED_OK),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let pid = apache.pid().to_string();
    let (broken, ok) = (apache.url("/"), apache.url("/ok/"));
    let log = apache.error_log.to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        diagnose(&[
            "--pid",
            &pid,
            "--url",
            &broken,
            "--url",
            &ok,
            "--requests",
            "5",
            "--duration",
            "2s",
            "--error-log",
            &log,
            "--json",
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing = apache.docroot.join("inc/settings.phpp");
    let meant = apache.docroot.join("inc/settings.php");
    assert_eq!(v["failing_requests"], 5, "{v:#}");
    assert_eq!(v["ok_requests"], 5, "{v:#}");
    assert_eq!(v["candidates"][0]["path"], missing.to_str().unwrap(), "{v:#}");
    assert_eq!(v["candidates"][0]["errno"], "ENOENT");
    assert_eq!(v["candidates"][0]["in_failing_requests"], 5);
    let verdict = v["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
        "{verdict}"
    );
    assert!(verdict.contains("in 5 of 5 failing requests, 0 of 5 successful"), "{verdict}");
    assert!(verdict.ends_with(&format!("; did you mean {}?", meant.display())), "{verdict}");
    let noise: Vec<&str> = v["noise"].as_array().unwrap().iter().filter_map(|c| c["path"].as_str()).collect();
    let optional = apache.docroot.join("optional.conf");
    assert!(
        noise.contains(&optional.to_str().unwrap()),
        "the optional file fails in successful requests too: {noise:?}"
    );
    assert!(v["candidates"].as_array().unwrap().iter().all(|c| c["path"] != optional.to_str().unwrap()));

    // The server was detached and keeps serving.
    let after = lookout_http::fetch(&lookout_http::HttpRequest::get(
        apache.url("/ok/").parse().unwrap(),
        Duration::from_secs(5),
    ))
    .await;
    assert_eq!(after.status, Some(200));
    for p in lookout_diagnose::trace::with_children(apache.pid()) {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        assert!(status.is_empty() || status.lines().any(|l| l == "TracerPid:\t0"), "pid {p} still traced");
    }

    // Fixed: nothing fails any more, and the verdict says so (exit 1: no cause found).
    std::fs::write(apache.docroot.join("index.php"), "<?php echo 'fixed';\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // OPcache revalidates every 2 s
    let pid = apache.pid().to_string();
    let url = apache.url("/");
    let out = tokio::task::spawn_blocking(move || {
        diagnose(&["--pid", &pid, "--url", &url, "--requests", "3", "--duration", "1s"])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("No failing requests were seen while tracing (3 successful)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_file_is_explained_with_owner_mode_and_the_missing_permission() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("needs root (www-data workers, a root-owned 0600 file)");
        return;
    }
    let Some(apache) = Apache::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\nshop\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = apache.docroot.join("inc/settings.php");
    crate::support::tracing::root_only(&secret);
    let pid = apache.pid().to_string();
    let url = apache.url("/");
    let out = tokio::task::spawn_blocking(move || {
        diagnose(&["--pid", &pid, "--url", &url, "--requests", "3", "--duration", "1500ms"])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let verdict = stdout.lines().next().unwrap();
    assert!(
        verdict.starts_with(&format!(
            "Probable root cause: {} cannot be opened by the server (permission denied) (EACCES in openat",
            secret.display()
        )),
        "{verdict}"
    );
    assert!(verdict.ends_with(&format!("lacks read (r) on {} (owner 0:0, mode 600)", secret.display())), "{verdict}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_keeps_serving_after_sigkill_or_ctrl_c_of_lookout_mid_trace() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("tracing Apache's www-data workers needs root here");
        return;
    }
    let Some(apache) = Apache::start(&[("index.php", "<?php echo 'alive';\n")]) else { return };
    for signal in [nix::sys::signal::Signal::SIGKILL, nix::sys::signal::Signal::SIGINT] {
        let mut child = Command::new(lookout_bin())
            .args(["diagnose", "--pid", &apache.pid().to_string(), "--duration", "30s"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it attach, with traffic flowing through the traced workers.
        for _ in 0..5 {
            let r = lookout_http::fetch(&lookout_http::HttpRequest::get(
                apache.url("/").parse().unwrap(),
                Duration::from_secs(5),
            ))
            .await;
            assert_eq!(r.status, Some(200));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let _ = child.wait();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for p in lookout_diagnose::trace::with_children(apache.pid()) {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            assert!(
                status.is_empty() || status.lines().any(|l| l == "TracerPid:\t0"),
                "{signal:?}: pid {p} still traced"
            );
            assert!(
                !status.lines().any(|l| l.starts_with("State:\tt") || l.starts_with("State:\tT")),
                "{signal:?}: pid {p} left stopped"
            );
        }
        for _ in 0..5 {
            let r = lookout_http::fetch(&lookout_http::HttpRequest::get(
                apache.url("/").parse().unwrap(),
                Duration::from_secs(5),
            ))
            .await;
            assert_eq!(r.status, Some(200), "{signal:?}: the server must keep serving");
            assert_eq!(r.body, "alive");
        }
    }
}

#[test]
fn tracing_bad_input() {
    let out = diagnose(&["--process", "no-such-server-lookout"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process named \"no-such-server-lookout\" is running"));
    let out = diagnose(&["--pid", "2147483000", "--duration", "100ms"]);
    assert_eq!(out.status.code(), Some(2));
    let error = one_error(&out);
    assert!(error.contains("pid 2147483000 does not exist"), "{error}");
    let out = diagnose(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name what to diagnose"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_that_refuses_is_a_clear_error() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let port = crate::support::free_port().await;
    let url = format!("http://127.0.0.1:{port}/");
    let out = tokio::task::spawn_blocking(move || {
        diagnose(&["--pid", &pid, "--url", &url, "--requests", "2", "--duration", "300ms"])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    sleeper.kill().unwrap();
    let _ = sleeper.wait();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no request reached the server") && stderr.contains("refused"), "{stderr}");
}

#[test]
fn without_the_privilege_to_trace_it_says_which_and_falls_back_to_the_error_log() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
        missing_package("needs root to run lookout as an unprivileged user (setpriv)");
        return;
    }
    // A root process that an unprivileged lookout may not trace.
    let mut target = Command::new("sleep").arg("30").spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let log = dir.path().join("error.log");
    std::fs::write(
        &log,
        "[Wed Nov 25 14:36:22 2026] [php:error] [pid 1] [client 1.2.3.4:5] PHP Fatal error:  Uncaught Error: Failed opening required '/nonexistent-lookout-priv/inc/settings.phpp' (include_path='.:/usr/share/php') in /nonexistent-lookout-priv/index.php:3\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(lookout_bin())
        .args(["diagnose", "--pid", &target.id().to_string(), "--duration", "300ms", "--error-log"])
        .arg(&log)
        .output()
        .unwrap();
    target.kill().unwrap();
    let _ = target.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stderr.matches("cannot attach").count(), 1, "printed once: {stderr}");
    assert!(stderr.contains("runs as uid 0 and lookout as uid 65534"), "{stderr}");
    assert!(stderr.contains("cannot trace: cannot attach to pid"), "{stderr}");
    assert!(stderr.contains("needs CAP_SYS_PTRACE"), "{stderr}");
    assert!(stderr.contains("falling back to the error log"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Probable root cause: /nonexistent-lookout-priv/inc/settings.phpp does not exist"),
        "{stdout}"
    );
}

#[test]
fn durations_and_urls_are_refused_before_anything_is_traced() {
    let target = Sleeper::start();
    let pid = target.pid();
    for duration in ["10h", "0s", "31s"] {
        let out = diagnose(&["--pid", &pid, "--duration", duration]);
        assert_eq!(out.status.code(), Some(2), "--duration {duration}");
        let error = one_error(&out);
        assert_eq!(
            error,
            format!("error: --duration {duration}: must be between 1ms and 30s (tracing slows the server down)")
        );
    }
    for (url, why) in [
        ("javascript:alert(1)", "only http:// and https:// URLs can be requested"),
        ("file:///etc/passwd", "only http:// and https:// URLs can be requested"),
        ("http://127.0.0.1:80800/", "port 80800 is out of range: use 1 to 65535"),
    ] {
        let started = std::time::Instant::now();
        let out = diagnose(&["--pid", &pid, "--url", url, "--duration", "20s"]);
        assert!(started.elapsed() < Duration::from_secs(2), "{url}: refused at once, not after a 20 s trace");
        assert_eq!(out.status.code(), Some(2), "{url}");
        let error = one_error(&out);
        assert!(error.starts_with(&format!("error: --url {url:?} cannot be requested: {why}")), "{error}");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "TracerPid:\t0"), "never traced");
}

#[test]
fn another_users_process_is_not_said_not_to_exist_even_when_proc_hides_it() {
    let tools = ["/usr/bin/setpriv", "/usr/bin/unshare"];
    if !nix::unistd::geteuid().is_root() || tools.iter().any(|t| !std::path::Path::new(t).exists()) {
        missing_package("needs root, setpriv and unshare (to run lookout as nobody under hidepid)");
        return;
    }
    let target = Sleeper::start();
    // As nobody, in a mount namespace whose /proc hides other users' processes (hidepid=invisible).
    let out = Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t proc -o hidepid=invisible proc /proc && exec \"$@\"")
        .args(["sh", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
        .arg(lookout_bin())
        .args(["diagnose", "--pid", &target.pid(), "--duration", "100ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = one_error(&out);
    assert!(!error.contains("does not exist"), "{error}");
    assert!(error.contains(&format!("cannot attach to pid {}: EPERM", target.pid())), "{error}");
    assert!(
        error.contains(&format!(
            "pid {} belongs to another user (its /proc entry is hidden from lookout's uid 65534): tracing it needs CAP_SYS_PTRACE",
            target.pid()
        )),
        "{error}"
    );
}

#[test]
fn eperm_as_root_says_what_is_the_matter_instead_of_run_as_root() {
    if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
        missing_package("needs root and setpriv");
        return;
    }
    let target = Sleeper::start();
    // Root, but CAP_SYS_PTRACE dropped (as a container runtime does by default).
    let out = Command::new("/usr/bin/setpriv")
        .arg("--bounding-set=-sys_ptrace")
        .arg(lookout_bin())
        .args(["diagnose", "--pid", &target.pid(), "--duration", "100ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = one_error(&out);
    assert!(error.contains("lookout runs as root but without CAP_SYS_PTRACE"), "{error}");
    assert!(!error.contains("run as root"), "{error}");

    // Root with CAP_SYS_PTRACE, but the process already has a tracer: another lookout diagnose.
    let mut first = Command::new(lookout_bin())
        .args(["diagnose", "--pid", &target.pid(), "--duration", "10s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let traced = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(format!("/proc/{}/status", target.pid()))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("TracerPid:") && l != "TracerPid:\t0"))
    });
    let out = diagnose(&["--pid", &target.pid(), "--duration", "100ms"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let _ = first.wait();
    assert!(traced, "the first lookout attached");
    assert_eq!(out.status.code(), Some(2));
    let error = one_error(&out);
    assert!(
        error.contains(&format!("pid {} is already traced by pid {} (lookout)", target.pid(), first.id())),
        "{error}"
    );
    assert!(!error.contains("run as root"), "{error}");
}

/// `--process apache2` with two Apaches running (and any other test's): only the one listening on the URL's
/// port is traced, and it says which it picked and why.
#[tokio::test(flavor = "multi_thread")]
async fn process_by_name_traces_only_the_server_listening_on_the_urls_port() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("tracing Apache's www-data workers needs root here");
        return;
    }
    let Some(broken) =
        Apache::start(&[("index.php", TRACED_INDEX), ("inc/settings.php", "<?php $currency = 'EUR';\n")])
    else {
        return;
    };
    let Some(_other) = Apache::start(&[("index.php", "<?php echo 'other';\n")]) else { return };
    let url = broken.url("/");
    let out = tokio::task::spawn_blocking(move || {
        diagnose(&["--process", "apache2", "--url", &url, "--requests", "3", "--duration", "1s", "--json"])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{stderr}", String::from_utf8_lossy(&out.stdout));
    let picked = format!("tracing apache2 pid {} and its workers (", broken.pid());
    assert!(stderr.contains(&picked) && stderr.contains(&format!("they listen on port {}", broken.port)), "{stderr}");
    assert!(stderr.contains("other apache2 processes left alone"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["candidates"][0]["path"], broken.docroot.join("inc/settings.phpp").to_str().unwrap(), "{v:#}");
}
