//! DNS probe: one question to one server over UDP, as `dig @server name type` would ask it.
//!
//! The message is built and parsed by `hickory-proto` (no resolver, no runtime of its own): parsing compressed
//! names and record data from the network is where hand-written code goes wrong. The server's response code is
//! `dns_rcode` (`[DNS_RCODE]`), and the answers of the asked type are the `body` (`[BODY]`, as in Gatus), one per
//! line, sorted so that a round-robin server gives the same body every time. An answer at all, whatever its
//! code, is `connected`; no answer within the timeout is a `timeout` error. A truncated (TC) answer is judged on
//! what it carried: lookout does not retry over TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, RecordType as HickoryType};
use lookout_config::{DnsCheck, RecordType};
use lookout_core::{Observation, ProbeError, ProbeErrorKind};
use lookout_http::net;
use tokio::net::UdpSocket;
use tokio::time::{Instant as TokioInstant, timeout_at};

/// Largest UDP answer read (EDNS0's usual ceiling); a longer datagram is cut by the kernel and fails to parse.
const MAX_ANSWER: usize = 4096;

/// Asks `check.server` for `check.name`'s records of `check.record` within `timeout`, filling `obs`.
pub async fn probe(check: &DnsCheck, timeout: Duration, obs: &mut Observation) {
    let start = Instant::now();
    let deadline = TokioInstant::now() + timeout;
    if let Err(e) = ask(check, deadline, obs).await {
        obs.error = Some(e);
    }
    obs.timings.total_ms = net::ms_since(start);
}

async fn ask(check: &DnsCheck, deadline: TokioInstant, obs: &mut Observation) -> Result<(), ProbeError> {
    let (host, port) = net::split_host_port(&check.server)?;
    let server = *net::resolve(&host, port, deadline, obs)
        .await?
        .first()
        .ok_or_else(|| net::error(ProbeErrorKind::Dns, format!("{host:?} has no addresses")))?;
    let name = Name::from_ascii(&check.name)
        .map_err(|e| net::error(ProbeErrorKind::Config, format!("{:?} is not a DNS name: {e}", check.name)))?;
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, hickory_type(check.record)));
    let id = query.metadata.id;
    let bytes =
        query.to_vec().map_err(|e| net::error(ProbeErrorKind::Config, format!("cannot encode the DNS query: {e}")))?;

    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let io = |what: &str, e: std::io::Error| net::error(ProbeErrorKind::Io, format!("{what} {server}: {e}"));
    let socket = UdpSocket::bind(local).await.map_err(|e| io("cannot open a UDP socket for", e))?;
    // `connect` makes the kernel drop datagrams from anyone but the server, and report its ICMP port
    // unreachable as ECONNREFUSED on the next receive.
    socket.connect(server).await.map_err(|e| io("cannot address", e))?;
    let sent = Instant::now();
    socket.send(&bytes).await.map_err(|e| io("cannot send the query to", e))?;

    let mut buf = vec![0u8; MAX_ANSWER];
    let answer = loop {
        let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => {
                return Err(net::error(
                    ProbeErrorKind::Timeout,
                    format!("no DNS answer from {server} for {} {} in time", check.name, check.record),
                ));
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(net::error(
                    ProbeErrorKind::Refused,
                    format!("{server}: nothing listens there (ICMP port unreachable)"),
                ));
            }
            Ok(Err(e)) => return Err(io("cannot read the answer from", e)),
            Ok(Ok(n)) => n,
        };
        // Another message (a late answer to an earlier query on a reused port) is not ours: keep waiting.
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == id && m.metadata.message_type == MessageType::Response => break m,
            Ok(_) => continue,
            Err(e) => {
                return Err(net::error(
                    ProbeErrorKind::Protocol,
                    format!("{server} sent a malformed DNS message: {e}"),
                ));
            }
        }
    };
    obs.timings.first_byte_ms = Some(net::ms_since(sent));
    obs.connected = true;
    obs.dns_rcode = Some(u16::from(answer.metadata.response_code));
    let wanted = hickory_type(check.record);
    let mut lines: Vec<String> =
        answer.answers.iter().filter(|r| r.record_type() == wanted).map(|r| render(&r.data)).collect();
    lines.sort();
    obs.body = lines.join("\n");
    Ok(())
}

fn hickory_type(r: RecordType) -> HickoryType {
    match r {
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
        RecordType::Cname => HickoryType::CNAME,
        RecordType::Mx => HickoryType::MX,
        RecordType::Ns => HickoryType::NS,
        RecordType::Ptr => HickoryType::PTR,
        RecordType::Soa => HickoryType::SOA,
        RecordType::Srv => HickoryType::SRV,
        RecordType::Txt => HickoryType::TXT,
    }
}

/// One answer as `dig +short` shows it, without the root's trailing dot: `127.0.0.1`, `alias.example.test`,
/// `10 mail.example.test`, TXT strings joined as they are concatenated for SPF.
fn render(data: &RData) -> String {
    let name = |n: &Name| {
        let s = n.to_ascii();
        if s.len() > 1 { s.trim_end_matches('.').to_string() } else { s }
    };
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name(&n.0),
        RData::NS(n) => name(&n.0),
        RData::PTR(n) => name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect(),
        other => other.to_string().split_whitespace().map(|w| w.trim_end_matches('.')).collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};

    #[test]
    fn answers_read_as_dig_short_shows_them() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        assert_eq!(render(&RData::A(A([127, 0, 0, 7].into()))), "127.0.0.7");
        assert_eq!(render(&RData::CNAME(CNAME(n("www.example.test.")))), "www.example.test");
        assert_eq!(render(&RData::MX(MX::new(10, n("mail.example.test.")))), "10 mail.example.test");
        assert_eq!(render(&RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()]))), "v=spf1 -all");
    }

    #[test]
    fn response_codes_have_dig_names() {
        let name = |c: ResponseCode| lookout_core::dns_rcode_name(u16::from(c));
        assert_eq!(name(ResponseCode::NoError), "NOERROR");
        assert_eq!(name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(name(ResponseCode::Refused), "REFUSED");
        assert_eq!(name(ResponseCode::Unknown(4000)), "RCODE4000");
    }
}
