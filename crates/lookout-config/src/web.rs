//! `[web]`: where the dashboard, JSON API and `/metrics` listen, and who may read and change things.

use crate::error::ConfigError;
use crate::{At, EnvLookup, Secret, raw};

/// `[web]`: the dashboard, JSON API and `/metrics` inside `lookout run`.
#[derive(Clone, Debug)]
pub struct WebConfig {
    pub enabled: bool,
    /// Default 127.0.0.1:9898: reachable from this host only unless configured.
    pub listen: std::net::SocketAddr,
    /// Bearer tokens that may change things (ack, resolve, silences); none means every change is refused.
    pub tokens: Vec<Secret<String>>,
    /// Whether reads (dashboard, API GETs, /metrics) need no token.
    pub public_reads: bool,
}

pub(crate) fn web_config(w: raw::RawWeb, env: EnvLookup<'_>, at: &At<'_>) -> Result<WebConfig, ConfigError> {
    let listen = match &w.listen {
        Some(l) => l.get_ref().parse().map_err(|_| {
            at(
                l.span(),
                format!("listen = {:?} in [web] is not an address: write e.g. \"127.0.0.1:9898\"", l.get_ref()),
            )
        })?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 9898)),
    };
    let tokens = match &w.tokens_env {
        Some(var) => {
            let value = env(var.get_ref()).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                at(
                    var.span(),
                    format!("environment variable {:?} named by tokens_env in [web] is not set; export it (comma-separated tokens) before starting lookout", var.get_ref()),
                )
            })?;
            value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| Secret(t.to_string())).collect()
        }
        None => Vec::new(),
    };
    Ok(WebConfig { enabled: w.enabled.unwrap_or(true), listen, tokens, public_reads: w.public_reads.unwrap_or(true) })
}
