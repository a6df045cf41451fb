//! nginx's configuration, read with a tokenizer for its syntax (words, `"…"`/`'…'` strings with `\` escapes,
//! `;`, `{`, `}`, `#` comments, `${var}` inside a word) and walked with the block stack (`http`, `server`,
//! `location …`) for context. `include` globs are relative to the directory of the configuration given (nginx's
//! conf prefix: `/etc/nginx` for `mime.types`); so are other relative paths here (nginx takes `root` and logs
//! relative to its build prefix, which preflight cannot know — absolute paths, the common case, are exact).
//! A path with a variable (`$document_root`) is known only per request: skipped.

use std::path::{Path, PathBuf};

use super::{Loc, MAX_INCLUDE_DEPTH, Sink, absolute, context_of, glob, has_wildcard};
use crate::check::DirCache;
use crate::webconfig::ConfigReport;
use crate::{FindingKind, Severity};

/// Reads `path` and everything it includes; an `Err` only when `path` itself cannot be read.
pub fn check(
    path: &Path,
    cache: &DirCache,
    reader: Option<&lookout_diagnose::hints::Reader>,
) -> std::io::Result<ConfigReport> {
    let bytes = std::fs::read(path)?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let file = absolute(&cwd, &path.to_string_lossy());
    let conf_dir = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut n = Nginx { sink: Sink::new(cache, reader), conf_dir, frames: Vec::new(), reading: Vec::new(), servers: 0 };
    n.file(path, &bytes, 0);
    Ok(n.sink.report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    Semicolon,
    Open,
    Close,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub text: String,
    pub line: u32,
    pub column: u32,
}

/// nginx's tokens. Never fails: an unclosed string ends at the end of the input.
pub(crate) fn tokenize(bytes: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let advance = |i: &mut usize, line: &mut u32, col: &mut u32| {
        if bytes[*i] == b'\n' {
            *line = line.saturating_add(1);
            *col = 1;
        } else {
            *col = col.saturating_add(1);
        }
        *i += 1;
    };
    while i < bytes.len() {
        let b = bytes[i];
        let (l, c) = (line, col);
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => advance(&mut i, &mut line, &mut col),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    advance(&mut i, &mut line, &mut col);
                }
            }
            b';' | b'{' | b'}' => {
                let kind = match b {
                    b';' => Kind::Semicolon,
                    b'{' => Kind::Open,
                    _ => Kind::Close,
                };
                out.push(Token { kind, text: (b as char).to_string(), line: l, column: c });
                advance(&mut i, &mut line, &mut col);
            }
            b'"' | b'\'' => {
                advance(&mut i, &mut line, &mut col);
                let mut word = Vec::new();
                while i < bytes.len() && bytes[i] != b {
                    if bytes[i] == b'\\' && matches!(bytes.get(i + 1), Some(&q) if q == b || q == b'\\') {
                        advance(&mut i, &mut line, &mut col);
                    }
                    word.push(bytes[i]);
                    advance(&mut i, &mut line, &mut col);
                }
                if i < bytes.len() {
                    advance(&mut i, &mut line, &mut col);
                }
                out.push(Token {
                    kind: Kind::Word,
                    text: String::from_utf8_lossy(&word).into_owned(),
                    line: l,
                    column: c,
                });
            }
            _ => {
                let mut word = Vec::new();
                let mut in_var = false;
                while i < bytes.len() {
                    let ch = bytes[i];
                    if in_var {
                        in_var = ch != b'}';
                    } else if ch == b'{' && word.last() == Some(&b'$') {
                        in_var = true;
                    } else if matches!(ch, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b'}') {
                        break;
                    }
                    if ch == b'\\' && i + 1 < bytes.len() {
                        // The next character is never special; the backslash stays unless it escapes a quote or
                        // itself (nginx keeps `\.` in a regex).
                        if !matches!(bytes[i + 1], b'"' | b'\'' | b'\\') {
                            word.push(ch);
                        }
                        advance(&mut i, &mut line, &mut col);
                    }
                    word.push(bytes[i]);
                    advance(&mut i, &mut line, &mut col);
                }
                out.push(Token {
                    kind: Kind::Word,
                    text: String::from_utf8_lossy(&word).into_owned(),
                    line: l,
                    column: c,
                });
            }
        }
    }
    out
}

