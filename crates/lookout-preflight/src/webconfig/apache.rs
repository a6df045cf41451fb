//! Apache httpd's configuration, read the way httpd reads it: logical lines (a `\` at the end continues), `#`
//! comments, case-insensitive directive names, arguments split like `ap_getword_conf` (quotes, `\` escapes),
//! `Define` and `${NAME}` substitution, `Include`/`IncludeOptional` with wildcards relative to `ServerRoot`.
//! Sections (`<VirtualHost>`, `<Directory>`, `<IfModule>`, …) are tracked for context only: every branch of an
//! `<IfModule>` is read, since preflight cannot know which modules the server will load.
//!
//! `ServerRoot` defaults to the configuration's own directory (Debian's `/etc/apache2/apache2.conf` → `/etc/apache2`,
//! which is what Debian's httpd is built with), or its parent when that directory is named `conf` (upstream's
//! `/usr/local/apache2/conf/httpd.conf` → `/usr/local/apache2`). Debian's `${APACHE_LOG_DIR}` and friends come from
//! the `envvars` file `apache2ctl` sources: when one sits beside the configuration its `export NAME=value` lines
//! are read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Loc, MAX_INCLUDE_DEPTH, Sink, absolute, context_of, glob, has_wildcard};
use crate::check::DirCache;
use crate::webconfig::{ConfigReport, PhpIncludePath};
use crate::{FindingKind, Severity};

/// How many files a directory `Include` reads at most (a mistaken `Include /` must not walk the disk).
const MAX_DIR_FILES: usize = 10_000;

