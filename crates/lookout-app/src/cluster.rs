//! Membership and leadership among the agents that share one store.
//!
//! Every agent beats every [`HEARTBEAT_EVERY`] (its row in `agents`: name, location, version, config hash) and
//! tries to take or renew the leader lease for [`LEADER_TTL`]. One statement decides who holds it, by the store's
//! clock, so two agents cannot both win and clocks that disagree do not matter. The leader alone runs what must
//! happen once: sending notifications and rolling up old results. When it dies the lease runs out and another
//! agent takes over within `LEADER_TTL + HEARTBEAT_EVERY` (13 s); a clean stop hands it over at once.
//!
//! No session state (advisory locks) is used, so PgBouncer in transaction pooling works. One machine on SQLite is
//! a cluster of one ([`Store::is_shared`] is false): it leads from the start without asking the store, and its
//! heartbeat (for `lookout agents`) is skipped while the store refuses writes, so a locked or read-only file never
//! delays alerts or starves the dashboard's reads of the one connection.
//!
//! When a shared store cannot be reached, an agent keeps the role it had: the leader goes on sending from memory
//! (the holding store) rather than fall silent. A follower that has not heard from the store for longer than a
//! lease lasts takes the lead too, since nobody can hold it any longer: if the store is away for everyone, every
//! agent alerts from memory rather than none. Two agents may then send for a while; a monitor must be the last
//! thing to fall silent, so this errs on the side of sending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_config::Config;
use lookout_core::Timestamp;
use lookout_store::{AgentInfo, LEADER_LEASE, Store};
use tokio::sync::watch;

/// How often an agent says it is alive and renews (or tries for) the leader lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);

/// How long a leader lease lasts without renewal: three missed heartbeats and a bit.
pub const LEADER_TTL: Duration = Duration::from_secs(10);

/// This agent as it introduces itself to the others.
pub fn agent_info(config: &Config) -> AgentInfo {
    AgentInfo {
        name: config.agent.name.clone(),
        location: config.agent.location.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        config_hash: config_hash(config),
        started_at: Timestamp::now(),
        mounts: crate::host::own_mounts(config),
    }
}

