//! `lookout store copy --from PATH_OR_URL --to PATH_OR_URL`: moves everything a store holds into another, empty
//! one — from SQLite to PostgreSQL when one machine is no longer enough, back, or to another SQLite file — and
//! prints each table's rows in both, counted after the copy. The work is `lookout_store::copy`; this is arguments
//! and printing.
//!
//! Why paths and URLs rather than two config files: a move happens once, between the store the config names now
//! and the one it will name; spelling both out says exactly what is read and what is written.
//!
//! Exit codes: 0 copied and every count matches, 1 copied but a count differs, 2 usage error or the copy failed
//! (a target that already holds data included).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use lookout_config::{StoreBackend, StoreConfig};
use lookout_store::{CopyOptions, CopyProgress, CopyReport};

pub struct CopyArgs {
    pub from: String,
    pub to: String,
    pub json: bool,
}

/// A store named on the command line: `postgres://` / `postgresql://` URLs, `sqlite:PATH` (as in `[store] url`),
/// or a plain path to a SQLite file. Paths are relative to the working directory (there is no config file).
pub fn parse_location(arg: &str, flag: &str) -> anyhow::Result<StoreBackend> {
    let lower = arg.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(StoreBackend::Postgres { url: arg.to_string() });
    }
    let path = if lower.starts_with("sqlite:") {
        let rest = &arg["sqlite:".len()..];
        rest.strip_prefix("//").unwrap_or(rest)
    } else if let Some((scheme, _)) = arg.split_once("://") {
        // Never echo the rest: it may carry a password.
        bail!(
            "{flag}: {scheme}:// is not a store; write a SQLite file's path, sqlite:PATH or postgresql://USER@HOST/DB"
        );
    } else {
        arg
    };
    if path.trim().is_empty() {
        bail!("{flag} names no store; write a SQLite file's path, sqlite:PATH or postgresql://USER@HOST/DB");
    }
    Ok(StoreBackend::Sqlite { path: PathBuf::from(path) })
}

fn config(backend: StoreBackend) -> StoreConfig {
    StoreConfig { backend, ..StoreConfig::sqlite(PathBuf::new()) }
}

pub async fn copy(args: CopyArgs, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let from = parse_location(&args.from, "--from")?;
    let to = parse_location(&args.to, "--to")?;
    if let StoreBackend::Sqlite { path } = &from
        && !path.is_file()
    {
        // Opening would create an empty store and copy nothing: a typo must not look like success.
        bail!("--from: there is no SQLite store at {}", path.display());
    }
    if same_store(&from, &to) {
        bail!("--from and --to name the same store ({from}); copy into a new, empty one");
    }
    let source = lookout_store::open(&config(from.clone())).await.with_context(|| format!("cannot open {from}"))?;
    let target = lookout_store::open(&config(to.clone())).await.with_context(|| format!("cannot open {to}"))?;

    let bar = indicatif::ProgressBar::hidden();
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:18} {bar:40} {pos}/{len} rows, eta {eta}") {
            bar.set_style(style);
        }
    }
    let progress = |p: CopyProgress<'_>| {
        if p.copied == 0 {
            bar.reset();
            bar.set_message(p.table.to_string());
            bar.set_length(p.total);
        }
        bar.set_position(p.copied);
    };
    let report = lookout_store::copy(&source, &target, &CopyOptions::default(), progress)
        .await
        .with_context(|| format!("copying {from} to {to} did not finish"))?;
    bar.finish_and_clear();

    if args.json {
        let json = serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "tables": report.tables,
            "copied": report.copied,
            "seconds": report.seconds,
            "matches": report.matches(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        out.write_all(render(&report, &from, &to).as_bytes())?;
    }
    if report.matches() {
        Ok(0)
    } else {
        eprintln!(
            "error: the target's counts differ from the source's (was lookout still writing to the source? stop it, \
             then copy again into an empty store)"
        );
        Ok(1)
    }
}

/// The same SQLite file (by its resolved path) or the same URL.
fn same_store(a: &StoreBackend, b: &StoreBackend) -> bool {
    match (a, b) {
        (StoreBackend::Sqlite { path: a }, StoreBackend::Sqlite { path: b }) => {
            let resolve = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            resolve(a) == resolve(b)
        }
        (StoreBackend::Postgres { url: a }, StoreBackend::Postgres { url: b }) => a == b,
        _ => false,
    }
}

/// The table of counts: what was copied, and whether the target holds as many rows as the source.
pub fn render(report: &CopyReport, from: &StoreBackend, to: &StoreBackend) -> String {
    let mut s = format!("Copied {from} to {to} in {:.1} s.\n", report.seconds);
    s.push_str(&format!("{:<18} {:>12} {:>12}\n", "TABLE", "SOURCE", "TARGET"));
    for t in &report.tables {
        let mark = if t.source == t.target { "" } else { "  MISMATCH" };
        s.push_str(&format!("{:<18} {:>12} {:>12}{mark}\n", t.table, t.source, t.target));
    }
    let differ = report.tables.iter().filter(|t| t.source != t.target).count();
    if differ == 0 {
        let rows = if report.copied == 1 { "row" } else { "rows" };
        s.push_str(&format!("All {} tables match: {} {rows} copied.\n", report.tables.len(), report.copied));
    } else {
        s.push_str(&format!("{differ} of {} tables differ.\n", report.tables.len()));
    }
    s
}
