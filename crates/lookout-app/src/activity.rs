//! What `lookout run` did, announced on a broadcast channel for whoever watches (the demo narrates it, the
//! dashboard refreshes on it). It lives below both the pipeline, which sends it, and the web, which listens.

use lookout_core::{IncidentStatus, TimelineEntry, Transition};

/// One thing the pipeline did.
#[derive(Clone, Debug)]
pub enum Activity {
    Checked {
        target: String,
        ok: bool,
        status: Option<u16>,
        latency_ms: f64,
        reason: Option<String>,
    },
    Transition(Transition),
    /// An incident was opened, joined or resolved: its id, status and the timeline entries the change added.
    Incident {
        id: String,
        /// Whether this change opened it.
        opened: bool,
        status: IncidentStatus,
        entries: Vec<TimelineEntry>,
    },
}

/// The sending side, as the pipeline holds it.
pub type ActivitySender = tokio::sync::broadcast::Sender<Activity>;
