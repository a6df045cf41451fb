//! `lookout preflight`: before deploy, every PHP `include`/`require` of a tree is read with a real tokenizer
//! ([`token`], [`extract`]), resolved the way PHP resolves it ([`resolve`]) and checked the way Linux will open it
//! ([`check`]) — so the founding outage, a `require` of a misnamed file, fails the gate instead of production.
//!
//! Two passes over the files, each on all cores: the first reads and tokenizes every file and collects its
//! includes and constants; the constants are then evaluated (each in the file that defines it); the second
//! resolves and checks each include.

pub mod baseline;
pub mod check;
pub mod composer;
pub mod extract;
mod files;
pub mod ini;
pub mod report;
pub mod resolve;
pub mod token;
pub mod webconfig;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::check::{Checker, DirCache, Outcome};
use crate::extract::{Facts, Include, Keyword};
use crate::files::Roots;
use crate::resolve::{Alternative, ConstDef, Constants, Scope};

/// What to check and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Files or directories (directories are walked for `.php`, `.inc`, `.phtml`, `.module`, `.install`,
    /// `.theme`; a file named directly is read whatever its name).
    pub paths: Vec<PathBuf>,
    /// A php.ini whose `include_path` applies (else `.`).
    pub php_ini: Option<PathBuf>,
    /// The web server's user: a target it cannot read is an error.
    pub web_user: Option<String>,
    /// List unresolved includes as findings (they are always counted).
    pub show_unresolved: bool,
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Apache configurations to check (`--apache-config`); with no PATH given, only the configurations are read.
    pub apache_configs: Vec<PathBuf>,
    /// nginx configurations to check (`--nginx-config`).
    pub nginx_configs: Vec<PathBuf>,
}

/// A usage error: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: no such file or directory")]
    NoSuchPath(PathBuf),
    #[error("--web-user {0}: no such user in /etc/passwd")]
    UnknownUser(String),
    #[error("--php-ini {path}: {source}")]
    PhpIni { path: PathBuf, source: std::io::Error },
    /// `--apache-config F` or `--nginx-config F` that cannot be read.
    #[error("{flag} {path}: {io}")]
    WebConfig { flag: &'static str, path: PathBuf, io: std::io::Error },
    /// `--baseline F` that cannot be read or is not a baseline.
    #[error("--baseline {path}: {why}")]
    Baseline { path: PathBuf, why: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Info => "info",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The target does not exist.
    Missing,
    /// It exists only under a name that differs by case.
    CaseOnly,
    /// It is a symlink to nothing.
    Dangling,
    /// The web server's user may not read it.
    Unreadable,
    /// Its path cannot be known before the code runs.
    Unresolved,
    /// One definition of a constant leads to a file that does not exist; the others do.
    ConstantDefinition,
    /// A file or directory named in Composer's generated autoload maps does not exist.
    ComposerAutoload,
}

/// One finding, located like a compiler's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The including file, relative to the PATH given.
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub kind: FindingKind,
    /// `include`, `include_once`, `require` or `require_once`.
    pub statement: Keyword,
    /// The expression as written.
    pub expression: String,
    /// The absolute path it resolved to.
    pub resolved: Option<String>,
    /// What was probably meant (a name in the same directory).
    pub suggestion: Option<String>,
    /// The whole sentence, as printed.
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: usize,
    /// Files that could not be read (by preflight itself: its own permissions).
    pub files_unreadable: usize,
    pub includes: usize,
    pub resolved: usize,
    pub unresolved: usize,
    pub constants: usize,
    pub errors: usize,
    pub infos: usize,
    pub elapsed_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// `include_path`s the web servers' configurations give PHP (Apache's `php_value`/`php_admin_value`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub php_include_paths: Vec<webconfig::PhpIncludePath>,
    /// What `--baseline` matched and which of its entries no longer occur.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::Applied>,
}