/// Reads `path` and everything it includes; an `Err` only when `path` itself cannot be read.
pub fn check(
    path: &Path,
    cache: &DirCache,
    reader: Option<&lookout_diagnose::hints::Reader>,
) -> std::io::Result<ConfigReport> {
    let text = std::fs::read(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir = absolute(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")), &dir.to_string_lossy());
    let server_root = if dir.file_name().is_some_and(|n| n == "conf") {
        dir.parent().map_or_else(|| dir.clone(), Path::to_path_buf)
    } else {
        dir.clone()
    };
    let mut a = Apache {
        sink: Sink::new(cache, reader),
        server_root,
        defines: HashMap::new(),
        envvars: None,
        sections: Vec::new(),
        vhosts: 0,
        reading: Vec::new(),
        docroots: Vec::new(),
        indexes: Vec::new(),
    };
    let envvars = dir.join("envvars");
    if let Ok(env) = std::fs::read(&envvars) {
        a.defines = envvars_of(&String::from_utf8_lossy(&env));
        a.envvars = Some(envvars);
    }
    a.file(path, &text, 0);
    a.index_checks();
    Ok(a.sink.report)
}

struct Section {
    /// The name, lower case (`virtualhost`).
    name: String,
    /// As shown in messages: `<VirtualHost *:443>`.
    shown: String,
    /// Which `<VirtualHost>` it is or is inside.
    vhost: Option<usize>,
    /// A `<Directory>`'s path, as written.
    directory: Option<String>,
}

struct DocRoot {
    loc: Loc,
    path: PathBuf,
    vhost: Option<usize>,
    context: String,
}

struct Index {
    vhost: Option<usize>,
    directory: Option<String>,
    /// Set at server level (not inside a `<VirtualHost>`, `<Directory>`, `<Location>` or `<Files>`).
    server_level: bool,
    names: Vec<String>,
}

struct Apache<'a> {
    sink: Sink<'a>,
    server_root: PathBuf,
    defines: HashMap<String, String>,
    envvars: Option<PathBuf>,
    sections: Vec<Section>,
    vhosts: usize,
    /// The files being read, outermost first: an include of one of them is a cycle.
    reading: Vec<PathBuf>,
    docroots: Vec<DocRoot>,
    indexes: Vec<Index>,
}

impl Apache<'_> {
    fn file(&mut self, path: &Path, bytes: &[u8], depth: usize) {
        self.sink.report.files += 1;
        self.reading.push(path.to_path_buf());
        let base = self.sections.len();
        let text = String::from_utf8_lossy(bytes);
        let mut pending: Option<(String, u32, u32)> = None;
        for (i, raw) in text.lines().enumerate() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let line = raw.trim_end();
            let (start, first_line, column) = match pending.take() {
                Some((so_far, n, c)) => (format!("{so_far}{line}"), n, c),
                None => {
                    let indent = line.len() - line.trim_start().len();
                    let column = u32::try_from(indent + 1).unwrap_or(u32::MAX);
                    (line.trim_start().to_string(), number, column)
                }
            };
            if let Some(cont) = start.strip_suffix('\\') {
                pending = Some((cont.to_string(), first_line, column));
                continue;
            }
            if start.is_empty() || start.starts_with('#') {
                continue;
            }
            let loc = Loc { file: path.to_path_buf(), line: first_line, column, written: start.clone() };
            self.logical(&loc, &start, depth);
        }
        if let Some((rest, n, c)) = pending
            && !rest.trim().is_empty()
            && !rest.trim_start().starts_with('#')
        {
            let loc = Loc { file: path.to_path_buf(), line: n, column: c, written: rest.clone() };
            self.logical(&loc, rest.trim(), depth);
        }
        if self.sections.len() > base {
            let open: Vec<String> = self.sections[base..].iter().map(|s| s.shown.clone()).collect();
            let loc = Loc { file: path.to_path_buf(), line: 1, column: 1, written: open.join(" ") };
            self.sink.push(
                &loc,
                Severity::Error,
                FindingKind::Missing,
                None,
                None,
                format!("{} never closed in this file (apache2ctl -t fails: \"was not closed\")", open.join(" ")),
            );
            self.sections.truncate(base);
        }
        self.reading.pop();
    }

    fn logical(&mut self, loc: &Loc, line: &str, depth: usize) {
        if let Some(close) = line.strip_prefix("</") {
            let name = close.split(|c: char| c == '>' || c.is_whitespace()).next().unwrap_or("").to_lowercase();
            if let Some(at) = self.sections.iter().rposition(|s| s.name == name) {
                self.sections.truncate(at);
            }
            return;
        }
        let (substituted, undefined) = self.substitute(line);
        if let Some(open) = substituted.strip_prefix('<') {
            let inner = open.rsplit_once('>').map_or(open, |(inner, _)| inner);
            let words = words(inner);
            let name = words.first().map(|w| w.to_lowercase()).unwrap_or_default();
            let vhost = if name == "virtualhost" {
                self.vhosts += 1;
                Some(self.vhosts)
            } else {
                self.sections.last().and_then(|s| s.vhost)
            };
            let directory = (name == "directory").then(|| words.get(1).cloned()).flatten();
            self.sections.push(Section { name, shown: format!("<{}>", inner.trim()), vhost, directory });
            return;
        }
        let words = words(&substituted);
        let Some(name) = words.first().map(|w| w.to_lowercase()) else { return };
        let args = &words[1..];
        if !undefined.is_empty() {
            let why = match &self.envvars {
                Some(env) => format!("neither a Define nor in {}", env.display()),
                None => "no Define of it, and no envvars file beside the configuration".to_string(),
            };
            let names: Vec<String> = undefined.iter().map(|n| format!("${{{n}}}")).collect();
            self.sink.push(
                loc,
                Severity::Info,
                FindingKind::Unresolved,
                None,
                None,
                format!("{} is not defined ({why}): {} not checked", names.join(", "), words[0]),
            );
            if name != "define" {
                return;
            }
        }
        self.directive(loc, &name, &words[0], args, depth);
    }

    fn directive(&mut self, loc: &Loc, name: &str, written: &str, args: &[String], depth: usize) {
        let sections: Vec<String> = self.sections.iter().map(|s| s.shown.clone()).collect();
        let context = context_of(&sections);
        let block = self.sections.last().and_then(|s| s.vhost);
        self.sink.record(loc, name, args, sections, block, &self.server_root);
        let first = args.first().map(String::as_str);
        match (name, first) {
            ("define", Some(n)) => {
                self.defines.insert(n.to_string(), args.get(1).cloned().unwrap_or_default());
            }
            ("undefine", Some(n)) => {
                self.defines.remove(n);
            }
            ("serverroot", Some(root)) => {
                let root = absolute(&self.server_root, root);
                self.sink.require(loc, "ServerRoot", &root, &context);
                self.server_root = root;
            }
            ("include" | "includeoptional", Some(pattern)) => {
                self.include(loc, written, name == "includeoptional", pattern, &context, depth);
            }
            ("documentroot", Some(root)) => {
                let path = absolute(&self.server_root, root);
                let note = " (apache2ctl -t only warns; every request to it fails)";
                if self.sink.expect(loc, Severity::Error, "DocumentRoot", &path, &context, note) {
                    let vhost = self.sections.last().and_then(|s| s.vhost);
                    self.docroots.push(DocRoot { loc: loc.clone(), path, vhost, context });
                }
            }
            ("alias" | "scriptalias", Some(_)) if args.len() >= 2 => {
                let path = absolute(&self.server_root, &args[1]);
                self.sink.require(loc, &format!("{written} {} target", args[0]), &path, &context);
            }
            ("aliasmatch" | "scriptaliasmatch", Some(_)) if args.len() >= 2 && !args[1].contains('$') => {
                let path = absolute(&self.server_root, &args[1]);
                self.sink.require(loc, &format!("{written} target"), &path, &context);
            }
            ("directoryindex", Some(_)) => {
                let inside = ["virtualhost", "directory", "directorymatch", "location", "locationmatch", "files"];
                self.indexes.push(Index {
                    vhost: self.sections.last().and_then(|s| s.vhost),
                    directory: self.sections.iter().rev().find_map(|s| s.directory.clone()),
                    server_level: !self.sections.iter().any(|s| inside.contains(&s.name.as_str())),
                    names: args.to_vec(),
                });
            }
            ("errorlog" | "customlog" | "transferlog" | "globallog", Some(target)) => {
                if target.starts_with('|') || target == "syslog" || target.starts_with("syslog:") {
                    return;
                }
                let file = absolute(&self.server_root, target);
                let dir = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                let what = format!("{written} {target}: its directory");
                self.sink.require(loc, &what, &dir, &context);
            }
            (
                "sslcertificatefile" | "sslcertificatekeyfile" | "sslcertificatechainfile" | "sslcacertificatefile",
                Some(file),
            ) => {
                let path = absolute(&self.server_root, file);
                self.sink.require(loc, written, &path, &context);
            }
            ("loadmodule", Some(_)) if args.len() >= 2 => {
                let path = absolute(&self.server_root, &args[1]);
                self.sink.require(loc, &format!("LoadModule {}", args[0]), &path, &context);
            }
            ("php_value" | "php_admin_value", Some(setting)) if setting.eq_ignore_ascii_case("include_path") => {
                self.sink.report.php_include_paths.push(PhpIncludePath {
                    file: loc.file.display().to_string(),
                    line: loc.line,
                    value: args.get(1).cloned().unwrap_or_default(),
                    context: self.sections.iter().map(|s| s.shown.as_str()).collect::<Vec<_>>().join(" "),
                });
            }
            _ => {}
        }
    }

    fn include(&mut self, loc: &Loc, written: &str, optional: bool, pattern: &str, context: &str, depth: usize) {
        let path = absolute(&self.server_root, pattern);
        let files = if has_wildcard(pattern) {
            let matched = glob(&path);
            if matched.is_empty() {
                if !optional {
                    self.sink.push(
                        loc,
                        Severity::Error,
                        FindingKind::Missing,
                        Some(&path),
                        None,
                        format!(
                            "Include {pattern}: no file matches {}{context} (apache2ctl -t fails; IncludeOptional would not)",
                            path.display()
                        ),
                    );
                }
                return;
            }
            matched
        } else {
            if path.symlink_metadata().is_err() || std::fs::metadata(&path).is_err() {
                if !optional {
                    self.sink.require(loc, &format!("{written} {pattern}"), &path, context);
                }
                return;
            }
            vec![path]
        };
        if depth >= MAX_INCLUDE_DEPTH {
            self.sink.push(
                loc,
                Severity::Error,
                FindingKind::Missing,
                None,
                None,
                format!("{written} {pattern}: includes nest deeper than {MAX_INCLUDE_DEPTH}; not followed"),
            );
            return;
        }
        let mut all = Vec::new();
        for f in files {
            files_under(&f, &mut all);
        }
        for f in all {
            if self.reading.contains(&f) {
                self.sink.push(
                    loc,
                    Severity::Error,
                    FindingKind::Missing,
                    Some(&f),
                    None,
                    format!("{written} {pattern}: {} includes itself (httpd recurses until it gives up)", f.display()),
                );
                continue;
            }
            match std::fs::read(&f) {
                Ok(bytes) => self.file(&f, &bytes, depth + 1),
                Err(e) => self.sink.push(
                    loc,
                    Severity::Error,
                    FindingKind::Unreadable,
                    Some(&f),
                    None,
                    format!("{written} {pattern}: {} cannot be read: {e}", f.display()),
                ),
            }
        }
    }

    /// `${NAME}` replaced by its `Define` (or envvars) value; the names not defined are left as written and
    /// returned.
    fn substitute(&self, line: &str) -> (String, Vec<String>) {
        let mut out = String::with_capacity(line.len());
        let mut undefined = Vec::new();
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[at..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            match self.defines.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    out.push_str(&rest[at..at + 3 + end]);
                    if !undefined.iter().any(|n| n == name) {
                        undefined.push(name.to_string());
                    }
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        (out, undefined)
    }

    /// Each existing DocumentRoot should hold one of its `DirectoryIndex` names (info: an application that
    /// routes every request itself needs none).
    fn index_checks(&mut self) {
        let docroots = std::mem::take(&mut self.docroots);
        for d in docroots {
            if !d.path.is_dir() {
                continue;
            }
            let same_dir = |i: &&Index| {
                i.directory.as_deref().is_some_and(|dir| absolute(&self.server_root, dir) == d.path)
                    && (i.vhost == d.vhost || i.vhost.is_none())
            };
            let chosen = self
                .indexes
                .iter()
                .rev()
                .find(same_dir)
                .or_else(|| {
                    self.indexes.iter().rev().find(|i| d.vhost.is_some() && i.vhost == d.vhost && i.directory.is_none())
                })
                .or_else(|| self.indexes.iter().rev().find(|i| i.server_level));
            let names: Vec<String> = chosen.map_or_else(|| vec!["index.html".to_string()], |i| i.names.clone());
            if names.iter().any(|n| n.eq_ignore_ascii_case("disabled")) {
                continue;
            }
            let present = names.iter().any(|n| d.path.join(n.trim_start_matches('/')).exists());
            if !present {
                let path = d.path.clone();
                self.sink.push(
                    &d.loc,
                    Severity::Info,
                    FindingKind::Missing,
                    Some(&path),
                    None,
                    format!(
                        "DocumentRoot {} holds none of its DirectoryIndex files ({}){} — fine if an application answers every request",
                        d.path.display(),
                        names.join(" "),
                        d.context
                    ),
                );
            }
        }
    }
}

