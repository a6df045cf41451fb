//! The command `lookout init`: writes (or prints) the configuration [`super::render`] made of what
//! [`super::detect`] found; checks the text loads before it is written, refuses to overwrite without `--force`,
//! and tells the person what was found and what to run next.

use std::io::Write;
use std::path::PathBuf;

use super::{Options, detect, render};
use anyhow::Context as _;

#[derive(Debug, Clone)]
pub struct InitArgs {
    pub config: PathBuf,
    pub dry_run: bool,
    pub force: bool,
    pub options: Options,
}

/// 0 written (or printed), 1 nothing found; `Err` is a usage error (exit 2).
pub fn run(args: &InitArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    if !args.dry_run && !args.force && args.config.exists() {
        anyhow::bail!(
            "{} exists; pass --force to replace it, or --dry-run to print what would be written",
            args.config.display()
        );
    }
    let found = detect(&args.options);
    if found.is_empty() {
        writeln!(
            out,
            "Found no web server to watch: no Apache, nginx or PHP-FPM configuration could be read (none runs, or \
             none is installed in its usual place). Start it, or name its configuration (--apache-config, \
             --nginx-config, --fpm-config)."
        )?;
        for note in &found.notes {
            writeln!(out, "  {note}")?;
        }
        return Ok(1);
    }
    let today = lookout_core::clock::Timestamp::now().to_rfc3339();
    let (text, notes) = render(&found, today.get(..10).unwrap_or(&today));
    let env = |_: &str| None;
    let config = lookout_config::Config::parse(&text, &args.config, &env)
        .map_err(|e| anyhow::anyhow!("lookout init wrote a configuration that does not load (a bug): {e}"))?;
    if args.dry_run {
        out.write_all(text.as_bytes())?;
        return Ok(0);
    }
    let tmp = args.config.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.config).with_context(|| format!("cannot write {}", args.config.display()))?;
    for s in &found.servers {
        let pid = s.pid.map(|p| format!("pid {p}, ")).unwrap_or_default();
        let sites = lookout_core::text::count(s.sites.len() as u64, "site", None);
        writeln!(out, "Found {} ({pid}{}): {sites}.", s.kind.name(), s.config.display())?;
    }
    for p in &found.pools {
        writeln!(out, "Found PHP-FPM pool {} ({}).", p.name, p.config.display())?;
    }
    let sources = config.logs.iter().filter(|l| l.follows.is_none()).count() as u64;
    writeln!(
        out,
        "Wrote {}: {}, {}, {}.",
        args.config.display(),
        lookout_core::text::count(config.targets.len() as u64, "target", None),
        lookout_core::text::count(sources, "log", None),
        lookout_core::text::count(config.processes.len() as u64, "process", Some("processes")),
    )?;
    if !notes.is_empty() {
        writeln!(out, "Not set up (also at the file's top):")?;
        for n in &notes {
            writeln!(out, "  - {n}")?;
        }
    }
    writeln!(
        out,
        "Next: `lookout check --config {0}` probes every target once; `lookout run --config {0}` watches.",
        args.config.display()
    )?;
    Ok(0)
}
