//! `lookout postmortem ID` and `lookout postmortem --from-logs ACCESS_LOG`: the draft written to a file or
//! stdout, its summary returned for the terminal. The drafts themselves are `lookout_app::postmortem`'s.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use lookout_app::incidents;
use lookout_app::postmortem::{from_incident, from_logs};
use lookout_core::Timestamp;
use lookout_logs::LogFormat;
use lookout_logs::report::ReportOptions;

fn write_draft(path: &Path, markdown: &str) -> anyhow::Result<()> {
    std::fs::write(path, markdown).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the draft of incident `id` (to `output` or `out`); returns the summary line. A missing incident is an
/// error naming the command that lists them.
pub async fn from_incident(
    config: &std::path::Path,
    id: &str,
    output: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<String> {
    let config = lookout_config::Config::load_without_secrets(config)?;
    let store = lookout_store::open(&config.store).await?;
    let Some(view) = incidents::load(&store, &config, id, Timestamp::now()).await? else {
        anyhow::bail!("no incident {id:?}; `lookout incidents` lists them");
    };
    let markdown = from_incident::render(&view);
    match output {
        Some(path) => write_draft(path, &markdown)?,
        None => out.write_all(markdown.as_bytes())?,
    }
    Ok(from_incident::summary_line(&view))
}

pub struct PostmortemArgs {
    pub access_log: PathBuf,
    pub error_log: Option<PathBuf>,
    pub format: String,
    pub window: Option<String>,
    pub output: Option<PathBuf>,
}

/// Writes the draft (to `-o FILE` or `out`); returns the summary line.
pub fn from_logs(args: PostmortemArgs, out: &mut dyn std::io::Write) -> anyhow::Result<String> {
    let format = LogFormat::named_or_custom(&args.format)?;
    let (since, until) = match &args.window {
        Some(w) => {
            let (a, b) =
                w.split_once("..").context("--window takes START..END, e.g. 2026-11-25T12:00..2026-11-25T16:00")?;
            let t = |s: &str| {
                lookout_logs::time::parse_user_time(s).with_context(|| format!("--window: {s:?} is not a time (UTC)"))
            };
            (Some(t(a)?), Some(t(b)?))
        }
        None => (None, None),
    };
    let opts = ReportOptions { since, until, ..ReportOptions::default() };
    let file =
        std::fs::File::open(&args.access_log).with_context(|| format!("cannot open {}", args.access_log.display()))?;
    let input: Box<dyn Read + Send> = Box::new(std::io::BufReader::new(file));
    let report = lookout_logs::offline::analyze(vec![input], &format, &opts, 2, &|_| {})?;
    let Some(window) = report.error_windows.iter().max_by_key(|w| w.failed).cloned() else {
        bail!(
            "no error window in {}: no minute had a 5xx ratio of at least 5% (nothing to write a postmortem about)",
            args.access_log.display()
        );
    };
    let findings = match &args.error_log {
        Some(p) => lookout_diagnose::diagnose_file(
            p,
            // Apache, nginx, PHP-FPM or PHP's own log: recognised from its lines.
            lookout_logs::error_log::ErrorFormat::Auto,
            Some(window.start * 1000 - 300_000),
        )
        .with_context(|| format!("cannot read the error log {}", p.display()))?,
        None => Vec::new(),
    };
    let markdown = from_logs::render(&report, &window, &findings, &args.access_log);
    let summary = from_logs::summary_line(&window);
    match &args.output {
        Some(path) => write_draft(path, &markdown)?,
        None => out.write_all(markdown.as_bytes())?,
    }
    Ok(summary)
}