struct Frame {
    /// `server`, `location /x`…
    shown: String,
    name: String,
    /// Which `server` block it is or is inside.
    block: Option<usize>,
    /// This block's own `root`, when it exists.
    root: Option<(Loc, PathBuf)>,
    /// This block's own `index` names.
    index: Option<Vec<String>>,
}

struct Nginx<'a> {
    sink: Sink<'a>,
    conf_dir: PathBuf,
    frames: Vec<Frame>,
    reading: Vec<PathBuf>,
    /// `server` blocks opened so far.
    servers: usize,
}

impl Nginx<'_> {
    fn file(&mut self, path: &Path, bytes: &[u8], depth: usize) {
        self.sink.report.files += 1;
        self.reading.push(path.to_path_buf());
        let base = self.frames.len();
        let mut words: Vec<Token> = Vec::new();
        let loc_of = |words: &[Token]| {
            let written: Vec<&str> = words.iter().map(|t| t.text.as_str()).collect();
            words.first().map(|t| Loc {
                file: path.to_path_buf(),
                line: t.line,
                column: t.column,
                written: written.join(" "),
            })
        };
        for tok in tokenize(bytes) {
            match tok.kind {
                Kind::Word => words.push(tok),
                Kind::Semicolon => {
                    if let Some(loc) = loc_of(&words) {
                        let args: Vec<String> = words[1..].iter().map(|t| t.text.clone()).collect();
                        self.directive(&loc, &words[0].text, &args, depth);
                    }
                    words.clear();
                }
                Kind::Open => {
                    let shown: Vec<&str> = words.iter().map(|t| t.text.as_str()).collect();
                    let name = words.first().map(|t| t.text.clone()).unwrap_or_default();
                    let block = if name == "server" && self.frames.last().is_some_and(|f| f.name == "http") {
                        self.servers += 1;
                        Some(self.servers)
                    } else {
                        self.frames.last().and_then(|f| f.block)
                    };
                    self.frames.push(Frame { shown: shown.join(" "), name, block, root: None, index: None });
                    words.clear();
                }
                Kind::Close => {
                    words.clear();
                    if self.frames.len() > base {
                        self.close();
                    }
                }
            }
        }
        if self.frames.len() > base {
            let open: Vec<String> = self.frames[base..].iter().map(|f| format!("{} {{", f.shown)).collect();
            let loc = Loc { file: path.to_path_buf(), line: 1, column: 1, written: open.join(" ") };
            self.sink.push(
                &loc,
                Severity::Error,
                FindingKind::Missing,
                None,
                None,
                format!(
                    "{} never closed in this file (nginx -t fails: \"unexpected end of file, expecting }}\")",
                    open.join(" ")
                ),
            );
            while self.frames.len() > base {
                self.close();
            }
        }
        self.reading.pop();
    }

    /// Leaves a block: if it set an existing `root`, one of the `index` names in force should be there.
    fn close(&mut self) {
        let Some(frame) = self.frames.pop() else { return };
        let Some((loc, root)) = &frame.root else { return };
        if !root.is_dir() {
            return;
        }
        let names = frame
            .index
            .clone()
            .or_else(|| self.frames.iter().rev().find_map(|f| f.index.clone()))
            .unwrap_or_else(|| vec!["index.html".to_string()]);
        let constant: Vec<&String> = names.iter().filter(|n| !n.contains('$')).collect();
        if constant.len() < names.len() {
            return; // an index with a variable may name anything
        }
        if !constant.iter().any(|n| root.join(n.trim_start_matches('/')).exists()) {
            let mut context: Vec<String> = self.frames.iter().map(|f| f.shown.clone()).collect();
            context.push(frame.shown.clone());
            self.sink.push(
                loc,
                Severity::Info,
                FindingKind::Missing,
                Some(root),
                None,
                format!(
                    "root {} holds none of its index files ({}){} — fine if an application answers every request",
                    root.display(),
                    names.join(" "),
                    context_of(&context)
                ),
            );
        }
    }

    fn directive(&mut self, loc: &Loc, name: &str, args: &[String], depth: usize) {
        let sections: Vec<String> = self.frames.iter().map(|f| f.shown.clone()).collect();
        let context = context_of(&sections);
        let block = self.frames.last().and_then(|f| f.block);
        self.sink.record(loc, name, args, sections, block, &self.conf_dir);
        let Some(first) = args.first() else { return };
        if first.contains('$') && name != "index" {
            return; // known only per request
        }
        match name {
            "include" => self.include(loc, first, &context, depth),
            "root" => {
                let path = absolute(&self.conf_dir, first);
                if self.sink.require(loc, "root", &path, &context)
                    && let Some(frame) = self.frames.last_mut()
                {
                    frame.root = Some((loc.clone(), path));
                }
            }
            "alias" => {
                let path = absolute(&self.conf_dir, first);
                self.sink.require(loc, "alias", &path, &context);
            }
            "index" => {
                if let Some(frame) = self.frames.last_mut() {
                    frame.index = Some(args.to_vec());
                }
            }
            "ssl_certificate" | "ssl_certificate_key" | "ssl_trusted_certificate" | "ssl_client_certificate" => {
                if first.starts_with("data:") || first.starts_with("engine:") {
                    return;
                }
                let path = absolute(&self.conf_dir, first);
                self.sink.require(loc, name, &path, &context);
            }
            "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "server" => {
                if name == "server" && self.frames.last().is_none_or(|f| f.name != "upstream") {
                    return;
                }
                let Some(socket) = first.strip_prefix("unix:") else { return };
                let socket = absolute(&self.conf_dir, socket);
                let dir = socket.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                if self.sink.require(loc, &format!("{name} {first}: the socket's directory"), &dir, &context) {
                    let note = " (it exists only while PHP-FPM runs: start it before traffic)";
                    self.sink.expect(loc, Severity::Info, &format!("{name} socket"), &socket, &context, note);
                }
            }
            "error_log" | "access_log" => {
                if first == "off" || first == "stderr" || first.starts_with("syslog:") || first.starts_with("memory:") {
                    return;
                }
                let file = absolute(&self.conf_dir, first);
                let dir = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                self.sink.require(loc, &format!("{name} {first}: its directory"), &dir, &context);
            }
            _ => {}
        }
    }

    fn include(&mut self, loc: &Loc, pattern: &str, context: &str, depth: usize) {
        let path = absolute(&self.conf_dir, pattern);
        let files = if has_wildcard(pattern) {
            glob(&path) // matching nothing is fine for nginx
        } else {
            if !self.sink.require(loc, &format!("include {pattern}"), &path, &format!("{context} (nginx -t fails)")) {
                return;
            }
            vec![path]
        };
        if depth >= MAX_INCLUDE_DEPTH {
            let message = format!("include {pattern}: includes nest deeper than {MAX_INCLUDE_DEPTH}; not followed");
            self.sink.push(loc, Severity::Error, FindingKind::Missing, None, None, message);
            return;
        }
        for f in files {
            if f.is_dir() {
                continue; // nginx refuses a directory; its own test says so
            }
            if self.reading.contains(&f) {
                let message = format!("include {pattern}: {} includes itself", f.display());
                self.sink.push(loc, Severity::Error, FindingKind::Missing, Some(&f), None, message);
                continue;
            }
            match std::fs::read(&f) {
                Ok(bytes) => self.file(&f, &bytes, depth + 1),
                Err(e) => {
                    let message = format!("include {pattern}: {} cannot be read: {e}", f.display());
                    self.sink.push(loc, Severity::Error, FindingKind::Unreadable, Some(&f), None, message);
                }
            }
        }
    }
}
