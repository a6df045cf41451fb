//! What is on one machine stays with that machine's agent: a `[[log]]` pinned to agent "web" is read only by it
//! (its batches reach the leader through the store and fire there), and a `[target.diagnose]` pinned to "web" is
//! run by it at the leader's request, its verdict riding on the leader's firing notification. Real processes, a
//! real PostgreSQL.

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
