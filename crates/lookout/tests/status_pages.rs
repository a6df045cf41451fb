//! `[[status]]` against the real servers: a private Apache with mod_status and a pool of five workers saturated
//! by slow PHP requests fires the saturation alert and resolves once they finish; nginx's `stub_status` and a
//! PHP-FPM pool (`pm.status_path`) with every child busy are read and alerted the same way. The reasons carry
//! the readings seen. (The levels of one page share a group, so the first message waits one round — interval and
//! timeout, and 2 s to settle — for the others: the slow requests outlast it, or the alert would be a flap.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::apache::Apache;
use crate::support::fpm_pool::FpmPool;
use crate::support::php_fpm::PhpFpm;
use crate::support::{Receiver, Running, spawn_run, write_config};

const WAIT: Duration = Duration::from_secs(30);

/// Sends `n` GETs of `path` to 127.0.0.1:`port` at once and leaves them running (each on a thread, reading the
/// whole answer): slow requests that hold a worker each.
fn hold_workers(port: u16, path: &str, n: usize) -> Vec<std::thread::JoinHandle<String>> {
    (0..n)
        .map(|_| {
            let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.write_all(request.as_bytes()).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out
            })
        })
        .collect()
}

/// The reasons of the firing message about `target`.
fn reasons(r: &crate::support::Received, target: &str) -> String {
    let alerts = r.body["alerts"].as_array().cloned().unwrap_or_else(|| vec![r.body.clone()]);
    let a = alerts.iter().find(|a| a["target"] == target).cloned().unwrap_or_default();
    a["reasons"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_worker_saturation_fires_while_every_worker_is_busy_and_resolves_after() {
    // Five workers (prefork: the scoreboard has one slot per ServerLimit, so it is the limit too); the status
    // request itself takes one.
    let extra = "LoadModule status_module /usr/lib/apache2/modules/mod_status.so\n\
                 <Location /server-status>\n    SetHandler server-status\n    Require all granted\n</Location>\n\
                 ServerLimit 5\nMaxRequestWorkers 5\nStartServers 5\nMinSpareServers 5\nMaxSpareServers 5\n";
    let Some(apache) = Apache::start_with(&[("slow.php", "<?php sleep(9); echo 'done';")], extra) else { return };
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let web = crate::support::free_port().await;
    let config = write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"{}/lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{web}\"\n\n\
             [[status]]\nname = \"apache\"\ntype = \"apache\"\nurl = \"{}\"\ninterval = \"300ms\"\ntimeout = \"2s\"\n\n\
             [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            dir.path().display(),
            apache.url("/server-status"),
            hook.url()
        ),
    );
    let _lookout = Running(spawn_run(&config));
    // Idle: one busy worker of five (the status request) is 20 %; nothing fires.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.received().is_empty(), "an idle server fired: {:?}", hook.received().first().map(|r| &r.body));

    let slow = hold_workers(apache.port, "/slow.php", 4);
    // The default levels: saturated is critical at once (the warning, 80 % for 2 minutes, is not sent beside it).
    let firing = hook.wait_for_target("apache-critical", "firing", WAIT).await;
    let why = reasons(&firing, "apache-critical");
    assert!(why.contains("[WORKER_SATURATION] (100.0%) >= 95%"), "{why}");
    // The server page draws the scoreboard of the last reading: every slot busy (4 sleeping, 1 the status).
    let (status, page) = crate::support::http_get(&format!("http://127.0.0.1:{web}/server?hours=1")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<b>Scoreboard</b> 5 worker slots at the last reading: W 5 sending reply"), "{page}");
    assert_eq!(page.matches("<span class=\"slot busy\" title=\"sending reply\">W</span>").count(), 5);
    for s in slow {
        assert!(s.join().unwrap().contains("done"), "the slow requests were served");
    }
    let resolved = hook.wait_for_target("apache-critical", "resolved", WAIT).await;
    // The incident's postmortem draft says what the workers did, from the stored readings.
    let incident =
        resolved.body["alerts"][0]["incident"].as_str().or(resolved.body["incident"].as_str()).unwrap().to_string();
    let draft = dir.path().join("postmortem.md");
    let (code, _, stderr) =
        crate::support::lookout_with_config(&["postmortem", &incident, "-o", draft.to_str().unwrap()], &config).await;
    assert_eq!(code, 0, "{stderr}");
    let markdown = std::fs::read_to_string(&draft).unwrap();
    assert!(
        markdown.contains("apache: WORKER\\_SATURATION at or above 80 % from ")
            && markdown.contains("(peak 100.0 % at "),
        "{markdown}"
    );
    // So does its page, with the chart of the workers and the incident shaded.
    let (status, page) = crate::support::http_get(&format!("http://127.0.0.1:{web}/incidents/{incident}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("The server meanwhile") && page.contains("<svg class=\"chart\""), "{page}");
    assert!(page.contains("<rect class=\"fired\""), "the incident is shaded: {page}");
    assert!(
        !hook.received().iter().any(|r| r.body.to_string().contains("\"target\":\"apache\"")),
        "the warning level waits 2 minutes"
    );
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_stub_status_and_a_php_fpm_pool_with_every_child_busy_fire_and_resolve() {
    let Some(stack) = PhpFpm::start(&[("slow.php", "<?php sleep(9); echo 'done';")]) else { return };
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"{}/lookout.sqlite\"\n\n[web]\nenabled = false\n\n\
             [[status]]\nname = \"nginx\"\ntype = \"nginx\"\nurl = \"{}\"\ninterval = \"300ms\"\ntimeout = \"1s\"\n\
             fire_when = [\"[ACTIVE_CONNECTIONS] >= 3\"]\n\n\
             [[status]]\nname = \"fpm\"\ntype = \"php-fpm\"\nurl = \"{}\"\ninterval = \"300ms\"\ntimeout = \"1s\"\nworkers = {}\n\n\
             [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            dir.path().display(),
            stack.url("/nginx-status"),
            stack.url("/fpm-status"),
            FpmPool::WORKERS,
            hook.url()
        ),
    );
    let _lookout = Running(spawn_run(&config));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.received().is_empty(), "idle servers fired: {:?}", hook.received().first().map(|r| &r.body));

    // Two slow requests: with the status request, every one of FPM's three children is busy, and nginx holds
    // three connections.
    let slow = hold_workers(stack.port(), "/slow.php", FpmPool::WORKERS - 1);
    let fpm = hook.wait_for_target("fpm-critical", "firing", WAIT).await;
    let why = reasons(&fpm, "fpm-critical");
    assert!(why.contains("[WORKER_SATURATION] (100.0%) >= 95%"), "{why}");
    let nginx = hook.wait_for_target("nginx", "firing", WAIT).await;
    assert!(reasons(&nginx, "nginx").contains("[ACTIVE_CONNECTIONS] ("), "{}", reasons(&nginx, "nginx"));
    for s in slow {
        assert!(s.join().unwrap().contains("done"), "the slow requests were served");
    }
    hook.wait_for_target("fpm-critical", "resolved", WAIT).await;
    hook.wait_for_target("nginx", "resolved", WAIT).await;
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
}

