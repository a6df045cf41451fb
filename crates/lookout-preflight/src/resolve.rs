//! Evaluating an include's expression without running PHP: string literals, `.` concatenation, `__DIR__`,
//! `__FILE__`, `dirname(X[, levels])`, `realpath(X)` (taken as X), `DIRECTORY_SEPARATOR`, `PATH_SEPARATOR`,
//! `get_include_path()` and the constants the application defines — each definition evaluated in the file that
//! defines it. Anything else (a variable, another function's result) is *unresolved*: counted, never an error.
//!
//! A constant defined differently in several files gives several values; every value is tried (up to
//! [`MAX_ALTERNATIVES`] per expression), each remembering which definition it came from.
//!
//! Then [`candidates`]: the paths PHP would try for that string, in order.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::extract::Tok;
use crate::token::Kind;

/// More combinations than this (several constants with several definitions each) are not tried.
pub const MAX_ALTERNATIVES: usize = 8;
/// Constants defined in terms of constants, at most this deep (and never in a circle).
const MAX_DEPTH: usize = 32;

/// Where a constant's value came from, when its definitions differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Definition {
    pub name: String,
    pub file: PathBuf,
    pub line: u32,
}

/// One possible value of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alternative {
    pub value: Vec<u8>,
    /// The definitions chosen where a constant has several that differ (empty when there was no choice).
    pub via: Vec<Definition>,
}

/// A constant's definition as collected from a file.
#[derive(Clone, Debug)]
pub struct ConstDef {
    pub name: String,
    pub file: PathBuf,
    pub line: u32,
    pub expr: Vec<Tok>,
}

/// Where an expression is evaluated.
pub struct Scope<'a> {
    /// The file the expression is written in (absolute, as PHP's `__FILE__`).
    pub file: &'a Path,
    /// What `get_include_path()` returns there.
    pub include_path: &'a [u8],
    pub constants: &'a dyn Lookup,
}

/// The values of constants.
pub trait Lookup {
    /// `None` when the constant is unknown or its value cannot be known statically.
    fn constant(&self, name: &str) -> Option<Vec<Alternative>>;
}

/// The application's constants, each with its possible values.
#[derive(Debug, Default)]
pub struct Constants {
    values: HashMap<String, Vec<Alternative>>,
}

impl Lookup for Constants {
    fn constant(&self, name: &str) -> Option<Vec<Alternative>> {
        self.values.get(name).cloned()
    }
}

impl Constants {
    /// Evaluates every definition in its own file. `include_path` is what `get_include_path()` gives there.
    pub fn build(defs: &[ConstDef], include_path: &[u8]) -> Constants {
        let mut by_name: HashMap<&str, Vec<&ConstDef>> = HashMap::new();
        for d in defs {
            by_name.entry(d.name.as_str()).or_default().push(d);
        }
        let builder = Builder {
            by_name,
            include_path,
            memo: RefCell::new(HashMap::new()),
            visiting: RefCell::new(HashSet::new()),
        };
        let names: Vec<&str> = builder.by_name.keys().copied().collect();
        for name in names {
            builder.constant(name);
        }
        let values = builder.memo.into_inner().into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        Constants { values }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

struct Builder<'a> {
    by_name: HashMap<&'a str, Vec<&'a ConstDef>>,
    include_path: &'a [u8],
    memo: RefCell<HashMap<String, Option<Vec<Alternative>>>>,
    visiting: RefCell<HashSet<String>>,
}

impl Lookup for Builder<'_> {
    fn constant(&self, name: &str) -> Option<Vec<Alternative>> {
        if let Some(known) = self.memo.borrow().get(name) {
            return known.clone();
        }
        let defs = self.by_name.get(name)?;
        if self.visiting.borrow().len() >= MAX_DEPTH || !self.visiting.borrow_mut().insert(name.to_string()) {
            return None;
        }
        let mut alternatives: Vec<Alternative> = Vec::new();
        let mut all = true;
        for d in defs {
            let scope = Scope { file: &d.file, include_path: self.include_path, constants: self };
            match evaluate(&d.expr, &scope) {
                Ok(values) => {
                    for mut v in values {
                        if !alternatives.iter().any(|a| a.value == v.value) {
                            if defs.len() > 1 {
                                v.via.push(Definition { name: name.to_string(), file: d.file.clone(), line: d.line });
                            }
                            alternatives.push(v);
                        }
                    }
                }
                Err(_) => all = false,
            }
        }
        // One value whatever the definition: no choice worth naming.
        if alternatives.len() == 1 {
            alternatives[0].via.retain(|d| d.name != name);
        }
        alternatives.truncate(MAX_ALTERNATIVES);
        let result = (!alternatives.is_empty() && all).then_some(alternatives);
        self.visiting.borrow_mut().remove(name);
        self.memo.borrow_mut().insert(name.to_string(), result.clone());
        result
    }
}