/// Checks every include under `opts.paths`.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let roots = Roots::new(&opts.paths)?;
    let reader = match &opts.web_user {
        Some(user) => Some(lookout_diagnose::hints::user_reader(user).ok_or_else(|| Error::UnknownUser(user.clone()))?),
        None => None,
    };
    let ini_path = match &opts.php_ini {
        Some(path) => {
            let text = std::fs::read(path).map_err(|source| Error::PhpIni { path: path.clone(), source })?;
            include_path_of_ini(&text).unwrap_or_else(|| b".".to_vec())
        }
        None => b".".to_vec(),
    };
    let web = web_configs(opts, reader.as_ref())?;
    let config_only = opts.paths.is_empty() && !(opts.apache_configs.is_empty() && opts.nginx_configs.is_empty());
    let files = if config_only { Vec::new() } else { roots.files() };
    let threads = opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get()));

    if std::env::var_os("PF_TIME").is_some() {
        eprintln!("files listed: {:?}", started.elapsed());
    }
    // Pass 1: read, tokenize and extract every file.
    // Each thread reads into one buffer of its own (a fresh one per file cost page faults and frees), and keeps
    // its token and extraction vectors from file to file.
    let facts: Vec<Option<Facts>> = files::parallel_with(
        &files,
        threads,
        || (Vec::new(), token::Spare::default(), extract::Scratch::default()),
        |(buf, spare, scratch), _, path| {
            use std::io::Read;
            buf.clear();
            // Through `take`: `File::read_to_end` asks the size first (statx and lseek, two more system calls a
            // file); the reused buffer is large enough already, so this is open, read, read (0), close.
            std::fs::File::open(path).and_then(|f| f.take(u64::MAX).read_to_end(buf)).ok()?;
            let tokens = token::tokenize_into(buf, std::mem::take(spare));
            let facts = extract::extract_with(&tokens, scratch);
            *spare = tokens.spare();
            Some(facts)
        },
    );
    if std::env::var_os("PF_TIME").is_some() {
        eprintln!("pass1: {:?}", started.elapsed());
    }
    let defs: Vec<ConstDef> = files
        .iter()
        .zip(&facts)
        .filter_map(|(f, facts)| Some((f, facts.as_ref()?)))
        .flat_map(|(f, facts)| {
            facts.defines.iter().map(|d| ConstDef {
                name: d.name.clone(),
                file: f.clone(),
                line: d.line,
                expr: d.expr.clone(),
            })
        })
        .collect();
    let constants = Constants::build(&defs, &ini_path);
    let composer_paths = resolve::composer_include_paths(&files, &ini_path);
    // Where each file's include_path comes from: .user.ini/.htaccess, Apache's php_value, php.ini (crate::ini).
    let given = if opts.paths.is_empty() { vec![PathBuf::from(".")] } else { opts.paths.clone() };
    let root_dirs: Vec<PathBuf> = given
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .map(|p| if p.is_dir() { p } else { p.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf) })
        .collect();
    let start_paths = ini::IncludePaths::build(&files, &root_dirs, &web.php_include_paths, ini_path.clone());

    if std::env::var_os("PF_TIME").is_some() {
        eprintln!("consts+paths: {:?}", started.elapsed());
    }
    // Pass 2: resolve and check each include.
    let cache = DirCache::default();
    let ctx = Context {
        roots: &roots,
        constants: &constants,
        composer_paths: &composer_paths,
        start_paths: &start_paths,
        opts,
    };
    let per_file: Vec<(Vec<Finding>, usize, usize)> = files::parallel_with(
        &files,
        threads,
        || Checker::new(&cache, reader.as_ref()),
        |checker, i, path| {
            let Some(facts) = &facts[i] else { return (Vec::new(), 0, 0) };
            ctx.file(checker, path, facts)
        },
    );

    if std::env::var_os("PF_TIME").is_some() {
        eprintln!("pass2: {:?}", started.elapsed());
    }
    let mut report = Report::default();
    for (findings, resolved, unresolved) in per_file {
        report.summary.resolved += resolved;
        report.summary.unresolved += unresolved;
        report.findings.extend(findings);
    }
    report.findings.extend(web.findings);
    report.php_include_paths = web.php_include_paths;
    report.findings.extend(composer::check(&files, &roots, &cache, reader.as_ref()));
    report.findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    let s = &mut report.summary;
    s.files = files.len();
    s.files_unreadable = facts.iter().filter(|f| f.is_none()).count();
    s.includes = facts.iter().flatten().map(|f| f.includes.len()).sum();
    s.constants = constants.len();
    s.errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    s.infos =
        report.findings.iter().filter(|f| f.severity == Severity::Info && f.kind != FindingKind::Unresolved).count();
    if std::env::var_os("PF_TIME").is_some() {
        eprintln!("report: {:?}", started.elapsed());
    }
    s.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // Freeing every file's facts and the lookup caches took ~15 ms of a 10,000-file run, after the work was done:
    // they go on a thread of their own while the caller prints (a process that exits first just exits).
    std::thread::spawn(move || drop((facts, cache, constants, files, start_paths)));
    Ok(report)
}

