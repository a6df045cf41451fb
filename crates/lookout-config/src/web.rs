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
    /// Host names (lower case, without port) the web side answers to besides IP literals and `localhost`: a
    /// request naming any other `Host` is refused, so a DNS-rebinding page cannot read the API.
    pub allowed_hosts: Vec<String>,
    /// At most this many open web connections (default 1024), and never more than half the process's descriptor
    /// limit: probes, channels and the store keep the other half.
    pub max_connections: Option<usize>,
}

/// The environment variable that overrides `[web] listen` for one agent.
pub const LISTEN_ENV: &str = "LOOKOUT_WEB_LISTEN";

/// `env` resolves secrets (tokens); `plain_env` the agent's own settings (`LOOKOUT_WEB_LISTEN`), read by every command.
pub(crate) fn web_config(
    w: raw::RawWeb,
    env: EnvLookup<'_>,
    plain_env: EnvLookup<'_>,
    at: &At<'_>,
) -> Result<WebConfig, ConfigError> {
    // Several agents on one host (or a container) share the file but not the port: the environment may say.
    let from_env = plain_env(LISTEN_ENV).filter(|v| !v.trim().is_empty());
    let listen = match (&from_env, &w.listen) {
        (Some(v), _) => v.trim().parse().map_err(|_| ConfigError::Env {
            message: format!("${LISTEN_ENV} is not an address: write e.g. 127.0.0.1:9899"),
        })?,
        (None, Some(l)) => l.get_ref().parse().map_err(|_| {
            at(
                l.span(),
                format!("listen = {:?} in [web] is not an address: write e.g. \"127.0.0.1:9898\"", l.get_ref()),
            )
        })?,
        (None, None) => std::net::SocketAddr::from(([127, 0, 0, 1], 9898)),
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
    let mut allowed_hosts = Vec::new();
    for h in w.allowed_hosts.iter().flatten() {
        let name = h.get_ref().trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(at(
                h.span(),
                format!(
                    "allowed_hosts in [web]: {:?} is not a host name; write names only, e.g. \"lookout.example.com\" (no scheme, port or path)",
                    h.get_ref()
                ),
            ));
        }
        allowed_hosts.push(name);
    }
    let max_connections = match &w.max_connections {
        Some(n) if !(16..=1_000_000).contains(n.get_ref()) => {
            return Err(at(n.span(), format!("max_connections = {} in [web] must be from 16 to 1000000", n.get_ref())));
        }
        Some(n) => Some(*n.get_ref() as usize),
        None => None,
    };
    Ok(WebConfig {
        enabled: w.enabled.unwrap_or(true),
        listen,
        tokens,
        public_reads: w.public_reads.unwrap_or(true),
        allowed_hosts,
        max_connections,
    })
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(web: &str) -> Result<Config, String> {
        let text = format!("[web]\n{web}\n");
        Config::parse(&text, std::path::Path::new("/etc/lookout.toml"), &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn allowed_hosts_and_max_connections_are_checked_where_written() {
        let cfg = parse("allowed_hosts = [\"Lookout.Example.com.\"]\nmax_connections = 64").unwrap();
        assert_eq!(cfg.web.allowed_hosts, ["lookout.example.com"]);
        assert_eq!(cfg.web.max_connections, Some(64));
        let e = parse("allowed_hosts = [\"https://lookout.example.com/\"]").unwrap_err();
        assert!(e.contains("/etc/lookout.toml:2") && e.contains("allowed_hosts") && e.contains("no scheme"), "{e}");
        let e = parse("max_connections = 2").unwrap_err();
        assert!(e.contains("/etc/lookout.toml:2") && e.contains("from 16 to 1000000"), "{e}");
        assert_eq!(parse("").unwrap().web.max_connections, None);
    }
}
