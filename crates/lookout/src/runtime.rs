//! `lookout run`'s composition root: the one place that opens the store `[store]` names and hands it to the
//! pipeline and the web side, which work with any `Store`. Signals end it.

use std::sync::Arc;

use lookout_app::activity::ActivitySender;
use lookout_app::metrics::Metrics;
use lookout_app::pipeline::Monitor;
use lookout_config::Config;
use lookout_store::AnyStore;
use tokio::sync::{broadcast, watch};

pub use lookout_app::Activity;

/// Runs probes, log sources, engine, store, outbox and (if enabled) the web side until `shutdown` turns true.
/// `activity` receives what the pipeline does (the demo narrates it); live pages get their own channel.
pub async fn run(
    config: Config,
    shutdown: watch::Receiver<bool>,
    activity: Option<ActivitySender>,
) -> anyhow::Result<()> {
    run_reloading(config, shutdown, activity, None).await
}

pub use lookout_app::reload::{Reloads, reload_on_sighup};

/// [`run`], reading the configuration again on each request of `reloads` (see [`lookout_app::reload`]).
pub async fn run_reloading(
    config: Config,
    shutdown: watch::Receiver<bool>,
    activity: Option<ActivitySender>,
    reloads: Option<Reloads>,
) -> anyhow::Result<()> {
    // Probes, channels, log files and web connections all need descriptors: take what the hard limit allows.
    lookout_web::raise_descriptor_limit();
    let store: Arc<AnyStore> = Arc::new(lookout_store::open(&config.store).await?);
    let activity = activity.or_else(|| config.web.enabled.then(|| broadcast::channel(1024).0));
    let metrics = Arc::new(Metrics::new());
    let health = lookout_app::health::Health::default();
    let reload = reloads.as_ref().map(|r| r.tx.clone());
    let start = |config: Config, stop: watch::Receiver<bool>| {
        let parts = Parts {
            store: store.clone(),
            metrics: metrics.clone(),
            health: health.clone(),
            activity: activity.clone(),
            reload: reload.clone(),
        };
        generation(config, parts, stop)
    };
    lookout_app::reload::run_generations(config, shutdown, reloads, metrics.clone(), start).await?;
    tracing::info!("Lookout stopped.");
    Ok(())
}

/// What every generation of a reloading run shares.
struct Parts {
    store: Arc<AnyStore>,
    metrics: Arc<Metrics>,
    health: lookout_app::health::Health,
    activity: Option<ActivitySender>,
    reload: Option<lookout_app::reload::Sender>,
}

/// One configuration's run, until `stop`.
async fn generation(mut config: Config, parts: Parts, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let Parts { store, metrics, health, activity, reload } = parts;
    lookout_app::host::add_host_targets(&mut config);
    tracing::info!(
        store = %config.store.backend,
        targets = config.targets.len(),
        logs = config.logs.iter().filter(|l| l.follows.is_none()).count(),
        channels = config.notify.len(),
        "Lookout starting."
    );
    // One copy of the configuration, shared by the pipeline, every probe loop and the web.
    let config = Arc::new(config);
    let monitor =
        Monitor::start(config.clone(), store.clone(), metrics.clone(), health.clone(), activity.clone()).await?;
    let web = config.web.enabled.then(|| {
        let state = lookout_web::WebState { store, config, metrics, events: activity, health, reload };
        tokio::spawn(lookout_web::serve(state, stop.clone()))
    });
    monitor.run(stop).await;
    if let Some(web) = web {
        let _ = web.await;
    }
    Ok(())
}

/// A shutdown signal that turns true on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down."),
            _ = term => tracing::info!("SIGTERM: shutting down."),
        }
        let _ = tx.send(true);
    });
    rx
}

