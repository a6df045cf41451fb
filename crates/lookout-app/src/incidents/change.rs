//! Changing an incident by hand (acknowledge, note, resolve) while `lookout run` may be changing it too: every
//! write names the revision it read; a refused write is read again and redone.

use lookout_core::{Incident, IncidentChange};
use lookout_engine::IncidentError;
use lookout_store::{Record, Store, StoreError};

/// How often a write refused because the incident changed meanwhile is redone before giving up.
const CONFLICT_RETRIES: u32 = 5;

/// The one retry rule for incident writes (the pipeline's and people's): a conflict is redone a few times from a
/// fresh read; any other error, or a conflict too many, is the caller's.
#[derive(Debug)]
pub struct ConflictRetry {
    left: u32,
}

impl Default for ConflictRetry {
    fn default() -> Self {
        ConflictRetry { left: CONFLICT_RETRIES }
    }
}

impl ConflictRetry {
    /// After a failed write: `Ok` to read again and redo it, the error when it is not a conflict or too many.
    pub fn again(&mut self, error: StoreError) -> Result<(), StoreError> {
        match error {
            StoreError::Conflict { incident } if self.left > 0 => {
                self.left -= 1;
                tracing::info!(%incident, "The incident changed meanwhile; applying the change again.");
                Ok(())
            }
            other => Err(other),
        }
    }
}

/// Why a change by hand was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no incident {0:?}; `lookout incidents` lists them")]
    NotFound(String),
    /// The lifecycle refused it (already acknowledged, already resolved, …).
    #[error("{0}")]
    Refused(#[from] IncidentError),
    #[error("incident {0} kept changing while this change tried to write it; try again")]
    KeptChanging(String),
    #[error("cannot write the incident: {0}")]
    Store(StoreError),
}

/// Reads the incident, applies `f` and writes the change, again from the top if someone changed it meanwhile.
pub async fn change<S: Store>(
    store: &S,
    id: &str,
    f: impl Fn(&Incident) -> Result<IncidentChange, IncidentError>,
) -> Result<IncidentChange, ChangeError> {
    let mut retry = ConflictRetry::default();
    loop {
        let Some(incident) = store.incident(id.to_string()).await.map_err(ChangeError::Store)? else {
            return Err(ChangeError::NotFound(id.to_string()));
        };
        let change = f(&incident)?;
        match store.record(Record { incidents: vec![change.clone()], ..Record::default() }).await {
            Ok(()) => return Ok(change),
            Err(e) => retry.again(e).map_err(|e| match e {
                StoreError::Conflict { .. } => ChangeError::KeptChanging(id.to_string()),
                other => ChangeError::Store(other),
            })?,
        }
    }
}
