//! `lookout run`'s machinery: probe loops and log sources feed events into the engine; the engine's transitions
//! are recorded with their incident changes and notifications in one store transaction; the outbox delivers them.
//!
//! ```text
//! probe tasks ─┐
//! log sources ─┴─Event──► Pipeline: engine ─► diagnosis ─► record (store) ─► outbox senders ─► channels
//!                                     └──Activity──► broadcast (demo narration, live pages)
//! ```
//!
//! [`Monitor::start`] loads what the store remembers (alert state, live incidents) and wires everything from the
//! config; [`Monitor::run`] runs it until shutdown. Works with any `Store`; the binary chooses it.

mod consume;
mod diagnosis;
mod loops;
mod machines;
pub(crate) use loops::phase_delay;
mod messages;
mod relay;
mod reminders;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_config::{Config, DiagnoseSpec};
use lookout_core::{Event, SystemClock};
use lookout_engine::{Engine, Reminders};
use lookout_notify::{Backoff, Outbox};
use lookout_store::{Store, StoreError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::activity::ActivitySender;
use crate::health::Health;
use crate::holding::HoldingStore;
use crate::metrics::Metrics;
use consume::Pipeline;

/// How long, beyond the longest target timeout, a stop waits for the results of probes in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Events waiting for the pipeline at most; a source that gets ahead waits (its next probe starts late, which
/// the start-delay metric shows) rather than growing memory.
const EVENT_QUEUE: usize = 1024;

/// Why `lookout run` could not start.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct StartError {
    what: &'static str,
    #[source]
    source: StoreError,
}

fn start_error(what: &'static str) -> impl FnOnce(StoreError) -> StartError {
    move |source| StartError { what, source }
}

/// Everything `lookout run` runs, wired and resumed, ready to [`run`](Monitor::run).
pub struct Monitor<S: Store> {
    /// Shared with the probe loops (and, through the caller, the web): the targets are held once.
    config: Arc<Config>,
    store: Arc<S>,
    /// Whether the store takes writes (a cluster of one beats only then).
    health: Health,
    /// The pipeline's and the outbox's way to the store: what it cannot write is held in memory meanwhile.
    holding: Arc<HoldingStore<S>>,
    redo: mpsc::UnboundedReceiver<lookout_store::Record>,
    pipeline: Pipeline<HoldingStore<S>>,
    outbox: Outbox<HoldingStore<S>>,
    /// This agent as the others see it (its start time tells it from another process under its name).
    me: lookout_store::AgentInfo,
}

