//! TCP connect probe: can a connection be opened, and how long did it take.

use std::time::{Duration, Instant};

use lookout_core::Observation;
use tokio::time::Instant as TokioInstant;

use lookout_http::net;

/// Connects to `address` (`host:port`) within `timeout`, filling `obs`.
pub async fn probe(address: &str, timeout: Duration, obs: &mut Observation) {
    let start = Instant::now();
    let deadline = TokioInstant::now() + timeout;
    match net::split_host_port(address) {
        Err(e) => obs.error = Some(e),
        Ok((host, port)) => match net::connect(&host, port, deadline, obs).await {
            Ok(_stream) => obs.connected = true,
            Err(e) => obs.error = Some(e),
        },
    }
    obs.timings.total_ms = net::ms_since(start);
}
