//! The parts of a URL's authority lookout must get right itself, as plain text functions every crate can use
//! (config, the HTTP client, the web pages): credentials written into a URL (`http://user:pass@host/`) are sent
//! as `Authorization: Basic` and never shown, and a port is a number from 1 to 65535 or an error.
//!
//! Why here and not in the `http` crate: `http::Uri` keeps userinfo inside the authority (so it ended up in the
//! `Host` header) and `Uri::port_u16()` answers `None` for a port it cannot read as `u16`, which callers took for
//! "no port" — `http://127.0.0.1:80800/` silently became port 80.

use std::borrow::Cow;
use std::fmt;

/// An authority (`user:pass@host:port`) in its parts, as written (nothing decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorityParts<'a> {
    /// Everything before the last `@`, if there is an `@`.
    pub userinfo: Option<&'a str>,
    /// The host, IPv6 literals with their brackets.
    pub host: &'a str,
    /// The text after the host's `:`, if there is one (possibly empty or not a number).
    pub port: Option<&'a str>,
}

/// Splits an authority into userinfo, host and port text.
pub fn split_authority(authority: &str) -> AuthorityParts<'_> {
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host, port) = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(end) => {
                let rest = &host_port[end + 1..];
                (&host_port[..=end], rest.strip_prefix(':').or(if rest.is_empty() { None } else { Some(rest) }))
            }
            None => (host_port, None),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    AuthorityParts { userinfo, host, port }
}

/// Reads a port written in a URL or a `host:port`: `Ok(None)` when none is written (or it is empty, as RFC 3986
/// allows), the number when it is 1–65535, and a message saying why otherwise.
pub fn parse_port(port: Option<&str>) -> Result<Option<u16>, String> {
    let Some(p) = port.filter(|p| !p.is_empty()) else { return Ok(None) };
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        // Not echoed: with an unencoded '/' in a password (`u:pa/ss@host`) this "port" is part of the password.
        return Err("the port is not a number from 1 to 65535".into());
    }
    match p.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(Some(n as u16)),
        _ => Err(format!("port {p} is out of range: use 1 to 65535")),
    }
}

/// Checks a host as written in a URL or a `host:port`: an IPv6 literal in brackets, an IPv4 address, or a DNS
/// name (letters, digits, `-` and `_` in labels of 1–63 characters, at most 253 in all). Says why otherwise.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<std::net::Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err(format!("host {host:?} is not an IPv6 address in brackets, e.g. [::1]")),
        };
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<std::net::Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("host {host:?} is not a valid IPv4 address")),
        };
    }
    if host.contains(':') {
        return Err(format!("host {host:?} looks like an IPv6 address: write it in brackets, e.g. [::1]"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "host {host:?} is not a valid host name (letters, digits, '-' and '.'; international names in punycode)"
        ));
    }
    Ok(())
}

/// The user and password of an authority's userinfo, percent-decoded, for `Authorization: Basic`. `None` when
/// the authority has no userinfo or it is empty (`http://@host/`).
pub fn credentials(authority: &str) -> Option<(String, String)> {
    let userinfo = split_authority(authority).userinfo.filter(|u| !u.is_empty())?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some((percent_decode(user), percent_decode(password)))
}

/// Decodes `%XX` escapes (invalid escapes are kept as written); bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with its credentials hidden: `http://user:pass@host/` → `http://user:***@host/`, and a user alone
/// (often a token, `https://TOKEN@host/`) → `https://***@host/`. Text without userinfo comes back as it is.
pub fn redact(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..end].rfind('@') {
        Some(at) => at,
        // A password with an unencoded '/', '?' or '#' ends the authority early (`u:pa/ss@host`): what is left
        // is no host:port, and the '@' comes later.
        None if parse_port(split_authority(&rest[..end]).port).is_err() => match rest.rfind('@') {
            Some(at) => at,
            None => return Cow::Borrowed(url),
        },
        None => return Cow::Borrowed(url),
    };
    let userinfo = &rest[..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) if !user.is_empty() => format!("{user}:***"),
        _ if userinfo.is_empty() => String::new(),
        _ => "***".to_string(),
    };
    Cow::Owned(format!("{}{shown}{}", &url[..start], &rest[at..]))
}

/// Displays a URL with [`redact`]: for log lines, errors, pages and API answers.
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.0))
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*redact(self.0), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_userinfo_host_and_port() {
        let p = split_authority("us%20er:p@ss@host:8080");
        assert_eq!((p.userinfo, p.host, p.port), (Some("us%20er:p@ss"), "host", Some("8080")));
        let p = split_authority("[::1]:99999");
        assert_eq!((p.userinfo, p.host, p.port), (None, "[::1]", Some("99999")));
        let p = split_authority("[::1]");
        assert_eq!((p.host, p.port), ("[::1]", None));
        let p = split_authority("host");
        assert_eq!((p.host, p.port), ("host", None));
    }

    #[test]
    fn ports_are_1_to_65535_or_an_error() {
        assert_eq!(parse_port(None), Ok(None));
        assert_eq!(parse_port(Some("")), Ok(None));
        assert_eq!(parse_port(Some("8080")), Ok(Some(8080)));
        assert_eq!(parse_port(Some("65535")), Ok(Some(65535)));
        for bad in ["0", "65536", "80800", "99999", "-1", "+80", "8a", "18446744073709551617"] {
            assert!(parse_port(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        for good in ["127.0.0.1", "[::1]", "example.com", "example.com.", "my_host", "a-b.c"] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        for bad in ["", "999.1.1.1", "127.0.0.1.5", "[::1", "[nope]", "::1", "-a.com", "a..b", "ex%41mple"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(credentials("admin:hunter2@host"), Some(("admin".into(), "hunter2".into())));
        assert_eq!(credentials("us%20er:p%40ss%3A@host:80"), Some(("us er".into(), "p@ss:".into())));
        assert_eq!(credentials("token@host"), Some(("token".into(), String::new())));
        assert_eq!(credentials("@host"), None);
        assert_eq!(credentials("host:80"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn redaction_hides_passwords_and_tokens() {
        assert_eq!(redact("http://admin:hunter2@host:8/x?a=b@c"), "http://admin:***@host:8/x?a=b@c");
        assert_eq!(redact("https://TOKEN@host/"), "https://***@host/");
        assert_eq!(redact("http://a:p@ss@host/"), "http://a:***@host/");
        assert_eq!(redact("http://host/p@th"), "http://host/p@th");
        assert_eq!(redact("admin:pw@host:80"), "admin:***@host:80");
        assert_eq!(redact("http://admin:pa/ss#?@host/x"), "http://admin:***@host/x");
        assert_eq!(redact("http://host:80/p@th"), "http://host:80/p@th");
        assert_eq!(format!("{}", Redacted("http://u:secret@h/")), "http://u:***@h/");
        assert!(!format!("{:?}", Redacted("http://u:secret@h/")).contains("secret"));
    }
}
