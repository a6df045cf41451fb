//! The hand-written fast path for the two formats nearly every server writes, `combined` and `common`: the same
//! answers as the general item-by-item parser in `access.rs` (tests compare the two on tricky and random lines),
//! but with the layout known at compile time — no loop over items, no literal comparisons through `memcmp` — and
//! a timestamp cache, because consecutive lines nearly always share their minute.
//!
//! Why a separate path rather than a faster general one: `lookout logs` and the live tailer spend most of their
//! time here, and the general parser stays the reference the fast path is tested against.

use memchr::memchr;

use crate::access::{AccessRecord, Malformed, assign, find_byte, quoted_end};
use crate::format::{Field, Item};
use crate::time::parse_clf;

/// Which fixed layout a compiled format is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`
    Combined,
}

/// The shape of `items`, if it is one of the fast ones.
pub(crate) fn shape(items: &[Item]) -> Option<Shape> {
    use Field as F;
    let lit = |s: &str| Item::Literal(s.as_bytes().to_vec());
    let f = Item::Field;
    let common = [
        f(F::Client),
        lit(" "),
        f(F::Ident),
        lit(" "),
        f(F::User),
        lit(" "),
        f(F::Time),
        lit(" \""),
        f(F::Request),
        lit("\" "),
        f(F::Status),
        lit(" "),
        f(F::BodyBytesClf),
    ];
    if items == common {
        return Some(Shape::Common);
    }
    let tail = [lit(" \""), f(F::Referer), lit("\" \""), f(F::UserAgent), lit("\"")];
    if items.len() == common.len() + tail.len() && items[..common.len()] == common && items[common.len()..] == tail {
        return Some(Shape::Combined);
    }
    None
}

/// Remembers the last `%t` parsed: a timestamp that differs from it only in its seconds costs two digit checks.
#[derive(Clone, Debug, Default)]
pub struct TimeCache {
    /// The last valid timestamp without brackets (26 bytes: `25/Nov/2026:14:36:22 +0000`) except its seconds,
    /// packed for two integer comparisons (see [`pack`]).
    key: (u128, u64),
    /// Its Unix seconds minus its seconds field.
    base: i64,
    valid: bool,
}

impl TimeCache {
    /// Exactly [`parse_clf`], faster when the minute and zone repeat.
    pub fn parse_clf(&mut self, s: &[u8]) -> Option<i64> {
        let inner = s.strip_prefix(b"[").unwrap_or(s);
        let inner = inner.strip_suffix(b"]").unwrap_or(inner);
        let Ok(inner) = <&[u8; 26]>::try_from(inner) else { return parse_clf(s) };
        if self.valid && pack(inner) == self.key {
            let (a, b) = (inner[18], inner[19]);
            if !a.is_ascii_digit() || !b.is_ascii_digit() {
                return None;
            }
            let sec = i64::from(a - b'0') * 10 + i64::from(b - b'0');
            return (sec <= 60).then_some(self.base + sec);
        }
        let t = parse_clf(s)?;
        // parse_clf accepted it, so there are two digits at 18..20.
        self.key = pack(inner);
        self.base = t - (i64::from(inner[18] - b'0') * 10 + i64::from(inner[19] - b'0'));
        self.valid = true;
        Some(t)
    }
}

/// A timestamp's 24 bytes other than its seconds (18..20) as two integers.
fn pack(t: &[u8; 26]) -> (u128, u64) {
    let mut head = [0u8; 16];
    head.copy_from_slice(&t[..16]);
    let mut tail = [0u8; 8];
    tail[..2].copy_from_slice(&t[16..18]);
    tail[2..].copy_from_slice(&t[20..]);
    (u128::from_le_bytes(head), u64::from_le_bytes(tail))
}

/// End of the field starting at `from` that the byte `delim` ends.
#[inline]
fn until(line: &[u8], from: usize, delim: u8) -> Result<usize, Malformed> {
    let rest = line.get(from..).ok_or(Malformed::Layout)?;
    find_byte(delim, rest).map(|i| from + i).ok_or(Malformed::Layout)
}

#[inline]
fn expect(line: &[u8], pos: usize, lit: &[u8]) -> Result<usize, Malformed> {
    match line.get(pos..pos + lit.len()) {
        Some(got) if got == lit => Ok(pos + lit.len()),
        _ => Err(Malformed::Layout),
    }
}

fn dash(v: &str) -> &str {
    if v == "-" { "" } else { v }
}

