//! A PHP tokenizer good enough to find include and require statements: it knows where PHP code starts and ends
//! (`<?php`, `<?=`, `?>`), strings (with their escapes; interpolation makes a string "not constant"),
//! heredocs and nowdocs, and comments — so an `include` written inside any of those is not taken for one. It
//! works on bytes (PHP files need not be UTF-8) and never panics: an unterminated string or comment runs to the
//! end of the file.
//!
//! Short open tags (`<?` alone) are not code: Debian's php.ini ships `short_open_tag = Off`.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Deref;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Text outside `<?php … ?>`, sent to the client as is.
    InlineHtml,
    /// `<?php` or `<?=`.
    OpenTag,
    /// `?>` (ends a statement, like `;`).
    CloseTag,
    /// A name, keyword or namespaced name (`include`, `__DIR__`, `\Foo\bar`).
    Ident,
    /// `$name`.
    Variable,
    /// A string literal: quoted, heredoc, nowdoc or backticks.
    Str,
    Number,
    /// Punctuation and operators: one byte, or `->`, `?->`, `::`.
    Punct,
}

/// A token: its bytes in the file and the byte offset where it starts.
///
/// Nothing more is computed while tokenizing, because few tokens are ever asked more: line and column come from
/// [`Tokens::position`] for the findings reported, a string's value from [`Token::value`] for the strings in an
/// include, a define or a Composer map (counting lines per token was a fifth of the tokenizer's time, and every
/// string's unescaped value another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    pub text: &'a [u8],
    pub offset: usize,
}

impl<'a> Token<'a> {
    /// A string literal's value when it is constant (no interpolation, not a shell command): borrowed from the
    /// file when no escape changes it. `None` for every other token.
    pub fn value(&self) -> Option<Cow<'a, [u8]>> {
        if self.kind != Kind::Str {
            return None;
        }
        let text = self.text;
        match text.first()? {
            b'\'' => {
                let body = &text[1..closing(text, 1, b'\'')];
                Some(single_quoted_value(body))
            }
            b'"' => interpolated_value(&text[1..closing(text, 1, b'"')], Some(b'"')),
            b'<' => heredoc_value(text),
            _ => None,
        }
    }

    /// Whether this is the punctuation `p`.
    #[inline]
    pub fn is(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p.as_bytes()
    }

    /// Whether this is the name `word`, ignoring ASCII case (PHP keywords and function names ignore it). Called
    /// for every name by every pass of `extract`, so the length is compared before any byte.
    #[inline]
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Ident && self.text.len() == word.len() && self.text.eq_ignore_ascii_case(word.as_bytes())
    }
}

/// The tokens of a PHP file (comments and white space left out), with the file to say where each one is.
#[derive(Debug)]
pub struct Tokens<'a> {
    src: &'a [u8],
    list: Vec<Token<'a>>,
    /// The last position computed: (offset, line, column). Reports ask in file order, so each asks for the gap
    /// since the last one only.
    cursor: Cell<(usize, u32, u32)>,
}

impl<'a> Deref for Tokens<'a> {
    type Target = [Token<'a>];

    fn deref(&self) -> &[Token<'a>] {
        &self.list
    }
}

impl Tokens<'_> {
    /// Line and column (1-based, the column in characters: UTF-8 continuation bytes are not counted) of `t`.
    pub fn position(&self, t: &Token<'_>) -> (u32, u32) {
        self.position_of(t.offset)
    }

    /// Line and column of byte `at`.
    pub fn position_of(&self, at: usize) -> (u32, u32) {
        let at = at.min(self.src.len());
        let (mut from, mut line, mut column) = self.cursor.get();
        if at < from {
            (from, line, column) = (0, 1, 1);
        }
        let gap = &self.src[from..at];
        // Counted a whole gap at a time (these loops vectorise), not byte by byte with a branch.
        let chars = |s: &[u8]| s.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u32;
        match memchr::memrchr(b'\n', gap) {
            Some(last) => {
                line += memchr::memchr_iter(b'\n', gap).count() as u32;
                column = 1 + chars(&gap[last + 1..]);
            }
            None => column += chars(gap),
        }
        self.cursor.set((at, line, column));
        (line, column)
    }
}

