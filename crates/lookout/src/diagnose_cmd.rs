//! `lookout diagnose`: the probable root cause of failing requests, verdict first — from a bounded trace of the
//! server's workers (`--process`/`--pid`, optionally driving requests with `--url`) and/or from error logs
//! (`--error-log`, repeatable: Apache, nginx, PHP-FPM and PHP logs, each recognised from its first lines).
//! Exit 0 when a probable cause was found, 1 when none, 2 on usage errors.

use lookout_core::text::printable;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use lookout_diagnose::error_log::{Diagnosed, LogRead};
use lookout_diagnose::{Finding, NOTHING_FOUND};
use lookout_logs::error_log::ErrorFormat;

/// Shared with the automatic diagnosis of `lookout run`.
use lookout_diagnose::live::{process_label, trace_while_requesting};

pub struct DiagnoseArgs {
    /// Every `--error-log`; their findings are merged.
    pub error_log: Vec<PathBuf>,
    /// `None`: each log's format is recognised from its first lines.
    pub error_format: Option<String>,
    pub since: Option<String>,
    pub json: bool,
    pub processes: Vec<String>,
    pub pids: Vec<i32>,
    pub urls: Vec<String>,
    pub requests: u32,
    pub duration: String,
}

/// Runs the diagnosis: a trace of the workers when processes are named (optionally driving requests), the
/// error log when given (or when tracing is not possible). `Ok(true)` when a probable cause was found.
pub async fn run(args: DiagnoseArgs, out: &mut (dyn std::io::Write + Send)) -> anyhow::Result<bool> {
    // Every argument is checked before anything is traced: a bad one is a usage error at once, not after a trace
    // that slowed the server down for nothing.
    let duration = trace_duration(&args.duration)?;
    let urls = args
        .urls
        .iter()
        .map(|u| lookout_diagnose::live::request_url(u).map_err(|e| anyhow::anyhow!("--url {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let format = parse_format(args.error_format.as_deref())?;
    let since = since_ms(&args.since)?;
    if args.processes.is_empty() && args.pids.is_empty() {
        if args.error_log.is_empty() {
            anyhow::bail!("name what to diagnose: --process NAME or --pid PID (to trace), and/or --error-log FILE");
        }
        return run_error_log(&args, format, since, out);
    }
    // A pid stands for itself and its children, so naming the parent of a prefork pool traces its workers.
    let mut pids: Vec<i32> = args.pids.iter().flat_map(|p| lookout_diagnose::trace::with_children(*p)).collect();
    let mut label = args.processes.first().cloned().unwrap_or_else(|| "process".into());
    for name in &args.processes {
        let mut found = lookout_diagnose::trace::pids_by_name(name);
        if found.is_empty() {
            anyhow::bail!(
                "no process named {name:?} is running (names are as in /proc/PID/comm, e.g. apache2, php-fpm8.2, nginx)"
            );
        }
        // Of several servers of that name, the ones that answer the URL's port.
        if let Some(url) = urls.first() {
            let port = url.port_u16().unwrap_or(if url.scheme_str() == Some("https") { 443 } else { 80 });
            let narrowed = lookout_diagnose::serving::serving_port(name, &found, port);
            if !narrowed.why.is_empty() {
                eprintln!("{}", narrowed.why);
            }
            found = narrowed.pids;
        }
        pids.extend(found);
    }
    if args.processes.is_empty() {
        label = process_label(pids[0]).unwrap_or(label);
    }
    let (traced, requests) = trace_while_requesting(pids, duration, &urls, args.requests.max(1)).await?;
    let events = match traced {
        Ok(ev) => ev,
        // Without the privilege to trace, fall back to the error log. The reason is printed once: here when
        // there is a fallback, else as the error main prints.
        Err(e) => {
            return if args.error_log.is_empty() {
                Err(anyhow::anyhow!("cannot trace: {e}; give --error-log FILE to diagnose from the error log instead"))
            } else {
                eprintln!("cannot trace: {e}; falling back to the error log {}", shown_paths(&args.error_log));
                run_error_log(&args, format, since, out)
            };
        }
    };
    if requests.none_answered() {
        anyhow::bail!("no request reached the server: {}", requests.errors.first().map_or("", String::as_str));
    }
    let traced_for = requests.traced_for;
    let request_errors = requests.errors;
    let correlation = lookout_diagnose::correlate::correlate(&events);
    let verdict = correlation.verdict(&label);
    let log_findings = lookout_diagnose::error_log::diagnose_files(&args.error_log, format, since)?.findings;
    let evidence = match correlation.candidates.first() {
        Some(c) => args.error_log.iter().flat_map(|log| error_log_evidence(log, c)).collect(),
        None => Vec::new(),
    };
    let found = !correlation.candidates.is_empty() || !log_findings.is_empty();
    if args.json {
        let v = serde_json::json!({
            "source": "trace",
            "verdict": verdict,
            "process": label,
            "events": events.len(),
            "traced_ms": traced_for.as_millis() as u64,
            "failing_requests": correlation.failing_requests,
            "ok_requests": correlation.ok_requests,
            "candidates": correlation.candidates,
            "noise": correlation.noise,
            "routine": correlation.routine,
            "request_errors": request_errors,
            "evidence": evidence,
            "error_log_findings": log_findings,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        let mut s = String::new();
        let _ = writeln!(s, "{}", printable(&verdict));
        let _ = writeln!(
            s,
            "\nTraced {label} for {:.1}s ({} syscall events; {} failing and {} successful requests seen).",
            traced_for.as_secs_f64(),
            events.len(),
            correlation.failing_requests,
            correlation.ok_requests
        );
        for c in correlation.candidates.iter().skip(1).take(5) {
            let _ = writeln!(
                s,
                "  also failing only in failing requests: {} ({} in {}, {}×)",
                printable(&c.path.display().to_string()),
                c.errno,
                c.syscalls.join("/"),
                c.in_failing_requests
            );
        }
        if !correlation.noise.is_empty() {
            let _ = writeln!(
                s,
                "  ignored as noise (they fail in successful requests too): {}",
                correlation
                    .noise
                    .iter()
                    .take(5)
                    .map(|c| printable(&c.path.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for e in &request_errors {
            let _ = writeln!(s, "  request failed: {}", printable(e));
        }
        if !evidence.is_empty() {
            let _ = writeln!(s, "\nEvidence from the error log (lines naming the file or a traced worker):");
            for line in &evidence {
                let _ = writeln!(s, "    | {}", printable(line));
            }
        }
        if !log_findings.is_empty() {
            let _ = writeln!(s, "\nThe error log says:");
            s.push_str(&render(&log_findings));
        }
        out.write_all(s.as_bytes())?;
    }
    Ok(found)
}

/// `--duration`, within what tracing allows: more than nothing and at most 30 s (the server runs several times
/// slower while traced; `[target.diagnose] duration` has the same bounds).
fn trace_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let max = lookout_diagnose::trace::MAX_DURATION;
    let shown = lookout_core::text::truncate(&lookout_core::text::one_line(text), 40);
    match lookout_core::parse_duration(text) {
        Ok(d) if !d.is_zero() && d <= max => Ok(d),
        Ok(_) => anyhow::bail!(
            "--duration {shown}: must be between 1ms and {}s (tracing slows the server down)",
            max.as_secs()
        ),
        Err(e) => anyhow::bail!("--duration: {e}"),
    }
}

/// The last error-log lines that name the candidate's path or one of the workers it failed in.
fn error_log_evidence(log: &std::path::Path, c: &lookout_diagnose::correlate::Candidate) -> Vec<String> {
    let Ok(bytes) = std::fs::read(log) else { return Vec::new() };
    let text = String::from_utf8_lossy(&bytes);
    let path = c.path.display().to_string();
    let pids: Vec<String> = c.pids.iter().map(|p| format!("[pid {p}")).collect();
    let mut hits: Vec<String> = text
        .lines()
        .rev()
        .filter(|l| l.contains(&path) || pids.iter().any(|p| l.contains(p.as_str())))
        .take(5)
        .map(str::to_string)
        .collect();
    hits.reverse();
    hits
}

/// `--error-format`; without it every log's format is recognised from its first lines.
fn parse_format(name: Option<&str>) -> anyhow::Result<ErrorFormat> {
    let Some(name) = name else { return Ok(ErrorFormat::Auto) };
    ErrorFormat::parse_name(name)
        .with_context(|| format!("--error-format {name:?}: use apache or nginx (or fpm, php; auto is the default)"))
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| printable(&p.display().to_string())).collect::<Vec<_>>().join(", ")
}

fn since_ms(since: &Option<String>) -> anyhow::Result<Option<i64>> {
    since
        .as_deref()
        .map(|s| {
            lookout_logs::time::parse_user_time(s)
                .map(|t| t * 1000)
                .with_context(|| format!("--since {s:?} is not a time; write e.g. 2026-11-25T14:00 (UTC)"))
        })
        .transpose()
}

fn run_error_log(
    args: &DiagnoseArgs,
    format: ErrorFormat,
    since: Option<i64>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<bool> {
    let Diagnosed { findings, logs } = lookout_diagnose::error_log::diagnose_files(&args.error_log, format, since)?;
    if args.json {
        let v = serde_json::json!({
            "source": "error_log",
            "error_log": args.error_log.first(),
            "error_logs": logs,
            "verdict": findings.first().map_or(NOTHING_FOUND.to_string(), |f| f.summary.clone()),
            "findings": findings,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        let mut s = render(&findings);
        s.push_str(&render_logs(&logs));
        out.write_all(s.as_bytes())?;
    }
    Ok(!findings.is_empty())
}

/// Which logs were read and how: the format each was recognised as matters most when nothing was found.
fn render_logs(logs: &[LogRead]) -> String {
    let mut s = String::from(
        "
Read:",
    );
    for l in logs {
        let how = match l.format {
            Some(f) => format!("{} format, {} entr{}", f.name(), l.entries, if l.entries == 1 { "y" } else { "ies" }),
            None => "no line in a known error-log format (apache, nginx, fpm, php)".to_string(),
        };
        let skipped = match l.malformed {
            0 => String::new(),
            n => format!(", {n} line{} skipped", if n == 1 { "" } else { "s" }),
        };
        let _ = write!(s, "\n  {} ({how}{skipped})", printable(&l.path.display().to_string()));
    }
    s.push('\n');
    s
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
        // An entry may span lines (a PHP stack trace): each line on its own, escaped.
        for line in f.evidence.iter().flat_map(|e| e.lines()) {
            let _ = writeln!(s, "    | {}", printable(line));
        }
    }
    s
}
