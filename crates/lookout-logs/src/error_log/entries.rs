//! Whole error-log entries, as the server meant them, from physical lines — and the messages inside them.
//!
//! One entry is not always one line, and one line is not always one message:
//! - nginx writes a FastCGI error as ONE entry over several lines (the PHP message's stack trace keeps its
//!   newlines): a line that does not start with nginx's `YYYY/MM/DD HH:MM:SS [level]` belongs to the entry before.
//!   PHP's own error log does the same with `Stack trace:` lines.
//! - PHP-FPM's log writes one line per line a worker wrote (`child N said into stderr: "…"`); the lines of one
//!   child are joined back into whole messages (a new message starts at `PHP message:`).
//! - nginx's `FastCGI sent in stderr: "PHP message: …; PHP message: …"` and Apache's `AH01071: Got error 'PHP
//!   message: …'` carry several PHP messages in one entry: they are split apart.
//!
//! Nothing here fails: a line that belongs nowhere is counted as malformed; entries are capped in size.

use super::php::child_output;
use super::{ErrorFormat, parse};

/// An entry's text is cut here: a runaway entry (a file without newlines, endless continuation lines) costs
/// bounded memory.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;
/// Messages kept per entry.
const MAX_MESSAGES: usize = 64;
/// Non-empty lines looked at to recognise a format.
const SNIFF_LINES: usize = 50;
/// FPM children whose message is still being joined (more would mean a log that is not FPM's).
const MAX_PENDING_CHILDREN: usize = 256;
/// The formats detection chooses from, in order of preference on a tie.
const CONCRETE: [ErrorFormat; 4] = [ErrorFormat::Apache, ErrorFormat::Nginx, ErrorFormat::Fpm, ErrorFormat::Php];

/// One entry of an error log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Unix milliseconds (as [`super::ErrorRecord::time_ms`]).
    pub time_ms: Option<i64>,
    pub level: String,
    /// Apache's module (`proxy_fcgi`, `php`), FPM's pool (`www`).
    pub module: String,
    /// The process that wrote (nginx/Apache worker, FPM child).
    pub pid: Option<u32>,
    /// Client address without the port, when the server says.
    pub client: String,
    /// nginx's `request: "GET / HTTP/1.1"`, without the quotes.
    pub request: String,
    /// nginx's `upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:"`, without the quotes.
    pub upstream: String,
    /// The physical lines, joined with `\n` (cut at [`MAX_ENTRY_BYTES`]): the evidence.
    pub text: String,
    /// How many physical lines it spans.
    pub lines: usize,
    /// What was said: each PHP message on its own (without `PHP message: `), or the server's one message.
    pub messages: Vec<String>,
    /// The messages were relayed from a backend (nginx's `FastCGI sent in stderr`, Apache's `AH01071: Got
    /// error`): `pid` is the web server's, not that of the PHP process that failed.
    pub relayed: bool,
}

/// The entries of a log, the format they were read in and the lines that fit nowhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    /// The format read (detected, for [`ErrorFormat::Auto`]); `None` when no line fits any format.
    pub format: Option<ErrorFormat>,
    pub entries: Vec<Entry>,
    pub malformed: u64,
}

/// The format of a log from its first non-empty lines: the one most of them parse in; `None` if none does.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<ErrorFormat> {
    let mut counts = [0usize; CONCRETE.len()];
    for line in lines.into_iter().filter(|l| !l.trim().is_empty()).take(SNIFF_LINES) {
        for (i, f) in CONCRETE.iter().enumerate() {
            if parse(*f, line).is_some() {
                counts[i] += 1;
            }
        }
    }
    let best = counts.iter().copied().max().filter(|&n| n > 0)?;
    counts.iter().position(|&n| n == best).and_then(|i| CONCRETE.get(i).copied())
}

/// Reads `lines` into entries; [`ErrorFormat::Auto`] detects the format first.
pub fn read<'a>(format: ErrorFormat, lines: impl IntoIterator<Item = &'a str>) -> Entries {
    let lines: Vec<&str> = lines.into_iter().collect();
    let format = match format {
        ErrorFormat::Auto => match detect(lines.iter().copied()) {
            Some(f) => f,
            None => {
                let malformed = lines.iter().filter(|l| !l.trim().is_empty()).count() as u64;
                return Entries { format: None, entries: Vec::new(), malformed };
            }
        },
        f => f,
    };
    let mut out = match format {
        ErrorFormat::Fpm => read_fpm(&lines),
        _ => read_lines(format, &lines),
    };
    out.format = Some(format);
    out
}

/// Apache, nginx and PHP: an entry starts at a line in the format; nginx and PHP continue it on lines that are not.
fn read_lines(format: ErrorFormat, lines: &[&str]) -> Entries {
    let mut out = Entries::default();
    let multi_line = matches!(format, ErrorFormat::Nginx | ErrorFormat::Php);
    let mut current: Option<(String, usize)> = None;
    for raw in lines {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        if parse(format, line).is_some() {
            if let Some((text, n)) = current.take() {
                out.entries.extend(finish(format, &text, n));
            }
            let mut text = String::new();
            push_capped(&mut text, line);
            current = Some((text, 1));
        } else if let (true, Some((text, n))) = (multi_line, current.as_mut()) {
            push_capped(text, "\n");
            push_capped(text, line);
            *n += 1;
        } else {
            out.malformed += 1;
        }
    }
    if let Some((text, n)) = current {
        out.entries.extend(finish(format, &text, n));
    }
    out
}

