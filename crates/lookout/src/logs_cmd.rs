//! `lookout logs FILE...`: offline analysis of access logs (plain or gzip) — totals, status distribution, 5xx
//! over time, top failing paths and error windows with the distinct clients affected.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use lookout_core::{Timestamp, format_duration};
use lookout_logs::LogFormat;
use lookout_logs::report::{Report, ReportOptions};

/// Inputs bigger than this get a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

pub struct LogsArgs {
    pub files: Vec<PathBuf>,
    pub format: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub json: bool,
    pub threshold: String,
    pub min_requests: u64,
    pub bucket: String,
    pub threads: Option<usize>,
}

/// Runs the analysis and prints the report. Errors are usage errors (exit 2).
/// Exit 0 with a report; 1 when there were lines and not one of them fits the format (a wrong `--format` must
/// not pass for an empty log).
pub fn run(args: LogsArgs, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let format = LogFormat::named_or_custom(&args.format)?;
    let parse_time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                lookout_logs::time::parse_user_time(s).with_context(|| {
                    format!("{flag} {s:?} is not a time; write e.g. 2026-11-25, 2026-11-25T14:00 or 2026-11-25T14:00:00Z (UTC)")
                })
            })
            .transpose()
    };
    let bucket = lookout_core::parse_duration(&args.bucket).map_err(|e| anyhow::anyhow!("--bucket: {e}"))?;
    if bucket.as_secs() == 0 {
        bail!("--bucket must be at least 1s");
    }
    let opts = ReportOptions {
        bucket_secs: bucket.as_secs() as i64,
        since: parse_time("--since", &args.since)?,
        until: parse_time("--until", &args.until)?,
        threshold: parse_ratio(&args.threshold)?,
        min_requests: args.min_requests,
        ..ReportOptions::default()
    };
    if args.files.is_empty() {
        bail!("name at least one access log, e.g. lookout logs /var/log/apache2/access.log");
    }

    let mut inputs: Vec<Box<dyn Read + Send>> = Vec::new();
    let mut total: u64 = 0;
    let bar = indicatif::ProgressBar::hidden();
    for path in &args.files {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        total += file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let gz = {
            use std::io::BufRead;
            reader.fill_buf().map(|b| b.starts_with(&[0x1f, 0x8b])).unwrap_or(false)
        };
        let counted = Counting { inner: reader, bar: bar.clone() };
        inputs.push(if gz { Box::new(flate2::read::MultiGzDecoder::new(counted)) } else { Box::new(counted) });
    }
    if total >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_length(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let report =
        lookout_logs::offline::analyze(inputs, &format, &opts, threads, &|_| {}).context("cannot read the logs")?;
    bar.finish_and_clear();

    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&report, &args.files).as_bytes())?;
    }
    if report.lines > 0 && report.requests == 0 {
        eprintln!(
            "error: none of the {} lines fits the format {:?}: name the right one with --format (a name, or the server's LogFormat string)",
            thousands(report.lines),
            args.format
        );
        return Ok(1);
    }
    Ok(0)
}

/// Counts bytes read into the progress bar (compressed bytes for .gz, so the bar tracks the file).
struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// `5%`, `0.05` → 0.05.
fn parse_ratio(s: &str) -> anyhow::Result<f64> {
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    };
    match v {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => bail!("--threshold {s:?} must be a ratio such as 5% or 0.05"),
    }
}

