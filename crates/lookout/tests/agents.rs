//! Several agents on one store: each `lookout run` registers and beats, exactly one leads, and when the leader
//! is killed with SIGKILL another takes over within 15 s. Real processes, a real PostgreSQL (and SQLite for the
//! single-machine case).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Running, lookout_bin, lookout_with_config, wait_until};

/// `lookout run` as agent `name` in `location`, its log in `dir/<name>.log`.
pub(crate) fn spawn_agent(config: &Path, dir: &Path, name: &str, location: &str) -> Running {
    spawn_agent_with(config, dir, name, location, &[])
}

/// [`spawn_agent`] with more environment (e.g. `LOOKOUT_WEB_LISTEN`).
pub(crate) fn spawn_agent_with(config: &Path, dir: &Path, name: &str, location: &str, env: &[(&str, &str)]) -> Running {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Running(
        std::process::Command::new(lookout_bin())
            .args(["run", "--config"])
            .arg(config)
            .env("LOOKOUT_AGENT_NAME", name)
            .env("LOOKOUT_AGENT_LOCATION", location)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

pub(crate) async fn agents(config: &Path) -> Vec<serde_json::Value> {
    let (code, out, err) = lookout_with_config(&["agents", "--json"], config).await;
    assert_eq!(code, 0, "lookout agents failed: {err}");
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub(crate) fn leaders(agents: &[serde_json::Value]) -> Vec<String> {
    agents.iter().filter(|a| a["leader"] == true).map(|a| a["name"].as_str().unwrap_or_default().to_string()).collect()
}

/// A config whose one target is a TCP port that answers (a listener this test holds).
fn config(dir: &Path, store: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join("lookout.toml");
    std::fs::write(
        &path,
        format!(
            "{store}\n[web]\nenabled = false\n\n[[target]]\nname = \"port\"\ntcp = \"127.0.0.1:{port}\"\ninterval = \"1s\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_on_postgres_elect_one_leader_and_a_killed_leader_is_replaced_within_15_s() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = config(dir.path(), &format!("[store]\nurl = \"{url}\"\n"), listener.local_addr().unwrap().port());

    let mut a = Some(spawn_agent(&config, dir.path(), "agent-a", "eu"));
    wait_until("agent-a to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["agent-a"] })
        .await;
    let _b = spawn_agent(&config, dir.path(), "agent-b", "us");
    wait_until("both agents to be listed", Duration::from_secs(20), || async { agents(&config).await.len() == 2 })
        .await;
    let listed = agents(&config).await;
    assert_eq!(leaders(&listed), ["agent-a"], "the first keeps the lead: {listed:?}");
    assert_eq!(listed[0]["location"], "eu");
    assert_eq!(listed[1]["location"], "us");
    assert_eq!(listed[0]["config_hash"], listed[1]["config_hash"], "one config, one hash");
    assert!(listed.iter().all(|a| a["version"] == env!("CARGO_PKG_VERSION")));
    let (_, table, _) = lookout_with_config(&["agents"], &config).await;
    assert!(table.contains("agent-a") && table.contains("yes") && table.contains("up"), "{table}");
    assert!(!table.contains("config differs"), "{table}");

    // SIGKILL: no lease handed over; the other agent must take it when it runs out.
    let killed = Instant::now();
    drop(a.take());
    wait_until("agent-b to take over", Duration::from_secs(30), || async {
        leaders(&agents(&config).await) == ["agent-b"]
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(15), "took over after {took:?}");
    eprintln!("leader failover after SIGKILL: {took:?}");
    let log = std::fs::read_to_string(dir.path().join("agent-b.log")).unwrap();
    assert!(log.contains("This agent leads"), "{log}");
    // The dead agent shows as gone once its heartbeats are older than a lease.
    wait_until("agent-a to show as gone", Duration::from_secs(20), || async {
        let (_, table, _) = lookout_with_config(&["agents"], &config).await;
        table.lines().any(|l| l.starts_with("agent-a") && l.ends_with("gone"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_machine_on_sqlite_is_a_cluster_of_one_that_leads_and_hands_over_on_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = config(dir.path(), "[store]\npath = \"lookout.sqlite\"\n", listener.local_addr().unwrap().port());
    let run = spawn_agent(&config, dir.path(), "solo", "local");
    wait_until("the one agent to lead", Duration::from_secs(20), || async {
        leaders(&agents(&config).await) == ["solo"]
    })
    .await;
    // SIGTERM: a clean stop gives the lease up at once.
    let pid = nix::unistd::Pid::from_raw(run.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut run = run;
    let status = run.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let listed = agents(&config).await;
    assert_eq!(listed.len(), 1);
    assert!(leaders(&listed).is_empty(), "the lease was released at stop: {listed:?}");
    let (_, table, _) = lookout_with_config(&["agents"], &config).await;
    assert!(
        table.lines().any(|l| l.starts_with("solo") && l.ends_with("gone")),
        "a clean stop leaves at once: {table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_under_a_running_agent_s_name_neither_leads_nor_probes_until_the_name_is_free() {
    let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = config(dir.path(), &format!("[store]\nurl = \"{url}\"\n"), listener.local_addr().unwrap().port());
    let mut first = Some(spawn_agent(&config, dir.path(), "twin", "eu"));
    wait_until("the first to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["twin"] })
        .await;
    let started = agents(&config).await[0]["started_at"].clone();
    let other_dir = tempfile::tempdir().unwrap();
    let _second = spawn_agent(&config, other_dir.path(), "twin", "eu");
    let log = || crate::agents_locations::log_of(other_dir.path(), "twin");
    wait_until("the second to say the name is taken", Duration::from_secs(20), || async {
        log().contains("Another running agent has this name")
    })
    .await;
    let listed = agents(&config).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["started_at"], started, "the running agent's row is untouched: {listed:?}");
    assert!(!log().contains("This agent leads"), "{}", log());
    // The first stops for good: after its name's time the second takes it, and the lead.
    drop(first.take());
    wait_until("the second to lead", Duration::from_secs(40), || async {
        let listed = agents(&config).await;
        leaders(&listed) == ["twin"] && listed[0]["started_at"] != started
    })
    .await;
    assert!(log().contains("The name is this agent's again"), "{}", log());
}