/// The values an expression can have, or why it cannot be known before the code runs.
pub fn evaluate(expr: &[Tok], scope: &Scope<'_>) -> Result<Vec<Alternative>, String> {
    if expr.is_empty() {
        return Err("no expression".into());
    }
    let mut p = Parser { t: expr, i: 0, scope };
    let v = p.concat()?;
    match p.t.get(p.i) {
        None => Ok(v),
        Some(t) => Err(format!("`{}` is not a constant expression", String::from_utf8_lossy(&t.text))),
    }
}

struct Parser<'t, 's> {
    t: &'t [Tok],
    i: usize,
    scope: &'s Scope<'s>,
}

fn one(value: Vec<u8>) -> Vec<Alternative> {
    vec![Alternative { value, via: Vec::new() }]
}

impl<'t> Parser<'t, '_> {
    fn peek(&self) -> Option<&'t Tok> {
        self.t.get(self.i)
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.peek().is_some_and(|t| t.is(p)) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{p}`"))
        }
    }

    /// term ('.' term)*
    fn concat(&mut self) -> Result<Vec<Alternative>, String> {
        let mut acc = self.term()?;
        while self.peek().is_some_and(|t| t.is(".")) {
            self.i += 1;
            let right = self.term()?;
            // One value on each side (nearly always): joined in place, without copying either.
            if let ([a], [b]) = (acc.as_mut_slice(), right.as_slice()) {
                a.value.extend_from_slice(&b.value);
                for d in &b.via {
                    if !a.via.contains(d) {
                        a.via.push(d.clone());
                    }
                }
                continue;
            }
            let mut next = Vec::new();
            for a in &acc {
                for b in &right {
                    let mut value = a.value.clone();
                    value.extend_from_slice(&b.value);
                    let mut via = a.via.clone();
                    via.extend(b.via.iter().filter(|d| !a.via.contains(d)).cloned());
                    next.push(Alternative { value, via });
                }
            }
            if next.len() > MAX_ALTERNATIVES {
                return Err("too many combinations of constant definitions".into());
            }
            acc = next;
        }
        Ok(acc)
    }

    fn term(&mut self) -> Result<Vec<Alternative>, String> {
        let Some(t) = self.peek() else { return Err("the expression ends early".into()) };
        self.i += 1;
        match t.kind {
            Kind::Str => {
                t.value().map(|v| one(v.into_owned())).ok_or_else(|| "a string with variables in it".to_string())
            }
            Kind::Number => Ok(one(t.text.to_vec())),
            Kind::Variable => Err(format!("the variable {}", String::from_utf8_lossy(&t.text))),
            Kind::Punct if t.is("(") => {
                let v = self.concat()?;
                self.expect(")")?;
                Ok(v)
            }
            Kind::Ident => self.name(t),
            _ => Err(format!("`{}`", String::from_utf8_lossy(&t.text))),
        }
    }

    fn name(&mut self, t: &Tok) -> Result<Vec<Alternative>, String> {
        let text = String::from_utf8_lossy(&t.text);
        let name = text.trim_start_matches('\\');
        let call = self.peek().is_some_and(|t| t.is("("));
        if call {
            self.i += 1;
            // Function names ignore case: compared in place, not through a lower-cased copy.
            let is = |f: &str| name.eq_ignore_ascii_case(f);
            return match () {
                () if is("dirname") => {
                    let path = self.concat()?;
                    let levels = if self.peek().is_some_and(|t| t.is(",")) {
                        self.i += 1;
                        let n = self.concat()?;
                        let n = n.first().map(|a| String::from_utf8_lossy(&a.value).into_owned()).unwrap_or_default();
                        n.trim().parse::<usize>().map_err(|_| "dirname() levels is not a number".to_string())?
                    } else {
                        1
                    };
                    self.expect(")")?;
                    Ok(path.into_iter().map(|a| Alternative { value: dirname(&a.value, levels), via: a.via }).collect())
                }
                () if is("realpath") => {
                    let v = self.concat()?;
                    self.expect(")")?;
                    Ok(v)
                }
                () if is("get_include_path") => {
                    self.expect(")")?;
                    Ok(one(self.scope.include_path.to_vec()))
                }
                () => Err(format!("the call {name}()")),
            };
        }
        // Magic constants ignore case; others do not.
        match name {
            _ if name.eq_ignore_ascii_case("__dir__") => Ok(one(dirname(self.scope.file.as_os_str().as_bytes(), 1))),
            _ if name.eq_ignore_ascii_case("__file__") => Ok(one(self.scope.file.as_os_str().as_bytes().to_vec())),
            _ => match name {
                "DIRECTORY_SEPARATOR" => Ok(one(b"/".to_vec())),
                "PATH_SEPARATOR" => Ok(one(b":".to_vec())),
                // Namespaced code falls back to the global constant of the last name.
                _ => {
                    let last = name.rsplit('\\').next().unwrap_or(name);
                    self.scope.constants.constant(last).ok_or_else(|| format!("the constant {name}"))
                }
            },
        }
    }
}

/// PHP's `dirname($path, $levels)` for the paths that matter here.
pub fn dirname(path: &[u8], levels: usize) -> Vec<u8> {
    let mut p = path.to_vec();
    for _ in 0..levels.max(1) {
        while p.len() > 1 && p.last() == Some(&b'/') {
            p.pop();
        }
        match p.iter().rposition(|&b| b == b'/') {
            Some(0) => p.truncate(1),
            Some(i) => {
                p.truncate(i);
                while p.len() > 1 && p.last() == Some(&b'/') {
                    p.pop();
                }
            }
            None => p = b".".to_vec(),
        }
    }
    p
}

/// The absolute paths PHP tries for `include VALUE` written in a file in `dir`, in order: an absolute path as is;
/// `./x` and `../x` from the current directory only; otherwise each `include_path` entry (`.` is the current
/// directory) and then the including script's directory. For a web request the current directory is the script's
/// directory; preflight takes the including file's. Empty for a stream URL (`phar://…`).
pub fn candidates(value: &[u8], dir: &Path, include_path: &[u8]) -> Vec<PathBuf> {
    let as_path = Path::new(std::ffi::OsStr::from_bytes(value));
    if value.is_empty() || value.windows(3).any(|w| w == b"://") {
        return Vec::new();
    }
    let mut out: Vec<PathBuf> = Vec::new();
    if as_path.is_absolute() {
        out.push(normalize(as_path));
    } else if value.starts_with(b"./") || value.starts_with(b"../") || value == b"." || value == b".." {
        out.push(normalized(dir.join(as_path)));
    } else {
        for entry in include_path.split(|&b| b == b':').filter(|e| !e.is_empty()) {
            let entry = Path::new(std::ffi::OsStr::from_bytes(entry));
            let base = if entry.is_absolute() { entry.to_path_buf() } else { dir.join(entry) };
            out.push(normalized(base.join(as_path)));
        }
        out.push(normalized(dir.join(as_path)));
    }
    // A handful at most: a list beats a hash set.
    let mut unique: Vec<PathBuf> = Vec::with_capacity(out.len());
    for p in out {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

/// [`normalize`] for a path already owned: returned as it is when it is normal (most are).
fn normalized(path: PathBuf) -> PathBuf {
    if is_normal(&path) { path } else { normalize(&path) }
}

/// Absolute, without `.`, `..`, `//` or a trailing `/`. Searched by hand: these paths are short, and a `memmem`
/// search builds its searcher on every call (2 % of a 10,000-file run for three of them).
fn is_normal(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    bytes.first() == Some(&b'/')
        && !bytes.ends_with(b"/.")
        && !bytes.ends_with(b"/..")
        && (bytes.len() == 1 || !bytes.ends_with(b"/"))
        && !bytes.windows(2).any(|w| w == b"//")
        && !bytes.windows(3).any(|w| w == b"/./")
        && !bytes.windows(4).any(|w| w == b"/../")
}

/// `a/./b/../c` → `a/c`, lexically (PHP resolves `..` the same way before it opens the file).
pub fn normalize(path: &Path) -> PathBuf {
    // Most paths are normal already (absolute, no `.`, `..`, `//` or trailing `/`): taken as they are, without
    // being rebuilt component by component (once per include of a 50,000-include tree).
    if is_normal(path) {
        return path.to_path_buf();
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.as_os_str() != "/" && !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Composer's `include-path` autoload (PEAR-style libraries such as MediaWiki's `vendor/pear/*`): when a tree has
/// `vendor/composer/include_paths.php`, the autoloader runs `set_include_path(implode(PATH_SEPARATOR,
/// $includePaths + [get_include_path()]))` before any application code, so a bare `require_once 'PEAR.php'` is
/// looked up there first. For each such file among `files`: the directory above `vendor` (the project) and the
/// generated entries, joined with `:` ([`include_path_for`] appends the include path the file started with).
/// Without this, every PEAR `require_once 'Net/Socket.php'` would be a false "does not exist".
pub fn composer_include_paths(files: &[PathBuf], include_path: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for file in files.iter().filter(|f| f.ends_with("vendor/composer/include_paths.php")) {
        let Ok(bytes) = std::fs::read(file) else { continue };
        let entries = returned_paths(file, &bytes, include_path);
        let Some(project) = file.parent().and_then(Path::parent).and_then(Path::parent) else { continue };
        if entries.is_empty() {
            continue;
        }
        out.push((project.to_path_buf(), entries.join(&b':')));
    }
    out
}

/// The include path a file's code sees: its Composer project's entries (the deepest project that contains it)
/// before `base` (what `.user.ini`, `.htaccess`, Apache or php.ini give it: [`crate::ini`]), else `base`.
pub fn include_path_for<'a>(file: &Path, composer: &[(PathBuf, Vec<u8>)], base: &'a [u8]) -> Cow<'a, [u8]> {
    let project = composer
        .iter()
        .filter(|(project, _)| file.starts_with(project))
        .max_by_key(|(project, _)| project.as_os_str().len());
    match project {
        Some((_, entries)) => {
            let mut joined = entries.clone();
            joined.push(b':');
            joined.extend_from_slice(base);
            Cow::Owned(joined)
        }
        None => Cow::Borrowed(base),
    }
}

/// The strings of a generated `return array(…);` / `return […];`, with the file's simple variable assignments
/// (`$vendorDir = dirname(__DIR__);`, `$baseDir = dirname($vendorDir);`) substituted.
fn returned_paths(file: &Path, bytes: &[u8], include_path: &[u8]) -> Vec<Vec<u8>> {
    let tokens: Vec<Tok> = crate::token::tokenize(bytes)
        .iter()
        .filter(|t| t.kind != Kind::InlineHtml && t.kind != Kind::OpenTag)
        .map(|t| Tok { kind: t.kind, text: crate::extract::Bytes::from_slice(t.text) })
        .collect();
    let none = Constants::default();
    let scope = Scope { file, include_path, constants: &none };
    let mut vars: HashMap<Box<[u8]>, Vec<u8>> = HashMap::new();
    let value_of = |expr: &[Tok], vars: &HashMap<Box<[u8]>, Vec<u8>>| -> Option<Vec<u8>> {
        let substituted: Vec<Tok> = expr
            .iter()
            .map(|t| match (t.kind, vars.get(&*t.text)) {
                (Kind::Variable, Some(v)) => Tok::string(v),
                _ => t.clone(),
            })
            .collect();
        evaluate(&substituted, &scope).ok()?.into_iter().next().map(|a| a.value)
    };
    let statement_end = |from: usize| tokens[from..].iter().position(|t| t.is(";")).map_or(tokens.len(), |p| from + p);
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.kind == Kind::Variable && tokens.get(i + 1).is_some_and(|t| t.is("=")) {
            let end = statement_end(i + 2);
            if let Some(v) = value_of(&tokens[i + 2..end], &vars) {
                vars.insert((*t.text).into(), v);
            }
            i = end;
        } else if t.is_word("return") {
            let (open, close) = match tokens.get(i + 1) {
                Some(a) if a.is_word("array") && tokens.get(i + 2).is_some_and(|t| t.is("(")) => (i + 3, ")"),
                Some(b) if b.is("[") => (i + 2, "]"),
                _ => return Vec::new(),
            };
            let mut out = Vec::new();
            let (mut depth, mut start) = (0usize, open);
            for j in open..tokens.len() {
                let t = &tokens[j];
                let at_end = depth == 0 && t.is(close);
                if (depth == 0 && t.is(",")) || at_end {
                    if start < j
                        && let Some(v) = value_of(&tokens[start..j], &vars)
                    {
                        out.push(v);
                    }
                    start = j + 1;
                }
                if at_end {
                    break;
                }
                if t.is("(") || t.is("[") {
                    depth += 1;
                } else if t.is(")") || t.is("]") {
                    depth = depth.saturating_sub(1);
                }
            }
            return out;
        } else {
            i += 1;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests;
