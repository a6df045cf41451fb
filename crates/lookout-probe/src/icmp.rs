//! ICMP echo ("ping") probe: one echo request, and whether its reply came back within the timeout.
//!
//! It opens an unprivileged ICMP datagram socket (`SOCK_DGRAM` + `IPPROTO_ICMP`, Linux ≥ 3.0), which needs the
//! process's group inside `net.ipv4.ping_group_range` and no privilege at all; where that range excludes it,
//! a raw socket is the fallback, which needs root or `CAP_NET_RAW`. Neither possible is a `config` error that
//! says which sysctl to change. Requests carry a random token so that a reply to another ping process (a raw
//! socket sees every ICMP packet) or to an earlier probe is never taken for ours.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lookout_core::{Observation, ProbeError, ProbeErrorKind};
use lookout_http::net;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::{Instant as TokioInstant, timeout_at};

/// Which kind of ICMP socket was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Datagram,
    Raw,
}

/// Pings `host` once within `timeout`, filling `obs` (`connected` means the echo reply came back; `connect_ms`
/// is the round trip).
pub async fn probe(host: &str, timeout: Duration, obs: &mut Observation) {
    let start = Instant::now();
    let deadline = TokioInstant::now() + timeout;
    match ping(host, deadline, obs).await {
        Ok(rtt) => {
            obs.connected = true;
            obs.timings.connect_ms = Some(rtt);
        }
        Err(e) => obs.error = Some(e),
    }
    obs.timings.total_ms = net::ms_since(start);
}

async fn ping(host: &str, deadline: TokioInstant, obs: &mut Observation) -> Result<f64, ProbeError> {
    let addr = *net::resolve(host, 0, deadline, obs)
        .await?
        .first()
        .ok_or_else(|| net::error(ProbeErrorKind::Dns, format!("{host:?} has no addresses")))?;
    let ip = addr.ip();
    let (socket, kind) = open(ip)?;
    let io = |what: &str, e: std::io::Error| net::error(ProbeErrorKind::Io, format!("{what} {ip}: {e}"));
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| io("cannot register the ICMP socket for", e))?;

    let token: [u8; 8] = fastrand_bytes();
    // A datagram socket's identifier is its local "port", set by the kernel (and filtered on by it); a raw
    // socket's is ours to choose, and replies are told apart by it and the token.
    let ident = u16::from_be_bytes([token[0], token[1]]);
    let seq = u16::from_be_bytes([token[2], token[3]]);
    let request = echo_request(ip.is_ipv6(), ident, seq, &token);
    let sent = Instant::now();
    match timeout_at(deadline, socket.send_to(&request, SocketAddr::new(ip, 0))).await {
        Err(_) => return Err(net::timed_out("sending the echo request")),
        Ok(Err(e)) => return Err(unreachable_or_io(ip, e)),
        Ok(Ok(_)) => {}
    }
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Err(_) => {
                return Err(net::error(ProbeErrorKind::Timeout, format!("no echo reply from {ip} in time")));
            }
            Ok(Err(e)) => return Err(unreachable_or_io(ip, e)),
            Ok(Ok(got)) => got,
        };
        if from.ip() != ip {
            continue;
        }
        if is_our_reply(&buf[..n], ip.is_ipv6(), kind, ident, seq, &token) {
            return Ok(net::ms_since(sent));
        }
    }
}

/// A datagram ICMP socket, or a raw one when datagram sockets are not permitted; non-blocking.
fn open(ip: IpAddr) -> Result<(Socket, Kind), ProbeError> {
    let (domain, protocol) =
        if ip.is_ipv6() { (Domain::IPV6, Protocol::ICMPV6) } else { (Domain::IPV4, Protocol::ICMPV4) };
    let opened = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => Ok((s, Kind::Datagram)),
        Err(dgram) => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(s) => Ok((s, Kind::Raw)),
            Err(raw) => Err(net::error(
                ProbeErrorKind::Config,
                format!(
                    "cannot open an ICMP socket to ping {ip}: datagram socket: {dgram}; raw socket: {raw}. \
                     Allow unprivileged ping for lookout's group with sysctl net.ipv4.ping_group_range \
                     (e.g. \"0 2147483647\"), or give lookout CAP_NET_RAW"
                ),
            )),
        },
    };
    let (socket, kind) = opened?;
    socket
        .set_nonblocking(true)
        .map_err(|e| net::error(ProbeErrorKind::Io, format!("cannot make the ICMP socket non-blocking: {e}")))?;
    Ok((socket, kind))
}

