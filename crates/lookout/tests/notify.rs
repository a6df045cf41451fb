//! Durable webhook delivery through the real runtime: persisted before sending, retried until 2xx, in order,
//! exactly once per idempotency key.

use std::path::Path;
use std::time::Duration;

use lookout_config::Config;
use lookout_store::{OutboxStore, Store};
use tokio::sync::watch;

use crate::support::{Receiver, Target, free_port, wait_until};

fn config(dir: &Path, target_url: &str, hook_url: &str) -> Config {
    let text = format!(
        "[store]\npath = \"{}\"\n\n[[target]]\nname = \"site\"\nurl = \"{target_url}\"\ninterval = \"100ms\"\ntimeout = \"1s\"\n\
         conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\nsuccess_threshold = 2\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\nretry_initial = \"100ms\"\nretry_max = \"400ms\"\ntimeout = \"1s\"\n",
        dir.join("lookout.sqlite").display()
    );
    Config::parse(&text, &dir.join("lookout.toml"), &|_| None).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn receiver_down_then_up_gets_each_message_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let site = Target::start().await;
    site.set(500, "");
    let port = free_port().await;
    let cfg = config(dir.path(), &site.url("/"), &format!("http://127.0.0.1:{port}/hook"));
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));

    // The alert fires while nobody listens: the message waits in the outbox, retried with backoff.
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    wait_until("failed attempts", Duration::from_secs(10), || async {
        store.messages(10).await.unwrap().iter().any(|m| m.attempts >= 3)
    })
    .await;
    let pending = store.messages(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].delivered_at.is_none());
    assert!(pending[0].last_error.as_deref().unwrap().starts_with("refused: "), "{pending:?}");

    // While it is still down the site recovers: the resolve queues behind the firing message.
    site.set(200, "ok");
    wait_until("the resolve to be queued", Duration::from_secs(10), || async {
        store.messages(10).await.unwrap().len() == 2
    })
    .await;

    let receiver = Receiver::start_on(port).await;
    receiver.wait_for("/resolved", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await; // room for any duplicate to show up
    let got = receiver.received();
    let states: Vec<&str> = got.iter().map(|r| r.body["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["firing", "resolved"], "each once, firing first: {got:?}");
    assert_eq!(receiver.problems(), Vec::<String>::new());
    assert_eq!(got[0].body["target"], "site");
    assert_eq!(got[0].body["reasons"], serde_json::json!(["[STATUS] (500) == 200"]));
    assert_eq!(got[0].body["last_result"]["status"], 500);
    assert_eq!(got[1].body["alert_id"], got[0].body["alert_id"]);
    assert!(store.messages(10).await.unwrap().iter().all(|m| m.delivered_at.is_some()));

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn receiver_errors_are_retried_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let site = Target::start().await;
    site.set(503, "");
    let receiver = Receiver::start().await;
    receiver.fail_next(2);
    let cfg = config(dir.path(), &site.url("/"), &receiver.url());
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));

    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    wait_until("delivery", Duration::from_secs(10), || async {
        store.messages(10).await.unwrap().first().is_some_and(|m| m.delivered_at.is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 3, "two 500s, then accepted, then nothing more: {got:?}");
    assert!(got.iter().all(|r| r.key == got[0].key));
    assert!(got[0].key.ends_with("/firing"));
    let msg = &store.messages(10).await.unwrap()[0];
    assert_eq!(msg.attempts, 3);
    assert_eq!(receiver.problems(), Vec::<String>::new());

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firing_target_removed_from_the_config_gets_its_alert_closed() {
    let dir = tempfile::tempdir().unwrap();
    let site = Target::start().await;
    site.set(500, "");
    let receiver = Receiver::start().await;
    let (stop, stop_rx) = watch::channel(false);
    let runtime =
        tokio::spawn(lookout::runtime::run(config(dir.path(), &site.url("/"), &receiver.url()), stop_rx, None));
    receiver.wait_for("/firing", Duration::from_secs(10)).await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();

    // Restart with the target renamed: the old alert must not stay open forever.
    let text = format!(
        "[store]\npath = \"{}\"\n[[target]]\nname = \"renamed\"\nurl = \"{}\"\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        dir.path().join("lookout.sqlite").display(),
        site.url("/"),
        receiver.url()
    );
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let closed = receiver.wait_for("/resolved", Duration::from_secs(10)).await;
    assert_eq!(closed.body["target"], "site");
    assert_eq!(
        closed.body["summary"],
        "site alert closed: no longer monitored: the target was removed from the configuration"
    );
    let store = crate::support::open_store(&dir.path().join("lookout.sqlite"));
    assert!(store.alert_states().await.unwrap().iter().all(|(t, _)| t != "site"));
    assert_eq!(receiver.problems(), Vec::<String>::new());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();
}
