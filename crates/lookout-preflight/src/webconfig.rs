//! Web-server configuration checked before deploy: the paths Apache's and nginx's configuration names
//! (document roots, aliases, index files, log directories, TLS keys, modules, FastCGI sockets) must exist, or the
//! server starts and fails on the first request — `apache2ctl -t` only warns about a missing DocumentRoot, and
//! `nginx -t` never looks at `root` at all. Findings have the PHP findings' shape (file and line of the directive,
//! the resolved path, a did-you-mean), so text, JSON and the exit code work unchanged.
//!
//! Each reader ([`apache`], [`nginx`]) follows includes (globs, cycles and depth bounded) and never panics: the
//! configuration is input like any PHP file.

pub mod apache;
pub mod nginx;

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::check::{self, Checker, DirCache, Outcome};
use crate::extract::Keyword;
use crate::{Finding, FindingKind, Severity};

/// How deep includes may nest (Apache stops at 128; a cycle is cut earlier, by the files being read).
const MAX_INCLUDE_DEPTH: usize = 64;
/// The expression shown for a directive is cut here (a continued line can be long).
const MAX_EXPRESSION: usize = 200;

/// An `include_path` a web server's configuration gives PHP (`php_value`/`php_admin_value include_path`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhpIncludePath {
    pub file: String,
    pub line: u32,
    /// The value as set (`.:/usr/share/php`).
    pub value: String,
    /// Where it applies: the enclosing sections (`<VirtualHost *:80> <Directory /srv/app>`), empty at server level.
    pub context: String,
}

/// What one configuration gave.
#[derive(Clone, Debug, Default)]
pub struct ConfigReport {
    pub findings: Vec<Finding>,
    pub php_include_paths: Vec<PhpIncludePath>,
    /// Configuration files read (the one given and every file included).
    pub files: usize,
    /// Every directive in the order the server reads them, includes followed: what `lookout init` builds its
    /// configuration from, so that it reads a server's configuration exactly as preflight does.
    pub directives: Vec<Directive>,
}

/// One directive as the server reads it: Apache's after `${VAR}` substitution, nginx's with its strings unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// Apache's in lower case (its names are case-insensitive); nginx's as written.
    pub name: String,
    pub args: Vec<String>,
    /// The enclosing sections, outermost first, as written: `<VirtualHost 127.0.0.1:80>`, or `http`, `server`,
    /// `location = /status`.
    pub sections: Vec<String>,
    /// Which `<VirtualHost>` or nginx `server` block it is in (numbered from 1 in reading order).
    pub block: Option<usize>,
    /// What a relative path in it is relative to: Apache's `ServerRoot` in force, nginx's configuration directory.
    pub base: PathBuf,
    pub file: PathBuf,
    pub line: u32,
}

impl Directive {
    /// The path argument `i`, absolute (relative to [`Directive::base`]) and normalized.
    pub fn path(&self, i: usize) -> Option<PathBuf> {
        self.args.get(i).map(|a| absolute(&self.base, a))
    }
}

/// Reads an Apache configuration and every file it includes, for its directives (findings are dropped).
pub fn apache_directives(path: &Path) -> std::io::Result<Vec<Directive>> {
    Ok(apache::check(path, &DirCache::default(), None)?.directives)
}

/// Reads an nginx configuration and every file it includes, for its directives (findings are dropped).
pub fn nginx_directives(path: &Path) -> std::io::Result<Vec<Directive>> {
    Ok(nginx::check(path, &DirCache::default(), None)?.directives)
}

/// Where a directive is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    /// The directive as written (for the finding's `expression`).
    pub written: String,
}

/// Collects findings; looks paths up the way the PHP checks do (exact case, dangling links, the web user).
pub(crate) struct Sink<'a> {
    pub report: ConfigReport,
    checker: Checker<'a>,
}

