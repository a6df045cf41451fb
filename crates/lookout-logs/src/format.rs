//! Apache `LogFormat` strings compiled into a sequence of literals and fields, once, so that each line is
//! parsed by a few `memchr` scans and no regex.
//!
//! Supported: every directive of mod_log_config (`%h %a %{c}a %A %B %b %{X}C %D %{X}e %f %h %H %{X}i %k %l %L
//! %m %{X}n %{X}o %p %{X}p %P %{X}P %q %r %R %s %>s %<s %t %{X}t %T %{X}T %u %U %v %V %X %I %O %S %{X}^ti
//! %{X}^to %%`), with status conditions (`%400,501{User-agent}i`, `%!200{Referer}i`) accepted and ignored.
//! Fields the analysis does not use are skipped, not stored.

use thiserror::Error;

/// A `LogFormat` that cannot be used, with the column of the problem (1-based, in characters).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("log format {format:?}: {message} at column {column}")]
pub struct FormatError {
    pub format: String,
    pub message: String,
    pub column: usize,
}

/// What a directive contributes to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `%h`, `%a`: the client address.
    Client,
    /// `%{c}a`, `%{c}h`: the peer of the connection (the proxy, behind one).
    Peer,
    Ident,
    User,
    /// `%t`: `[25/Nov/2026:14:36:22 +0000]`.
    Time,
    /// `%r`: `GET /path?q HTTP/1.1`.
    Request,
    Method,
    /// `%U`: path without query.
    Path,
    /// `%U%q` written together: the path, then `?query` if any.
    PathQuery,
    Query,
    Protocol,
    /// `%>s`, `%s`, `%<s`.
    Status,
    /// `%b`: response body size, `-` for zero.
    BodyBytesClf,
    /// `%B`.
    BodyBytes,
    /// `%O`: bytes sent including headers.
    BytesSent,
    /// `%I`.
    BytesReceived,
    /// `%D`: microseconds.
    DurationMicros,
    /// `%T`: seconds.
    DurationSeconds,
    /// `%{ms}T`.
    DurationMillis,
    /// `%v`, `%V`: the virtual host.
    VirtualHost,
    Referer,
    UserAgent,
    ForwardedFor,
    /// Anything else: matched and skipped.
    Skip,
}

/// One piece of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Literal(Vec<u8>),
    Field(Field),
}

/// A compiled `LogFormat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormat {
    pub(crate) items: Vec<Item>,
    source: String,
    /// Set when the format is `combined` or `common`, which have a hand-written parser (`fast.rs`).
    pub(crate) shape: Option<crate::fast::Shape>,
}

pub const COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;
pub const COMBINED: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#;
pub const VHOST_COMBINED: &str = r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#;

