//! `lookout demo`: the founding incident in under a minute, with no setup.
//!
//! It starts a small web shop as a separate process (`lookout demo-site`), monitors it with the real runtime,
//! deploys the postmortem's mistake (a file renamed to a wrong name), shows the alert firing and the webhook
//! arriving at a receiver of its own, repairs the file and shows the resolve. Each step is one call on a
//! [`Narrator`]; later capabilities (diagnosis, postmortem) add steps in the same way.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_config::Config;
use lookout_core::{EntryKind, IncidentStatus, Timestamp, Transition, TransitionKind, format_duration};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::http_server::{respond, serve};
use crate::runtime::{self, Activity};

/// Longest any one step may take before the demo gives up with an error.
const STEP_TIMEOUT: Duration = Duration::from_secs(45);
const TARGET: &str = "shop";
const LOGS: &str = "shop-logs";

pub struct DemoOptions {
    /// Keep the demo's directory (site, logs, config, database) instead of deleting it.
    pub keep: bool,
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("lookout-demo-").tempdir().context("cannot create a temp directory")?;
    let root = dir.path().to_path_buf();
    let mut n = Narrator::new();
    n.say(
        "lookout demo: a web shop goes down the way it did in the postmortem — a file required under the wrong name.",
    );
    n.say(&format!("Everything lives in {}.", root.display()));

    // 1. The site.
    n.step("Starting the web shop as its own process");
    let www = write_site(&root)?;
    let (mut site, site_url) = start_site(&root, &www).await?;
    // Like Apache's PidFile: lets the diagnosis find the shop's process to trace it.
    std::fs::create_dir_all(root.join("run"))?;
    std::fs::write(root.join("run/shop.pid"), site.id().unwrap_or(0).to_string())?;
    n.detail(&format!("serving {} at {site_url} (pid {})", www.display(), site.id().unwrap_or(0)));
    n.detail("index.php does: require_once 'inc/settings.conf';");

    // 2. Monitoring.
    n.step("Monitoring it with lookout");
    let receiver = Receiver::start().await?;
    n.detail(&format!("a webhook receiver of the demo's own listens at {}", receiver.url));
    let config_path = write_config(&root, &site_url, &receiver.url)?;
    let config = Config::load(&config_path)?;
    n.detail(&format!("config: {} (copy it: `lookout run --config {}`)", config_path.display(), config_path.display()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (activity_tx, mut activity) = broadcast::channel(256);
    let store_config = config.store.clone();
    let runtime = tokio::spawn(runtime::run(config, shutdown_rx, Some(activity_tx)));
    let mut healthy = 0;
    wait_for(&mut n, &mut activity, |a| {
        if matches!(a, Activity::Checked { ok: true, .. }) {
            healthy += 1;
        }
        healthy >= 3
    })
    .await?;

    // 3. The mistake.
    n.step("Deploying the mistake: renaming inc/settings.conf to inc/settings.conff");
    let broke_at = Timestamp::now();
    std::fs::rename(www.join("inc/settings.conf"), www.join("inc/settings.conff"))
        .context("cannot rename the settings file")?;
    n.detail("the page still requires inc/settings.conf, which no longer exists: users now get HTTP 500");
    let fired = wait_for_transitions(&mut n, &mut activity, &[TARGET, LOGS], TransitionKind::Firing).await?;
    let alert_latency = fired.iter().map(|t| t.at.since(broke_at)).min().unwrap_or_default();
    let mut key = String::new();
    for t in &fired {
        let what = if t.target == TARGET { "the probe" } else { "the shop's own logs" };
        n.event(&format!(
            "ALERT FIRING for {} (from {what}, {} after the mistake): {}",
            t.target,
            format_duration(t.at.since(broke_at)),
            t.reasons.join("; ")
        ));
        if let Some(d) = &t.diagnosis {
            n.event(&format!("DIAGNOSIS: {}", d.verdict));
        }
        key = t.idempotency_key().context("a firing alert has a key")?;
        let delivery = receiver.wait_for(&key, STEP_TIMEOUT).await?;
        n.event(&format!("webhook delivered to the receiver: {:?}", delivery.summary));
    }
    n.detail(&format!("Idempotency-Key: {key}"));
    if let Ok(tail) = std::fs::read_to_string(root.join("logs/error.log"))
        && let Some(line) = tail.lines().rev().find(|l| l.contains("PHP Fatal error"))
    {
        n.detail(&format!("the shop's error log says: {}", lookout_core::text::truncate(line, 161)));
    }

    // 4. The fix.
    n.step("Fixing it: renaming inc/settings.conff back to inc/settings.conf");
    let fixed_at = Timestamp::now();
    std::fs::rename(www.join("inc/settings.conff"), www.join("inc/settings.conf"))
        .context("cannot restore the settings file")?;
    n.detail("the probe recovers after 2 good checks; the log alert once the fatal errors leave its 10 s window");
    let resolved = wait_for_transitions(&mut n, &mut activity, &[TARGET, LOGS], TransitionKind::Resolved).await?;
    for t in &resolved {
        let key = t.idempotency_key().context("a resolved alert has a key")?;
        let delivery = receiver.wait_for(&key, STEP_TIMEOUT).await?;
        n.event(&format!(
            "RESOLVED {} ({} after the fix): webhook delivered: {:?}",
            t.target,
            format_duration(t.at.since(fixed_at)),
            delivery.summary
        ));
    }

    // 5. Summary.
    n.step("Summary");
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(10), runtime).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e.context("the monitoring runtime failed")),
        Ok(Err(e)) => bail!("the monitoring runtime crashed: {e}"),
        Err(_) => bail!("the monitoring runtime did not stop within 10 s"),
    }
    let _ = site.kill().await;
    let deliveries = receiver.deliveries();
    let unique: std::collections::HashSet<&str> = deliveries.iter().map(|d| d.key.as_str()).collect();
    n.detail(&format!(
        "the team knew {} after the mistake — not four hours, not from users",
        format_duration(alert_latency)
    ));
    n.detail(&format!(
        "{} webhook messages received, {} distinct: each delivered exactly once",
        deliveries.len(),
        unique.len()
    ));
    // The record: the incident's postmortem draft, with the numbers lookout measured.
    let incident = {
        let store = lookout_store::open(&store_config).await?;
        lookout_store::Store::incidents(&store, 1).await?.into_iter().next().context("the demo recorded no incident")?
    };
    let draft = if opts.keep {
        root.join("postmortem.md")
    } else {
        std::env::temp_dir().join(format!("lookout-demo-postmortem-{}.md", incident.id))
    };
    let summary = crate::postmortem_cmd::from_incident(&config_path, &incident.id, Some(&draft), &mut std::io::sink())
        .await
        .context("cannot write the postmortem draft")?;
    n.event(&format!("POSTMORTEM of incident {} written to {}", incident.id, draft.display()));
    n.detail(&summary);
    if opts.keep {
        let kept = dir.keep();
        n.detail(&format!("kept {} (site, logs/, lookout.toml, lookout.sqlite, postmortem.md)", kept.display()));
        n.detail(&format!(
            "see the incident again: lookout incidents show {} --config {}",
            incident.id,
            kept.join("lookout.toml").display()
        ));
    } else {
        n.detail("removed the demo directory (pass --keep to keep it)");
    }
    n.say("Demo complete.");
    Ok(())
}

