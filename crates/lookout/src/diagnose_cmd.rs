//! `lookout diagnose --error-log F`: the probable root cause of failing requests, verdict first, from the error
//! log (tracing the workers comes with the tracer). Exit 0 when a probable cause was found, 1 when none, 2 on
//! usage errors.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use lookout_diagnose::{Finding, NOTHING_FOUND};
use lookout_logs::error_log::ErrorFormat;

pub struct DiagnoseArgs {
    pub error_log: PathBuf,
    pub error_format: String,
    pub since: Option<String>,
    pub json: bool,
}

/// Runs the diagnosis; `Ok(true)` when a probable cause was found.
pub fn run(args: DiagnoseArgs, out: &mut dyn std::io::Write) -> anyhow::Result<bool> {
    let format = ErrorFormat::parse_name(&args.error_format)
        .with_context(|| format!("--error-format {:?}: use apache or nginx", args.error_format))?;
    let since = match &args.since {
        Some(s) => Some(
            lookout_logs::time::parse_user_time(s)
                .with_context(|| format!("--since {s:?} is not a time; write e.g. 2026-11-25T14:00 (UTC)"))?
                * 1000,
        ),
        None => None,
    };
    let findings = lookout_diagnose::diagnose_file(&args.error_log, format, since)
        .with_context(|| format!("cannot read the error log {}", args.error_log.display()))?;
    if args.json {
        let v = serde_json::json!({
            "source": "error_log",
            "error_log": args.error_log,
            "verdict": findings.first().map_or(NOTHING_FOUND.to_string(), |f| f.summary.clone()),
            "findings": findings,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&findings).as_bytes())?;
    }
    Ok(!findings.is_empty())
}

/// Verdict first, then the evidence of each finding. Log lines are printed escaped (one line each, no control
/// characters), since they came from outside.
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    let Some(first) = findings.first() else {
        let _ = writeln!(s, "{NOTHING_FOUND}.");
        return s;
    };
    let _ = writeln!(s, "{}", printable(&first.summary));
    for (i, f) in findings.iter().enumerate() {
        let path = f.path.display().to_string();
        let _ = writeln!(s, "\n[{}] {:?} {} — {} line(s)", i + 1, f.cause, printable(&path), f.occurrences);
        if i > 0 {
            let _ = writeln!(s, "    {}", printable(&f.summary));
        }
        for e in &f.evidence {
            let _ = writeln!(s, "    | {}", printable(e));
        }
    }
    s
}

/// Text from a log or a path, made safe for a terminal: control characters become `\u{..}` escapes.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}
