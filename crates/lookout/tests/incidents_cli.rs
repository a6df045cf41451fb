//! Incidents while `lookout run` runs: alerts of one group share an incident, people acknowledge, annotate and
//! resolve it from the CLI at the same time as the daemon writes it (neither loses the other's change), a
//! re-fire opens a new one, and the postmortem of the recorded incident is written after lookout stopped.

use std::path::Path;
use std::time::Duration;

use lookout_config::Config;
use tokio::sync::watch;

use crate::support::{Receiver, Target, write_config};

async fn lookout(args: &[&str], config: &Path) -> (i32, String, String) {
    crate::support::lookout_with_config(args, config).await
}

async fn show(id: &str, config: &Path) -> serde_json::Value {
    let (code, out, err) = lookout(&["incidents", "show", id, "--json"], config).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_follow_alerts_and_people_ack_note_and_resolve_them_while_lookout_runs() {
    let web = Target::start().await;
    let api = Target::start().await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = |name: &str, url: String| {
        format!(
            "[[target]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"100ms\"\ntimeout = \"1s\"\ngroup = \"shop\"\n\
             conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\nsuccess_threshold = 2\n\n"
        )
    };
    let text = format!(
        "[store]\npath = \"{}\"\n\n[host]\nenabled = false\n\n{}{}[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"100ms\"\n",
        dir.path().join("lookout.sqlite").display(),
        target("web", web.url("/")),
        target("api", api.url("/")),
        receiver.url()
    );
    let config = write_config(dir.path(), &text);
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(Config::load(&config).unwrap(), stop_rx, None));

    // Two alerts of one group: one incident.
    web.set(500, "down");
    let fired = receiver.wait_for_target("web", "firing", Duration::from_secs(10)).await;
    let day = &fired.body["at"].as_str().unwrap()[..10];
    let id = format!("{day}-shop-1");
    assert_eq!(fired.body["incident"], id.as_str(), "{}", fired.body);
    api.set(503, "down");
    let joined = receiver.wait_for_target("api", "firing", Duration::from_secs(10)).await;
    assert_eq!(joined.body["incident"], id.as_str(), "same group, same incident");

    let (code, out, _) = lookout(&["incidents"], &config).await;
    assert_eq!(code, 0);
    let row = out.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" open ") && row.contains("web, api failing: [STATUS] (500) == 200"), "{row}");

    // People act while the daemon holds its own copy of the incident.
    let (code, out, err) = lookout(&["incidents", "ack", &id, "--by", "alice"], &config).await;
    assert_eq!((code, out.trim()), (0, format!("Acknowledged {id} as alice.").as_str()), "{err}");
    let (code, _, err) = lookout(&["incidents", "ack", &id, "--by", "bob"], &config).await;
    assert_eq!(code, 1);
    assert!(err.contains(&format!("incident {id} was already acknowledged by alice at ")), "{err}");
    let (code, _, err) =
        lookout(&["incidents", "note", &id, "rolling", "back", "deploy", "42", "--by", "alice"], &config).await;
    assert_eq!(code, 0, "{err}");

    // Recovery: the daemon resolves its stale copy, the store refuses it, the daemon reads and applies again.
    web.set(200, "ok");
    api.set(200, "ok");
    receiver.wait_for_target("web", "resolved", Duration::from_secs(10)).await;
    receiver.wait_for_target("api", "resolved", Duration::from_secs(10)).await;
    let mut view = serde_json::Value::Null;
    for _ in 0..100 {
        view = show(&id, &config).await;
        let delivered = view["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "notified").count();
        if view["incident"]["status"] == "resolved" && delivered == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let incident = &view["incident"];
    assert_eq!(incident["status"], "resolved", "{view:#}");
    assert_eq!(incident["ack"]["by"], "alice", "the acknowledgement survived the daemon's write");
    assert_eq!(incident["resolved_by"], serde_json::Value::Null, "resolved by its alerts");
    assert!(incident["alerts"].as_array().unwrap().iter().all(|a| a["resolved_at"].is_i64()), "{incident:#}");
    let kinds: Vec<&str> = view["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for (kind, n) in [
        ("first-failure", 2),
        ("alert-fired", 2),
        ("notified", 4),
        ("acknowledged", 1),
        ("note", 1),
        ("alert-resolved", 2),
        ("resolved", 1),
    ] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), n, "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"first-failure"));
    assert_eq!(kinds.iter().rev().find(|k| **k != "notified"), Some(&"resolved"), "{kinds:?}");
    let probes = view["impact"]["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert!(probes.iter().all(|p| p["failed"].as_u64().unwrap() >= 2 && p["down_until"].is_i64()), "{probes:?}");

    let (code, text, _) = lookout(&["incidents", "show", &id], &config).await;
    assert_eq!(code, 0);
    for expected in [
        format!("Incident {id} — RESOLVED"),
        "Acknowledged:  by alice".into(),
        "note           rolling back deploy 42 [alice]".into(),
        "web firing notification delivered to ops (1 attempt)".into(),
        "probe web: ".into(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in\n{text}");
    }
    let (code, _, err) = lookout(&["incidents", "ack", &id], &config).await;
    assert_eq!(code, 1);
    assert!(err.contains("is already resolved"), "{err}");

    // A re-fire is a new incident; resolved by hand while it still fires, the next alert opens a third.
    web.set(500, "down again");
    let second = receiver
        .wait_for_message("a second web firing", Duration::from_secs(10), |r| {
            r.body["target"] == "web" && r.body["state"] == "firing" && r.body["incident"] != id.as_str()
        })
        .await;
    let id2 = format!("{day}-shop-2");
    assert_eq!(second.body["incident"], id2.as_str());
    let (code, out, err) =
        lookout(&["incidents", "resolve", &id2, "--by", "bob", "--note", "known: maintenance window"], &config).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 alert(s) still fire"), "{out}");
    api.set(500, "down");
    let third = receiver
        .wait_for_message("a second api firing", Duration::from_secs(10), |r| {
            r.body["target"] == "api" && r.body["state"] == "firing" && r.body["incident"] != id.as_str()
        })
        .await;
    assert_eq!(
        third.body["incident"],
        format!("{day}-shop-3").as_str(),
        "the hand-resolved incident takes no new alert"
    );

    let (code, out, _) = lookout(&["incidents", "--json"], &config).await;
    assert_eq!(code, 0);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = list.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("{day}-shop-3"), id2.clone(), id.clone()], "newest first");
    assert_eq!(list[1]["resolved_by"], "bob");

    // Without --by and without $USER (cron, systemd): the name of the user running it, not a made-up one.
    let out = tokio::process::Command::new(crate::support::lookout_bin())
        .args(["incidents", "note", third.body["incident"].as_str().unwrap(), "from", "cron", "--config"])
        .arg(&config)
        .env_remove("USER")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, shown, _) =
        lookout(&["incidents", "show", third.body["incident"].as_str().unwrap(), "--json"], &config).await;
    let me = String::from_utf8_lossy(&std::process::Command::new("id").arg("-un").output().unwrap().stdout)
        .trim()
        .to_string();
    assert!(
        shown.contains(&format!("\"by\": \"{me}\"")) || shown.contains(&format!("\"by\":\"{me}\"")),
        "{me}: {shown}"
    );

    let (code, _, err) = lookout(&["incidents", "show", "2026-01-01-nope-1"], &config).await;
    assert_eq!(code, 2);
    assert!(err.contains("no incident \"2026-01-01-nope-1\"; `lookout incidents` lists them"), "{err}");
    assert_eq!(receiver.problems(), Vec::<String>::new());

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), runtime).await.unwrap().unwrap().unwrap();

    // The postmortem of the recorded incident, after lookout stopped.
    let file = dir.path().join("pm.md");
    let (code, out, err) = lookout(&["postmortem", &id, "-o", file.to_str().unwrap()], &config).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("{id}: web, api for ")) && out.contains("(resolved)"), "{out}");
    let md = std::fs::read_to_string(&file).unwrap();
    for expected in ["Acknowledged by alice at ", "Note by alice at ", "rolling back deploy 42", "- Probe web: "] {
        assert!(md.contains(expected), "{expected:?} not in\n{md}");
    }
}

