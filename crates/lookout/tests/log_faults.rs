//! `[[log]]` sources under faults, through the real `lookout run`: a log path that turns into a FIFO is refused,
//! fires the source's own alert (state `error` in the API and on the dashboard) and is read again once it is a
//! file; a log lookout may not read does the same until it may; a restart inside a firing window neither resolves
//! the alert nor opens a new incident.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lookout_store::Store;

use crate::log_alerts::{access_line, append};
use crate::support::{Receiver, free_port, lookout_bin, missing_package, open_store, wait_until, write_config};

fn lines(n: usize, status: u16) -> Vec<String> {
    (0..n).map(|i| access_line(i, status)).collect()
}

fn config(dir: &Path, hook: &str, web_port: u16, rules: &str) -> String {
    format!(
        "[store]\npath = \"{}\"\n\n[host]\nenabled = false\n\n[web]\nlisten = \"127.0.0.1:{web_port}\"\n\n\
         [[log]]\nname = \"apache\"\naccess = \"{}\"\nmin_requests = 10\n{rules}\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook}\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n",
        dir.join("lookout.sqlite").display(),
        dir.join("access.log").display(),
    )
}

/// A `lookout run` process, killed if the test fails before stopping it (no orphan outlives a failed test).
struct Lookout(Option<Child>);

