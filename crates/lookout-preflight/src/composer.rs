//! Composer's generated autoload maps (`vendor/composer/autoload_classmap.php`, `autoload_files.php`,
//! `autoload_psr4.php`, `autoload_namespaces.php`, `autoload_static.php`): a class map or files entry whose file
//! is gone is the founding outage again (a PSR-4/PSR-0 directory that is gone is only info: see `check`) — Composer's autoloader
//! `require`s the files entries on every request (fatal) and `include`s the class files on first use — but no
//! `include` statement in the application names the path, so the include check alone cannot see it.
//!
//! The maps are read with the crate's tokenizer and their path expressions evaluated the way Composer writes them
//! (`$vendorDir . '/x/y.php'`, `$baseDir . '/src'`, `__DIR__ . '/..' . '/x'`), with `$vendorDir` and `$baseDir`
//! taken from their assignments at the top of the file (`dirname(__DIR__)`, `dirname($vendorDir)`, or whatever
//! shortest-path code Composer wrote for a custom vendor-dir). Each path is checked like an include target (exact
//! case, dangling symlinks, the web server user).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use lookout_diagnose::hints::Reader;

use crate::check::{Checker, DirCache, Outcome};
use crate::extract::Keyword;
use crate::files::Roots;
use crate::token::{self, Kind, Token};
use crate::{Finding, FindingKind, Severity};

/// The generated files read, by name.
const MAPS: [&str; 5] = [
    "autoload_classmap.php",
    "autoload_files.php",
    "autoload_psr4.php",
    "autoload_namespaces.php",
    "autoload_static.php",
];

/// What an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// A class file of the class map.
    Class,
    /// A file `require`d on every request (`"autoload": {"files": …}`).
    File,
    /// A PSR-4 or PSR-0 directory.
    Dir,
}

/// One path in a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub want: Want,
    /// The key it is listed under (class name or namespace prefix; empty for files entries).
    pub key: String,
    pub line: u32,
    pub column: u32,
    /// The expression as written.
    pub written: String,
    /// The absolute path it evaluates to.
    pub path: PathBuf,
}

/// Whether `path` is one of Composer's generated maps (in a directory named `composer`, whatever the vendor-dir).
pub fn is_map(path: &Path) -> bool {
    path.parent().and_then(Path::file_name).is_some_and(|d| d == "composer")
        && path.file_name().and_then(OsStr::to_str).is_some_and(|n| MAPS.contains(&n))
}

/// Findings for every map among `files` (absolute, real paths from the walk).
pub(crate) fn check(files: &[PathBuf], roots: &Roots, cache: &DirCache, reader: Option<&Reader>) -> Vec<Finding> {
    let mut checker = Checker::new(cache, reader);
    let mut out = Vec::new();
    for path in files.iter().filter(|p| is_map(p)) {
        let Ok(bytes) = std::fs::read(path) else { continue };
        let display = roots.display(path);
        let map = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for e in entries(&bytes, path) {
            let outcome = checker.check(&e.path);
            if let Some((message, suggestion)) = describe(&checker, &map, &e, &outcome) {
                out.push(Finding {
                    file: display.clone(),
                    line: e.line,
                    column: e.column,
                    // Composer's PSR-4/PSR-0 loader tests each candidate file before including it: a directory
                    // that is gone (Debian strips vendors' test directories) fails only a class someone asks for
                    // from it, not every request — info. A class map or files entry that is gone is fatal.
                    severity: if e.want == Want::Dir { Severity::Info } else { Severity::Error },
                    kind: FindingKind::ComposerAutoload,
                    statement: if e.want == Want::File { Keyword::Require } else { Keyword::Include },
                    expression: e.written,
                    resolved: Some(e.path.display().to_string()),
                    suggestion,
                    message,
                });
            }
        }
    }
    out
}

/// The sentence and suggestion for an entry that fails, `None` when it is there.
fn describe(checker: &Checker<'_>, map: &str, e: &Entry, outcome: &Outcome) -> Option<(String, Option<String>)> {
    let what = match e.want {
        Want::Class => format!("class {} to file", e.key),
        Want::File => "an autoload file (required on every request)".to_owned(),
        Want::Dir => format!("namespace {} to directory", e.key),
    };
    let shown = e.path.display();
    let head = format!("Composer's {map} maps {what} {shown}");
    let fix = "; run `composer dump-autoload` after moving files, or restore it";
    let (sentence, suggestion) = match outcome {
        Outcome::Found => return None,
        Outcome::Missing { dir, missing, last } => {
            let gone =
                if *last { String::new() } else { format!(" (directory {} is missing)", dir.join(missing).display()) };
            match checker.suggestion(dir, missing) {
                Some((name, _)) => (format!("{head}, which does not exist{gone}; did you mean {name}?"), Some(name)),
                None => (format!("{head}, which does not exist{gone}"), None),
            }
        }
        Outcome::CaseOnly { real } => (
            format!(
                "{head}, which does not exist: on disk it is {}, which differs only by case (works on a case-insensitive file system, fails on Linux)",
                real.display()
            ),
            Some(real.display().to_string()),
        ),
        Outcome::Dangling { link, target } => {
            (format!("{head}, but {} is a symlink to {}, which does not exist", link.display(), target.display()), None)
        }
        Outcome::Unreadable { why } => (format!("{head}, which the web server cannot read: {why}"), None),
    };
    Some((format!("{sentence}{fix}"), suggestion))
}