impl<'a> Sink<'a> {
    pub fn new(cache: &'a DirCache, reader: Option<&'a lookout_diagnose::hints::Reader>) -> Sink<'a> {
        Sink { report: ConfigReport::default(), checker: Checker::new(cache, reader) }
    }

    pub fn push(
        &mut self,
        loc: &Loc,
        severity: Severity,
        kind: FindingKind,
        resolved: Option<&Path>,
        suggestion: Option<String>,
        message: String,
    ) {
        let mut expression: String = loc.written.chars().take(MAX_EXPRESSION).collect();
        if expression.len() < loc.written.len() {
            expression.push('…');
        }
        self.report.findings.push(Finding {
            file: loc.file.display().to_string(),
            line: loc.line,
            column: loc.column,
            severity,
            kind,
            statement: Keyword::Directive,
            expression,
            resolved: resolved.map(|p| p.display().to_string()),
            suggestion,
            message,
        });
    }

    /// Records a directive the server reads (see [`ConfigReport::directives`]).
    pub fn record(
        &mut self,
        loc: &Loc,
        name: &str,
        args: &[String],
        sections: Vec<String>,
        block: Option<usize>,
        base: &Path,
    ) {
        self.report.directives.push(Directive {
            name: name.to_string(),
            args: args.to_vec(),
            sections,
            block,
            base: base.to_path_buf(),
            file: loc.file.clone(),
            line: loc.line,
        });
    }

    /// Looks `path` up (absolute, normalized).
    pub fn lookup(&mut self, path: &Path) -> Outcome {
        self.checker.check(path)
    }

    /// An error when `path` does not exist: `what` names it (`DocumentRoot /srv/x`), `context` says where
    /// (` in <VirtualHost *:80>`). Returns whether it exists.
    pub fn require(&mut self, loc: &Loc, what: &str, path: &Path, context: &str) -> bool {
        self.expect(loc, Severity::Error, what, path, context, "")
    }

    /// Like [`Sink::require`] with the severity and a note appended to the message.
    pub fn expect(
        &mut self,
        loc: &Loc,
        severity: Severity,
        what: &str,
        path: &Path,
        context: &str,
        note: &str,
    ) -> bool {
        let outcome = self.lookup(path);
        if outcome.is_found() {
            return true;
        }
        let (kind, sentence, suggestion) = describe(what, path, &outcome);
        self.push(loc, severity, kind, Some(path), suggestion, format!("{sentence}{context}{note}"));
        false
    }
}

/// The finding's kind, sentence and suggestion for a path that is not there.
fn describe(what: &str, path: &Path, outcome: &Outcome) -> (FindingKind, String, Option<String>) {
    let shown = path.display();
    match outcome {
        Outcome::Found => (FindingKind::Missing, format!("{what}: {shown} exists"), None),
        Outcome::Missing { dir, missing, last } => {
            let subject = if *last {
                format!("{what}: {shown}")
            } else {
                format!("{what}: directory {} (on the way to {shown})", dir.join(missing).display())
            };
            match check::suggestion(dir, missing) {
                Some((name, difference)) => {
                    let extra = difference.says().map(|s| format!(" ({s})")).unwrap_or_default();
                    (FindingKind::Missing, format!("{subject} does not exist; did you mean {name}?{extra}"), Some(name))
                }
                None => (FindingKind::Missing, format!("{subject} does not exist"), None),
            }
        }
        Outcome::CaseOnly { real } => (
            FindingKind::CaseOnly,
            format!("{what}: {shown} does not exist: on disk it is {}, which differs only by case", real.display()),
            Some(real.display().to_string()),
        ),
        Outcome::Dangling { link, target } => (
            FindingKind::Dangling,
            format!("{what}: {} is a symlink to {}, which does not exist", link.display(), target.display()),
            None,
        ),
        Outcome::Unreadable { why } => {
            (FindingKind::Unreadable, format!("{what}: {shown} cannot be read by the web server: {why}"), None)
        }
    }
}

/// `path` made absolute against `base` and normalized lexically (`.` and `..` folded, like the servers do).
pub(crate) fn absolute(base: &Path, path: &str) -> PathBuf {
    let joined = if path.starts_with('/') { PathBuf::from(path) } else { base.join(path) };
    normalize(&joined)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Whether a path has shell wildcards (`*`, `?`, `[`).
pub(crate) fn has_wildcard(path: &str) -> bool {
    path.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The files an absolute pattern matches, sorted (each component may have wildcards, like `fnmatch` per
/// component: `*` never matches `/`, and a leading `.` is matched only by a pattern that starts with one).
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::from("/")];
    for c in pattern.components() {
        let Component::Normal(name) = c else { continue };
        let name = name.to_string_lossy();
        let mut next = Vec::new();
        for dir in &current {
            if !has_wildcard(&name) {
                let p = dir.join(&*name);
                if p.symlink_metadata().is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut matched: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    (!n.starts_with('.') || name.starts_with('.')) && fnmatch(name.as_bytes(), n.as_bytes())
                })
                .map(|e| e.path())
                .collect();
            matched.sort();
            next.extend(matched);
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

/// Shell wildcard match of one name: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`/`[^x]`, `\` escapes.
pub(crate) fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear enough for any input, never recursive.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, name[n]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == name[n]).then_some(p + 2),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*')
}

/// A `[...]` class at `pattern[start]`: the index after it when `c` matches, else `None` (an unclosed `[` is a
/// literal `[`).
fn class(pattern: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < pattern.len() && (pattern[i] != b']' || i == first) {
        let lo = pattern[i];
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&b| b != b']') {
            let hi = pattern[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    if i >= pattern.len() {
        return (c == b'[').then_some(start + 1);
    }
    (matched != negate).then_some(i + 1)
}

/// The sections enclosing a directive, as `<Name args>` words (for messages).
pub(crate) fn context_of(sections: &[String]) -> String {
    if sections.is_empty() { String::new() } else { format!(" (in {})", sections.join(" ")) }
}

#[cfg(test)]
mod tests;
