//! `lookout run` as a process: SIGKILL mid-delivery loses nothing and duplicates nothing, a restart resumes
//! alert state (no zombie alerts), SIGTERM shuts down cleanly, logs can be JSON, and it runs with two malloc
//! arenas.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lookout_core::Phase;
use lookout_store::{OutboxStore, Store};

use crate::support::{Receiver, Target, free_port, lookout_bin, wait_until, write_config};

fn start(config: &Path, extra: &[&str]) -> Child {
    Command::new(lookout_bin())
        .args(extra)
        .arg("run")
        .arg("--config")
        .arg(config)
        // What the re-exec sets (runtime::bound_malloc_arenas) is checked below: not inherited from the tests.
        .env_remove("MALLOC_ARENA_MAX")
        .env_remove("GLIBC_TUNABLES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn config_text(db: &Path, target_url: &str, hook_url: &str) -> String {
    format!(
        "[store]\npath = \"{}\"\n\n[[target]]\nname = \"site\"\nurl = \"{target_url}\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n\
         conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\nsuccess_threshold = 2\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\nretry_initial = \"100ms\"\nretry_max = \"300ms\"\n",
        db.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_pending_then_restart_delivers_exactly_once_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let site = Target::start().await;
    site.set(500, "");
    let port = free_port().await;
    let config = write_config(dir.path(), &config_text(&db, &site.url("/"), &format!("http://127.0.0.1:{port}/hook")));

    let mut first = start(&config, &[]);
    let store = crate::support::open_store(&db);
    wait_until("a pending, already retried message", Duration::from_secs(15), || async {
        store.messages(10).await.unwrap().iter().any(|m| m.attempts >= 2 && m.delivered_at.is_none())
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let saved = store.alert_states().await.unwrap();
    // The site's (the host's own targets are there too: `lookout run` watches the machine).
    let site_state = saved.iter().find(|(t, _)| t == "site").map(|(_, s)| s.phase);
    assert_eq!(site_state, Some(Phase::Firing), "the firing state was persisted: {saved:?}");

    // The receiver comes up and the target recovers while lookout is down.
    let receiver = Receiver::start_on(port).await;
    site.set(200, "ok");
    let mut second = start(&config, &[]);
    receiver.wait_for("/firing", Duration::from_secs(15)).await;
    // Resumed state: the alert that was firing before the crash resolves after it (no zombie).
    receiver.wait_for("/resolved", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    second.kill().unwrap();
    second.wait().unwrap();

    let got = receiver.received();
    let keys: Vec<&str> = got.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "exactly once each: {keys:?}");
    assert!(keys[0].ends_with("/firing") && keys[1].ends_with("/resolved"), "{keys:?}");
    assert_eq!(got[0].body["alert_id"], got[1].body["alert_id"]);
    assert_eq!(receiver.problems(), Vec::<String>::new());

    // A third start sends nothing again: delivered messages stay delivered.
    let mut third = start(&config, &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    third.kill().unwrap();
    third.wait().unwrap();
    assert_eq!(receiver.received().len(), 2);
}

/// A stop (SIGTERM) while a notification is on its way waits for the receiver's answer and records the delivery:
/// the next start does not send it again.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_send_finishes_it_and_the_next_start_does_not_send_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let site = Target::start().await;
    site.set(500, "");
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_secs(2));
    let config = write_config(dir.path(), &config_text(&db, &site.url("/"), &receiver.url()));
    let first = start(&config, &[]);
    receiver.wait_for("/firing", Duration::from_secs(15)).await;
    // The request has arrived; its answer comes in 2 s. Stop now.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(first.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    receiver.set_delay(Duration::ZERO);
    let mut second = start(&config, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    let keys: Vec<String> = receiver.received().into_iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), 1, "sent once, not again after the restart: {keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_cleanly_and_logs_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let site = Target::start().await;
    let receiver = Receiver::start().await;
    let config = write_config(dir.path(), &config_text(&db, &site.url("/"), &receiver.url()));
    let child = start(&config, &["--log-format", "json"]);
    let store = crate::support::open_store(&db);
    wait_until("a stored result", Duration::from_secs(10), || async {
        !store.recent_results("site".into(), 1).await.unwrap().is_empty()
    })
    .await;
    // `run` re-executed itself with two malloc arenas (runtime::bound_malloc_arenas): the same process, its
    // arguments kept (the log is JSON below).
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    assert!(vars.contains(&&b"MALLOC_ARENA_MAX=2"[..]), "MALLOC_ARENA_MAX=2 in the environment");
    assert!(vars.contains(&&b"GLIBC_TUNABLES=glibc.malloc.tcache_count=0"[..]), "glibc's per-thread cache off");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "clean exit on SIGTERM");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"Lookout starting."), "{stderr}");
    assert!(messages.contains(&"SIGTERM: shutting down."), "{stderr}");
    assert_eq!(messages.last(), Some(&"Lookout stopped."), "{stderr}");
    let result = &store.recent_results("site".into(), 1).await.unwrap()[0];
    assert!(result.ok);
    assert_eq!(result.status, Some(200));
    assert_eq!(result.body_excerpt.as_deref(), Some("<h1>hello</h1>"));
}