/// Every `--apache-config` and `--nginx-config`, each with what it includes; a configuration that cannot be read
/// is a usage error.
fn web_configs(
    opts: &Options,
    reader: Option<&lookout_diagnose::hints::Reader>,
) -> Result<webconfig::ConfigReport, Error> {
    let cache = DirCache::default();
    let mut all = webconfig::ConfigReport::default();
    let configs = opts.apache_configs.iter().map(|p| ("--apache-config", p));
    for (flag, path) in configs.chain(opts.nginx_configs.iter().map(|p| ("--nginx-config", p))) {
        let one = if flag == "--apache-config" {
            webconfig::apache::check(path, &cache, reader)
        } else {
            webconfig::nginx::check(path, &cache, reader)
        }
        .map_err(|io| Error::WebConfig { flag, path: path.clone(), io })?;
        all.findings.extend(one.findings);
        all.php_include_paths.extend(one.php_include_paths);
        all.files += one.files;
    }
    Ok(all)
}

/// `include_path = ".:/usr/share/php"` from a php.ini (the last one wins, like PHP).
pub fn include_path_of_ini(text: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        let Some(eq) = line.iter().position(|&b| b == b'=') else { continue };
        if line.starts_with(b";") || !line[..eq].trim_ascii().eq_ignore_ascii_case(b"include_path") {
            continue;
        }
        let mut value = line[eq + 1..].trim_ascii();
        if let Some(semi) = value.iter().position(|&b| b == b';')
            && !value.starts_with(b"\"")
        {
            value = value[..semi].trim_ascii();
        }
        let value = value.strip_prefix(b"\"").and_then(|v| v.split(|&b| b == b'"').next()).unwrap_or(value);
        found = Some(value.to_vec());
    }
    found
}

struct Context<'a> {
    roots: &'a Roots,
    constants: &'a Constants,
    /// Composer projects' include paths (`vendor/composer/include_paths.php`).
    composer_paths: &'a [(PathBuf, Vec<u8>)],
    /// The include path each file starts with (`.user.ini`, `.htaccess`, Apache, php.ini).
    start_paths: &'a ini::IncludePaths,
    opts: &'a Options,
}

impl Context<'_> {
    /// One file's findings, and how many of its includes resolved and did not.
    fn file(&self, checker: &mut Checker<'_>, path: &Path, facts: &Facts) -> (Vec<Finding>, usize, usize) {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let display = self.roots.display(path);
        let ini_path = resolve::include_path_for(path, self.composer_paths, self.start_paths.for_file(path));
        let ini_path: &[u8] = &ini_path;
        // Each set_include_path, evaluated where it is written.
        let include_paths: Vec<Vec<u8>> = facts
            .include_paths
            .iter()
            .map(|expr| {
                let scope = Scope { file: path, include_path: ini_path, constants: self.constants };
                resolve::evaluate(expr, &scope)
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .map_or_else(|| ini_path.to_vec(), |a| a.value)
            })
            .collect();
        let (mut findings, mut resolved, mut unresolved) = (Vec::new(), 0, 0);
        for inc in &facts.includes {
            let include_path = inc.include_path.and_then(|i| include_paths.get(i)).map_or(ini_path, |p| p);
            let scope = Scope { file: path, include_path, constants: self.constants };
            let finding = |severity, kind, resolved: Option<&Path>, suggestion, message| Finding {
                file: display.clone(),
                line: inc.line,
                column: inc.column,
                severity,
                kind,
                statement: inc.keyword,
                expression: inc.written.clone(),
                resolved: resolved.map(|p| p.display().to_string()),
                suggestion,
                message,
            };
            let alternatives = match resolve::evaluate(&inc.expr, &scope) {
                Ok(a) => a,
                Err(why) => {
                    unresolved += 1;
                    if self.opts.show_unresolved {
                        let message = format!(
                            "{} target `{}` cannot be resolved before it runs ({why})",
                            inc.keyword.as_str(),
                            inc.written
                        );
                        findings.push(finding(Severity::Info, FindingKind::Unresolved, None, None, message));
                    }
                    continue;
                }
            };
            resolved += 1;
            let (severity, optional) = severity_of(inc);
            let outcomes: Vec<(&Alternative, PathBuf, Outcome)> = alternatives
                .iter()
                .map(|a| (a, lookup(checker, &a.value, dir, include_path)))
                .map(|(a, (p, o))| (a, p, o))
                .collect();
            let failing: Vec<&(&Alternative, PathBuf, Outcome)> =
                outcomes.iter().filter(|(_, _, o)| !o.is_found()).collect();
            if failing.is_empty() {
                continue;
            }
            let several = failing.len() < outcomes.len();
            for (alt, target, outcome) in failing {
                // An optional include that is missing is expected to be, often: no nearest-name search for it (a
                // tree of thousands of them spent most of its time there).
                let suggest = severity == Severity::Error;
                let (kind, sentence, suggestion) = describe(checker, suggest, inc.keyword, target, outcome);
                let mut message = sentence;
                let kind = if several {
                    let defs: Vec<String> = alt
                        .via
                        .iter()
                        .map(|d| format!("{} as defined at {}:{}", d.name, self.roots.display(&d.file), d.line))
                        .collect();
                    message = format!(
                        "with {}, {message} (its other definitions lead to existing files)",
                        defs.join(" and ")
                    );
                    FindingKind::ConstantDefinition
                } else {
                    kind
                };
                message.push_str(optional);
                findings.push(finding(severity, kind, Some(target), suggestion, message));
            }
        }
        (findings, resolved, unresolved)
    }
}