/// Every file `path` names: itself, or every file under it when it is a directory (sorted, like httpd).
fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    if out.len() >= MAX_DIR_FILES {
        return;
    }
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for e in entries {
        // A symlink to a directory above would loop: follow directories only when they are real ones.
        if e.is_dir() && e.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        files_under(&e, out);
    }
}

/// Arguments split like httpd's `ap_getword_conf`: whitespace separates, `"…"` and `'…'` quote, `\` escapes the
/// quote inside them.
pub(crate) fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek().is_some_and(|&n| n == first || n == '\\') {
                    word.extend(chars.next());
                } else if c == first {
                    break;
                } else {
                    word.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    out
}

/// The variables an `envvars` file exports: `export NAME=value` lines, `$NAME`/`${NAME}` expanded from those
/// before (unknown ones are empty, as in the shell). `SUFFIX` is empty: Debian sets it only for a second instance.
fn envvars_of(text: &str) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("SUFFIX".into(), String::new());
    for line in text.lines() {
        let Some(assign) = line.trim().strip_prefix("export ") else { continue };
        let Some((name, value)) = assign.trim().split_once('=') else { continue };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let expanded = expand_shell(value, &vars);
        vars.insert(name.to_string(), expanded);
    }
    vars
}

fn expand_shell(value: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, next) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => (braced, ""),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
        } else if let Some(v) = vars.get(name) {
            out.push_str(v);
        }
        rest = next;
    }
    out.push_str(rest);
    out
}