/// An entry from its joined text.
fn finish(format: ErrorFormat, text: &str, lines: usize) -> Option<Entry> {
    let rec = parse(format, text)?;
    let mut e = Entry {
        time_ms: rec.time_ms,
        level: rec.level.to_string(),
        module: rec.module.to_string(),
        pid: rec.pid,
        client: rec.client.to_string(),
        text: text.to_string(),
        lines,
        ..Entry::default()
    };
    match format {
        ErrorFormat::Nginx => {
            if let Some((_, context)) = text.rsplit_once(", client: ") {
                e.request = quoted_after(context, "request: \"").to_string();
                e.upstream = quoted_after(context, "upstream: \"").to_string();
            }
            e.messages = match rec.message.strip_prefix("FastCGI sent in stderr: \"") {
                Some(inner) => {
                    e.relayed = true;
                    let inner = match inner.rfind("\" while ") {
                        Some(i) => inner.get(..i).unwrap_or(inner),
                        None => inner.strip_suffix('"').unwrap_or(inner),
                    };
                    split_php_messages(inner)
                }
                None => vec![rec.message.to_string()],
            };
        }
        ErrorFormat::Apache => {
            e.messages = match rec.message.split_once("AH01071: Got error '") {
                Some((_, inner)) => {
                    e.relayed = true;
                    split_php_messages(&unescape_apache(inner.strip_suffix('\'').unwrap_or(inner)))
                }
                None => vec![rec.message.to_string()],
            };
        }
        _ => e.messages = vec![rec.message.to_string()],
    }
    Some(e)
}

/// PHP-FPM's log: one entry per master message; a child's lines joined into whole messages.
fn read_fpm(lines: &[&str]) -> Entries {
    struct Pending {
        pool: String,
        child: u32,
        entry: Entry,
        said: String,
        continues: bool,
    }
    fn flush(p: Pending, out: &mut Entries) {
        let mut e = p.entry;
        e.messages = split_php_messages(&p.said);
        out.entries.push(e);
    }
    let mut out = Entries::default();
    let mut pending: Vec<Pending> = Vec::new();
    for raw in lines {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        let Some(rec) = parse(ErrorFormat::Fpm, line) else {
            out.malformed += 1;
            continue;
        };
        let said = line.split_once(": ").and_then(|(_, m)| child_output(m.trim()));
        let Some(said) = said else {
            out.entries.push(Entry {
                time_ms: rec.time_ms,
                level: rec.level.to_string(),
                module: rec.module.to_string(),
                pid: rec.pid,
                text: line.to_string(),
                lines: 1,
                messages: vec![rec.message.to_string()],
                ..Entry::default()
            });
            continue;
        };
        let starts_message = strip_level(said.text).starts_with("PHP message: ");
        if let Some(i) = pending.iter().position(|p| p.child == said.child && p.pool == said.pool) {
            let p = &mut pending[i];
            if p.continues || !starts_message {
                if !p.continues {
                    push_capped(&mut p.said, "\n");
                }
                push_capped(&mut p.said, said.text);
                push_capped(&mut p.entry.text, "\n");
                push_capped(&mut p.entry.text, line);
                p.entry.lines += 1;
                p.continues = said.continues;
                continue;
            }
            flush(pending.remove(i), &mut out);
        }
        if pending.len() >= MAX_PENDING_CHILDREN {
            flush(pending.remove(0), &mut out);
        }
        let mut text = String::new();
        push_capped(&mut text, line);
        let mut said_text = String::new();
        push_capped(&mut said_text, said.text);
        pending.push(Pending {
            pool: said.pool.to_string(),
            child: said.child,
            entry: Entry {
                time_ms: rec.time_ms,
                level: rec.level.to_string(),
                module: said.pool.to_string(),
                pid: Some(said.child),
                text,
                lines: 1,
                ..Entry::default()
            },
            said: said_text,
            continues: said.continues,
        });
    }
    for p in pending {
        flush(p, &mut out);
    }
    out
}

/// `NOTICE: PHP message: …` → `PHP message: …` (FPM prefixes what a worker logged with its level).
fn strip_level(text: &str) -> &str {
    match text.split_once(": ") {
        Some((level, rest))
            if !level.is_empty() && level.len() <= 10 && level.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            rest
        }
        _ => text,
    }
}

/// `PHP message: A; PHP message: B` → `[A, B]` (at most [`MAX_MESSAGES`]); text without the marker is one message.
fn split_php_messages(text: &str) -> Vec<String> {
    let text = strip_level(text.trim());
    text.split("; PHP message: ")
        .map(|m| {
            let m = strip_level(m.trim());
            m.strip_prefix("PHP message: ").unwrap_or(m).trim().to_string()
        })
        .filter(|m| !m.is_empty())
        .take(MAX_MESSAGES)
        .collect()
}

/// The text between `marker` and the next `"`.
fn quoted_after<'a>(text: &'a str, marker: &str) -> &'a str {
    text.split_once(marker).and_then(|(_, rest)| rest.split_once('"')).map_or("", |(v, _)| v)
}

/// Apache escapes what it logs (`\n`, `\t`, `\"`, `\\`, `\xhh`): the message as PHP wrote it.
fn unescape_apache(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if b.is_ascii() => out.push(char::from(b)),
                    _ => {
                        out.push_str("\\x");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Appends as much of `more` as fits in [`MAX_ENTRY_BYTES`], cut at a character boundary.
fn push_capped(text: &mut String, more: &str) {
    let room = MAX_ENTRY_BYTES.saturating_sub(text.len());
    let mut end = room.min(more.len());
    while end > 0 && !more.is_char_boundary(end) {
        end -= 1;
    }
    text.push_str(more.get(..end).unwrap_or(""));
}

#[cfg(test)]
#[path = "entries_tests.rs"]
mod tests;