/// PHP-FPM answers 500 while its scoreboard is locked — two readers at once are enough — which says nothing about
/// the pool: twenty pages read at once by `lookout check` (their URLs differ by a parameter FPM ignores), forty
/// times, all pass (without asking again, a 500 came within twenty rounds here). And the levels of one page
/// (`NAME`, `NAME-critical`, `NAME-queue`) are judged on one reading: the page is requested once, not three times
/// at once (three readers of a three-worker pool read it 100 % busy).
#[tokio::test(flavor = "multi_thread")]
async fn a_php_fpm_status_page_read_by_many_at_once_is_not_a_failure() {
    let Some(stack) = PhpFpm::start(&[("index.php", "<?php echo 'ok';")]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let check = |config: std::path::PathBuf| async move {
        let (code, out, err) = crate::support::lookout_with_config(&["check"], &config).await;
        (code, format!("{out}{err}"))
    };
    let mut text = String::from("[store]\npath = \"lookout.sqlite\"\n\n[host]\nenabled = false\n");
    for n in 0..20 {
        text.push_str(&format!(
            "\n[[status]]\nname = \"fpm-{n}\"\ntype = \"php-fpm\"\nurl = \"{}\"\nworkers = 3\nfire_when = [\"[LISTEN_QUEUE] > 100\"]\n",
            stack.url(&format!("/fpm-status?json&reader={n}"))
        ));
    }
    let config = write_config(dir.path(), &text);
    for round in 0..40 {
        let (code, said) = check(config.clone()).await;
        assert_eq!(code, 0, "round {round}:\n{said}");
    }

    let one = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[host]\nenabled = false\n\n[[status]]\nname = \"fpm\"\ntype = \"php-fpm\"\nurl = \"{}\"\nworkers = 3\n",
        stack.url("/fpm-status")
    );
    let config = write_config(one.path(), &text);
    let log = stack.docroot.parent().unwrap().join("logs/nginx-access.log");
    let reads = || std::fs::read_to_string(&log).unwrap_or_default().matches("GET /fpm-status?json ").count();
    let before = reads();
    let (code, said) = check(config.clone()).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("fpm-critical") && said.contains("fpm-queue"), "the three levels: {said}");
    assert_eq!(reads() - before, 1, "one reading for the three levels:\n{said}");
}