/// The tokens of a PHP file (comments and white space left out).
pub fn tokenize(src: &[u8]) -> Tokens<'_> {
    tokenize_into(src, Spare::default())
}

/// [`tokenize`] into the vector of an earlier file's tokens ([`Tokens::spare`]): a thread that tokenizes
/// thousands of files allocates one vector, not one of tens of kilobytes per file (freeing them was a tenth of a
/// 10,000-file run).
pub fn tokenize_into(src: &[u8], spare: Spare) -> Tokens<'_> {
    let mut out = spare.take();
    // Real PHP code has a token every 5 to 8 bytes: reserving for that avoids regrowing (and copying) the vector.
    out.reserve(src.len() / 6 + 8);
    let mut lexer = Lexer { src, pos: 0, out };
    lexer.run();
    Tokens { src, list: lexer.out, cursor: Cell::new((0, 1, 1)) }
}

/// The allocation of a token vector no longer needed, to tokenize the next file into.
#[derive(Default)]
pub struct Spare(Vec<Token<'static>>);

impl Spare {
    /// The empty vector, for tokens that borrow another file. The collect reuses the allocation in place (the
    /// element type has the same layout, only its lifetime differs), and nothing is ever collected from it.
    fn take<'a>(self) -> Vec<Token<'a>> {
        let mut v = self.0;
        v.clear();
        v.into_iter().map(|t| t as Token<'a>).collect()
    }
}

impl<'a> Tokens<'a> {
    /// The token vector's allocation, for [`tokenize_into`].
    pub fn spare(self) -> Spare {
        let mut list = self.list;
        list.clear();
        Spare(list.into_iter().map(|_: Token<'a>| Token { kind: Kind::Punct, text: &[], offset: 0 }).collect())
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    out: Vec<Token<'a>>,
}

/// Byte classes, looked up once per byte: the lexer's loops over names and white space run on every byte of every
/// file, and a table beats a chain of comparisons there.
const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            t[b] |= SPACE;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            t[b] |= IDENT_START | IDENT;
        }
        if c.is_ascii_digit() {
            t[b] |= IDENT;
        }
        b += 1;
    }
    t
};

fn is_ident_start(b: u8) -> bool {
    CLASS[b as usize] & IDENT_START != 0
}

fn is_ident_byte(b: u8) -> bool {
    CLASS[b as usize] & IDENT != 0
}

/// Where the run of bytes of `class` starting at `from` ends.
fn run_end(src: &[u8], from: usize, class: u8) -> usize {
    let rest = src.get(from..).unwrap_or_default();
    from + rest.iter().position(|&b| CLASS[b as usize] & class == 0).unwrap_or(rest.len())
}

impl<'a> Lexer<'a> {
    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn starts_with(&self, i: usize, s: &[u8]) -> bool {
        self.src.get(i..i + s.len()).is_some_and(|b| b.eq_ignore_ascii_case(s))
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize) {
        let end = end.min(self.src.len());
        let start = start.min(end);
        self.out.push(Token { kind, text: &self.src[start..end], offset: start });
    }

    fn run(&mut self) {
        let mut in_php = false;
        while self.pos < self.src.len() {
            if in_php {
                in_php = self.code_token();
                // The white space after a token, skipped here rather than as a token of its own (a third of the
                // loop's turns were white space).
                if in_php {
                    self.pos = run_end(self.src, self.pos, SPACE);
                }
            } else {
                let start = self.pos;
                match self.find_open_tag(start) {
                    Some((tag, len)) => {
                        if tag > start {
                            self.push(Kind::InlineHtml, start, tag);
                        }
                        self.push(Kind::OpenTag, tag, tag + len);
                        self.pos = tag + len;
                        in_php = true;
                    }
                    None => {
                        self.push(Kind::InlineHtml, start, self.src.len());
                        self.pos = self.src.len();
                    }
                }
            }
        }
    }

    /// The next `<?php` (followed by white space or the end) or `<?=`: where and how long.
    fn find_open_tag(&self, from: usize) -> Option<(usize, usize)> {
        let mut i = from;
        while let Some(off) = self.src.get(i..).and_then(memchr_lt) {
            let at = i + off;
            if self.starts_with(at, b"<?=") {
                return Some((at, 3));
            }
            if self.starts_with(at, b"<?php") {
                let next = self.at(at + 5);
                if at + 5 >= self.src.len() || next.is_ascii_whitespace() {
                    return Some((at, 5));
                }
            }
            i = at + 1;
        }
        None
    }

    /// One token (or comment, or white space) of PHP code; false when `?>` left PHP mode.
    fn code_token(&mut self) -> bool {
        let start = self.pos;
        let b = self.at(start);
        let next = self.at(start + 1);
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos = run_end(self.src, start + 1, SPACE),
            b'?' if next == b'>' => {
                self.push(Kind::CloseTag, start, start + 2);
                self.pos = start + 2;
                // PHP eats one newline right after ?>.
                if self.at(self.pos) == b'\n' {
                    self.pos += 1;
                } else if self.at(self.pos) == b'\r' && self.at(self.pos + 1) == b'\n' {
                    self.pos += 2;
                }
                return false;
            }
            b'#' if next == b'[' => {
                // An attribute: `#[` is code, not a comment.
                self.push(Kind::Punct, start, start + 1);
                self.pos += 1;
            }
            b'#' => self.line_comment(start + 1),
            b'/' if next == b'/' => self.line_comment(start + 2),
            b'/' if next == b'*' => {
                self.pos = find(self.src, start + 2, b"*/").map_or(self.src.len(), |e| e + 2);
            }
            b'"' | b'\'' => {
                let end = closing(self.src, start + 1, b);
                self.push(Kind::Str, start, end + 1);
                self.pos = end + 1;
            }
            b'`' => {
                let end = closing(self.src, start + 1, b'`');
                self.push(Kind::Str, start, end + 1);
                self.pos = end + 1;
            }
            b'<' if self.starts_with(start, b"<<<") => {
                if !self.heredoc(start) {
                    self.push(Kind::Punct, start, start + 1);
                    self.pos += 1;
                }
            }
            b'$' if is_ident_start(next) => {
                let end = self.ident_end(start + 1);
                self.push(Kind::Variable, start, end);
                self.pos = end;
            }
            b'\\' if is_ident_start(next) => self.name(start),
            _ if is_ident_start(b) => self.name(start),
            _ if b.is_ascii_digit() || (b == b'.' && next.is_ascii_digit()) => {
                let mut end = start + 1;
                while is_ident_byte(self.at(end)) || (self.at(end) == b'.' && self.at(end + 1).is_ascii_digit()) {
                    end += 1;
                }
                self.push(Kind::Number, start, end);
                self.pos = end;
            }
            _ => {
                let len = if (b == b'-' && next == b'>') || (b == b':' && next == b':') {
                    2
                } else if b == b'?' && next == b'-' && self.at(start + 2) == b'>' {
                    3
                } else {
                    1
                };
                self.push(Kind::Punct, start, start + len);
                self.pos = start + len;
            }
        }
        true
    }

    fn ident_end(&self, i: usize) -> usize {
        run_end(self.src, i, IDENT)
    }

    /// A name, possibly namespaced: `foo`, `Foo\Bar`, `\strlen`.
    fn name(&mut self, start: usize) {
        let mut end = if self.at(start) == b'\\' { start + 1 } else { start };
        loop {
            end = self.ident_end(end);
            if self.at(end) == b'\\' && is_ident_start(self.at(end + 1)) {
                end += 1;
            } else {
                break;
            }
        }
        self.push(Kind::Ident, start, end);
        self.pos = end;
    }

    /// A `//` or `#` comment: to the end of the line, or to a `?>` on it (which still ends PHP mode).
    fn line_comment(&mut self, from: usize) {
        let mut i = from;
        while let Some(off) = self.src.get(i..).and_then(|rest| memchr::memchr2(b'\n', b'?', rest)) {
            let at = i + off;
            if self.src[at] == b'\n' || self.at(at + 1) == b'>' {
                self.pos = at;
                return;
            }
            i = at + 1;
        }
        self.pos = self.src.len();
    }

    /// `<<<ID`, `<<<"ID"` (heredoc) or `<<<'ID'` (nowdoc) up to the closing `ID` on a line of its own (PHP 7.3:
    /// it may be indented, and that indentation is removed from every line). False if this is no heredoc start.
    fn heredoc(&mut self, start: usize) -> bool {
        let mut i = start + 3;
        while matches!(self.at(i), b' ' | b'\t') {
            i += 1;
        }
        let quote = match self.at(i) {
            q @ (b'\'' | b'"') => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        if !is_ident_start(self.at(i)) {
            return false;
        }
        let id_start = i;
        let id_end = self.ident_end(i);
        i = id_end;
        if let Some(q) = quote {
            if self.at(i) != q {
                return false;
            }
            i += 1;
        }
        match (self.at(i), self.at(i + 1)) {
            (b'\n', _) => i += 1,
            (b'\r', b'\n') => i += 2,
            _ => return false,
        }
        let id = &self.src[id_start..id_end];
        let body_start = i;
        // Find the closing line: optional spaces or tabs, the identifier, then no identifier byte.
        let mut line = body_start;
        let closing = loop {
            if line >= self.src.len() {
                break None;
            }
            let mut j = line;
            while matches!(self.at(j), b' ' | b'\t') {
                j += 1;
            }
            if self.src.get(j..j + id.len()) == Some(id) && !is_ident_byte(self.at(j + id.len())) {
                break Some(j + id.len());
            }
            match find(self.src, line, b"\n") {
                Some(nl) => line = nl + 1,
                None => break None,
            }
        };
        let Some(end) = closing else {
            // Unterminated: the rest of the file is the string.
            self.push(Kind::Str, start, self.src.len());
            self.pos = self.src.len();
            return true;
        };
        self.push(Kind::Str, start, end);
        self.pos = end;
        true
    }
}

/// Index of the unescaped `quote` closing a string whose body starts at `from` in `src` (`src.len()` if none).
fn closing(src: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from;
    while let Some(off) = src.get(i..).and_then(|rest| memchr::memchr2(b'\\', quote, rest)) {
        let at = i + off;
        if src[at] == quote {
            return at;
        }
        i = at + 2;
    }
    src.len()
}

/// A single-quoted string's value: only `\\` and `\'` are escapes.
fn single_quoted_value(body: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', body).is_none() {
        return Cow::Borrowed(body);
    }
    let mut value = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && matches!(body.get(i + 1), Some(b'\\' | b'\'')) {
            value.push(body[i + 1]);
            i += 2;
        } else {
            value.push(body[i]);
            i += 1;
        }
    }
    Cow::Owned(value)
}

