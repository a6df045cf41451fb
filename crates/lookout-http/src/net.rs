//! Name resolution and TCP connect with phase timings and a shared deadline.

use std::net::SocketAddr;
use std::time::Instant;

use lookout_core::{Observation, ProbeError, ProbeErrorKind};
use tokio::net::TcpStream;
use tokio::time::{Instant as TokioInstant, timeout_at};

/// Milliseconds since `start`, as recorded in phase timings.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// A classified probe error.
pub fn error(kind: ProbeErrorKind, message: impl Into<String>) -> ProbeError {
    ProbeError { kind, message: message.into() }
}

/// The error of a deadline that passed during `phase`.
pub fn timed_out(phase: &str) -> ProbeError {
    error(ProbeErrorKind::Timeout, format!("timed out during {phase}"))
}

/// Splits `host:port` (IPv6 as `[::1]:443`).
pub fn split_host_port(address: &str) -> Result<(String, u16), ProbeError> {
    let bad = || error(ProbeErrorKind::Config, format!("{address:?} is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port = lookout_core::url::parse_port(Some(port)).ok().flatten().ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Resolves `host` (skipping DNS for IP literals) and connects to the first address that answers.
/// Records `dns_ms` and `connect_ms` on `obs`.
pub async fn connect(
    host: &str,
    port: u16,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<TcpStream, ProbeError> {
    let addrs = resolve(host, port, deadline, obs).await?;
    let start = Instant::now();
    let mut last = None;
    for addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                last = Some(timed_out("connect"));
                break;
            }
            Ok(Ok(stream)) => {
                obs.timings.connect_ms = Some(*obs.timings.connect_ms.get_or_insert(0.0) + ms_since(start));
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => {
                let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    ProbeErrorKind::Refused
                } else {
                    ProbeErrorKind::Connect
                };
                last = Some(error(kind, format!("connect to {addr}: {e}")));
            }
        }
    }
    Err(last.unwrap_or_else(|| error(ProbeErrorKind::Connect, "no address to connect to")))
}

/// The addresses of `host` (an IP literal as it is), at least one; records `dns_ms` when a lookup was needed.
/// Also used by the DNS and ping probes, which speak UDP and ICMP rather than TCP.
pub async fn resolve(
    host: &str,
    port: u16,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<Vec<SocketAddr>, ProbeError> {
    let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        let start = Instant::now();
        let looked_up = timeout_at(deadline, tokio::net::lookup_host((host, port))).await;
        obs.timings.dns_ms = Some(*obs.timings.dns_ms.get_or_insert(0.0) + ms_since(start));
        match looked_up {
            Err(_) => return Err(timed_out("DNS lookup")),
            Ok(Err(e)) => {
                return Err(error(ProbeErrorKind::Dns, format!("cannot resolve {host:?}: {e}")));
            }
            Ok(Ok(a)) => a.collect(),
        }
    };
    if addrs.is_empty() {
        return Err(error(ProbeErrorKind::Dns, format!("{host:?} has no addresses")));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("127.0.0.1:80").unwrap(), ("127.0.0.1".into(), 80));
        assert_eq!(split_host_port("[::1]:443").unwrap(), ("::1".into(), 443));
        assert_eq!(split_host_port("example.com:8443").unwrap(), ("example.com".into(), 8443));
        assert_eq!(split_host_port("nohost").unwrap_err().kind, ProbeErrorKind::Config);
        assert_eq!(split_host_port(":80").unwrap_err().kind, ProbeErrorKind::Config);
        assert_eq!(split_host_port("h:99999").unwrap_err().kind, ProbeErrorKind::Config);
        assert_eq!(split_host_port("h:0").unwrap_err().kind, ProbeErrorKind::Config);
        assert_eq!(split_host_port("h:").unwrap_err().kind, ProbeErrorKind::Config);
    }
}
