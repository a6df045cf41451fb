//! Notifications: the canonical message ([`Notification`]), the [`Notifier`] trait every channel implements,
//! and the durable [`Outbox`] that delivers messages in order, retrying with backoff until a channel accepts.
//!
//! The outbox stores the channel-independent notification; each channel renders it at send time, so adding a
//! channel never changes what is persisted. Channels: [`Webhook`] (JSON or a template), [`Slack`] (Block Kit),
//! [`PagerDuty`] (Events API v2), [`Alertmanager`] (`/api/v2/alerts`) and [`Email`] (SMTP).

mod alertmanager;
mod email;
mod http_post;
mod message;
mod outbox;
mod pagerduty;
pub mod policy;
pub mod route;
mod slack;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lookout_config::{Notify, NotifyKind};

pub use alertmanager::Alertmanager;
pub use email::Email;
pub use message::{LastResult, Meta, Notification};
pub use outbox::{Backoff, Outbox, OutboxWaker, ResultObserver};
pub use pagerduty::PagerDuty;
pub use policy::{Parents, Policy};
pub use route::{Destination, destinations};
pub use slack::Slack;
pub use webhook::Webhook;

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the receiver is down, slow, overloaded (5xx, 429, timeouts).
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help: the receiver refused the message itself (4xx), or the channel is misconfigured.
    /// The message is abandoned, with this reason recorded.
    #[error("{0}")]
    Permanent(String),
}

/// What one send delivers: the messages of one outbox entry (several once grouped), under one idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub key: String,
    pub notifications: Vec<Notification>,
}

/// Alerts named in one line or message before the rest are counted ("and 3 more").
pub(crate) const MAX_LISTED: usize = 10;

impl Delivery {
    /// One line for a delivery of one or several alerts, used by every channel that needs a title or summary:
    /// "3 alerts FIRING in shop: web, api, db".
    pub fn summary(&self) -> String {
        let firing: Vec<&Notification> = self.notifications.iter().filter(|n| n.state == "firing").collect();
        let group = self.notifications.first().map_or("", |n| n.group.as_str());
        let (n, state, list): (usize, &str, Vec<&Notification>) = if firing.is_empty() {
            (self.notifications.len(), "RESOLVED", self.notifications.iter().collect())
        } else {
            (firing.len(), "FIRING", firing)
        };
        let mut names: Vec<&str> = list.iter().map(|n| n.target.as_str()).collect();
        names.dedup();
        let shown = names.iter().take(MAX_LISTED).copied().collect::<Vec<_>>().join(", ");
        let more = names.len().saturating_sub(MAX_LISTED);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        format!("{n} alert{} {state} in {group}: {shown}{more}", if n == 1 { "" } else { "s" })
    }
}

/// Delivered; optionally with something worth recording (e.g. the template failed and the default body went).
pub type Sent = Option<String>;

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendError>> + Send + 'a>>;

/// A delivery channel.
pub trait Notifier: Send + Sync {
    /// The configured channel name.
    fn name(&self) -> &str;
    /// Delivers one outbox entry.
    fn send<'a>(&'a self, delivery: &'a Delivery) -> SendFuture<'a>;
}

/// Builds the notifier for a configured channel.
pub fn from_config(n: &Notify) -> Arc<dyn Notifier> {
    let name = n.name.clone();
    match &n.kind {
        NotifyKind::Webhook { url, headers, template } => {
            Arc::new(Webhook::new(name, url.expose().clone(), headers.clone(), template.clone(), n.timeout))
        }
        NotifyKind::Slack { url } => Arc::new(Slack::new(name, url.expose().clone(), n.timeout)),
        NotifyKind::PagerDuty { url, routing_key } => {
            Arc::new(PagerDuty::new(name, url.clone(), routing_key.expose().clone(), n.timeout))
        }
        NotifyKind::Alertmanager { url, headers, firing_ttl } => {
            Arc::new(Alertmanager::new(name, url.clone(), headers.clone(), *firing_ttl, n.timeout))
        }
        NotifyKind::Email(cfg) => Arc::new(Email::new(name, cfg.clone(), n.timeout)),
    }
}

#[cfg(test)]
mod tests;