/// Parses one line of `shape`; the same result as the general parser, field for field and error for error.
pub(crate) fn parse<'a>(shape: Shape, line: &'a [u8], times: &mut TimeCache) -> Result<AccessRecord<'a>, Malformed> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| Malformed::Encoding)?;
    parse_text(shape, text, times)
}

/// [`parse`] of a line already known to be UTF-8 (`lookout logs` checks whole blocks at once).
#[inline]
pub(crate) fn parse_text<'a>(
    shape: Shape,
    text: &'a str,
    times: &mut TimeCache,
) -> Result<AccessRecord<'a>, Malformed> {
    let text = text.strip_suffix('\r').unwrap_or(text);
    let line = text.as_bytes();
    let field = |from: usize, to: usize| text.get(from..to).ok_or(Malformed::Layout);
    let mut rec = AccessRecord::default();

    let end = until(line, 0, b' ')?;
    rec.client = field(0, end)?;
    let pos = end + 1;
    let end = until(line, pos, b' ')?;
    rec.ident = dash(field(pos, end)?);
    let pos = end + 1;
    let end = until(line, pos, b' ')?;
    rec.user = dash(field(pos, end)?);
    let pos = end + 1;

    let end = if line.get(pos) == Some(&b'[') {
        memchr(b']', &line[pos..]).map(|i| pos + i + 1).ok_or(Malformed::Layout)?
    } else {
        until(line, pos, b' ')?
    };
    rec.time = Some(times.parse_clf(field(pos, end)?.as_bytes()).ok_or(Malformed::Time)?);
    let pos = expect(line, end, b" \"")?;

    let end = quoted_end(line, pos).ok_or(Malformed::Layout)?;
    assign(&mut rec, Field::Request, field(pos, end)?)?;
    let pos = expect(line, end, b"\" ")?;

    let end = until(line, pos, b' ')?;
    let status = &line[pos..end];
    if status.len() != 3 || !status.iter().all(u8::is_ascii_digit) {
        return Err(Malformed::Status);
    }
    rec.status = u16::from(status[0] - b'0') * 100 + u16::from(status[1] - b'0') * 10 + u16::from(status[2] - b'0');
    let pos = end + 1;

    let end = match shape {
        Shape::Common => line.len(),
        Shape::Combined => until(line, pos, b' ')?,
    };
    assign(&mut rec, Field::BodyBytesClf, field(pos, end)?)?;

    if shape == Shape::Combined {
        let pos = expect(line, end, b" \"")?;
        let end = quoted_end(line, pos).ok_or(Malformed::Layout)?;
        rec.referer = dash(field(pos, end)?);
        let pos = expect(line, end, b"\" \"")?;
        let end = quoted_end(line, pos).ok_or(Malformed::Layout)?;
        rec.user_agent = dash(field(pos, end)?);
        // The closing quote is where quoted_end stopped; anything after it is ignored, as in the general parser.
    }
    if rec.status == 0 {
        return Err(Malformed::Status);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{COMBINED, COMMON, LogFormat, VHOST_COMBINED};
    use proptest::prelude::*;

    /// The fast path and the general parser on `line`, with a cache that has seen the lines before it.
    fn same(format: &LogFormat, line: &[u8], times: &mut TimeCache) {
        let shape = format.shape.expect("a fast shape");
        let fast = parse(shape, line, times);
        let general = format.parse_line_general(line);
        assert_eq!(fast, general, "{:?} on {:?}", shape, String::from_utf8_lossy(line));
        assert_eq!(parse(shape, line, &mut TimeCache::default()), general, "with a cold cache");
    }

    const GOOD: &str = r#"203.0.113.9 - - [25/Nov/2026:14:36:22 +0000] "GET /cart?id=1 HTTP/1.1" 200 5120 "https://shop.example/" "Mozilla/5.0 (X11)""#;

    fn tricky() -> Vec<Vec<u8>> {
        let mut lines: Vec<String> = vec![
            GOOD.into(),
            // IPv6 clients, users, idents.
            GOOD.replace("203.0.113.9", "2001:db8::1"),
            GOOD.replace("203.0.113.9", "::1").replace(" - - ", " ident frank "),
            // Quotes and escapes inside quoted fields.
            GOOD.replace("/cart?id=1", r#"/q?\"x\""#),
            GOOD.replace("Mozilla/5.0 (X11)", r#"evil \"agent\" \\"#),
            GOOD.replace("Mozilla/5.0 (X11)", r#"ends in a backslash \"#),
            GOOD.replace("Mozilla/5.0 (X11)", r#"two \\\" three"#),
            GOOD.replace("https://shop.example/", r#"a "quote" inside"#),
            GOOD.replace("\"GET /cart?id=1 HTTP/1.1\"", r#""GET /"quoted" HTTP/1.1""#),
            // Odd request lines.
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "-"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", ""),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", r"\x16\x03\x01"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "get /lower HTTP/1.1"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "GET /no-protocol"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "GET /a?b?c HTTP/1.1 extra words"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "GET  /two-spaces HTTP/1.1"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", " GET /leading"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "GET"),
            GOOD.replace("GET /cart?id=1 HTTP/1.1", "PÖST /ümlaut HTTP/1.1"),
            // Sizes, statuses.
            GOOD.replace(" 5120 ", " - "),
            GOOD.replace(" 5120 ", " 99999999999999999999 "),
            GOOD.replace(" 5120 ", " 12x "),
            GOOD.replace(" 5120 ", "  "),
            GOOD.replace(" 200 ", " 000 "),
            GOOD.replace(" 200 ", " 2x0 "),
            GOOD.replace(" 200 ", " 20 "),
            GOOD.replace(" 200 ", " 2000 "),
            GOOD.replace(" 200 ", " -1 "),
            // Times.
            GOOD.replace("14:36:22", "14:36:59"),
            GOOD.replace("14:36:22", "14:36:60"),
            GOOD.replace("14:36:22", "14:36:61"),
            GOOD.replace("14:36:22", "14:36:6x"),
            GOOD.replace("14:36:22", "14:36: 1"),
            GOOD.replace("14:36:22", "14:37:00"),
            GOOD.replace("+0000", "-0530"),
            GOOD.replace("+0000", "*0000"),
            GOOD.replace("Nov", "Noz"),
            GOOD.replace("[25/Nov/2026:14:36:22 +0000]", "25/Nov/2026:14:36:22"),
            GOOD.replace("[25/Nov/2026:14:36:22 +0000]", "-"),
            GOOD.replace("[25/Nov/2026:14:36:22 +0000]", "[25/Nov/2026:14:36:22 +0000"),
            GOOD.replace("[25/Nov/2026:14:36:22 +0000]", "[]"),
            GOOD.replace("[25/Nov/2026:14:36:22 +0000]", "[25/Nov/2026:14:36:22 +00000]"),
            // Missing and extra fields, truncation, line endings.
            GOOD.replace(" \"https://shop.example/\" \"Mozilla/5.0 (X11)\"", ""),
            GOOD.replace(" \"Mozilla/5.0 (X11)\"", ""),
            GOOD.replace("\"Mozilla/5.0 (X11)\"", "\"-\""),
            GOOD.replace("\"https://shop.example/\"", "\"-\""),
            format!("{GOOD} trailing garbage"),
            format!("{GOOD}\r"),
            format!("{GOOD}\r\r"),
            GOOD.replace(' ', "  "),
            GOOD.replacen(' ', "", 1),
            "- - - [25/Nov/2026:14:36:22 +0000] \"-\" 408 -".into(),
            String::new(),
            " ".into(),
            "   ".into(),
            "garbage".into(),
            "\"\"\"\"".into(),
            "a b c [".into(),
            "a b c [x] \"".into(),
            "a b c d \"e\" 200 1 \"f\" \"g\"".into(),
        ];
        for cut in [5, 20, 44, 45, 46, 60, 75, 76, 80, 86, 90, 100, 120, GOOD.len() - 1] {
            lines.push(GOOD[..cut].to_string());
        }
        let mut bytes: Vec<Vec<u8>> = lines.into_iter().map(String::into_bytes).collect();
        bytes.push(b"1.2.3.4 \xff\xfe - [25/Nov/2026:14:36:22 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"".to_vec());
        bytes.push(GOOD.replace("(X11)", "(X11) \u{0}").into_bytes());
        bytes
    }

    #[test]
    fn only_combined_and_common_take_the_fast_path() {
        let shape = |f: &str| LogFormat::named_or_custom(f).unwrap().shape;
        assert_eq!(shape("combined"), Some(Shape::Combined));
        assert_eq!(shape("nginx"), Some(Shape::Combined));
        assert_eq!(shape(COMBINED), Some(Shape::Combined));
        assert_eq!(shape("common"), Some(Shape::Common));
        assert_eq!(shape(VHOST_COMBINED), None);
        assert_eq!(shape(&format!("{COMBINED} %D")), None);
        assert_eq!(shape(r#"%h %l %u %t "%r" %>s %B"#), None, "%B is not %b");
        assert_eq!(shape(r#"%a %l %u %t "%r" %s %b"#), Some(Shape::Common), "the same fields by other names");
    }

    #[test]
    fn tricky_lines_parse_exactly_as_the_general_parser_does() {
        for format in [COMBINED, COMMON] {
            let f = LogFormat::parse(format).unwrap();
            let mut times = TimeCache::default();
            for line in tricky() {
                same(&f, &line, &mut times);
            }
            // And in reverse, so each line meets the cache another one left.
            for line in tricky().iter().rev() {
                same(&f, line, &mut times);
            }
        }
    }

    #[test]
    fn the_time_cache_answers_as_parse_clf() {
        let mut c = TimeCache::default();
        for s in [
            "[25/Nov/2026:14:36:22 +0000]",
            "[25/Nov/2026:14:36:23 +0000]",
            "[25/Nov/2026:14:36:60 +0000]",
            "[25/Nov/2026:14:36:61 +0000]",
            "[25/Nov/2026:14:36:9 +0000]",
            "[25/Nov/2026:14:36:-1 +0000]",
            "25/Nov/2026:14:36:24 +0000",
            "[25/Nov/2026:14:36:25 +0000",
            "25/Nov/2026:14:36:26 +0000]",
            "[25/Nov/2026:14:36:27 +0100]",
            "[25/Nov/2026:14:37:27 +0100]",
            "[26/Nov/2026:14:37:27 +0100]",
            "[[25/Nov/2026:14:36:22 +0000]]",
            "",
        ] {
            assert_eq!(c.parse_clf(s.as_bytes()), parse_clf(s.as_bytes()), "{s}");
        }
    }

    proptest! {
        #[test]
        fn random_bytes_parse_as_the_general_parser_does(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            for format in [COMBINED, COMMON] {
                let f = LogFormat::parse(format).unwrap();
                same(&f, &line, &mut TimeCache::default());
            }
        }

        /// Lines put together from the pieces parsers trip over: spaces, quotes, backslashes, brackets, digits,
        /// dashes and well-formed fields, so that most lines get far into the layout before they go wrong.
        #[test]
        fn lines_of_troublesome_pieces_parse_as_the_general_parser_does(
            pieces in proptest::collection::vec(prop_oneof![
                Just(" "), Just("\""), Just("\\"), Just("\\\""), Just("["), Just("]"), Just("-"), Just("?"),
                Just("200"), Just("503"), Just("12"), Just("1.2.3.4"), Just("::1"), Just("GET"), Just("/p"),
                Just("HTTP/1.1"), Just("[25/Nov/2026:14:36:22 +0000]"), Just("25/Nov/2026:14:36:2"), Just("7 +0000]"),
                Just(" \""), Just("\" "), Just("\" \""), Just("é"), Just("\r"),
            ], 0..40),
            prefix in 0usize..12,
        ) {
            // Start from a well-formed prefix of fields about as often as not.
            let good: Vec<&str> = GOOD.split_inclusive(' ').collect();
            let mut line: String = good[..prefix.min(good.len())].concat();
            line.extend(pieces);
            let mut times = TimeCache::default();
            for format in [COMBINED, COMMON] {
                let f = LogFormat::parse(format).unwrap();
                same(&f, GOOD.as_bytes(), &mut times);
                same(&f, line.as_bytes(), &mut times);
            }
        }

        #[test]
        fn timestamps_parse_as_parse_clf(
            day in 0u32..40, month in 0usize..13, year in 0u32..10_000, h in 0u32..30, m in 0u32..70,
            s in proptest::collection::vec(0u32..100, 1..6), sign in prop_oneof![Just('+'), Just('-'), Just('x')],
            zone in 0u32..2_400,
        ) {
            const MONTHS: [&str; 13] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"];
            let mut c = TimeCache::default();
            for sec in s {
                let t = format!("[{day:02}/{}/{year:04}:{h:02}:{m:02}:{sec:02} {sign}{zone:04}]", MONTHS[month]);
                prop_assert_eq!(c.parse_clf(t.as_bytes()), parse_clf(t.as_bytes()), "{}", t);
            }
        }
    }
}
