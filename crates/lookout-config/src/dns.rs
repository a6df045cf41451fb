//! `dns = { server, name, type }` and `icmp = "host"`: the probe kinds that speak neither TCP nor HTTP, checked at
//! load so that a typo in a record type or a server address is a located error, not a failing probe at 3 a.m.

use std::fmt;

use lookout_core::url::{check_host, parse_port, split_authority};

use crate::At;
use crate::error::ConfigError;
use crate::raw::RawDns;

/// One DNS question sent to one server over UDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsCheck {
    /// `host:port` of the server (port 53 when not written); IPv6 as `[::1]:53`.
    pub server: String,
    /// The name asked about, e.g. `example.test`.
    pub name: String,
    pub record: RecordType,
}

/// The record types a DNS target may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Ptr,
    Soa,
    Srv,
    Txt,
}

impl RecordType {
    pub const ALL: [RecordType; 9] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Ns,
        RecordType::Ptr,
        RecordType::Soa,
        RecordType::Srv,
        RecordType::Txt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Ns => "NS",
            RecordType::Ptr => "PTR",
            RecordType::Soa => "SOA",
            RecordType::Srv => "SRV",
            RecordType::Txt => "TXT",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn validate_dns(raw: &RawDns, section: &str, at: &At<'_>) -> Result<DnsCheck, ConfigError> {
    let server = raw.server.get_ref();
    let fail = |why: String| {
        at(
            raw.server.span(),
            format!("server = {server:?} in dns of {section}: {why}; write e.g. \"127.0.0.1:53\" or \"[::1]:5353\""),
        )
    };
    let parts = split_authority(server);
    if parts.userinfo.is_some() || server.contains('/') {
        return Err(fail("is not host[:port]".into()));
    }
    check_host(parts.host).map_err(&fail)?;
    let server = match parse_port(parts.port).map_err(&fail)? {
        Some(_) => server.clone(),
        None => format!("{}:53", parts.host),
    };

    let name = raw.name.get_ref().trim();
    let name_ok = !name.is_empty()
        && name.len() <= 254
        && name.strip_suffix('.').unwrap_or(name).split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !name_ok && name != "." {
        return Err(at(
            raw.name.span(),
            format!(
                "name = {:?} in dns of {section} is not a domain name (labels of letters, digits, - and _, up to 63 \
                 characters each), e.g. \"example.test\"",
                raw.name.get_ref()
            ),
        ));
    }

    let record = match &raw.record {
        None => RecordType::A,
        Some(t) => {
            let wanted = t.get_ref().trim().to_ascii_uppercase();
            match RecordType::ALL.iter().find(|r| r.as_str() == wanted) {
                Some(r) => *r,
                None => {
                    let known: Vec<&str> = RecordType::ALL.iter().map(|r| r.as_str()).collect();
                    let hint = known
                        .iter()
                        .map(|k| (strsim::damerau_levenshtein(&wanted, k), *k))
                        .filter(|(d, _)| *d <= 1)
                        .min_by_key(|(d, _)| *d)
                        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
                        .unwrap_or_default();
                    return Err(at(
                        t.span(),
                        format!(
                            "type = {:?} in dns of {section} is not a record type lookout asks for{hint}; known: {}",
                            t.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    Ok(DnsCheck { server, name: name.to_string(), record })
}

/// `icmp = "host"`: a host name or address, no port.
pub(crate) fn validate_icmp(
    text: &str,
    span: std::ops::Range<usize>,
    section: &str,
    at: &At<'_>,
) -> Result<String, ConfigError> {
    let host = text.trim();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    // An unbracketed IPv6 address is fine here: there is no port to confuse it with.
    if bare.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(bare.to_string());
    }
    if host.contains(':') {
        return Err(at(
            span,
            format!("icmp = {text:?} in {section}: ping needs a host without a port, e.g. \"127.0.0.1\""),
        ));
    }
    check_host(host).map_err(|why| {
        at(span.clone(), format!("icmp = {text:?} in {section}: {why}; write a host or address, e.g. \"127.0.0.1\""))
    })?;
    Ok(host.to_string())
}