impl<S: Store> Monitor<S> {
    /// Wires the pipeline from the config and resumes what the store remembers: live incidents and alert state
    /// (an alert firing before a restart resolves after it); alerts of targets no longer configured are closed.
    /// `health` learns whether the store takes writes (the web shows it).
    pub async fn start(
        config: impl Into<Arc<Config>>,
        store: Arc<S>,
        metrics: Arc<Metrics>,
        health: Health,
        activity: Option<ActivitySender>,
    ) -> Result<Monitor<S>, StartError> {
        let config: Arc<Config> = config.into();
        if config.targets.is_empty() && config.logs.is_empty() {
            tracing::warn!(config = %config.source.display(), "No [[target]] or [[log]] configured: nothing to monitor.");
        }
        if config.notify.is_empty() {
            tracing::warn!(config = %config.source.display(), "No [[notify]] channel configured: alerts are only logged and stored.");
        }
        metrics.watch_readings(&config.targets);
        let mut engine = Engine::new(Arc::new(SystemClock));
        engine.set_home(&config.agent.location);
        for t in &config.targets {
            engine.add_target(&t.name, t.conditions.clone(), t.policy);
            engine.set_group(&t.name, &t.group);
        }
        for l in &config.logs {
            engine.add_log(&l.name, l.rules.clone(), l.policy);
            engine.set_group(&l.name, &l.group);
        }
        let (live, seqs) = store.live_incidents().await.map_err(start_error("cannot load the live incidents"))?;
        for i in &live {
            tracing::info!(incident = %i.id, status = %i.status, "Resuming incident.");
        }
        engine.incidents_mut().restore(live, seqs);
        let saved = store.alert_states().await.map_err(start_error("cannot load alert state"))?;
        let mut retired = Vec::new();
        for (target, state) in saved {
            if config.target(&target).is_some() || config.logs.iter().any(|l| l.name == target) {
                if state.phase != lookout_core::Phase::Ok {
                    tracing::info!(%target, phase = %state.phase, "Resuming alert state.");
                }
                engine.restore(&target, state);
            } else {
                retired.push((target, state));
            }
        }
        // Each location's view, when several agents share the store (one machine keeps none: see Engine::set_home).
        if store.is_shared() {
            for s in store.location_states().await.map_err(start_error("cannot load the location states"))? {
                if config.target(&s.target).is_some() {
                    engine.restore_location(&s.target, &s.location, s.state);
                }
            }
        }
        // Log windows too, so a restart inside a firing window neither resolves nor re-opens anything.
        crate::log_source::restore_windows(&mut engine, store.as_ref())
            .await
            .map_err(start_error("cannot load the log windows"))?;
        // Alerts resumed from the store are firing from the first scrape on.
        metrics.set_firing(engine.firing().count());

        let channels = config
            .notify
            .iter()
            .map(|n| (lookout_notify::from_config(n), Backoff { initial: n.retry_initial, max: n.retry_max }))
            .collect();
        let parents_of = lookout_notify::Parents::new(parents(&config).filter(|(_, p)| !p.is_empty()).collect());
        let policy = lookout_notify::Policy { maintenance: config.maintenance.clone(), depends_on: parents_of.clone() };
        let observed = metrics.clone();
        let (holding, redo) = HoldingStore::new(store.clone(), health.clone(), metrics.clone());
        let outbox = Outbox::new(holding.clone(), channels, policy)
            .with_observer(Arc::new(move |channel, result, n| observed.notification(channel, result, n)));
        holding.connect(outbox.waker(), outbox.channel_names());

        let mut pipeline = Pipeline {
            engine,
            diagnose: diagnose_specs(&config),
            urls: config
                .targets
                .iter()
                .filter_map(|t| match &t.check {
                    lookout_config::Check::Http(h) => Some((t.name.clone(), h.url.clone())),
                    _ => None,
                })
                .collect(),
            store: holding.clone(),
            channel_names: outbox.channel_names(),
            waker: outbox.waker(),
            activity,
            book_stale: false,
            meta: config
                .targets
                .iter()
                .map(|t| (t.name.clone(), (t.group.clone(), t.alert.clone())))
                .chain(config.logs.iter().map(|l| (l.name.clone(), (l.group.clone(), l.alert.clone()))))
                .collect(),
            routes: config.routes.clone(),
            group_waits: config.default_group_waits(),
            without_metrics: config.targets.iter().filter(|t| !t.metrics).map(|t| t.name.clone()).collect(),
            keep_readings: crate::server_curves::charted(&config.targets)
                .into_iter()
                .map(|(t, _)| t.name.clone())
                .collect(),
            depends_on: parents(&config).collect(),
            parents: parents_of,
            machines: machines::Machines { config: store.is_shared().then(|| config.clone()), looked: None },
            followers: config.logs.iter().fold(HashMap::new(), |mut f, l| {
                if let Some(leader) = &l.follows {
                    f.entry(leader.clone()).or_insert_with(Vec::new).push(l.name.clone());
                }
                f
            }),
            reminders: Reminders::default(),
            metrics,
            relay: relay::Relay::new(store.is_shared(), config.agent.name.clone()),
            leading: None,
        };
        // On a shared store only the leader closes alerts of targets its config lacks (when it takes the lead):
        // an agent started with another file must not close the others' alerts.
        if !store.is_shared() {
            pipeline.retire(retired).await.map_err(start_error("cannot record a retired target"))?;
        }
        let me = crate::cluster::agent_info(&config);
        Ok(Monitor { config, store, health, holding, redo, pipeline, outbox, me })
    }