/// A heredoc's or nowdoc's value from its token (`<<<ID` … the closing `ID`), read the way the lexer found it:
/// the body runs to the newline before the closing line, whose indentation is removed from every line. `None`
/// when it interpolates, or when it is unterminated (its last line is then not the identifier alone).
fn heredoc_value(text: &[u8]) -> Option<Cow<'_, [u8]>> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut i = 3;
    while matches!(at(i), b' ' | b'\t') {
        i += 1;
    }
    let quote = matches!(at(i), b'\'' | b'"').then(|| at(i));
    if quote.is_some() {
        i += 1;
    }
    let id_start = i;
    while is_ident_byte(at(i)) {
        i += 1;
    }
    let id = &text[id_start.min(i)..i];
    if id.is_empty() {
        return None;
    }
    if quote.is_some() {
        i += 1;
    }
    let body_start = match (at(i), at(i + 1)) {
        (b'\n', _) => i + 1,
        (b'\r', b'\n') => i + 2,
        _ => return None,
    };
    let closing_line = memchr::memrchr(b'\n', text).map_or(0, |nl| nl + 1);
    if closing_line < body_start {
        return None;
    }
    let line = &text[closing_line..];
    let indent = line.iter().take_while(|&&b| matches!(b, b' ' | b'\t')).count();
    if &line[indent..] != id {
        return None;
    }
    // The body is everything before the newline that precedes the closing line.
    let mut body_end = closing_line.saturating_sub(1).max(body_start);
    if body_end > body_start && text[body_end - 1] == b'\r' {
        body_end -= 1;
    }
    let raw = &text[body_start..body_end];
    if quote == Some(b'\'') {
        Some(dedent(raw, indent))
    } else if interpolates(raw) {
        // Removing indentation (spaces and tabs) cannot make or unmake `$x`, `{$` or `${`.
        None
    } else {
        match dedent(raw, indent) {
            Cow::Borrowed(b) => interpolated_value(b, None),
            Cow::Owned(v) => interpolated_value(&v, None).map(|c| Cow::Owned(c.into_owned())),
        }
    }
}

