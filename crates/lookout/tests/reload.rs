//! Reloading the configuration of a running `lookout run` without a restart: `SIGHUP`, `POST /-/reload` and
//! `lookout reload`. New targets start, removed ones have their alerts closed, changed ones keep their state; a
//! configuration that does not load is refused and the old one runs on (and `/metrics` says so).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lookout_store::{OutboxStore, Store};

use crate::support::{Receiver, Running, Target, free_port, lookout_bin, open_store, wait_until, write_config};

const TOKEN: &str = "reload-token";

fn config(dir: &Path, port: u16, hook: &str, targets: &[(&str, &str, &str)]) -> String {
    let mut text = format!(
        "[store]\npath = \"{}\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"LOOKOUT_TEST_RELOAD_TOKENS\"\n\n\
         [host]\nenabled = false\n\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook}\"\nretry_initial = \"100ms\"\n",
        dir.join("lookout.sqlite").display()
    );
    for (name, url, interval) in targets {
        text.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\nfailure_threshold = 1\nsuccess_threshold = 1\nconditions = [\"[STATUS] == 200\"]\n"
        ));
    }
    text
}

/// Killed when dropped, so a failing assertion leaves no lookout running.
fn start(config: &Path, log: &Path) -> Running {
    Running(
        Command::new(lookout_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("LOOKOUT_TEST_RELOAD_TOKENS", TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn hup(lookout: &Running) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(lookout.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

async fn post_reload(port: u16, token: Option<&str>) -> (u16, String) {
    crate::support::http_call(http::Method::POST, &format!("http://127.0.0.1:{port}/-/reload"), token).await
}

async fn metric(port: u16, name: &str) -> Option<String> {
    let (_, text) = crate::support::http_get(&format!("http://127.0.0.1:{port}/metrics")).await;
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_post_and_lookout_reload_read_the_config_again_without_losing_state() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (Target::start().await, Target::start().await);
    down.set(500, "");
    let hook = Receiver::start().await;
    let port = free_port().await;
    let (up_url, down_url) = (up.url("/"), down.url("/"));
    let path = write_config(
        dir.path(),
        &config(dir.path(), port, &hook.url(), &[("keep", &down_url, "300ms"), ("gone", &down_url, "300ms")]),
    );
    let log = dir.path().join("lookout.log");
    let lookout = start(&path, &log);
    for target in ["keep", "gone"] {
        hook.wait_for_target(target, "firing", Duration::from_secs(15)).await;
    }

    // SIGHUP with a new target, one removed, one changed (its interval): the removed one's alert is closed, the
    // new one is checked, the changed one keeps firing under the same alert (nothing sent about it).
    let sent = |target: &str| hook.received().iter().filter(|r| r.body["target"] == target).count();
    let keep_before = sent("keep");
    write_config(
        dir.path(),
        &config(dir.path(), port, &hook.url(), &[("keep", &down_url, "500ms"), ("new", &up_url, "300ms")]),
    );
    hup(&lookout);
    let closed = hook.wait_for_target("gone", "resolved", Duration::from_secs(15)).await;
    assert!(closed.body.to_string().contains("removed from the configuration"), "{}", closed.body);
    let store = open_store(&dir.path().join("lookout.sqlite"));
    wait_until("the new target checked", Duration::from_secs(15), || async {
        !store.recent_results("new".into(), 1).await.unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sent("keep"), keep_before, "the changed target kept its alert: {:?}", hook.received());
    let states = store.alert_states().await.unwrap();
    let keep = states.iter().find(|(t, _)| t == "keep").map(|(_, s)| s.phase);
    assert_eq!(keep, Some(lookout_core::Phase::Firing));
    wait_until("the web side back", Duration::from_secs(10), || async {
        metric(port, "lookout_config_last_reload_successful").await.is_some()
    })
    .await;
    assert_eq!(metric(port, "lookout_config_last_reload_successful").await.as_deref(), Some("1"));

    // A file that does not load: refused, said in the log and in /metrics; the running one goes on.
    std::fs::write(&path, "[[target]]\nname = \"broken\"\nurl = \"http://127.0.0.1:1/\"\nintervall = \"1s\"\n")
        .unwrap();
    hup(&lookout);
    wait_until("the refusal", Duration::from_secs(10), || async {
        metric(port, "lookout_config_last_reload_successful").await.as_deref() == Some("0")
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("The configuration does not load; the running one goes on."), "{text}");
    assert!(text.contains("unknown key \\\"intervall\\\"") || text.contains("unknown key \"intervall\""), "{text}");
    let before = store.recent_results("new".into(), 1000).await.unwrap().len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(store.recent_results("new".into(), 1000).await.unwrap().len() > before, "still checking");
    let (status, body) = post_reload(port, Some(TOKEN)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("intervall"), "{body}");

    // POST /-/reload needs the token; with it, a good file is in place when it answers.
    write_config(dir.path(), &config(dir.path(), port, &hook.url(), &[("keep", &down_url, "500ms")]));
    let (status, _) = post_reload(port, None).await;
    assert_eq!(status, 401);
    let (status, body) = post_reload(port, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["changes"], "removed new", "{answer}");
    wait_until("the web side back", Duration::from_secs(10), || async {
        metric(port, "lookout_config_last_reload_successful").await.as_deref() == Some("1")
    })
    .await;

    // `lookout reload` does the same from the command line, with the config's token.
    write_config(
        dir.path(),
        &config(dir.path(), port, &hook.url(), &[("keep", &down_url, "500ms"), ("new", &up_url, "300ms")]),
    );
    let out = tokio::process::Command::new(lookout_bin())
        .args(["reload", "--config"])
        .arg(&path)
        .env("LOOKOUT_TEST_RELOAD_TOKENS", TOKEN)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "reloaded: added new");
    assert_eq!(sent("keep"), keep_before, "three reloads later, still the one alert");
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
    drop(lookout);
}