    /// Runs probes, log sources, the pipeline, the outbox and pruning until `shutdown` turns true.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut sources = JoinSet::new();
        let (tx, rx) = mpsc::channel::<Event>(EVENT_QUEUE);
        let location = self.config.agent.location.clone();
        let (assign, assigned) = watch::channel(None);
        sources.spawn(crate::checks::run(
            self.store.clone(),
            self.me.clone(),
            crate::checks::targets_at(&self.config, &location),
            assign,
            shutdown.clone(),
        ));
        let (pause, paused) = watch::channel(Arc::default());
        sources.spawn(crate::pause::watch(self.store.clone(), pause, shutdown.clone()));
        let here: Arc<str> = location.as_str().into();
        // This machine's own targets are always this agent's (`None`: no share; the sender's end, dropped, keeps it).
        let (_, always) = watch::channel(None);
        for (i, target) in self.config.targets.iter().enumerate().filter(|(_, t)| t.probed_from(&location)) {
            let assigned = if target.machine.is_some() { always.clone() } else { assigned.clone() };
            let target = match say_where_from(target, &location) {
                Some(own) => loops::TargetRef::Own(Box::new(own)),
                None => loops::TargetRef::Shared(self.config.clone(), i),
            };
            sources.spawn(loops::probe(
                target,
                here.clone(),
                assigned,
                paused.clone(),
                tx.clone(),
                shutdown.clone(),
                self.pipeline.metrics.clone(),
            ));
        }
        // A [[log]] pinned to another agent is that agent's: its files are on its machine.
        for source in self.config.logs.iter().filter(|l| l.read_by(&self.config.agent.name)).cloned() {
            sources.spawn(crate::log_source::run(source, self.store.clone(), tx.clone(), shutdown.clone()));
        }
        drop(tx);
        self.run_with(rx, sources, shutdown).await;
    }

    /// Runs the pipeline, the outbox and pruning over the events the caller sends instead of the configured
    /// probes and log sources, until `shutdown` turns true: how a benchmark puts a storm through the real
    /// pipeline and store without a network.
    pub async fn run_on(self, events: mpsc::Receiver<Event>, shutdown: watch::Receiver<bool>) {
        self.run_with(events, JoinSet::new(), shutdown).await;
    }

    async fn run_with(self, rx: mpsc::Receiver<Event>, mut tasks: JoinSet<()>, shutdown: watch::Receiver<bool>) {
        let Monitor { config, store, health, holding, redo, mut pipeline, outbox, me } = self;
        // The leader alone decides (the engine), sends and rolls up; one machine leads at once (crate::cluster).
        let (lead_tx, leading) = watch::channel(false);
        pipeline.leading = Some(leading.clone());
        tasks.spawn(crate::cluster::run(store.clone(), me, health, lead_tx, shutdown.clone()));
        tasks.spawn(crate::cluster::while_leading(leading.clone(), shutdown.clone(), move |stop| {
            outbox.clone().run(stop)
        }));
        tasks.spawn(holding.write_held(shutdown.clone()));
        let (retention, raw_retention) = (config.store.retention, config.store.raw_retention);
        let prune_store = store.clone();
        tasks.spawn(crate::cluster::while_leading(leading, shutdown.clone(), move |stop| {
            loops::prune(prune_store.clone(), retention, raw_retention, stop)
        }));
        // Probes in flight at a stop end within their timeout; their results get that long and 5 s more.
        let drain = config.targets.iter().map(|t| t.timeout).max().unwrap_or_default() + STOP_GRACE;
        pipeline.consume(rx, redo, shutdown, drain).await;
        while tasks.join_next().await.is_some() {}
    }
}

/// Lets an HTTP target's server see which location probes it (`User-Agent: lookout/0.x (location eu)`) when
/// agents are in several places and the target sets no User-Agent of its own: its logs then tell a regional
/// fault apart.
/// The target with that header, or `None` when it stays as configured.
fn say_where_from(target: &lookout_config::Target, location: &str) -> Option<lookout_config::Target> {
    if location == lookout_config::DEFAULT_LOCATION {
        return None;
    }
    let lookout_config::Check::Http(h) = &target.check else { return None };
    if h.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
        return None;
    }
    let mut own = target.clone();
    if let lookout_config::Check::Http(h) = &mut own.check {
        h.headers.push(("User-Agent".into(), format!("lookout/{} (location {location})", env!("CARGO_PKG_VERSION"))));
    }
    Some(own)
}

/// Each target's and log source's parents (`depends_on`; a warning level's is its source).
fn parents(config: &Config) -> impl Iterator<Item = (String, Vec<String>)> + '_ {
    let targets = config.targets.iter().map(|t| (t.name.clone(), t.depends_on.clone()));
    targets.chain(config.logs.iter().map(|l| (l.name.clone(), l.depends_on.clone())))
}

/// Where each target and log source looks for a root cause: a target's `[target.diagnose]`, a log source's error
/// log (read for 2 s at most).
fn diagnose_specs(config: &Config) -> HashMap<String, DiagnoseSpec> {
    let mut specs: HashMap<String, DiagnoseSpec> =
        config.targets.iter().filter_map(|t| Some((t.name.clone(), t.diagnose.clone()?))).collect();
    for l in &config.logs {
        if let Some(error_log) = &l.error {
            specs.insert(
                l.name.clone(),
                DiagnoseSpec {
                    error_logs: vec![error_log.clone()],
                    error_format: l.error_format,
                    processes: Vec::new(),
                    pid_files: Vec::new(),
                    duration: Duration::from_secs(2),
                    agent: l.agent.clone(),
                },
            );
        }
    }
    specs
}