/// The text log as a newcomer reads it in a file: where the dashboard is, every source counted, no colour codes,
/// no Rust `Debug` (`Some("…")`), a firing as a warning and its resolve as information.
#[tokio::test(flavor = "multi_thread")]
async fn the_text_log_says_where_the_dashboard_is_and_reads_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let site = Target::start().await;
    site.set(500, "");
    let receiver = Receiver::start().await;
    let text = format!(
        "[web]\nlisten = \"127.0.0.1:0\"\n[host]\nenabled = false\n\n[[log]]\nname = \"apache\"\naccess = \"{}\"\n\n{}",
        dir.path().join("access.log").display(),
        config_text(&db, &site.url("/"), &receiver.url())
    );
    let config = write_config(dir.path(), &text);
    let child = start(&config, &[]);
    receiver.wait_for("/firing", Duration::from_secs(15)).await;
    site.set(200, "ok");
    receiver.wait_for("/resolved", Duration::from_secs(15)).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains('\x1b'), "no colour codes in a file: {log}");
    assert!(!log.contains("Some("), "no Debug formatting: {log}");
    let line = |what: &str| {
        log.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what:?} in {log}")).to_string()
    };
    assert!(line("Dashboard at http://127.0.0.1:").contains(" INFO "), "{log}");
    let starting = line("Lookout starting.");
    assert!(
        starting.contains("targets=1") && starting.contains("logs=1") && starting.contains("channels=1"),
        "{starting}"
    );
    assert!(line("Alert firing.").contains(" WARN "), "{log}");
    assert!(line("Alert resolved.").contains(" INFO "), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_a_bad_config_exits_2_with_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:1/\"\nconditions = [\"[STATUS] = 200\"]\n",
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(lookout_bin()).args(["run", "--config"]).arg(&config).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "lookout.toml:4: invalid condition in [[target]] \"site\": unknown operator \"=\" (did you mean ==?)"
        ),
        "{stderr}"
    );
}

/// A server that answers every request after `delay`, counting the answers it wrote in full.
async fn counting_server(delay: Duration) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                if stream.write_all(response).await.is_ok() && stream.flush().await.is_ok() {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    (port, answered)
}

/// SIGTERM under load: the probes in flight are finished and recorded — every request the server answered is a
/// stored result — and lookout exits 0 within the longest timeout and the grace the README states.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_records_every_probe_the_server_answered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let (port, answered) = counting_server(Duration::from_millis(300)).await;
    // Its own targets only: every result row counted is one of theirs.
    let mut text =
        format!("[store]\npath = \"{}\"\n\n[web]\nenabled = false\n\n[host]\nenabled = false\n\n", db.display());
    for i in 0..40 {
        text.push_str(&format!(
            "[[target]]\nname = \"t{i}\"\nurl = \"http://127.0.0.1:{port}/t/{i}\"\ninterval = \"100ms\"\ntimeout = \"2s\"\n\
             conditions = [\"[STATUS] == 200\"]\n\n"
        ));
    }
    let config = write_config(dir.path(), &text);
    let child = start(&config, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(before > 100, "under load: {before} answers so far");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stopped = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let at_signal = answered.load(std::sync::atomic::Ordering::SeqCst);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stopped.elapsed() < Duration::from_secs(7), "stopped within 2 s + 5 s: {:?}", stopped.elapsed());
    let answered = answered.load(std::sync::atomic::Ordering::SeqCst);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let recorded: i64 = conn.query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0)).unwrap();
    let recorded = recorded as u64;
    // With a probe every 100 ms and answers after 300 ms, about 40 are in flight at any time: finished, not cut.
    assert!(answered > at_signal, "the probes in flight at the signal were finished ({answered} answered)");
    assert_eq!(recorded, answered, "every answered probe is recorded ({} after the signal)", answered - at_signal);
}
