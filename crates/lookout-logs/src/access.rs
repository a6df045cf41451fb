//! Access-log lines → [`AccessRecord`]s, zero-copy: fields borrow from the line.

use memchr::memchr;
use serde::Serialize;

use crate::fast::TimeCache;
use crate::format::{Field, Item, LogFormat};
use crate::time::parse_clf;

/// What one access-log line says. Fields the format does not have are empty / `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessRecord<'a> {
    pub client: &'a str,
    pub peer: &'a str,
    pub ident: &'a str,
    pub user: &'a str,
    /// Unix seconds (UTC) from `%t`.
    pub time: Option<i64>,
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub query: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    pub body_bytes: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// Request duration in microseconds (from `%D`, `%{ms}T` or `%T`).
    pub duration_us: Option<u64>,
    pub vhost: &'a str,
    pub referer: &'a str,
    pub user_agent: &'a str,
    pub forwarded_for: &'a str,
}

impl AccessRecord<'_> {
    /// A request lookout's diagnosis sent while tracing (its `User-Agent`): not a user's, so neither alerts nor
    /// impact count it.
    pub fn is_lookout_diagnosis(&self) -> bool {
        self.user_agent.starts_with("lookout-diagnose/")
    }
}

/// Why a line did not fit its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// Not valid UTF-8 (Apache escapes non-ASCII bytes, so this is not a line it wrote in this format).
    Encoding,
    /// A literal part of the format was not where expected.
    Layout,
    /// The status is not a 3-digit number.
    Status,
    /// `%t` is not a valid time.
    Time,
    /// Longer than the tailer's line limit.
    TooLong,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Encoding => "not UTF-8",
            Malformed::Layout => "does not match the log format",
            Malformed::Status => "status is not a 3-digit number",
            Malformed::Time => "time is not [dd/Mon/yyyy:HH:MM:SS +zzzz]",
            Malformed::TooLong => "line too long",
        }
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// The first `needle` in `hay`. Fields are mostly a few bytes long, where setting up a vector search costs more
/// than the search: the first 32 bytes are scanned 8 at a time in a `u64` (SWAR), the rest by `memchr`.
#[inline]
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let head = &hay[..hay.len().min(32)];
    let mut chunks = head.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // A zero byte in x is a match; the lowest flagged byte is always a true one.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    if let Some(i) = chunks.remainder().iter().position(|&b| b == needle) {
        return Some(base + i);
    }
    if hay.len() <= 32 {
        return None;
    }
    memchr(needle, &hay[32..]).map(|i| 32 + i)
}

/// End of a `"`-quoted field starting at `from`: the first `"` not escaped by a backslash.
pub(crate) fn quoted_end(line: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = find_byte(b'"', line.get(i..)?) {
        let at = i + off;
        let mut backslashes = 0;
        while at > from + backslashes && line[at - 1 - backslashes] == b'\\' {
            backslashes += 1;
        }
        if backslashes % 2 == 0 {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

impl LogFormat {
    /// Parses one line (without its newline). Never panics.
    pub fn parse_line<'a>(&self, line: &'a [u8]) -> Result<AccessRecord<'a>, Malformed> {
        self.parse_line_cached(line, &mut TimeCache::default())
    }

    /// [`LogFormat::parse_line`] for a stream of lines: `times` remembers the last timestamp, so lines of the same
    /// minute parse their time in two digit checks. The answer is the same as without the cache.
    pub fn parse_line_cached<'a>(&self, line: &'a [u8], times: &mut TimeCache) -> Result<AccessRecord<'a>, Malformed> {
        match self.shape {
            Some(shape) => crate::fast::parse(shape, line, times),
            None => self.parse_line_general(line),
        }
    }

    /// [`LogFormat::parse_line_cached`] of a line already known to be UTF-8 (checked a block at a time).
    #[inline]
    pub fn parse_text_cached<'a>(&self, line: &'a str, times: &mut TimeCache) -> Result<AccessRecord<'a>, Malformed> {
        match self.shape {
            Some(shape) => crate::fast::parse_text(shape, line, times),
            None => self.parse_line_general(line.as_bytes()),
        }
    }

    /// The general parser, item by item, for any format: the reference the fast path is tested against.
    pub fn parse_line_general<'a>(&self, line: &'a [u8]) -> Result<AccessRecord<'a>, Malformed> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| Malformed::Encoding)?;
        let mut rec = AccessRecord::default();
        let mut pos = 0;
        let mut status_seen = false;
        let items = &self.items;
        for (idx, item) in items.iter().enumerate() {
            match item {
                Item::Literal(lit) => {
                    if !line[pos..].starts_with(lit) {
                        return Err(Malformed::Layout);
                    }
                    pos += lit.len();
                }
                Item::Field(field) => {
                    let quoted = idx > 0 && matches!(&items[idx - 1], Item::Literal(l) if l.ends_with(b"\""));
                    let end = match items.get(idx + 1) {
                        None => line.len(),
                        Some(Item::Literal(next)) => {
                            if *field == Field::Time && line.get(pos) == Some(&b'[') {
                                memchr(b']', &line[pos..]).map(|i| pos + i + 1).ok_or(Malformed::Layout)?
                            } else if quoted && next.first() == Some(&b'"') {
                                quoted_end(line, pos).ok_or(Malformed::Layout)?
                            } else {
                                let first = next.first().copied().unwrap_or(b' ');
                                memchr(first, &line[pos..]).map(|i| pos + i).ok_or(Malformed::Layout)?
                            }
                        }
                        // Rejected when the format was compiled.
                        Some(Item::Field(_)) => return Err(Malformed::Layout),
                    };
                    let value = text.get(pos..end).ok_or(Malformed::Layout)?;
                    assign(&mut rec, *field, value)?;
                    status_seen |= *field == Field::Status;
                    pos = end;
                }
            }
        }
        if status_seen && rec.status == 0 {
            return Err(Malformed::Status);
        }
        Ok(rec)
    }
}