/// A heredoc body without the closing line's indentation (at most `indent` spaces or tabs) on each line.
fn dedent(raw: &[u8], indent: usize) -> Cow<'_, [u8]> {
    if indent == 0 {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    for (n, l) in raw.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        let cut = l.iter().take(indent).take_while(|b| matches!(b, b' ' | b'\t')).count();
        out.extend_from_slice(&l[cut..]);
    }
    Cow::Owned(out)
}

/// Whether a double-quoted string or heredoc body interpolates a variable (`$x`, `{$x}`, `${x}`) outside an
/// escape — checked before building a value that would be thrown away.
fn interpolates(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        let next = body.get(i + 1).copied().unwrap_or(0);
        match body[i] {
            b'\\' => i += 2,
            b'$' if is_ident_start(next) || next == b'{' => return true,
            b'{' if next == b'$' => return true,
            _ => i += 1,
        }
    }
    false
}

/// Position of the next `<` in `s`.
fn memchr_lt(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'<', s)
}

/// The first occurrence of `needle` in `src` at or after `from`.
pub(crate) fn find(src: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = src.get(from..)?;
    if needle.is_empty() {
        return None;
    }
    // The needles are one or two bytes (`\n`, `*/`): found through their first byte. `memmem::find` builds a
    // searcher on every call, which cost more than the search in a file of short comments.
    let (first, rest) = (needle[0], &needle[1..]);
    memchr::memchr_iter(first, hay).find(|&p| hay[p + 1..].starts_with(rest)).map(|p| p + from)
}

