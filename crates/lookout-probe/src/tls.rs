//! TLS certificate probe: connect, complete a handshake (the client side lives in [`lookout_http::tls`]) and
//! read the leaf's `notAfter`.

use std::time::{Duration, Instant};

use lookout_core::Observation;
use lookout_http::net;
use lookout_http::tls::handshake;
use tokio::time::Instant as TokioInstant;

/// Connects to `address` and completes a TLS handshake, filling `obs` (`connected` means the handshake
/// succeeded).
pub async fn probe(address: &str, verify: bool, timeout: Duration, obs: &mut Observation) {
    let start = Instant::now();
    let deadline = TokioInstant::now() + timeout;
    let result = async {
        let (host, port) = net::split_host_port(address)?;
        let tcp = net::connect(&host, port, deadline, obs).await?;
        handshake(tcp, &host, verify, deadline, obs).await
    }
    .await;
    match result {
        Ok(_) => obs.connected = true,
        Err(e) => obs.error = Some(e),
    }
    obs.timings.total_ms = net::ms_since(start);
}
