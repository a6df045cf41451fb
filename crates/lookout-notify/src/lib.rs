//! Notifications: the canonical message ([`Notification`]), the [`Notifier`] trait every channel implements,
//! and the durable [`Outbox`] that delivers messages in order, retrying with backoff until a channel accepts.
//!
//! The outbox stores the channel-independent notification; each channel renders it at send time, so adding a
//! channel never changes what is persisted.

mod message;
mod outbox;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lookout_config::{Notify, NotifyKind};

pub use message::{LastResult, Notification};
pub use outbox::{Backoff, Outbox, OutboxWaker};
pub use webhook::Webhook;

/// Why a send failed; the message is retried.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A delivery channel.
pub trait Notifier: Send + Sync {
    /// The configured channel name.
    fn name(&self) -> &str;
    /// Delivers one message. `key` is the idempotency key; `payload` the stored [`Notification`] JSON.
    fn send<'a>(&'a self, key: &'a str, payload: &'a str) -> SendFuture<'a>;
}

/// Builds the notifier for a configured channel.
pub fn from_config(n: &Notify) -> Arc<dyn Notifier> {
    match &n.kind {
        NotifyKind::Webhook { url, headers } => {
            Arc::new(Webhook::new(n.name.clone(), url.clone(), headers.clone(), n.timeout))
        }
    }
}