impl Drop for Lookout {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `lookout run` with its stderr in `log` (to count warnings).
fn start(config: &Path, log: &Path) -> Lookout {
    start_as(config, log, None)
}

/// [`start`], as `nobody` when given a copy of the binary that `nobody` may run.
fn start_as(config: &Path, log: &Path, as_nobody: Option<&Path>) -> Lookout {
    let mut cmd = crate::support::lookout_command(as_nobody);
    let child = cmd
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Lookout(Some(child))
}

async fn sigterm(mut lookout: Lookout) {
    let mut child = lookout.0.take().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
}

async fn get(port: u16, path: &str) -> String {
    let (status, body) = crate::support::http_get(&format!("http://127.0.0.1:{port}{path}")).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The `apache` entry of `/api/v1/targets`.
async fn apache_in_api(port: u16) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&get(port, "/api/v1/targets").await).unwrap();
    all.as_array().unwrap().iter().find(|t| t["name"] == "apache").cloned().unwrap()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn log_path_turned_fifo_fires_as_error_and_is_read_again_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    append(&access, &lines(5, 200));
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let text = config(dir.path(), &receiver.url(), port, "window = \"2s\"\nfire_when = [\"[5XX_RATIO] > 50%\"]");
    let config = write_config(dir.path(), &text);
    let stderr = dir.path().join("stderr.log");
    let lookout = start(&config, &stderr);
    wait_until("the API", Duration::from_secs(10), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The access log is replaced by a FIFO: never opened (it would block, or fail with `Illegal seek`), the
    // source is blind, and after MIN_BLIND (10 s; its window is shorter) it fires with the reason.
    std::fs::remove_file(&access).unwrap();
    mkfifo(&access);
    let firing = receiver.wait_for_target("apache", "firing", Duration::from_secs(20)).await;
    let reason = firing.body["reasons"][0].as_str().unwrap().to_string();
    assert!(
        reason.starts_with(&format!(
            "cannot read {}: it is a FIFO (named pipe), not a regular file (only regular files are read) since ",
            access.display()
        )),
        "{reason}"
    );
    assert_eq!(receiver.problems(), Vec::<String>::new());
    let api = apache_in_api(port).await;
    assert_eq!(api["state"], "error", "{api}");
    assert_eq!(api["reason"].as_str(), Some(reason.as_str()), "{api}");
    let page = get(port, "/").await;
    assert!(page.contains("badge-error"), "the dashboard shows the error state");

    // A regular file again: what is written to it is read and counted, and the alert resolves.
    std::fs::remove_file(&access).unwrap();
    append(&access, &[lines(20, 500), lines(80, 200)].concat());
    receiver.wait_for_target("apache", "resolved", Duration::from_secs(10)).await;
    let store = open_store(&dir.path().join("lookout.sqlite"));
    wait_until("the new file's lines counted", Duration::from_secs(10), || async {
        store.log_totals("apache".into()).await.unwrap().requests >= 100
    })
    .await;
    let totals = store.log_totals("apache".into()).await.unwrap();
    assert_eq!((totals.requests, totals.classes[4]), (100, 20), "the 500s written after the FIFO are counted");
    let api = apache_in_api(port).await;
    assert_eq!(api["state"], "ok", "{api}");

    sigterm(lookout).await;
    let log = std::fs::read_to_string(&stderr).unwrap();
    let warnings = log.matches("Cannot read the access log").count();
    assert_eq!(warnings, 1, "one warning for ten seconds of failed reads (not one per 100 ms):\n{log}");
    assert!(log.contains("Reading the access log again"), "{log}");
    assert!(!log.contains("Illegal seek"), "{log}");
}

/// The EACCES case of a blind source: lookout runs as `nobody` and the access log is root's, mode 0600 (a log
/// rotated with the wrong `create` mode). The source fires with the reason, warns once, and once the mode is
/// mended reads the file and resolves.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_lookout_may_not_read_fires_as_error_and_is_read_once_it_may() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/usr/bin/setpriv").exists() {
        missing_package("running lookout as nobody needs root and setpriv");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let access = dir.path().join("access.log");
    append(&access, &lines(5, 200));
    std::fs::set_permissions(&access, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bin = dir.path().join("lookout");
    std::fs::copy(lookout_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let text = config(dir.path(), &receiver.url(), port, "window = \"2s\"\nfire_when = [\"[5XX_RATIO] > 50%\"]");
    let config = write_config(dir.path(), &text);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = dir.path().join("stderr.log");
    let lookout = start_as(&config, &stderr, Some(&bin));

    let firing = receiver.wait_for_target("apache", "firing", Duration::from_secs(25)).await;
    let reason = firing.body["reasons"][0].as_str().unwrap().to_string();
    assert!(reason.starts_with(&format!("cannot read {}: ", access.display())), "{reason}");
    assert!(reason.contains("Permission denied"), "{reason}");
    let api = apache_in_api(port).await;
    assert_eq!(api["state"], "error", "{api}");

    // Mended: what is written from now on is read and counted, and the alert resolves.
    std::fs::set_permissions(&access, std::fs::Permissions::from_mode(0o644)).unwrap();
    append(&access, &lines(40, 200));
    receiver.wait_for_target("apache", "resolved", Duration::from_secs(15)).await;
    let api = apache_in_api(port).await;
    assert_eq!(api["state"], "ok", "{api}");
    assert_eq!(receiver.problems(), Vec::<String>::new());
    sigterm(lookout).await;
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(log.matches("Cannot read the access log").count(), 1, "one warning, not one per read:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_alert_window_survives_a_restart_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let access = dir.path().join("access.log");
    append(&access, &lines(5, 200));
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let text = config(dir.path(), &receiver.url(), port, "window = \"15s\"\nfire_when = [\"[5XX_RATIO] > 20%\"]");
    let config = write_config(dir.path(), &text);
    let stderr = dir.path().join("stderr.log");
    let first = start(&config, &stderr);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    append(&access, &[lines(30, 200), lines(30, 500)].concat());
    receiver.wait_for_target("apache", "firing", Duration::from_secs(10)).await;

    // A restart inside the window; the log stays quiet (a few healthy requests, not enough to recover).
    sigterm(first).await;
    append(&access, &lines(5, 200));
    let second = start(&config, &dir.path().join("stderr2.log"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let count = |kind: &str| receiver.received().iter().filter(|r| r.key.ends_with(kind)).count();
    assert_eq!(count("/resolved"), 0, "a restart must not resolve: {:?}", receiver.received());
    assert_eq!(count("/firing"), 1, "nor fire again: {:?}", receiver.received());
    let store = open_store(&dir.path().join("lookout.sqlite"));
    let incidents = store.incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1, "one incident: {incidents:?}");
    let api = apache_in_api(port).await;
    assert_eq!(api["state"], "firing", "{api}");

    // The window slides past the burst: one resolve, of the same alert and incident.
    let resolved = receiver.wait_for_target("apache", "resolved", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((count("/firing"), count("/resolved")), (1, 1), "{:?}", receiver.received());
    let firing = receiver.received().into_iter().find(|r| r.key.ends_with("/firing")).unwrap();
    assert_eq!(resolved.body["alert_id"], firing.body["alert_id"]);
    assert_eq!(store.incidents(10).await.unwrap().len(), 1);
    assert_eq!(receiver.problems(), Vec::<String>::new());
    sigterm(second).await;
}
