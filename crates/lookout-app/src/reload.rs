//! Reading the configuration again without a restart: `SIGHUP`, `POST /-/reload` and `lookout reload` ask, and
//! `lookout run` answers (see `lookout::runtime`): a new configuration that does not load is refused with its
//! error and the old one runs on; one that loads replaces it. New targets start, removed ones have their alerts
//! closed, and the others keep their state (it is the store's, by name).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lookout_config::Config;
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;

/// One request to reload; `reply` (the web's) hears how it went: what changed, or why not.
#[derive(Debug)]
pub struct Request {
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// Where requests go.
pub type Sender = mpsc::Sender<Request>;

/// What a reload changes in the targets and log sources, said in one line (`+2 targets (a, b), -1 (c)`).
pub fn changes(old: &lookout_config::Config, new: &lookout_config::Config) -> String {
    let names = |c: &lookout_config::Config| -> Vec<String> {
        c.targets.iter().map(|t| t.name.clone()).chain(c.logs.iter().map(|l| l.name.clone())).collect()
    };
    let (before, after) = (names(old), names(new));
    let added: Vec<&str> = after.iter().filter(|n| !before.contains(n)).map(String::as_str).collect();
    let removed: Vec<&str> = before.iter().filter(|n| !after.contains(n)).map(String::as_str).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", removed.join(", ")));
    }
    if parts.is_empty() { format!("{} targets and log sources, the same names", after.len()) } else { parts.join("; ") }
}

/// Where reload requests come from (`SIGHUP`, `POST /-/reload`), and the file to read again.
pub struct Reloads {
    pub path: PathBuf,
    pub tx: Sender,
    pub rx: mpsc::Receiver<Request>,
}

impl Reloads {
    pub fn new(path: PathBuf) -> Reloads {
        let (tx, rx) = mpsc::channel(8);
        Reloads { path, tx, rx }
    }
}

/// Runs `start(config, stop)` — one generation: probes, pipeline, outbox, web — until `shutdown`, and on each
/// request of `reloads` reads the file again: one that does not load is refused with its error and the running
/// generation goes on (`lookout_config_last_reload_successful 0`); one that loads stops the running generation
/// (a send under way is finished) and starts the next on the same store, so removed targets have their alerts
/// closed and the others keep their state. A reloaded configuration that cannot start gives way to the one before.
pub async fn run_generations<F, Fut>(
    mut config: Config,
    mut shutdown: watch::Receiver<bool>,
    mut reloads: Option<Reloads>,
    metrics: Arc<Metrics>,
    start: F,
) -> anyhow::Result<()>
where
    F: Fn(Config, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut previous: Option<Config> = None;
    loop {
        let (stop, stop_rx) = watch::channel(false);
        let mut running = tokio::spawn(start(config.clone(), stop_rx));
        let next = loop {
            let request = async {
                match reloads.as_mut() {
                    Some(r) => r.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break None,
                ended = &mut running => match (ended, previous.take()) {
                    (Ok(Err(e)), Some(old)) => {
                        tracing::error!(error = %format!("{e:#}"), "The reloaded configuration could not start; running the previous one again.");
                        metrics.reloaded(false);
                        break Some(old);
                    }
                    (Ok(result), _) => return result,
                    (Err(e), _) => return Err(e.into()),
                },
                Some(request) = request => {
                    let path = reloads.as_ref().map(|r| r.path.clone()).unwrap_or_default();
                    match read_again(&path, &config) {
                        Ok(new) => {
                            let changes = changes(&config, &new);
                            tracing::info!(config = %path.display(), %changes, "Reloading the configuration.");
                            if let Some(reply) = request.reply {
                                let _ = reply.send(Ok(changes));
                            }
                            break Some(new);
                        }
                        Err(why) => {
                            tracing::error!(config = %path.display(), error = %why, "The configuration does not load; the running one goes on.");
                            metrics.reloaded(false);
                            if let Some(reply) = request.reply {
                                let _ = reply.send(Err(why));
                            }
                        }
                    }
                }
            }
        };
        let _ = stop.send(true);
        if !running.is_finished() {
            running.await??;
        }
        match next {
            None => return Ok(()),
            Some(new) => {
                previous = Some(std::mem::replace(&mut config, new));
                metrics.reloaded(true);
            }
        }
    }
}

/// The configuration file read again for a reload, or why it cannot replace the running one.
fn read_again(path: &Path, running: &Config) -> Result<Config, String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    if new.store.backend != running.store.backend {
        return Err(format!(
            "[store] changed ({} → {}): a reload keeps the store; restart lookout to move to another",
            running.store.backend, new.store.backend
        ));
    }
    Ok(new)
}

/// `SIGHUP`s as reload requests (a daemon's convention: `systemctl reload`), until the process ends.
pub fn reload_on_sighup(tx: Sender) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("Cannot listen for SIGHUP; reload with POST /-/reload instead.");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again.");
            if tx.send(Request { reply: None }).await.is_err() {
                return;
            }
        }
    });
}

/// `lookout reload`: checks that the config file loads here, then asks the running `lookout run` to read it again
/// (`POST /-/reload` on its `[web] listen`, with the first of its tokens). Without the web side, `SIGHUP` does the
/// same (`systemctl reload lookout`). Exit 0 when reloaded, 1 when the running lookout refused (its answer says why).
pub async fn ask(path: &Path, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    use anyhow::{Context, bail};
    let config = Config::load(path)?;
    if !config.web.enabled {
        bail!("[web] is off in {}: send SIGHUP to the lookout process instead", path.display());
    }
    let mut addr = config.web.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let url = format!("http://{addr}/-/reload");
    let headers = config.web.tokens.first().map(|t| ("Authorization".to_string(), format!("Bearer {}", t.expose())));
    let request = lookout_http::HttpRequest {
        url: url.parse().context("the web address")?,
        method: http::Method::POST,
        headers: headers.into_iter().collect(),
        body: None,
        follow_redirects: false,
        verify_tls: true,
        // A reload stops probes and starts them again: seconds, not minutes.
        timeout: std::time::Duration::from_secs(60),
        max_body: 64 << 10,
    };
    let answer = lookout_http::fetch(&request).await;
    if let Some(e) = answer.error {
        bail!("cannot reach lookout at {url}: {e} (is `lookout run` running with this config?)");
    }
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
    match answer.status {
        Some(200) => {
            writeln!(out, "reloaded: {}", body["changes"].as_str().unwrap_or(""))?;
            Ok(0)
        }
        Some(status) => {
            let why = body["error"].as_str().map_or_else(|| answer.body.clone(), str::to_string);
            writeln!(out, "not reloaded ({status}): {why}")?;
            Ok(1)
        }
        None => bail!("lookout at {url} did not answer"),
    }
}