impl LogFormat {
    /// A preset by name (`common`, `combined`, `vhost_combined`; nginx's default `combined` is Apache's) or a
    /// `LogFormat` string.
    pub fn named_or_custom(spec: &str) -> Result<LogFormat, FormatError> {
        match spec {
            "common" | "clf" => LogFormat::parse(COMMON),
            "combined" | "nginx" => LogFormat::parse(COMBINED),
            "vhost_combined" => LogFormat::parse(VHOST_COMBINED),
            custom => LogFormat::parse(custom),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether lines carry this field.
    pub fn has(&self, field: Field) -> bool {
        self.items.contains(&Item::Field(field))
    }

    /// Compiles a `LogFormat` string (as written in Apache's config, without the outer quotes; `\"` and `\t`
    /// escapes are understood).
    pub fn parse(format: &str) -> Result<LogFormat, FormatError> {
        let err = |message: String, byte: usize| FormatError {
            format: format.to_string(),
            message,
            column: format.get(..byte).map_or(byte, |s| s.chars().count()) + 1,
        };
        let bytes = format.as_bytes();
        let mut items: Vec<Item> = Vec::new();
        let mut literal: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => {
                    literal.push(match bytes[i + 1] {
                        b't' => b'\t',
                        b'n' => b'\n',
                        other => other,
                    });
                    i += 2;
                }
                b'%' => {
                    let start = i;
                    i += 1;
                    // Status conditions and the original/final modifiers.
                    while i < bytes.len()
                        && (bytes[i].is_ascii_digit() || matches!(bytes[i], b',' | b'!' | b'<' | b'>'))
                    {
                        i += 1;
                    }
                    let mut arg: Option<&str> = None;
                    if bytes.get(i) == Some(&b'{') {
                        let Some(close) = format[i..].find('}') else {
                            return Err(err("unclosed %{".into(), start));
                        };
                        arg = Some(&format[i + 1..i + close]);
                        i += close + 1;
                    }
                    let Some(&d) = bytes.get(i) else {
                        return Err(err("a directive is cut off at the end".into(), start));
                    };
                    i += 1;
                    if d == b'%' {
                        literal.push(b'%');
                        continue;
                    }
                    let field = if d == b'^' {
                        match bytes.get(i..i + 2) {
                            Some(b"ti") | Some(b"to") => {
                                i += 2;
                                Field::Skip
                            }
                            _ => {
                                return Err(err("unknown directive %^ (only %{X}^ti and %{X}^to exist)".into(), start));
                            }
                        }
                    } else {
                        directive(d, arg).ok_or_else(|| {
                            // The directive letter may be the first byte of a multi-byte character.
                            let end = (i..=format.len()).find(|&e| format.is_char_boundary(e)).unwrap_or(format.len());
                            let shown = format.get(start..end).unwrap_or("%");
                            err(format!("unknown directive {shown}"), start)
                        })?
                    };
                    if !literal.is_empty() {
                        items.push(Item::Literal(std::mem::take(&mut literal)));
                    } else if field == Field::Query && items.last() == Some(&Item::Field(Field::Path)) {
                        // `%U%q` is Apache's own idiom: %q is empty or starts with '?', so the pair splits.
                        if let Some(last) = items.last_mut() {
                            *last = Item::Field(Field::PathQuery);
                        }
                        continue;
                    } else if matches!(items.last(), Some(Item::Field(_))) {
                        return Err(err(
                            "two directives with nothing between them cannot be told apart; put a separator between them".into(),
                            start,
                        ));
                    }
                    items.push(Item::Field(field));
                }
                c => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        if !items.iter().any(|i| matches!(i, Item::Field(_))) {
            return Err(err("no directives: a format needs at least one %-directive".into(), 0));
        }
        let shape = crate::fast::shape(&items);
        Ok(LogFormat { items, source: format.to_string(), shape })
    }
}

#[cfg(test)]
impl LogFormat {
    /// The same format parsed by the general parser only, to compare the fast path with.
    pub(crate) fn without_fast_path(mut self) -> LogFormat {
        self.shape = None;
        self
    }
}

fn directive(d: u8, arg: Option<&str>) -> Option<Field> {
    let header = |name: &str| match name.to_ascii_lowercase().as_str() {
        "referer" => Field::Referer,
        "user-agent" => Field::UserAgent,
        "x-forwarded-for" => Field::ForwardedFor,
        _ => Field::Skip,
    };
    Some(match (d, arg) {
        (b'h' | b'a', None) => Field::Client,
        (b'h' | b'a', Some("c")) => Field::Peer,
        (b'A' | b'f' | b'k' | b'L' | b'P' | b'R' | b'X' | b'S' | b'p', _) => Field::Skip,
        (b'B', None) => Field::BodyBytes,
        (b'b', None) => Field::BodyBytesClf,
        (b'C' | b'e' | b'n' | b'o', Some(_)) => Field::Skip,
        (b'D', None) => Field::DurationMicros,
        (b'H', None) => Field::Protocol,
        (b'i', Some(name)) => header(name),
        (b'I', None) => Field::BytesReceived,
        (b'l', None) => Field::Ident,
        (b'm', None) => Field::Method,
        (b'O', None) => Field::BytesSent,
        (b'q', None) => Field::Query,
        (b'r', None) => Field::Request,
        (b's', None) => Field::Status,
        (b't', None) => Field::Time,
        (b't', Some(_)) => Field::Skip,
        (b'T', None | Some("s")) => Field::DurationSeconds,
        (b'T', Some("ms")) => Field::DurationMillis,
        (b'T', Some("us")) => Field::DurationMicros,
        (b'u', None) => Field::User,
        (b'U', None) => Field::Path,
        (b'v' | b'V', None) => Field::VirtualHost,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_compile() {
        for p in ["common", "combined", "vhost_combined", "nginx"] {
            LogFormat::named_or_custom(p).unwrap();
        }
        let f = LogFormat::parse(COMBINED).unwrap();
        assert_eq!(f.items.len(), 18);
        assert!(f.has(Field::UserAgent) && f.has(Field::Time) && !f.has(Field::DurationMicros));
    }

    #[test]
    fn every_directive_compiles() {
        let all = r#"%h %a %{c}a %A %B %b %{X}C %D %{X}e %f %{c}h %H %{Foo}i %k %l %L %m %{X}n %{X}o %p %{remote}p %P %{tid}P %q %r %R %s %>s %<s %t %{msec}t %T %{ms}T %{us}T %u %U %v %V %X %I %O %S %{X}^ti %{X}^to %400,501{User-agent}i %!200{Referer}i %{X-Forwarded-For}i 100%%"#;
        let f = LogFormat::parse(all).unwrap();
        assert!(f.has(Field::ForwardedFor) && f.has(Field::Peer) && f.has(Field::DurationMillis));
    }

    #[test]
    fn errors_name_the_directive_and_column() {
        let e = LogFormat::parse("%h %Z %s").unwrap_err();
        assert_eq!(e.to_string(), "log format \"%h %Z %s\": unknown directive %Z at column 4");
        let e = LogFormat::parse("%h %{Referer").unwrap_err();
        assert_eq!(e.message, "unclosed %{");
        assert_eq!(LogFormat::parse("%h %").unwrap_err().message, "a directive is cut off at the end");
        assert!(LogFormat::parse("%h%s").unwrap_err().message.starts_with("two directives with nothing between"));
        assert!(LogFormat::parse("plain text").unwrap_err().message.starts_with("no directives"));
        assert_eq!(LogFormat::parse("%h %^xx").unwrap_err().column, 4);
    }

    #[test]
    fn non_ascii_directives_are_errors_not_panics() {
        // Found by `cargo fuzz run access_line`.
        let e = LogFormat::parse(" %Ť    A%A%%%((").unwrap_err();
        assert_eq!(e.message, "unknown directive %Ť");
        assert_eq!(e.column, 2);
        assert!(LogFormat::parse("%{é}é").is_err());
    }

    #[test]
    fn escapes_and_percent_literals() {
        let f = LogFormat::parse(r#"%h \"%r\" 100%% %s"#).unwrap();
        assert_eq!(f.items[1], Item::Literal(b" \"".to_vec()));
        assert_eq!(f.items[3], Item::Literal(b"\" 100% ".to_vec()));
    }
}