/// Error, or info with why the include is optional.
fn severity_of(inc: &Include) -> (Severity, &'static str) {
    use crate::extract::Guard;
    match (&inc.guard, inc.silenced) {
        (Some(Guard::Tested(f)), _) => (
            Severity::Info,
            match *f {
                "is_file" => " (guarded by is_file)",
                "is_readable" => " (guarded by is_readable)",
                _ => " (guarded by file_exists)",
            },
        ),
        (Some(Guard::Defined), _) => (Severity::Info, " (inside if (defined(…)))"),
        (Some(Guard::Condition(_)), _) => (Severity::Info, " (inside if (is_plugin_active(…)): an optional plugin)"),
        (Some(Guard::ResultTested), _) => (Severity::Info, " (its result is tested: a failed include returns false)"),
        (None, true) if !inc.keyword.is_require() => (Severity::Info, " (silenced with @)"),
        (None, true) => (Severity::Error, " (@ does not help: a failed require is fatal)"),
        (None, false) => (Severity::Error, ""),
    }
}

/// The path PHP would open for `value` and what Linux says about it: the first candidate found, else the most
/// telling failure (case, dangling link, permission), else the one from the including script's directory.
fn lookup(checker: &mut Checker<'_>, value: &[u8], dir: &Path, include_path: &[u8]) -> (PathBuf, Outcome) {
    let candidates = resolve::candidates(value, dir, include_path);
    let mut outcomes: Vec<(PathBuf, Outcome)> = candidates
        .into_iter()
        .map(|c| {
            let o = checker.check(&c);
            (c, o)
        })
        .collect();
    if let Some(found) = outcomes.iter().position(|(_, o)| o.is_found()) {
        return outcomes.swap_remove(found);
    }
    let rank = |o: &Outcome| match o {
        Outcome::CaseOnly { .. } => 0,
        Outcome::Dangling { .. } => 1,
        Outcome::Unreadable { .. } => 2,
        _ => 3,
    };
    let best = outcomes.iter().enumerate().min_by_key(|(i, (_, o))| (rank(o), usize::MAX - i)).map(|(i, _)| i);
    match best {
        Some(i) => outcomes.swap_remove(i),
        None => (
            PathBuf::from(std::ffi::OsStr::from_bytes(value)),
            Outcome::Missing {
                dir: dir.to_path_buf(),
                missing: String::from_utf8_lossy(value).into_owned(),
                last: true,
            },
        ),
    }
}

/// The finding's kind, sentence and suggestion for a failed lookup.
fn describe(
    checker: &Checker<'_>,
    suggest: bool,
    keyword: Keyword,
    target: &Path,
    outcome: &Outcome,
) -> (FindingKind, String, Option<String>) {
    let kw = keyword.as_str();
    let shown = target.display();
    match outcome {
        Outcome::Found => (FindingKind::Missing, format!("{kw} target {shown} exists"), None),
        Outcome::Missing { dir, missing, last } => {
            let what = if *last {
                format!("{kw} target {shown}")
            } else {
                format!("directory {} (on the way to {kw} target {shown})", dir.join(missing).display())
            };
            match if suggest { checker.suggestion(dir, missing) } else { None } {
                Some((name, difference)) => {
                    let extra = difference.says().map(|s| format!(" ({s})")).unwrap_or_default();
                    (FindingKind::Missing, format!("{what} does not exist; did you mean {name}?{extra}"), Some(name))
                }
                None => (FindingKind::Missing, format!("{what} does not exist"), None),
            }
        }
        Outcome::CaseOnly { real } => (
            FindingKind::CaseOnly,
            format!(
                "{kw} target {shown} does not exist: on disk it is {}, which differs only by case (works on a case-insensitive file system, fails on Linux)",
                real.display()
            ),
            Some(real.display().to_string()),
        ),
        Outcome::Dangling { link, target: to } => {
            let whose = if link == target { String::new() } else { format!(" (on the way to {shown})") };
            (
                FindingKind::Dangling,
                format!("{kw} target {} is a symlink to {}, which does not exist{whose}", link.display(), to.display()),
                None,
            )
        }
        Outcome::Unreadable { why } => {
            (FindingKind::Unreadable, format!("{kw} target {shown} cannot be read by the web server: {why}"), None)
        }
    }
}

#[cfg(test)]
mod tests;
