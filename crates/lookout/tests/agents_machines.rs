//! What is on one machine stays with that machine's agent: a `[[log]]` pinned to agent "web" is read only by it
//! (its batches reach the leader through the store and fire there), a `[target.diagnose]` pinned to "web" is
//! run by it at the leader's request, its verdict riding on the leader's firing notification, and each agent
//! watches its own machine (host and `[[process]]`), judged by the leader. Real processes, a real PostgreSQL.

use std::time::Duration;

use crate::agents::{agents, leaders, spawn_agent};
use crate::agents_locations::{Site, log_of, write};
use crate::log_alerts::{access_line, append};
use crate::support::{Receiver, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_log_and_diagnosis_run_on_their_agent_while_another_leads() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let access = dir.path().join("access.log");
    let error_log = dir.path().join("error.log");
    append(&access, &[access_line(0, 200)]);
    std::fs::write(&error_log, "").unwrap();
    let config = write(
        dir.path(),
        &format!(
            "[store]\nurl = \"{url}\"\n[web]\nenabled = false\n\n\
             [[target]]\nname = \"shop\"\nurl = \"http://{}/\"\ninterval = \"500ms\"\nfailure_threshold = 2\n\
             [target.diagnose]\nerror_log = \"{}\"\nagent = \"web\"\n\n\
             [[log]]\nname = \"apache\"\naccess = \"{}\"\nagent = \"web\"\nwindow = \"3s\"\nmin_requests = 10\nfire_when = [\"[5XX_RATIO] > 20%\"]\n\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"200ms\"\n",
            site.addr,
            error_log.display(),
            access.display(),
            hook.url()
        ),
    );
    // The probe agent starts first and leads; the web server's agent follows.
    let _probe = spawn_agent(&config, dir.path(), "probe", "eu");
    wait_until("probe to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["probe"] })
        .await;
    let _web = spawn_agent(&config, dir.path(), "web", "eu");
    wait_until("both agents to beat", Duration::from_secs(20), || async { agents(&config).await.len() == 2 }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The deploy breaks the page; the error log (on web's machine) says why.
    let now = std::process::Command::new("date").arg("+%a %b %d %H:%M:%S.000000 %Y").output().unwrap();
    let now = String::from_utf8(now.stdout).unwrap();
    std::fs::write(&error_log, format!("[{}] [php:error] [pid 4242] [client 10.0.0.7:5123] PHP Fatal error:  Uncaught Error: Failed opening required '/nonexistent-lookout-test/www/inc/settings.phpp' (include_path='.:/usr/share/php') in /nonexistent-lookout-test/www/index.php:3\n", now.trim())).unwrap();
    site.fail(&["*"]);
    let fired = hook.wait_for_target("shop", "firing", Duration::from_secs(30)).await;
    let body = fired.body.to_string();
    assert!(body.contains("settings.phpp does not exist"), "web's diagnosis rides on the leader's message: {body}");
    let probe_log = log_of(dir.path(), "probe");
    assert!(probe_log.contains("Diagnosed on the agent's machine"), "{probe_log}");

    // web's access log: only web reads it; its 5xx burst fires at the leader.
    append(&access, &(0..40).map(|i| access_line(i, 500)).collect::<Vec<_>>());
    hook.wait_for_target("apache", "firing", Duration::from_secs(30)).await;
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
    let web_log = log_of(dir.path(), "web");
    assert!(!web_log.contains("This agent leads"), "web never led: {web_log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_another_config_says_so_and_probes_only_what_it_knows() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let target = |name: &str| {
        format!("\n[[target]]\nname = \"{name}\"\nurl = \"http://{}/{name}\"\ninterval = \"500ms\"\n", site.addr)
    };
    let web_port = crate::support::free_port().await;
    let head = format!("[store]\nurl = \"{url}\"\n[web]\nlisten = \"127.0.0.1:{web_port}\"\n");
    // t3 is down and known to the leader only: its alert fires, and the other agent's start must not close it.
    site.fail(&["/t3"]);
    let hook = Receiver::start().await;
    let notify = format!("\n[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n", hook.url());
    let leader_config =
        write(dir.path(), &format!("{head}{notify}{}{}failure_threshold = 1\n", target("t1"), target("t3")));
    let other_dir = tempfile::tempdir().unwrap();
    let other_config = write(
        other_dir.path(),
        &format!("[store]\nurl = \"{url}\"\n[web]\nenabled = false\n{}{}", target("t1"), target("t2")),
    );
    let _a = spawn_agent(&leader_config, dir.path(), "agent-a", "eu");
    wait_until("agent-a to lead", Duration::from_secs(20), || async {
        leaders(&agents(&leader_config).await) == ["agent-a"]
    })
    .await;
    let state_of = |name: &'static str| async move {
        let text = crate::agents_locations::get(&format!("http://127.0.0.1:{web_port}/api/v1/targets")).await?;
        let all: Vec<serde_json::Value> = serde_json::from_str(&text).ok()?;
        all.into_iter().find(|t| t["name"] == name).map(|t| t["state"].as_str().unwrap_or_default().to_string())
    };
    wait_until("t3 to fire", Duration::from_secs(20), || async { state_of("t3").await.as_deref() == Some("firing") })
        .await;
    let _b = spawn_agent(&other_config, dir.path(), "agent-b", "us");
    wait_until("agent-b to say its config differs", Duration::from_secs(20), || async {
        log_of(dir.path(), "agent-b").contains("configuration differs from the leader's")
    })
    .await;
    let listed = agents(&leader_config).await;
    assert_ne!(listed[0]["config_hash"], listed[1]["config_hash"], "{listed:?}");
    let page = crate::agents_locations::get(&format!("http://127.0.0.1:{web_port}/")).await.unwrap_or_default();
    assert!(
        page.contains("id=\"config-differs\"") && page.contains("agent-b"),
        "the dashboard says which agent differs"
    );
    // t2 is known to agent-b only: probed from its location alone, and the leader does not list it.
    let since = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hits = site.hits_since(since);
    assert!(hits.get(&("/t2".to_string(), "us".to_string())).copied().unwrap_or(0) > 0, "{hits:?}");
    assert_eq!(hits.get(&("/t2".to_string(), "eu".to_string())), None, "the leader never probes what it does not know");
    assert!(hits.get(&("/t1".to_string(), "eu".to_string())).copied().unwrap_or(0) > 0, "{hits:?}");
    let targets =
        crate::agents_locations::get(&format!("http://127.0.0.1:{web_port}/api/v1/targets")).await.unwrap_or_default();
    assert!(targets.contains("\"t1\"") && !targets.contains("\"t2\""), "{targets}");
    assert_eq!(state_of("t3").await.as_deref(), Some("firing"), "an agent with another config closes nothing");
    hook.wait_for_target("t3", "firing", Duration::from_secs(10)).await;
    let resolved: Vec<String> =
        hook.received().iter().map(|r| r.key.clone()).filter(|k| k.ends_with("/resolved")).collect();
    assert!(resolved.is_empty(), "nothing was resolved by the other agent's start: {resolved:?}");
    let (code, out, err) = crate::support::lookout_with_config(&["incidents", "--json"], &leader_config).await;
    assert_eq!(code, 0, "{err}");
    let incidents: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(incidents.len(), 1, "{out}");
    assert_eq!(incidents[0]["status"], "open", "t3's incident stays open: {out}");
}

/// Each agent watches its own machine: the follower's process and host targets (`follow.…`) are probed by it and
/// judged by the leader, which learnt them from the follower's heartbeat; both machines are on the leader's
/// dashboard and server page.
#[tokio::test(flavor = "multi_thread")]
async fn each_agent_watches_its_own_machine_and_the_leader_judges_them_all() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start().await;
    // A process name no other test has, not running yet: both machines miss it.
    let sleeper = dir.path().join("lkt-machines");
    std::os::unix::fs::symlink("/bin/sleep", &sleeper).unwrap();
    let config = write(
        dir.path(),
        &format!(
            "[store]\nurl = \"{url}\"\n[web]\nlisten = \"127.0.0.1:1\"\n\n[host]\ninterval = \"500ms\"\nmounts = [\"/\"]\n\n\
             [[process]]\nname = \"lkt-machines\"\ninterval = \"500ms\"\n\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"200ms\"\n",
            hook.url()
        ),
    );
    let (lead_port, follow_port) = (crate::support::free_port().await, crate::support::free_port().await);
    let listen = |port: u16| format!("127.0.0.1:{port}");
    let _lead = crate::agents::spawn_agent_with(
        &config,
        dir.path(),
        "lead",
        "eu",
        &[("LOOKOUT_WEB_LISTEN", &listen(lead_port))],
    );
    wait_until("lead to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["lead"] }).await;
    let _follow = crate::agents::spawn_agent_with(
        &config,
        dir.path(),
        "follow",
        "eu",
        &[("LOOKOUT_WEB_LISTEN", &listen(follow_port))],
    );
    wait_until("both agents to beat", Duration::from_secs(20), || async { agents(&config).await.len() == 2 }).await;
    let follow = agents(&config).await.into_iter().find(|a| a["name"] == "follow").unwrap();
    assert_eq!(follow["mounts"], serde_json::json!(["/"]), "the heartbeat says what the machine watches");

    // Neither machine runs the process: each fires, in a group of its machine, labelled with its agent.
    for machine in ["lead", "follow"] {
        let fired = hook.wait_for_target(&format!("{machine}.lkt-machines"), "firing", Duration::from_secs(30)).await;
        let alert = fired.body["alerts"].as_array().and_then(|a| a.first()).cloned().unwrap_or(fired.body.clone());
        assert_eq!(alert["labels"]["agent"], machine, "{alert}");
        assert_eq!(
            alert["group"],
            format!("{machine}.lkt-machines"),
            "its own group, named after its machine: {alert}"
        );
    }
    // Both machines on the leader's dashboard and server page.
    let (status, targets) = crate::support::http_get(&format!("http://127.0.0.1:{lead_port}/api/v1/targets")).await;
    assert_eq!(status, 200, "{targets}");
    for name in ["lead.host-memory", "follow.host-memory", "follow.fs-root", "follow.lkt-machines"] {
        assert!(targets.contains(&format!("\"name\":\"{name}\"")), "no {name} in {targets}");
    }
    wait_until("the follower's readings on the leader's server page", Duration::from_secs(20), || async {
        let (_, page) = crate::support::http_get(&format!("http://127.0.0.1:{lead_port}/server?hours=1")).await;
        // Charted from the readings the leader stored of the follower's machine.
        let charted = |name: &str| {
            page.split(&format!("<h2>{name} <small>"))
                .nth(1)
                .is_some_and(|rest| rest[..200.min(rest.len())].contains("class=\"charts\""))
        };
        charted("follow.host-memory") && charted("follow.fs-root (&#x2f;)") && charted("lead.host-memory")
    })
    .await;

    // The process starts: both resolve.
    let mut running = std::process::Command::new(&sleeper).arg("300").spawn().unwrap();
    for machine in ["lead", "follow"] {
        hook.wait_for_target(&format!("{machine}.lkt-machines"), "resolved", Duration::from_secs(30)).await;
    }
    let _ = running.kill();
    let _ = running.wait();
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
    let follow_log = log_of(dir.path(), "follow");
    assert!(!follow_log.contains("This agent leads"), "follow never led: {follow_log}");
    assert!(log_of(dir.path(), "lead").contains("Watching another agent's machine."));
}
