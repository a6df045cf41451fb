//! `lookout preflight PATH...`: arguments and printing. The checking is `lookout_preflight`'s.

use std::io::Write;
use std::path::PathBuf;

use lookout_preflight::{Options, Report, Severity};

/// How the findings are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line per finding like a compiler's, then a summary line.
    Text,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
}

pub struct PreflightArgs {
    pub paths: Vec<PathBuf>,
    pub php_ini: Option<PathBuf>,
    pub web_user: Option<String>,
    pub format: Format,
    pub show_unresolved: bool,
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
    };
    let report = lookout_preflight::run(&opts)?;
    match args.format {
        Format::Text => out.write_all(text(&report).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
    }
    Ok(if report.summary.errors > 0 { 1 } else { 0 })
}

/// The text report: `file:line:column: severity: message` lines, then the summary.
pub fn text(report: &Report) -> String {
    let mut s = String::new();
    for f in &report.findings {
        s.push_str(&format!(
            "{}:{}:{}: {}: {}\n",
            printable(&f.file),
            f.line,
            f.column,
            f.severity.as_str(),
            printable(&f.message)
        ));
    }
    let m = &report.summary;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let unreadable =
        if m.files_unreadable > 0 { format!(" ({} could not be read)", m.files_unreadable) } else { String::new() };
    s.push_str(&format!(
        "preflight: {} read{unreadable}, {} found, {} resolved, {} unresolved{}; {}, {} ({:.2} s)\n",
        plural(m.files, "file", "files"),
        plural(m.includes, "include", "includes"),
        m.resolved,
        m.unresolved,
        if m.unresolved > 0
            && !report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Info && f.kind == lookout_preflight::FindingKind::Unresolved)
        {
            " (--show-unresolved lists them)"
        } else {
            ""
        },
        plural(m.errors, "error", "errors"),
        plural(m.infos, "info", "infos"),
        m.elapsed_ms as f64 / 1000.0
    ));
    s
}

/// Text from a file or a path, made safe for a terminal: control characters become `\u{..}` escapes.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}