fn time(secs: i64) -> String {
    Timestamp::from_millis(secs.saturating_mul(1000)).to_rfc3339_seconds()
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 { "-".into() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

/// The human report.
pub fn render(r: &Report, files: &[PathBuf]) -> String {
    let mut s = String::new();
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let _ = writeln!(s, "{}", names.join(", "));
    let span = match (r.first, r.last) {
        (Some(a), Some(b)) => format!(
            "{} → {} ({})",
            time(a),
            time(b),
            format_duration(std::time::Duration::from_secs((b - a).max(0) as u64))
        ),
        _ if r.requests == 0 => "no request read".into(),
        _ => "no timestamps (%t) in this format".into(),
    };
    let _ = writeln!(s, "  {span}");
    let _ = writeln!(
        s,
        "  {} lines: {} requests, {} malformed{}",
        thousands(r.lines),
        thousands(r.requests),
        thousands(r.malformed),
        if r.filtered_out > 0 {
            format!(", {} outside --since/--until", thousands(r.filtered_out))
        } else {
            String::new()
        }
    );
    let precision = match r.distinct_clients_precision {
        lookout_logs::distinct::Precision::Exact => "exact",
        lookout_logs::distinct::Precision::Estimate => "HyperLogLog estimate, ±1%",
    };
    let _ = writeln!(s, "  {} distinct clients ({precision})", thousands(r.distinct_clients));

    let _ = writeln!(s, "\nStatus");
    let c = &r.classes;
    for (name, n) in [("2xx", c.s2xx), ("3xx", c.s3xx), ("4xx", c.s4xx), ("5xx", c.s5xx), ("1xx", c.s1xx)] {
        if n > 0 || name == "5xx" {
            let _ = writeln!(s, "  {name}  {:>12}  {:>6}", thousands(n), pct(n, r.requests));
        }
    }
    let top: Vec<String> =
        r.statuses.iter().take(8).map(|c| format!("{} ×{}", c.status, thousands(c.requests))).collect();
    if !top.is_empty() {
        let _ = writeln!(s, "  codes: {}", top.join(", "));
    }

    if !r.timeline.is_empty() {
        let _ = writeln!(
            s,
            "\n5xx over time ({} per column, peak ratio scaled to █)",
            format_duration(std::time::Duration::from_secs((r.bucket_secs * columns_per(r)) as u64))
        );
        let _ = writeln!(s, "  {}", chart(r));
        let _ = writeln!(
            s,
            "  {}{}",
            r.timeline.first().map_or(String::new(), |p| time(p.start)),
            r.timeline.last().map_or(String::new(), |p| format!(" … {}", time(p.start + r.bucket_secs)))
        );
    }

    if !r.failing_paths.is_empty() {
        let _ = writeln!(s, "\nTop failing paths (5xx)");
        for p in &r.failing_paths {
            let _ = writeln!(s, "  {:>12}  {}", thousands(p.failed), p.path.escape_debug());
        }
    }

    let _ = writeln!(
        s,
        "\nError windows (5xx ratio ≥ {:.1}% per {} with ≥ {} requests)",
        r.threshold * 100.0,
        format_duration(std::time::Duration::from_secs(r.bucket_secs as u64)),
        r.min_requests
    );
    if r.error_windows.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for w in &r.error_windows {
        let precision = match w.clients_precision {
            lookout_logs::distinct::Precision::Exact => "exact",
            lookout_logs::distinct::Precision::Estimate => "estimate",
        };
        let _ = writeln!(
            s,
            "  {} → {} ({}): {} of {} requests failed (peak {:.0}%), {} distinct clients affected ({precision}; client addresses approximate users)",
            time(w.start),
            time(w.end),
            format_duration(std::time::Duration::from_secs((w.end - w.start).max(0) as u64)),
            thousands(w.failed),
            thousands(w.requests),
            w.peak_ratio * 100.0,
            thousands(w.clients_affected),
        );
    }

    if let Some(l) = &r.latency {
        let _ = writeln!(
            s,
            "\nLatency (from the log): p50 {:.1}ms  p95 {:.1}ms  p99 {:.1}ms  max {:.1}ms",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    }
    if r.malformed > 0 {
        let reasons: Vec<String> = r.malformed_reasons.iter().map(|(k, v)| format!("{k}: {}", thousands(*v))).collect();
        let _ = writeln!(s, "\nMalformed lines ({})", reasons.join(", "));
        for sample in &r.malformed_samples {
            let _ = writeln!(s, "  {}", sample.escape_debug());
        }
    }
    s
}

const CHART_WIDTH: i64 = 60;

fn columns_per(r: &Report) -> i64 {
    let n = r.timeline.len() as i64;
    let span = match (r.timeline.first(), r.timeline.last()) {
        (Some(a), Some(b)) => (b.start - a.start) / r.bucket_secs.max(1) + 1,
        _ => n,
    };
    ((span + CHART_WIDTH - 1) / CHART_WIDTH).max(1)
}

/// One character per column: the 5xx ratio of that period, scaled to the peak.
fn chart(r: &Report) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let Some(first) = r.timeline.first() else { return String::new() };
    let per = columns_per(r);
    let width = r.bucket_secs.max(1) * per;
    let mut cols: Vec<(u64, u64)> = Vec::new();
    for p in &r.timeline {
        let i = ((p.start - first.start) / width) as usize;
        if cols.len() <= i {
            cols.resize(i + 1, (0, 0));
        }
        cols[i].0 += p.requests;
        cols[i].1 += p.failed;
    }
    let ratios: Vec<f64> = cols.iter().map(|(req, f)| if *req == 0 { 0.0 } else { *f as f64 / *req as f64 }).collect();
    let peak = ratios.iter().copied().fold(0.0, f64::max);
    ratios
        .iter()
        .map(|r| if peak == 0.0 || *r == 0.0 { '·' } else { BARS[((r / peak) * 8.0).ceil().clamp(1.0, 8.0) as usize] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_numbers() {
        assert_eq!(parse_ratio("5%").unwrap(), 0.05);
        assert_eq!(parse_ratio("0.2").unwrap(), 0.2);
        assert!(parse_ratio("150%").is_err());
        assert!(parse_ratio("lots").is_err());
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
