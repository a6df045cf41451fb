//! PostgreSQL stops under two agents probing 20 targets: they keep probing every target, say the store is away,
//! alert from memory, and when PostgreSQL is back everything held — results, the transition, the incident — is
//! written. A real PostgreSQL server of the test's own, stopped and started with `pg_ctl`.

use std::time::{Duration, Instant};

use crate::agents::{agents, leaders, spawn_agent};
use crate::agents_locations::{Site, write};
use crate::support::{Receiver, lookout_with_config, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn agents_keep_probing_and_alerting_while_postgres_is_down_and_catch_up_when_it_returns() {
    if lookout_store::testing::postgres_or_skip().is_none() {
        return;
    }
    let pg = lookout_store::testing::TestPostgres::start_private().expect("a private PostgreSQL starts");
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start().await;
    let hook = Receiver::start().await;
    let mut text = format!(
        "[store]\nurl = \"{url}\"\n[web]\nenabled = false\n\n[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"200ms\"\n",
        hook.url()
    );
    for i in 0..20 {
        let path = if i == 0 { "/shop".to_string() } else { format!("/t{i}") };
        let name = if i == 0 { "shop".to_string() } else { format!("t{i}") };
        text.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nurl = \"http://{}{path}\"\ninterval = \"500ms\"\nfailure_threshold = 2\nsuccess_threshold = 2\n",
            site.addr
        ));
    }
    let config = write(dir.path(), &text);
    let _a = spawn_agent(&config, dir.path(), "agent-a", "eu");
    wait_until("agent-a to lead", Duration::from_secs(20), || async { leaders(&agents(&config).await) == ["agent-a"] })
        .await;
    let _b = spawn_agent(&config, dir.path(), "agent-b", "eu");
    wait_until("both agents to beat", Duration::from_secs(20), || async { agents(&config).await.len() == 2 }).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    pg.stop().expect("PostgreSQL stops");
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    site.fail(&["/shop"]);
    let fired = hook.wait_for_target("shop", "firing", Duration::from_secs(30)).await;
    eprintln!("alerted from memory {:?} into the outage", stopped.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 1..20 {
        let gap = site.longest_gap(&format!("/t{i}"), stopped);
        assert!(gap <= Duration::from_secs(5), "t{i} went unprobed for {gap:?} while PostgreSQL was down");
    }
    let logs = [
        crate::agents_locations::log_of(dir.path(), "agent-a"),
        crate::agents_locations::log_of(dir.path(), "agent-b"),
    ];
    assert!(
        logs.iter().any(|l| l.contains("Cannot reach the store")
            || l.contains("cannot write its store")
            || l.contains("cannot be written")),
        "an agent says the store is away: {logs:?}"
    );

    pg.start().expect("PostgreSQL starts again");
    let restarted = Instant::now();
    // What was held is written: the incident of the alert sent from memory is in the store.
    wait_until("the incident to reach the store", Duration::from_secs(60), || async {
        let (code, out, _) = lookout_with_config(&["incidents", "--json"], &config).await;
        code == 0
            && serde_json::from_str::<Vec<serde_json::Value>>(&out).is_ok_and(|l| {
                l.iter().any(|i| i["group"] == "shop" || i["title"].as_str().is_some_and(|t| t.contains("shop")))
            })
    })
    .await;
    eprintln!("caught up {:?} after PostgreSQL returned", restarted.elapsed());
    wait_until("one leader again", Duration::from_secs(30), || async { leaders(&agents(&config).await).len() == 1 })
        .await;

    site.fail(&[]);
    let resolved = hook.wait_for_target("shop", "resolved", Duration::from_secs(40)).await;
    let firing_ids: Vec<serde_json::Value> =
        hook.received().iter().filter(|r| r.key.ends_with("/firing")).map(|r| r.body["alert_id"].clone()).collect();
    assert!(
        firing_ids.contains(&resolved.body["alert_id"]),
        "the alert sent from memory is the one resolved: {firing_ids:?}"
    );
    assert_eq!(fired.body["target"], "shop");
    assert!(hook.problems().is_empty(), "{:?}", hook.problems());
}
