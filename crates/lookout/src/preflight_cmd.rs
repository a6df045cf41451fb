//! `lookout preflight PATH...`: arguments and printing. The checking is `lookout_preflight`'s.

use std::io::Write;
use std::path::PathBuf;

use lookout_core::text::printable;
use lookout_preflight::Options;

/// How the findings are printed (`--format`: the command line takes this type as it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding like a compiler's, then a summary line.
    Text,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (`github/codeql-action/upload-sarif`) and other SARIF viewers.
    Sarif,
    /// GitHub Actions workflow commands: each finding an annotation on the pull request.
    Github,
}

pub struct PreflightArgs {
    pub paths: Vec<PathBuf>,
    pub php_ini: Option<PathBuf>,
    pub web_user: Option<String>,
    pub format: Format,
    pub show_unresolved: bool,
    /// `--apache-config F`, each checked with what it includes.
    pub apache_configs: Vec<PathBuf>,
    /// `--nginx-config F`.
    pub nginx_configs: Vec<PathBuf>,
    /// Known errors to subtract: only new ones fail.
    pub baseline: Option<PathBuf>,
    /// Write today's errors to this file as a baseline and exit 0.
    pub write_baseline: Option<PathBuf>,
}

/// Checks and prints; the exit code: 0 no errors, 1 errors. A usage error (a PATH that does not exist, an unknown
/// user, an unreadable php.ini) is an `Err` (exit 2).
pub fn run(args: PreflightArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let opts = Options {
        paths: args.paths,
        php_ini: args.php_ini,
        web_user: args.web_user,
        show_unresolved: args.show_unresolved,
        threads: None,
        apache_configs: args.apache_configs,
        nginx_configs: args.nginx_configs,
    };
    // Read the baseline first: a bad one is a usage error before any work.
    let baseline = args.baseline.as_deref().map(lookout_preflight::baseline::load).transpose()?;
    let mut report = lookout_preflight::run(&opts)?;
    if let Some(path) = &args.write_baseline {
        let written = lookout_preflight::baseline::of(&report);
        lookout_preflight::baseline::write(&written, path)?;
        let n: usize = written.entries.iter().map(|e| e.count).sum();
        writeln!(
            out,
            "preflight: wrote {n} error{} ({} entr{}) to the baseline {}",
            if n == 1 { "" } else { "s" },
            written.entries.len(),
            if written.entries.len() == 1 { "y" } else { "ies" },
            printable(&path.display().to_string())
        )?;
        return Ok(0);
    }
    if let (Some(b), Some(path)) = (&baseline, &args.baseline) {
        lookout_preflight::baseline::apply(&mut report, b, &path.display().to_string());
    }
    match args.format {
        Format::Text => out.write_all(lookout_preflight::report::text(&report).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Sarif => {
            let root = sarif_root(&opts.paths);
            let log = lookout_preflight::report::sarif(&report, env!("CARGO_PKG_VERSION"), root.as_deref());
            serde_json::to_writer_pretty(&mut *out, &log)?;
            writeln!(out)?;
        }
        Format::Github => {
            out.write_all(lookout_preflight::report::github(&report, &github_prefix(&opts.paths)).as_bytes())?;
            out.write_all(lookout_preflight::report::baseline_text(&report).as_bytes())?;
        }
    }
    Ok(if report.summary.errors > 0 { 1 } else { 0 })
}

/// With one directory PATH, its absolute `file://` URI (SARIF's `%SRCROOT%`: results are relative to it).
fn sarif_root(paths: &[PathBuf]) -> Option<String> {
    let [one] = paths else { return None };
    let real = one.canonicalize().ok().filter(|p| p.is_dir())?;
    let uri = lookout_preflight::report::uri_of(&real.display().to_string());
    Some(format!("file://{}/", uri.trim_end_matches('/')))
}

/// With one directory PATH other than `.`, the PATH as written: annotations name files from where the job runs
/// (the checkout), not from inside PATH.
fn github_prefix(paths: &[PathBuf]) -> String {
    match paths {
        [one] if one.is_dir() && one != std::path::Path::new(".") => {
            one.display().to_string().trim_end_matches('/').trim_start_matches("./").to_owned()
        }
        _ => String::new(),
    }
}
