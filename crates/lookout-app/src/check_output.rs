//! `lookout check`: the reports of `lookout_app::check` printed — the "test before production"
//! gate for deploy scripts and CI. Exit 0 when all pass, 1 when any fails, 2 on usage or config errors
//! (with `--nagios`: the plugin convention 0 OK, 2 CRITICAL, 3 UNKNOWN).

use std::io::{IsTerminal, Write};

use crate::check::CheckReport;

/// Output styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Nagios,
}

/// Prints reports in `format` and returns the exit code.
pub fn print(reports: &[CheckReport], format: Format, out: &mut dyn Write) -> std::io::Result<u8> {
    let all_ok = reports.iter().all(|r| r.ok);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, reports).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        Format::Table => write_table(reports, out, std::io::stdout().is_terminal())?,
        Format::Nagios => {
            writeln!(out, "{}", nagios_line(reports))?;
            return Ok(if all_ok { 0 } else { 2 });
        }
    }
    Ok(if all_ok { 0 } else { 1 })
}

fn write_table(reports: &[CheckReport], out: &mut dyn Write, color: bool) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            let status = match (r.status, r.kind) {
                (Some(s), _) => s.to_string(),
                (None, lookout_core::ProbeKind::Http) => "-".into(),
                (None, _) if r.error.is_none() => "connected".into(),
                (None, _) => "-".into(),
            };
            [
                r.name.clone(),
                if r.ok { "ok".into() } else { "FAIL".into() },
                status,
                format!("{:.0}ms", r.latency_ms),
                r.detail(),
            ]
        })
        .collect();
    let headers = ["TARGET", "RESULT", "STATUS", "LATENCY", "DETAIL"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(4) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5], result_color: Option<&str>| {
        let result = match result_color {
            Some(c) if color => format!("\x1b[{c}m{:<w$}\x1b[0m", cells[1], w = widths[1]),
            _ => format!("{:<w$}", cells[1], w = widths[1]),
        };
        format!(
            "{:<w0$}  {result}  {:<w2$}  {:>w3$}  {}",
            cells[0],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w2 = widths[2],
            w3 = widths[3]
        )
        .trim_end()
        .to_string()
    };
    writeln!(out, "{}", line(headers, None))?;
    for (row, r) in rows.iter().zip(reports) {
        let cells = [row[0].as_str(), &row[1], &row[2], &row[3], &row[4]];
        writeln!(out, "{}", line(cells, Some(if r.ok { "32" } else { "1;31" })))?;
    }
    for r in reports.iter().filter(|r| !r.degraded.is_empty()) {
        writeln!(
            out,
            "{}: degraded in {} (failing there, below its quorum: nobody is paged)",
            r.name,
            r.degraded.join(", ")
        )?;
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    let checks = lookout_core::text::count(reports.len() as u64, "check", None);
    writeln!(out, "\n{checks}, {} passed, {failed} failed", reports.len() - failed)?;
    Ok(())
}

/// One Nagios plugin status line with perfdata: `LOOKOUT CRITICAL - ... | 'site_time'=0.012s;;;0 ...`.
fn nagios_line(reports: &[CheckReport]) -> String {
    let failed: Vec<&CheckReport> = reports.iter().filter(|r| !r.ok).collect();
    let text = if failed.is_empty() {
        format!(
            "LOOKOUT OK - {} of {} passed",
            reports.len(),
            lookout_core::text::count(reports.len() as u64, "check", None)
        )
    } else {
        let parts: Vec<String> = failed.iter().map(|r| format!("{}: {}", r.name, r.detail())).collect();
        let checks = lookout_core::text::count(reports.len() as u64, "check", None);
        format!("LOOKOUT CRITICAL - {} of {checks} failed: {}", failed.len(), parts.join("; "))
    };
    // '|' separates perfdata in the plugin protocol: it must not appear in the text.
    let text = text.replace('|', "/").replace(['\n', '\r'], " ");
    let perf: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            [
                format!("'{}_time'={:.3}s;;;0", r.name, r.latency_ms / 1000.0),
                format!("'{}_ok'={};;;0;1", r.name, u8::from(r.ok)),
            ]
        })
        .collect();
    format!("{text} | {}", perf.join(" "))
}

/// The line printed for `--nagios` when the check cannot even run (exit 3).
pub fn nagios_unknown(message: &str) -> String {
    format!("LOOKOUT UNKNOWN - {}", message.replace('|', "/").lines().next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, ok: bool) -> CheckReport {
        CheckReport {
            name: name.into(),
            kind: lookout_core::ProbeKind::Http,
            ok,
            status: Some(if ok { 200 } else { 500 }),
            latency_ms: 12.0,
            failed_conditions: if ok { vec![] } else { vec!["[STATUS] (500) == 200".into()] },
            error: None,
            timings: Default::default(),
            certificate_expires_at: None,
            degraded: Vec::new(),
        }
    }

    #[test]
    fn table_lists_each_check_and_the_first_failure() {
        let mut out = Vec::new();
        write_table(&[report("site", true), report("api-long-name", false)], &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "TARGET         RESULT  STATUS  LATENCY  DETAIL\n\
             site           ok      200        12ms\n\
             api-long-name  FAIL    500        12ms  [STATUS] (500) == 200\n\
             \n2 checks, 1 passed, 1 failed\n"
        );
    }

    #[test]
    fn nagios_line_follows_the_plugin_convention() {
        assert_eq!(
            nagios_line(&[report("site", true)]),
            "LOOKOUT OK - 1 of 1 check passed | 'site_time'=0.012s;;;0 'site_ok'=1;;;0;1"
        );
        let mut bad = report("api", false);
        bad.failed_conditions = vec!["[BODY] (a|b) contains \"x\"".into()];
        let line = nagios_line(&[report("site", true), bad]);
        assert!(
            line.starts_with("LOOKOUT CRITICAL - 1 of 2 checks failed: api: [BODY] (a/b) contains \"x\" | "),
            "{line}"
        );
        assert_eq!(line.matches('|').count(), 1);
        assert_eq!(
            nagios_unknown("lookout.toml:3: bad | thing\nmore"),
            "LOOKOUT UNKNOWN - lookout.toml:3: bad / thing"
        );
    }
}