/// Writes the shop's files; returns the document root.
fn write_site(root: &Path) -> anyhow::Result<PathBuf> {
    let www = root.join("www");
    std::fs::create_dir_all(www.join("inc"))?;
    std::fs::create_dir_all(root.join("logs"))?;
    std::fs::write(
        www.join("index.php"),
        "<?php require_once 'inc/settings.conf'; ?>\n<!doctype html>\n<title>Demo shop</title>\n<h1>Welcome to the demo shop</h1>\n<p>Everything is in stock.</p>\n",
    )?;
    std::fs::write(www.join("inc/settings.conf"), "db_host = 127.0.0.1\ncurrency = EUR\n")?;
    Ok(www)
}

async fn start_site(root: &Path, www: &Path) -> anyhow::Result<(tokio::process::Child, String)> {
    let exe = std::env::current_exe().context("cannot find the lookout executable")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("demo-site")
        .arg("--root")
        .arg(www)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--access-log")
        .arg(root.join("logs/access.log"))
        .arg("--error-log")
        .arg(root.join("logs/error.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start lookout demo-site")?;
    let stdout = child.stdout.take().context("demo-site has no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("demo-site did not start within 10 s")??
        .context("demo-site exited before it was ready")?;
    let url = first.strip_prefix("listening on ").context("unexpected output from demo-site")?.to_string();
    Ok((child, url))
}

fn write_config(root: &Path, site_url: &str, receiver_url: &str) -> anyhow::Result<PathBuf> {
    let path = root.join("lookout.toml");
    let text = format!(
        r#"# Written by `lookout demo`.
[store]
path = "lookout.sqlite"

# The demo is over in seconds: no dashboard (and no clash with a lookout already serving 127.0.0.1:9898).
[web]
enabled = false

# The story is the shop's outage: this machine's disks and memory (watched by default, see [host]) stay out of it.
[host]
enabled = false

[[target]]
name = "{TARGET}"
url = "{site_url}"
interval = "1s"
timeout = "1s"
conditions = ["[STATUS] == 200", "[BODY] not contains \"Fatal error\"", "[RESPONSE_TIME] < 1000"]
failure_threshold = 2
success_threshold = 2
group = "{TARGET}"

[target.diagnose]
error_log = "logs/error.log"
pid_file = "run/shop.pid"
duration = "1500ms"

[[log]]
name = "{LOGS}"
access = "logs/access.log"
error = "logs/error.log"
start_at = "beginning"
window = "10s"
min_requests = 1
group = "{TARGET}"
fire_when = ["[ERROR_LOG] matches \"PHP (Fatal|Parse) error\"", "[5XX_RATIO] > 20%"]

[[notify]]
name = "demo-receiver"
type = "webhook"
url = "{receiver_url}"
retry_initial = "200ms"
retry_max = "2s"
"#
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Prints activity until each of `targets` made a transition of `kind`; returns them in the order they came.
async fn wait_for_transitions(
    n: &mut Narrator,
    rx: &mut broadcast::Receiver<Activity>,
    targets: &[&str],
    kind: TransitionKind,
) -> anyhow::Result<Vec<Transition>> {
    let mut seen: Vec<Transition> = Vec::new();
    wait_for(n, rx, |a| {
        if let Activity::Transition(t) = a
            && t.kind == kind
            && targets.contains(&t.target.as_str())
            && !seen.iter().any(|s| s.target == t.target)
        {
            seen.push(t.clone());
        }
        seen.len() == targets.len()
    })
    .await?;
    Ok(seen)
}

/// Prints each activity as it arrives until `done` says so.
async fn wait_for(
    n: &mut Narrator,
    rx: &mut broadcast::Receiver<Activity>,
    mut done: impl FnMut(&Activity) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let a = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => bail!("the demo waited {} without seeing the expected result", format_duration(STEP_TIMEOUT)),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                bail!("the monitoring runtime stopped unexpectedly")
            }
            Ok(Ok(a)) => a,
        };
        match &a {
            Activity::Checked { target, ok: true, status, latency_ms, .. } => n.check(
                true,
                &format!("{target}: HTTP {} in {latency_ms:.0}ms", status.map_or("-".into(), |s| s.to_string())),
            ),
            Activity::Checked { target, ok: false, reason, .. } => {
                n.check(false, &format!("{target}: {}", reason.as_deref().unwrap_or("failed")))
            }
            Activity::Transition(t) if !t.notifies() => n.detail(&format!("{} is {}", t.target, t.kind)),
            Activity::Transition(_) => {}
            Activity::Incident { id, opened: true, .. } => n.event(&format!("INCIDENT {id} opened")),
            Activity::Incident { id, status: IncidentStatus::Resolved, entries, .. }
                if entries.iter().any(|e| e.kind == EntryKind::Resolved) =>
            {
                n.event(&format!("INCIDENT {id} resolved"));
                for e in entries.iter().filter(|e| e.kind == EntryKind::Observed) {
                    n.detail(&e.text);
                }
            }
            Activity::Incident { .. } => {}
        }
        if done(&a) {
            return Ok(());
        }
    }
}

/// What the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    key: String,
    summary: String,
}