/// Every path entry of a generated map at `path` (its real path: `__DIR__` is its directory).
pub fn entries(bytes: &[u8], path: &Path) -> Vec<Entry> {
    let tokens = token::tokenize(bytes);
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
    let dir = path.parent().unwrap_or(Path::new("/")).as_os_str().as_bytes().to_vec();
    let mut vars = Vars { dir, vendor: None, base: None };
    // The section the tokens are in: for the plain maps everything after `return`; in autoload_static.php, the
    // property being assigned.
    let fixed = match name {
        "autoload_classmap.php" => Some(Want::Class),
        "autoload_files.php" => Some(Want::File),
        "autoload_psr4.php" | "autoload_namespaces.php" => Some(Want::Dir),
        _ => None,
    };
    let mut section: Option<Want> = None;
    let mut key = String::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        // `$vendorDir = …;` and `$baseDir = …;`
        if t.kind == Kind::Variable && tokens.get(i + 1).is_some_and(|n| n.is("=")) {
            let which = t.text;
            if which == b"$vendorDir" || which == b"$baseDir" {
                let mut j = i + 2;
                let value = vars.expr(&tokens, &mut j);
                if which == b"$vendorDir" {
                    vars.vendor = value;
                } else {
                    vars.base = value;
                }
                i = j;
                continue;
            }
        }
        if t.is_word("return") {
            section = fixed;
        } else if t.is_word("static") && fixed.is_none() {
            if let Some(v) = tokens.get(i + 1).filter(|v| v.kind == Kind::Variable) {
                section = match v.text {
                    b"$files" => Some(Want::File),
                    b"$classMap" => Some(Want::Class),
                    b"$prefixDirsPsr4" | b"$fallbackDirsPsr4" | b"$prefixesPsr0" | b"$fallbackDirsPsr0" => {
                        Some(Want::Dir)
                    }
                    _ => None,
                };
            }
        } else if t.kind == Kind::Str
            && tokens.get(i + 1).is_some_and(|n| n.is("="))
            && tokens.get(i + 2).is_some_and(|n| n.is(">"))
        {
            // Keys of the maps are quoted; the numeric keys of autoload_static's PSR-4 lists are not, so the
            // namespace they belong to stays the key.
            key = String::from_utf8_lossy(&t.value().unwrap_or_default()).into_owned();
        } else if let Some(want) = section
            && starts_path(t)
            && i.checked_sub(1)
                .and_then(|p| tokens.get(p))
                .is_some_and(|p| p.is(">") || p.is(",") || p.is("(") || p.is("["))
        {
            let mut j = i;
            if let Some(value) = vars.expr(&tokens, &mut j)
                && j > i + 1
            {
                let written =
                    tokens[i..j].iter().map(|t| String::from_utf8_lossy(t.text)).collect::<Vec<_>>().join(" ");
                let (line, column) = tokens.position(t);
                out.push(Entry {
                    want,
                    key: if want == Want::File { String::new() } else { key.clone() },
                    line,
                    column,
                    written,
                    path: crate::resolve::normalize(Path::new(OsStr::from_bytes(&value))),
                });
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

fn starts_path(t: &Token<'_>) -> bool {
    t.is_word("__DIR__")
        || t.is_word("dirname")
        || (t.kind == Kind::Variable && (t.text == b"$vendorDir" || t.text == b"$baseDir"))
}

/// `__DIR__` and the two variables Composer defines.
struct Vars {
    dir: Vec<u8>,
    vendor: Option<Vec<u8>>,
    base: Option<Vec<u8>>,
}

impl Vars {
    /// `term ('.' term)*` from `tokens[*pos]`, leaving `*pos` after it; `None` for anything else.
    fn expr(&self, tokens: &[Token<'_>], pos: &mut usize) -> Option<Vec<u8>> {
        let mut value = self.term(tokens, pos)?;
        while tokens.get(*pos).is_some_and(|t| t.is(".")) {
            *pos += 1;
            value.extend(self.term(tokens, pos)?);
        }
        Some(value)
    }

    /// `__DIR__`, `$vendorDir`, `$baseDir`, a constant string or `dirname(expr[, levels])`.
    fn term(&self, tokens: &[Token<'_>], pos: &mut usize) -> Option<Vec<u8>> {
        let t = tokens.get(*pos)?;
        *pos += 1;
        match t.kind {
            Kind::Ident if t.is_word("__DIR__") => Some(self.dir.clone()),
            Kind::Variable if t.text == b"$vendorDir" => self.vendor.clone(),
            Kind::Variable if t.text == b"$baseDir" => self.base.clone(),
            Kind::Str => t.value().map(Cow::into_owned),
            Kind::Ident if t.is_word("dirname") => {
                tokens.get(*pos).filter(|p| p.is("("))?;
                *pos += 1;
                let inner = self.expr(tokens, pos)?;
                let mut levels = 1;
                if tokens.get(*pos).is_some_and(|t| t.is(",")) {
                    let n = tokens.get(*pos + 1).filter(|n| n.kind == Kind::Number)?;
                    levels = std::str::from_utf8(n.text).ok()?.parse().ok()?;
                    *pos += 2;
                }
                tokens.get(*pos).filter(|p| p.is(")"))?;
                *pos += 1;
                Some(crate::resolve::dirname(&inner, levels))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "composer_tests.rs"]
mod tests;
