//! Alerting survives the store: with the store made unwritable for real — another process holding SQLite's
//! exclusive lock, a full file system, a database file lookout may only read, a corrupted outbox page — a target
//! that breaks during the fault is still notified (firing and resolved), lookout alerts about itself on every
//! channel (also one its routes never send the target to) and says so in `/api/v1/health`, `/metrics` and on the
//! dashboard, and once the fault ends everything held in memory is in the store, with nothing sent twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lookout_store::{OutboxStore, Store};

use crate::support::{Receiver, Target, Tmpfs, lookout_bin, missing_package, wait_until, write_config};

const WAIT: Duration = Duration::from_secs(30);

/// A site probed every 200 ms; its alerts are routed to `ops` only, so `pager` hears of nothing but lookout's own
/// alert about its store.
fn config_text(db: &Path, target_url: &str, hook_url: &str, pager_url: &str, web: u16) -> String {
    let web = format!("listen = \"127.0.0.1:{web}\"");
    format!(
        "[store]\npath = \"{}\"\n\n[web]\n{web}\n\n\
         [[target]]\nname = \"site\"\nurl = \"{target_url}\"\ninterval = \"200ms\"\ntimeout = \"1s\"\n\
         conditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\nsuccess_threshold = 2\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\nretry_initial = \"1s\"\nretry_max = \"2s\"\n\n\
         [[notify]]\nname = \"pager\"\ntype = \"webhook\"\nurl = \"{pager_url}\"\nretry_initial = \"1s\"\nretry_max = \"2s\"\n\n\
         [[route]]\nmatch = [\"target=site\"]\nchannels = [\"ops\"]\n",
        db.display()
    )
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `lookout run` as a child that is killed when the test ends, however it ends.
struct Lookout(Child);

impl Lookout {
    fn start(config: &Path, as_nobody: Option<&Path>) -> Lookout {
        let mut cmd = crate::support::lookout_command(as_nobody);
        let child = cmd
            .args(["run", "--config"])
            .arg(config)
            .env("LOOKOUT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Lookout(child)
    }
}

impl Drop for Lookout {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many deliveries each idempotency key got (a group's key counts for each of its alerts).
fn deliveries(receiver: &Receiver) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for r in receiver.received() {
        let alerts = r.body["alerts"].as_array().cloned().unwrap_or_else(|| vec![r.body.clone()]);
        for a in alerts {
            *n.entry(a["idempotency_key"].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
        }
    }
    n
}

/// Breaks the site and mends it while the fault lasts; checks that the API, `/metrics` and the dashboard say the
/// store cannot be written and that the self-alert reached both channels; returns its firing summary.
async fn site_breaks_and_recovers_during_the_fault(s: &Setup) -> String {
    let (site, receiver) = (&s.site, &s.receiver);
    site.set(500, "broken");
    receiver.wait_for_target("site", "firing", WAIT).await;
    let own = receiver.wait_for_target("lookout", "firing", WAIT).await;
    // On every channel: `pager`, which the site's route leaves out, hears of it too.
    s.pager.wait_for_target("lookout", "firing", WAIT).await;
    assert_eq!(store_health(s.web).await, (false, true, true), "the API, /metrics and the dashboard say so");
    site.set(200, "ok");
    receiver.wait_for_target("site", "resolved", WAIT).await;
    assert!(
        !s.pager.received().iter().any(|r| r.body.to_string().contains("\"site\"")),
        "the site's alerts follow their route (ops only): {:?}",
        s.pager.received()
    );
    let alerts = own.body["alerts"].as_array().cloned().unwrap_or_else(|| vec![own.body.clone()]);
    let own = alerts.iter().find(|a| a["target"] == "lookout").cloned().unwrap_or_default();
    own["summary"].as_str().unwrap_or("").to_string()
}

/// After the fault: the self-alert resolves, and the store has everything that happened meanwhile, each
/// notification recorded as delivered, none delivered twice.
async fn everything_held_reaches_the_store(s: &Setup) {
    let (db, receiver) = (&s.db, &s.receiver);
    receiver.wait_for_target("lookout", "resolved", Duration::from_secs(60)).await;
    s.pager.wait_for_target("lookout", "resolved", WAIT).await;
    let store = crate::support::open_store(db);
    wait_until("the site's notifications recorded as delivered", WAIT, || async {
        let m = store.messages(100).await.unwrap();
        let delivered = |suffix: &str| {
            m.iter().any(|m| m.key.starts_with("lookout/site@") && m.key.ends_with(suffix) && m.delivered_at.is_some())
        };
        delivered("/firing") && delivered("/resolved")
    })
    .await;
    let kinds: Vec<String> =
        store.transitions(Some("site".into())).await.unwrap().iter().map(|t| t.kind.as_str().to_string()).collect();
    assert!(kinds.iter().any(|k| k == "firing") && kinds.iter().any(|k| k == "resolved"), "transitions: {kinds:?}");
    let incidents = store.incidents(10).await.unwrap();
    assert!(incidents.iter().any(|i| i.alerts.iter().any(|a| a.alert_id.starts_with("site@"))), "{incidents:?}");
    // Nothing goes out again once recorded: wait past a retry and count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let twice: Vec<(String, usize)> = deliveries(receiver).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert!(store.next_pending("ops".into()).await.unwrap().is_none(), "nothing left pending");
    assert!(store.next_pending("pager".into()).await.unwrap().is_none(), "nothing left pending");
    assert!(receiver.problems().is_empty(), "{:?}", receiver.problems());
}

/// GET `http://127.0.0.1:{port}{path}`: (status, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    let (status, body) = crate::support::http_get(&format!("http://127.0.0.1:{port}{path}")).await;
    assert_ne!(status, 0, "{path}: no answer");
    (status, body)
}

/// What `/api/v1/health`, `/metrics` and the dashboard say about the store: (writable, metric line, banner shown).
async fn store_health(port: u16) -> (bool, bool, bool) {
    let (status, body) = get(port, "/api/v1/health").await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let writable = health["store"]["writable"].as_bool().unwrap();
    assert_eq!(health["status"], if writable { "ok" } else { "degraded" }, "{health}");
    if !writable {
        assert!(health["store"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{health}");
        assert!(health["store"]["unwritable_since"].is_number() || health["store"]["unwritable_since"].is_string());
    }
    let (_, metrics) = get(port, "/metrics").await;
    let unwritable_metric = metrics.lines().any(|l| l == "lookout_store_writable 0");
    let (_, page) = get(port, "/").await;
    let banner = page.contains("id=\"degraded\"") && page.contains("cannot write its store since");
    (writable, unwritable_metric, banner)
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
    config: PathBuf,
    site: Target,
    /// The `ops` channel: the site's alerts and lookout's own.
    receiver: Receiver,
    /// The `pager` channel: lookout's own alert only.
    pager: Receiver,
    web: u16,
}

async fn setup(dir: tempfile::TempDir, store_dir: &Path) -> Setup {
    let db = store_dir.join("lookout.sqlite");
    let site = Target::start().await;
    site.set(200, "ok");
    let receiver = Receiver::start().await;
    let pager = Receiver::start().await;
    let web = crate::support::free_port().await;
    let config = write_config(dir.path(), &config_text(&db, &site.url("/"), &receiver.url(), &pager.url(), web));
    Setup { dir: dir.path().to_path_buf(), _dir: dir, db, config, site, receiver, pager, web }
}

/// Waits until lookout has recorded a few results (it runs normally).
async fn running(db: &Path) {
    wait_until("lookout recording results", WAIT, || async {
        db.exists() && {
            let store = crate::support::open_store(db);
            store.recent_results("site".into(), 3).await.map(|r| r.len() >= 3).unwrap_or(false)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exclusive_lock_held_60_s_does_not_silence_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let s = setup(dir, &path).await;
    let _lookout = Lookout::start(&s.config, None);
    running(&s.db).await;
    assert_eq!(store_health(s.web).await, (true, false, false), "healthy before the fault");
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                  c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(60)\nc.execute('COMMIT')\n";
    let mut locker = Command::new("python3")
        .args(["-c", script])
        .arg(&s.db)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (it is on every machine the tests run on)");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(locker.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let summary = site_breaks_and_recovers_during_the_fault(&s).await;
    assert!(summary.contains("cannot write its store since"), "{summary}");
    // The lock ends by itself after 60 s.
    everything_held_reaches_the_store(&s).await;
    assert_eq!(store_health(s.web).await, (true, false, false), "healthy again");
    let _ = locker.wait();
}

/// Fills the file system at `dir` with `filler` until no space is left.
fn fill(filler: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_does_not_silence_alerts() {
    if !is_root() {
        missing_package("mounting a small tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("disk");
    let _disk = Tmpfs::mount(&store_dir, "16m");
    let s = setup(dir, &store_dir).await;
    let _lookout = Lookout::start(&s.config, None);
    running(&s.db).await;
    let filler = store_dir.join("filler");
    fill(&filler);
    let summary = site_breaks_and_recovers_during_the_fault(&s).await;
    assert!(summary.contains("full"), "the self-alert says why: {summary}");
    std::fs::remove_file(&filler).unwrap();
    everything_held_reaches_the_store(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_file_lookout_may_only_read_does_not_silence_alerts_and_recovers_when_mended() {
    if !is_root() {
        missing_package("running lookout as nobody needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let s = setup(dir, &path).await;
    // The store exists (made by root), fully migrated; lookout runs as nobody, who may read it but not write it.
    drop(crate::support::open_store(&s.db));
    let bin = s.dir.join("lookout");
    std::fs::copy(lookout_bin(), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&s.db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&s.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _lookout = Lookout::start(&s.config, Some(&bin));
    let summary = site_breaks_and_recovers_during_the_fault(&s).await;
    assert!(summary.contains("readonly") || summary.contains("read-only"), "the self-alert says why: {summary}");
    // Mended: lookout opens the file again and writes everything it held.
    std::fs::set_permissions(&s.db, std::fs::Permissions::from_mode(0o666)).unwrap();
    everything_held_reaches_the_store(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_outbox_page_does_not_silence_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let s = setup(dir, &path).await;
    drop(crate::support::open_store(&s.db));
    // Overwrite the outbox table's root page with garbage (after a checkpoint, so the page is in the main file).
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1])\n\
                  c.execute('PRAGMA wal_checkpoint(TRUNCATE)')\n\
                  page = c.execute(\"SELECT rootpage FROM sqlite_master WHERE name = 'outbox'\").fetchone()[0]\n\
                  size = c.execute('PRAGMA page_size').fetchone()[0]\nc.close()\n\
                  f = open(sys.argv[1], 'r+b')\nf.seek((page - 1) * size)\nf.write(b'\\xa5' * size)\nf.close()\n";
    let ok = Command::new("python3").args(["-c", script]).arg(&s.db).status().unwrap().success();
    assert!(ok, "corrupting the outbox page");
    let _lookout = Lookout::start(&s.config, None);
    let summary = site_breaks_and_recovers_during_the_fault(&s).await;
    assert!(summary.contains("malformed"), "the self-alert says why: {summary}");
    // It does not mend itself; what matters is that both notifications went out, each once.
    let twice: Vec<(String, usize)> = deliveries(&s.receiver).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}
