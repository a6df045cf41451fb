//! What lookout knows about its own health, shared between the pipeline (which learns it) and the web (which shows
//! it on the dashboard and `/api/v1/health`).

use std::sync::{Arc, Mutex, PoisonError};

use lookout_core::Timestamp;
use serde::Serialize;

/// Whether the store takes writes, and what lookout holds in memory meanwhile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreHealth {
    pub writable: bool,
    /// When writes started to fail, while they do.
    pub unwritable_since: Option<Timestamp>,
    /// The last write error, while writes fail.
    pub error: Option<String>,
    /// Records (results, transitions, incident changes, messages) waiting in memory for the store.
    pub held_records: usize,
    /// Notifications handled in memory (sent, or waiting to be) that the store has not recorded yet.
    pub held_messages: usize,
    /// Probe results dropped from memory to keep it bounded during a long outage of the store (transitions,
    /// incident changes and notifications are never dropped).
    pub dropped_results: u64,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            writable: true,
            unwritable_since: None,
            error: None,
            held_records: 0,
            held_messages: 0,
            dropped_results: 0,
        }
    }
}

/// A shared, cheap-to-clone view of [`StoreHealth`].
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<Mutex<StoreHealth>>);

impl Health {
    pub fn store(&self) -> StoreHealth {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_store(&self, health: StoreHealth) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }
}
