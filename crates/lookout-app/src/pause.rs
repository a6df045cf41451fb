//! Pausing a target: its probes stop and nothing is sent about it until it is resumed — for planned work on a
//! server, or one being retired. A pause is a silence on `target=NAME` marked as a pause (the store keeps who,
//! when and why, and a resume expires it), so every message about the target is held back by the silence rules
//! the outbox already applies, and the probe loops skip it ([`watch`] tells them). Its alert keeps the state it
//! had: a firing one stays open (nobody is reminded) and resolves after a resume once checks pass again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use lookout_core::Timestamp;
use lookout_store::{NewSilence, Silence, Store};
use tokio::sync::watch;

/// How long a pause lasts if nobody resumes it: "until resumed", in practice.
const UNTIL_RESUMED: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How soon the probe loops learn of a pause or a resume made through the store (by the web, another agent).
pub const REFRESH: Duration = Duration::from_secs(1);

/// The targets paused now, for the probe loops.
pub type Paused = watch::Receiver<Arc<HashSet<String>>>;

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("no target {0:?} in the configuration")]
    NotFound(String),
    #[error("{0} is already paused (by {1})")]
    AlreadyPaused(String, String),
    #[error("{0} is not paused")]
    NotPaused(String),
    #[error(transparent)]
    Store(#[from] lookout_store::StoreError),
}

/// The target a pause silence is for: its one matcher `target=NAME`.
fn target_of(s: &Silence) -> Option<&str> {
    match s.matchers.as_slice() {
        [m] if s.pause => m.strip_prefix("target=").map(|t| t.trim_matches('"')),
        _ => None,
    }
}

/// The pauses in force at `now` among `silences`, by target.
pub fn paused(silences: &[Silence], now: Timestamp) -> BTreeMap<String, Silence> {
    silences.iter().filter(|s| s.active(now)).filter_map(|s| Some((target_of(s)?.to_string(), s.clone()))).collect()
}

/// Pauses `target` (one of `known`), by `by`, saying why.
pub async fn pause<S: Store>(
    store: &S,
    known: &[&str],
    target: &str,
    by: &str,
    comment: Option<&str>,
) -> Result<Silence, PauseError> {
    if !known.contains(&target) {
        return Err(PauseError::NotFound(target.to_string()));
    }
    let now = Timestamp::now();
    if let Some(p) = paused(&store.silences(false, now).await?, now).remove(target) {
        return Err(PauseError::AlreadyPaused(target.to_string(), p.created_by));
    }
    let comment = comment.map(str::trim).filter(|c| !c.is_empty()).unwrap_or("paused");
    let id = store
        .add_silence(NewSilence {
            matchers: vec![format!("target={target}")],
            starts_at: now,
            ends_at: now.plus(UNTIL_RESUMED),
            created_by: by.to_string(),
            comment: comment.to_string(),
            pause: true,
        })
        .await?;
    // Read back for what the store set (its creation time): the caller shows the stored pause.
    let stored = store.silences(false, now).await?.into_iter().find(|s| s.id == id);
    stored.ok_or_else(|| {
        let message = format!("pause #{id} of {target} was written but is not in force when read back");
        PauseError::Store(lookout_store::StoreError::Query { op: "read the pause back", message })
    })
}

/// Resumes `target`: its pause silence expires now, and its probes start again within [`REFRESH`].
pub async fn resume<S: Store>(store: &S, target: &str) -> Result<(), PauseError> {
    let now = Timestamp::now();
    let Some(p) = paused(&store.silences(false, now).await?, now).remove(target) else {
        return Err(PauseError::NotPaused(target.to_string()));
    };
    store.expire_silence(p.id, now).await?;
    Ok(())
}

/// Publishes the paused targets on `tx` every [`REFRESH`] until `shutdown`; when the store cannot be read the
/// last set stands (probes neither stop nor start on a store fault).
pub async fn watch<S: Store>(
    store: Arc<S>,
    tx: watch::Sender<Arc<HashSet<String>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = Timestamp::now();
        if let Ok(silences) = store.silences(false, now).await {
            let names: HashSet<String> = paused(&silences, now).into_keys().collect();
            tx.send_if_modified(|current| {
                let changed = **current != names;
                if changed {
                    *current = Arc::new(names);
                }
                changed
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(matchers: &[&str], pause: bool, ends: i64) -> Silence {
        Silence {
            id: 1,
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            starts_at: Timestamp(0),
            ends_at: Timestamp(ends),
            created_by: "alice".into(),
            comment: "work".into(),
            created_at: Timestamp(0),
            expired_at: None,
            pause,
        }
    }

    #[test]
    fn only_a_pause_on_one_target_in_force_pauses_it() {
        let now = Timestamp(1000);
        let all = [
            silence(&["target=shop"], true, 2000),
            silence(&["target=blog"], false, 2000),
            silence(&["target=old"], true, 500),
            silence(&["group=x", "target=y"], true, 2000),
        ];
        let names: Vec<String> = paused(&all, now).into_keys().collect();
        assert_eq!(names, ["shop"]);
    }
}