/// The store refuses writes for a while (another process holds SQLite's write lock longer than the busy timeout):
/// the firing message goes out from memory meanwhile, and the alert, its incident and its message (as delivered,
/// not to be sent again) are all recorded once the lock goes — the incident is not lost to the failed attempts.
#[tokio::test(flavor = "multi_thread")]
async fn an_alert_recorded_after_the_store_was_locked_still_opens_its_incident() {
    let site = Target::start().await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lookout.sqlite");
    let text = format!(
        "[store]\npath = \"{}\"\n\n[host]\nenabled = false\n\n[[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"3s\"\ntimeout = \"1s\"\n\
         conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 1\nsuccess_threshold = 1\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"100ms\"\n",
        db.display(),
        site.url("/"),
        receiver.url()
    );
    let config = write_config(dir.path(), &text);
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(Config::load(&config).unwrap(), stop_rx, None));
    let store = crate::support::open_store(&db);
    crate::support::wait_until("a healthy check recorded", Duration::from_secs(5), || async {
        !lookout_store::Store::recent_results(&store, "site".into(), 1).await.unwrap().is_empty()
    })
    .await;

    // The next check, 3 s later, fails and fires while the lock is held; the first attempt to record it gives up
    // after SQLite's 5 s busy timeout, the retry succeeds once the lock is gone.
    site.set(500, "down");
    let locker = std::thread::spawn({
        let db = db.clone();
        move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
            std::thread::sleep(Duration::from_secs(10));
            conn.execute_batch("COMMIT").unwrap();
        }
    });
    let fired = receiver.wait_for_target("site", "firing", Duration::from_secs(20)).await;
    locker.join().unwrap();
    let id = fired.body["incident"].as_str().unwrap_or_else(|| panic!("no incident in {}", fired.body)).to_string();
    assert!(id.ends_with("-site-1"), "{id}");
    let incident = crate::support::wait_for_some("the incident recorded", Duration::from_secs(10), || {
        lookout_store::Store::incident(&store, id.clone())
    })
    .await;
    assert_eq!(incident.alerts.len(), 1);
    let key = format!("lookout/{}/firing", fired.body["alert_id"].as_str().unwrap_or(""));
    crate::support::wait_until("the firing message recorded as delivered", Duration::from_secs(10), || async {
        lookout_store::Store::messages(&store, 20)
            .await
            .unwrap()
            .iter()
            .any(|m| m.key == key && m.delivered_at.is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = receiver.received().iter().filter(|r| r.key == key).count();
    assert_eq!(sent, 1, "sent once, from memory, and not again once recorded");
    assert_eq!(receiver.problems(), Vec::<String>::new());
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