/// The value of a double-quoted string or heredoc body with its escapes applied, or `None` when it
/// interpolates a variable (`$x`, `{$x}`, `${x}`): then its value is known only when the code runs.
fn interpolated_value(body: &[u8], quote: Option<u8>) -> Option<Cow<'_, [u8]>> {
    if memchr::memchr(b'\\', body).is_none() {
        // No escapes: the value is the body, unless it interpolates.
        return (!interpolates(body)).then_some(Cow::Borrowed(body));
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        let next = body.get(i + 1).copied().unwrap_or(0);
        match b {
            b'$' if is_ident_start(next) || next == b'{' => return None,
            b'{' if next == b'$' => return None,
            b'\\' => {
                i += 2;
                match next {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'e' => out.push(0x1b),
                    b'f' => out.push(0x0c),
                    b'\\' | b'$' => out.push(next),
                    q if Some(q) == quote => out.push(q),
                    b'0'..=b'7' => {
                        let digits = body[i - 1..].iter().take(3).take_while(|d| (b'0'..=b'7').contains(d)).count();
                        let v = body[i - 1..i - 1 + digits].iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                        out.push((v & 0xff) as u8);
                        i += digits - 1;
                    }
                    b'x' if body.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                        let digits = body[i..].iter().take(2).take_while(|d| d.is_ascii_hexdigit()).count();
                        let text = std::str::from_utf8(&body[i..i + digits]).unwrap_or("0");
                        out.push(u8::from_str_radix(text, 16).unwrap_or(0));
                        i += digits;
                    }
                    b'u' if body.get(i) == Some(&b'{') => {
                        let close = body[i..].iter().position(|&c| c == b'}').map(|p| p + i);
                        let ch = close
                            .and_then(|c| std::str::from_utf8(&body[i + 1..c]).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32);
                        match (ch, close) {
                            (Some(ch), Some(c)) => {
                                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                                i = c + 1;
                            }
                            _ => out.extend_from_slice(b"\\u"),
                        }
                    }
                    0 if i > body.len() => out.push(b'\\'),
                    other => {
                        out.push(b'\\');
                        out.push(other);
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests;