/// A short digest of what every agent must agree on: the targets, how they are checked and judged, and where
/// their alerts go. Not the parts that are an agent's own (its `[agent]` table, diagnosis, log files), nor
/// secrets' values. Hex of the first 6 bytes of SHA-256: enough to tell configs apart at a glance.
pub fn config_hash(config: &Config) -> String {
    let mut text = String::new();
    // A machine's own targets differ by machine (its name, its disks): the `[host]` and `[[process]]` they come
    // from are what the agents share.
    // Processes last, wherever they are kept (`lookout agents` reads the file as written; a running agent keeps
    // them aside, see `crate::host`), so both digests agree.
    let own = |t: &&lookout_config::Target| t.machine.is_none();
    let (processes, rest): (Vec<_>, Vec<_>) =
        config.targets.iter().filter(own).partition(|t| crate::host::is_process(t));
    for t in rest.into_iter().chain(processes).chain(&config.processes) {
        text.push_str(&format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}\n",
            t.name, t.check, t.interval, t.timeout, t.conditions, t.policy, t.group, t.alert, t.depends_on
        ));
    }
    text.push_str(&format!("{:?}\n{:?}\n", config.routes, config.host));
    for n in &config.notify {
        text.push_str(&format!("{}\n", n.name));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Beats and contends for the lead until `shutdown`; `leading` tells the rest of the agent whether it leads.
/// At shutdown a leader gives the lease up, so the next agent need not wait for it to run out.
pub async fn run<S: Store>(
    store: Arc<S>,
    me: AgentInfo,
    health: crate::health::Health,
    leading: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !store.is_shared() {
        leading.send_replace(true);
    }
    let mut store_away = false;
    let mut leader_seen: Option<String> = None;
    let mut last_answer = Instant::now();
    let mut name_taken = false;
    loop {
        if !store.is_shared() {
            // A cluster of one: beat (and hold the lease, so `lookout agents` shows who leads) when the store
            // takes writes; the lead never depends on it.
            if health.store().writable
                && store.heartbeat(me.clone()).await.is_ok()
                && let Err(e) = store.acquire_lease(LEADER_LEASE.into(), me.name.clone(), LEADER_TTL).await
            {
                tracing::debug!(error = %e, "Cannot record the leader lease.");
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => continue,
                _ = shutdown.changed() => break,
            }
        }
        let beat = store.heartbeat(me.clone()).await;
        if let Err(lookout_store::StoreError::NameTaken { .. }) = &beat {
            // The store answers, but the name is another running process's: neither lead nor take its lease.
            if !name_taken {
                tracing::error!(agent = %me.name, "Another running agent has this name: this one neither leads nor probes until the name is free. Give each agent its own [agent] name or LOOKOUT_AGENT_NAME.");
                name_taken = true;
            }
            leading.send_if_modified(|l| std::mem::replace(l, false));
            last_answer = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => continue,
                _ = shutdown.changed() => break,
            }
        }
        if std::mem::take(&mut name_taken) {
            tracing::info!(agent = %me.name, "The name is this agent's again.");
        }
        let lease = match beat {
            Ok(()) => store.acquire_lease(LEADER_LEASE.into(), me.name.clone(), LEADER_TTL).await,
            Err(e) => Err(e),
        };
        match lease {
            Ok(lease) => {
                if store_away {
                    tracing::info!("The store answers again: agent heartbeats resumed.");
                    store_away = false;
                }
                let lead = lease.holder == me.name;
                if leader_seen.as_deref() != Some(lease.holder.as_str()) {
                    if lead {
                        tracing::info!(agent = %me.name, location = %me.location, "This agent leads: it sends the notifications.");
                    } else {
                        tracing::info!(agent = %me.name, leader = %lease.holder, "Another agent leads; this one probes and records.");
                    }
                    leader_seen = Some(lease.holder.clone());
                }
                leading.send_if_modified(|l| std::mem::replace(l, lead) != lead);
                last_answer = Instant::now();
            }
            Err(e) => {
                // Keep the role we had (see the module's doc): a leader keeps sending from memory.
                if !store_away {
                    tracing::warn!(error = %e, leading = *leading.borrow(), "Cannot reach the store to beat or renew the leader lease; keeping the current role.");
                    store_away = true;
                }
                if !*leading.borrow() && last_answer.elapsed() > LEADER_TTL {
                    tracing::warn!(agent = %me.name, "The store has been away longer than a leader lease lasts: leading from memory so that alerts keep flowing.");
                    leader_seen = Some(me.name.clone());
                    leading.send_replace(true);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = shutdown.changed() => break,
        }
    }
    if *leading.borrow() {
        if let Err(e) = store.release_lease(LEADER_LEASE.into(), me.name.clone()).await {
            tracing::warn!(error = %e, "Cannot hand over the leader lease; another agent takes it when it runs out.");
        }
        leading.send_replace(false);
    }
    // The name is free at once for the next start of this agent (a crashed one's stays held for a lease's time).
    if !name_taken && let Err(e) = store.leave(me.clone()).await {
        tracing::debug!(error = %e, "Cannot say this agent left; its name is free when its heartbeat is old enough.");
    }
}

/// Runs `task` (made anew each time) while this agent leads, stopping it when the lead is lost or at shutdown.
pub async fn while_leading<F, Fut>(mut leading: watch::Receiver<bool>, mut shutdown: watch::Receiver<bool>, task: F)
where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let running = tokio::spawn(task(stop_rx));
        let done = tokio::select! {
            r = leading.wait_for(|l| !*l) => r.is_err(),
            _ = shutdown.wait_for(|s| *s) => true,
        };
        let _ = stop_tx.send(true);
        let _ = running.await;
        if done || *shutdown.borrow() {
            return;
        }
    }
}