/// `lookout check` on agents that share a PostgreSQL store: what the other locations see, added to its reports
/// (within 3 s, or not at all: the check is this machine's verdict and never waits long for the store). One
/// machine's SQLite store has no other locations and is not opened.
pub async fn add_degraded(reports: &mut [lookout_app::check::CheckReport], config: &Config) {
    if !matches!(config.store.backend, lookout_config::StoreBackend::Postgres { .. }) {
        return;
    }
    let look = async {
        let store = lookout_store::open(&config.store).await?;
        lookout_app::check::add_degraded(reports, config, &store).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), look).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("note: cannot read the other locations' view from the store: {e}"),
        Err(_) => eprintln!("note: the store did not answer within 3 s; only this machine's view is shown"),
    }
}

/// glibc gives each thread that allocates an arena of its own (up to eight per core) and keeps freed memory in
/// them: an hour of `bench/soak.sh` grew RSS from 45 to 75 MB while heaptrack showed a live heap under 20 MB. Two
/// arenas bound that. glibc reads `MALLOC_ARENA_MAX` only when the process starts, and setting it
/// from inside needs `mallopt` (unsafe FFI), so `lookout run` re-executes itself once with it set — the same
/// process (pid, descriptors, parent) — unless the environment already says otherwise. If the exec fails,
/// lookout runs on as it is.
///
/// The same exec fixes glibc's mmap and trim thresholds at 128 KiB (their starting values). Left alone, glibc
/// raises the mmap threshold each time a large block is freed, after which large temporaries (a `/metrics`
/// text, a page) come from the arenas and stay there when freed: a 15-minute soak under heaptrack showed the live
/// heap flat at ~10 MB while anonymous RSS crept from 27 to 29 MB.
///
/// And it turns glibc's per-thread cache off (`GLIBC_TUNABLES=glibc.malloc.tcache_count=0`, added to any tunables
/// already set): with the cache, an hour of `bench/soak.sh` still grew (RSS 40 → 43 MB over its second half, the
/// main arena 6.6 → 9.7 MB) while heaptrack's live heap stayed flat — freed chunks parked in each thread's cache
/// are "in use" to the arena and keep it from reusing and trimming around them. Without it, the same hour beside
/// it: 35 → 35 MB, the main arena at 3.0 MB (3.3 at most) from minute 3 to 60, CPU 38.1 % of a core against 37.7 %
/// (`bench/scale.sh`, 10,000 targets: 21.3 % against 21.5 %).
pub fn bound_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let error = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env("MALLOC_ARENA_MAX", "2")
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .env("MALLOC_TRIM_THRESHOLD_", "131072")
        .env("GLIBC_TUNABLES", tunables_without_tcache(std::env::var_os("GLIBC_TUNABLES")))
        .exec();
    eprintln!("warning: could not re-execute {} with MALLOC_ARENA_MAX=2 ({error}); running on", exe.display());
}

/// `GLIBC_TUNABLES` with the per-thread cache off: the operator's own tunables are kept (colon-separated, as glibc
/// reads them), and a `tcache_count` they chose is theirs to keep.
fn tunables_without_tcache(existing: Option<std::ffi::OsString>) -> std::ffi::OsString {
    const OFF: &str = "glibc.malloc.tcache_count=0";
    match existing {
        Some(t) if t.is_empty() => OFF.into(),
        Some(t) if t.to_string_lossy().contains("glibc.malloc.tcache_count=") => t,
        Some(mut t) => {
            t.push(":");
            t.push(OFF);
            t
        }
        None => OFF.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::tunables_without_tcache;

    #[test]
    fn the_tcache_is_turned_off_beside_the_operators_own_tunables() {
        let off = |t: Option<&str>| tunables_without_tcache(t.map(Into::into)).into_string().unwrap();
        assert_eq!(off(None), "glibc.malloc.tcache_count=0");
        assert_eq!(off(Some("")), "glibc.malloc.tcache_count=0");
        assert_eq!(off(Some("glibc.malloc.check=3")), "glibc.malloc.check=3:glibc.malloc.tcache_count=0");
        assert_eq!(off(Some("glibc.malloc.tcache_count=4")), "glibc.malloc.tcache_count=4");
    }
}