/// The demo's webhook receiver: records deliveries by idempotency key.
struct Receiver {
    url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    arrived: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot start the demo's webhook receiver")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (d, a) = (deliveries.clone(), arrived.clone());
        let task = tokio::spawn(serve(listener, move |req| {
            let (d, a) = (d.clone(), a.clone());
            async move {
                let key = req.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let summary = serde_json::from_slice::<serde_json::Value>(&req.body)
                    .ok()
                    .and_then(|v| v.get("summary").and_then(|s| s.as_str()).map(str::to_string))
                    .unwrap_or_default();
                d.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Delivery { key, summary });
                a.notify_waiters();
                respond(204, "text/plain", "")
            }
        }));
        Ok(Receiver { url, deliveries, arrived, task })
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    async fn wait_for(&self, key: &str, timeout: Duration) -> anyhow::Result<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if let Some(d) = self.deliveries().into_iter().find(|d| d.key == key) {
                return Ok(d);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("the webhook for {key} did not arrive within {}", format_duration(timeout));
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Numbered steps and timestamps on stdout; bold only on a terminal.
struct Narrator {
    started: Instant,
    step: usize,
    tty: bool,
}

impl Narrator {
    fn new() -> Self {
        Narrator { started: Instant::now(), step: 0, tty: std::io::stdout().is_terminal() }
    }

    fn print(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn stamp(&self) -> String {
        format!("[{:>5.1}s]", self.started.elapsed().as_secs_f64())
    }

    fn say(&self, text: &str) {
        self.print(text);
    }

    fn step(&mut self, title: &str) {
        self.step += 1;
        let line = format!("\n{} Step {}: {title}", self.stamp(), self.step);
        self.print(&if self.tty { format!("\x1b[1m{line}\x1b[0m") } else { line });
    }

    fn detail(&self, text: &str) {
        self.print(&format!("{}   {text}", self.stamp()));
    }

    fn check(&self, ok: bool, text: &str) {
        let mark = match (ok, self.tty) {
            (true, true) => "\x1b[32m✓\x1b[0m",
            (false, true) => "\x1b[31m✗\x1b[0m",
            (true, false) => "✓",
            (false, false) => "✗",
        };
        self.print(&format!("{}   {mark} {text}", self.stamp()));
    }

    fn event(&self, text: &str) {
        let line = format!("{} » {text}", self.stamp());
        self.print(&if self.tty { format!("\x1b[1;33m{line}\x1b[0m") } else { line });
    }
}
