//! The other agents' machines (several agents on one store): their host and process targets are learnt from
//! their heartbeats (see [`crate::host`]) and judged like this agent's own — at start, on taking the lead, and
//! when a result comes for a machine target not known yet (an agent that joined later).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_config::{Config, Target};
use lookout_core::Event;
use lookout_store::Store;

use super::consume::Pipeline;

/// Looking again for a machine not known yet waits this long after the last look, so a stray result (an agent
/// with another configuration) does not cost a query per event.
const LOOK_AGAIN: Duration = Duration::from_secs(10);

/// What the pipeline keeps of the other machines.
#[derive(Debug, Default)]
pub(super) struct Machines {
    /// `None` on one machine: there are no others.
    pub(super) config: Option<Arc<Config>>,
    pub(super) looked: Option<Instant>,
}

impl<S: Store> Pipeline<S> {
    /// Registers targets learnt while running: judged, grouped, labelled, charted and depended on as configured
    /// ones are. A name already known is left as it is.
    pub(super) fn learn(&mut self, targets: Vec<Target>) {
        let charted: Vec<String> =
            crate::server_curves::charted(&targets).into_iter().map(|(t, _)| t.name.clone()).collect();
        for t in targets {
            if self.meta.contains_key(&t.name) {
                continue;
            }
            tracing::info!(target = %t.name, machine = t.machine.as_deref().unwrap_or(""), "Watching another agent's machine.");
            self.engine.add_target(&t.name, t.conditions.clone(), t.policy);
            self.engine.set_group(&t.name, &t.group);
            self.meta.insert(t.name.clone(), (t.group.clone(), t.alert.clone()));
            if !t.depends_on.is_empty() {
                self.parents.insert(t.name.clone(), t.depends_on.clone());
            }
            self.depends_on.insert(t.name.clone(), t.depends_on);
        }
        self.keep_readings.extend(charted);
    }

    /// Learns the machines the store's agents describe; `force` looks even if it looked a moment ago.
    pub(super) async fn learn_machines(&mut self, force: bool) {
        let Some(config) = self.machines.config.clone() else { return };
        if !force && self.machines.looked.is_some_and(|t| t.elapsed() < LOOK_AGAIN) {
            return;
        }
        self.machines.looked = Some(Instant::now());
        match self.store.agents().await {
            Ok(agents) => self.learn(crate::host::others(&config, &agents)),
            Err(e) => tracing::warn!(error = %e, "Cannot read the agents to learn their machines; trying again later."),
        }
    }

    /// Whether `event` is about a machine target not known yet: worth a look at the agents.
    pub(super) fn unknown_machine(&self, event: &Event) -> bool {
        match event {
            Event::Probe(obs) => {
                self.machines.config.is_some()
                    && obs.kind == lookout_core::ProbeKind::Host
                    && !self.meta.contains_key(&obs.target)
            }
            Event::Log(_) => false,
        }
    }
}