pub(crate) fn assign<'a>(rec: &mut AccessRecord<'a>, field: Field, v: &'a str) -> Result<(), Malformed> {
    let dash = |v: &'a str| if v == "-" { "" } else { v };
    match field {
        Field::Client => rec.client = v,
        Field::Peer => rec.peer = v,
        Field::Ident => rec.ident = dash(v),
        Field::User => rec.user = dash(v),
        Field::Time => rec.time = Some(parse_clf(v.as_bytes()).ok_or(Malformed::Time)?),
        Field::Request => {
            // "GET /p?q HTTP/1.1"; anything else (e.g. "-" or garbage sent by a scanner) is kept as the path.
            // Split by byte position (all separators are ASCII, so every cut is a char boundary): this runs for
            // every line, and `str::splitn` with a char pattern cost more than the rest of the field.
            let b = v.as_bytes();
            let method_end = find_byte(b' ', b);
            match method_end {
                Some(m) if m > 0 && b[..m].iter().all(u8::is_ascii_uppercase) => {
                    let rest = &v[m + 1..];
                    let (target, proto) = match find_byte(b' ', rest.as_bytes()) {
                        Some(t) => (&rest[..t], &rest[t + 1..]),
                        None => (rest, ""),
                    };
                    rec.method = &v[..m];
                    let (p, q) = match find_byte(b'?', target.as_bytes()) {
                        Some(i) => (&target[..i], &target[i + 1..]),
                        None => (target, ""),
                    };
                    rec.path = p;
                    rec.query = q;
                    rec.protocol = proto;
                }
                _ => rec.path = dash(v),
            }
        }
        Field::Method => rec.method = v,
        Field::Path => rec.path = v,
        Field::PathQuery => {
            let (p, q) = v.split_once('?').unwrap_or((v, ""));
            rec.path = p;
            rec.query = q;
        }
        Field::Query => rec.query = v.strip_prefix('?').unwrap_or(v),
        Field::Protocol => rec.protocol = v,
        Field::Status => {
            let b = v.as_bytes();
            if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
                return Err(Malformed::Status);
            }
            rec.status = (u16::from(b[0] - b'0')) * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
        }
        Field::BodyBytesClf => rec.body_bytes = if v == "-" { Some(0) } else { number(v) },
        Field::BodyBytes => rec.body_bytes = number(v),
        Field::BytesSent => rec.bytes_sent = number(v),
        Field::BytesReceived => rec.bytes_received = number(v),
        Field::DurationMicros => rec.duration_us = number(v),
        Field::DurationMillis => rec.duration_us = number(v).and_then(|n| n.checked_mul(1000)),
        Field::DurationSeconds => rec.duration_us = number(v).and_then(|n| n.checked_mul(1_000_000)),
        Field::VirtualHost => rec.vhost = v,
        Field::Referer => rec.referer = dash(v),
        Field::UserAgent => rec.user_agent = dash(v),
        Field::ForwardedFor => rec.forwarded_for = dash(v),
        Field::Skip => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{COMBINED, COMMON, VHOST_COMBINED};

    fn parse<'a>(format: &str, line: &'a str) -> Result<AccessRecord<'a>, Malformed> {
        LogFormat::named_or_custom(format).unwrap().parse_line(line.as_bytes())
    }

    #[test]
    fn common() {
        insta::assert_debug_snapshot!(parse(
            COMMON,
            r#"127.0.0.1 - frank [25/Nov/2026:14:36:22 +0000] "GET /index.php?x=1 HTTP/1.1" 500 -"#
        ));
    }

    #[test]
    fn combined() {
        insta::assert_debug_snapshot!(parse(
            "combined",
            r#"203.0.113.9 - - [25/Nov/2026:14:36:22 +0000] "POST /cart HTTP/2.0" 200 5120 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)""#
        ));
    }

    #[test]
    fn vhost_combined() {
        insta::assert_debug_snapshot!(parse(
            VHOST_COMBINED,
            r#"shop.example:443 2001:db8::1 - - [25/Nov/2026:14:36:22 +0000] "GET / HTTP/1.1" 503 312 "-" "curl/8.5.0""#
        ));
    }

    #[test]
    fn every_supported_field() {
        let format = r#"%a %{c}a %l %u %t "%m %U%q %H" %>s %B %O %I %D %v "%{Referer}i" "%{User-Agent}i" "%{X-Forwarded-For}i" %P %{msec}t"#;
        insta::assert_debug_snapshot!(parse(
            format,
            r#"::1 10.0.0.2 - alice [25/Nov/2026:14:36:22 +0000] "GET /a?b=c HTTP/1.1" 404 12 340 95 1532 www.example "-" "Go-http-client/1.1" "198.51.100.7, 10.0.0.2" 4242 1795617382477"#
        ));
    }

    #[test]
    fn escaped_quotes_inside_quoted_fields() {
        let r = parse(
            COMBINED,
            r#"1.2.3.4 - - [25/Nov/2026:14:36:22 +0000] "GET /q?\"x\" HTTP/1.1" 200 1 "-" "evil \"agent\" \\""#,
        )
        .unwrap();
        assert_eq!(r.path, "/q");
        assert_eq!(r.query, r#"\"x\""#);
        assert_eq!(r.user_agent, r#"evil \"agent\" \\"#);
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse("%h %D %s", "a 1500 200").unwrap().duration_us, Some(1500));
        assert_eq!(parse("%h %{ms}T %s", "a 15 200").unwrap().duration_us, Some(15_000));
        assert_eq!(parse("%h %T %s", "a 2 200").unwrap().duration_us, Some(2_000_000));
    }

    #[test]
    fn absurd_numbers_do_not_overflow() {
        // Found by `cargo fuzz run access_line`.
        assert_eq!(parse("%h %T %s", "a 9999999999999999999 200").unwrap().duration_us, None);
        assert_eq!(parse("%h %{ms}T %s", "a 9999999999999999999 200").unwrap().duration_us, None);
    }

    #[test]
    fn odd_request_lines_are_kept() {
        let r = parse(COMMON, r#"1.2.3.4 - - [25/Nov/2026:14:36:22 +0000] "-" 408 -"#).unwrap();
        assert_eq!((r.method, r.path, r.status), ("", "", 408));
        let r = parse(COMMON, r#"1.2.3.4 - - [25/Nov/2026:14:36:22 +0000] "\x16\x03\x01" 400 226"#).unwrap();
        assert_eq!(r.path, r#"\x16\x03\x01"#);
    }

    #[test]
    fn malformed_lines_say_why() {
        let ok = r#"1.2.3.4 - - [25/Nov/2026:14:36:22 +0000] "GET / HTTP/1.1" 200 5"#;
        assert!(parse(COMMON, ok).is_ok());
        assert_eq!(parse(COMMON, &ok[..30]), Err(Malformed::Layout), "truncated");
        assert_eq!(parse(COMMON, ""), Err(Malformed::Layout));
        assert_eq!(parse(COMMON, &ok.replace(" 200 ", " 2x0 ")), Err(Malformed::Status));
        assert_eq!(parse(COMMON, &ok.replace(" 200 ", " 20 ")), Err(Malformed::Status));
        assert_eq!(parse(COMMON, &ok.replace("Nov", "Noz")), Err(Malformed::Time));
        assert_eq!(LogFormat::parse(COMMON).unwrap().parse_line(b"1.2.3.4 \xff\xfe"), Err(Malformed::Encoding));
        assert_eq!(parse(COMMON, "just some words"), Err(Malformed::Layout));
    }

    #[test]
    fn crlf_endings_are_tolerated() {
        let r = parse(COMMON, "1.2.3.4 - - [25/Nov/2026:14:36:22 +0000] \"GET / HTTP/1.1\" 200 5\r").unwrap();
        assert_eq!(r.body_bytes, Some(5));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
                for f in [COMMON, COMBINED, VHOST_COMBINED, "%h %D %{X}i \"%r\" %>s"] {
                    let _ = LogFormat::parse(f).unwrap().parse_line(&line);
                }
            }

            #[test]
            fn generated_lines_round_trip(
                ip in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|[0-9a-f:]{2,20}",
                path in "/[a-z0-9/._-]{0,30}",
                status in 100u16..600,
                size in proptest::option::of(0u64..1_000_000),
                ua in "[ -!#-\\[\\]-~]{0,40}",
            ) {
                let line = format!(
                    "{ip} - - [25/Nov/2026:14:36:22 +0000] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"{ua}\"",
                    size.map_or("-".to_string(), |s| s.to_string())
                );
                let r = LogFormat::parse(COMBINED).unwrap().parse_line(line.as_bytes()).unwrap();
                prop_assert_eq!(r.client, ip.as_str());
                prop_assert_eq!(r.path, path.as_str());
                prop_assert_eq!(r.status, status);
                prop_assert_eq!(r.body_bytes, Some(size.unwrap_or(0)));
                prop_assert_eq!(r.user_agent, if ua == "-" { "" } else { ua.as_str() });
            }
        }
    }
}