fn unreachable_or_io(ip: IpAddr, e: std::io::Error) -> ProbeError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::HostUnreachable | K::NetworkUnreachable | K::ConnectionRefused => {
            net::error(ProbeErrorKind::Connect, format!("{ip} is unreachable: {e}"))
        }
        _ => net::error(ProbeErrorKind::Io, format!("ping {ip}: {e}")),
    }
}

/// Eight random bytes (identifier, sequence and the payload token), from the std hasher's random keys: no
/// random-number crate for one token per probe.
fn fastrand_bytes() -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish().to_be_bytes()
}

/// An echo request: type 8 (ICMPv6: 128), code 0, checksum, identifier, sequence, then the token.
fn echo_request(v6: bool, ident: u16, seq: u16, token: &[u8; 8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16);
    p.push(if v6 { 128 } else { 8 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(token);
    // ICMPv6's checksum covers a pseudo-header only the kernel knows: it fills it in for both socket kinds.
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 =
        data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet` is the echo reply to our request. A raw IPv4 socket hands over the IP header too (and, on
/// loopback, our own request); a datagram socket's identifier is the kernel's, so only the sequence and the
/// token are compared there.
fn is_our_reply(packet: &[u8], v6: bool, kind: Kind, ident: u16, seq: u16, token: &[u8; 8]) -> bool {
    let icmp = if kind == Kind::Raw && !v6 {
        let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        match packet.get(header..) {
            Some(rest) if header >= 20 => rest,
            _ => return false,
        }
    } else {
        packet
    };
    if icmp.len() < 16 {
        return false;
    }
    let reply_type = if v6 { 129 } else { 0 };
    let same_ident = kind == Kind::Datagram || icmp[4..6] == ident.to_be_bytes();
    icmp[0] == reply_type && icmp[1] == 0 && same_ident && icmp[6..8] == seq.to_be_bytes() && icmp[8..16] == token[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request_verifies_to_zero() {
        let p = echo_request(false, 0x1234, 7, b"lookout!");
        assert_eq!(checksum(&p), 0, "a packet with its checksum in place sums to 0xffff");
        assert_eq!(&p[..2], &[8, 0]);
        // RFC 1071's example bytes.
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }

    #[test]
    fn only_our_reply_is_taken() {
        let token = *b"lookout!";
        let mut reply = echo_request(false, 9, 7, &token);
        reply[0] = 0;
        assert!(is_our_reply(&reply, false, Kind::Datagram, 1, 7, &token), "the kernel owns a datagram socket's id");
        assert!(!is_our_reply(&reply, false, Kind::Raw, 1, 7, &token), "another process's ping on a raw socket");
        assert!(!is_our_reply(&reply, false, Kind::Datagram, 9, 8, &token), "another sequence");
        assert!(!is_our_reply(&reply, false, Kind::Datagram, 9, 7, b"other!!!"), "another token");
        let request = echo_request(false, 9, 7, &token);
        assert!(!is_our_reply(&request, false, Kind::Datagram, 9, 7, &token), "our own request seen on loopback");
        let mut with_ip = vec![0x45u8];
        with_ip.extend_from_slice(&[0; 19]);
        with_ip.extend_from_slice(&reply);
        assert!(is_our_reply(&with_ip, false, Kind::Raw, 9, 7, &token));
        assert!(!is_our_reply(&with_ip[..25], false, Kind::Raw, 9, 7, &token), "short packets are ignored");
        assert!(!is_our_reply(&[], false, Kind::Raw, 9, 7, &token));
    }
}
