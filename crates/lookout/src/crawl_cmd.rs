//! `lookout crawl URL`: the smoke test after a deploy, printed — a summary table and one line per problem with
//! the URL and the page that linked to it, or the same as JSON. Exit 0 when nothing failed, 1 when a page
//! answered 5xx, printed a PHP error, was slower than `--slow`, could not be fetched, or the start page answered
//! 4xx (a linked page's 4xx is a warning unless `--fail-on-4xx`), 2 on usage errors.

use lookout_core::text::printable;
use std::io::Write;
use std::time::Duration;

use lookout_app::crawl::{CrawlOptions, CrawlReport};

/// The command's arguments, as `main.rs` parsed them.
#[derive(Debug, Clone)]
pub struct CrawlArgs {
    pub url: String,
    pub max_pages: usize,
    pub concurrency: usize,
    /// A human duration (`2s`, `500ms`).
    pub slow: String,
    pub fail_on_4xx: bool,
    pub json: bool,
}

/// Runs the crawl and prints it; returns the exit code (0 or 1). `Err` is a usage error (exit 2).
pub async fn run(args: CrawlArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    if args.max_pages == 0 {
        anyhow::bail!("--max-pages must be at least 1");
    }
    if args.concurrency == 0 || args.concurrency > 64 {
        anyhow::bail!("--concurrency must be from 1 to 64 (got {})", args.concurrency);
    }
    let slow = lookout_core::duration::parse_duration(&args.slow)
        .map_err(|e| anyhow::anyhow!("--slow {:?}: {e}", printable(&args.slow)))?;
    if slow.is_zero() {
        anyhow::bail!("--slow must be more than 0");
    }
    let options = CrawlOptions {
        max_pages: args.max_pages,
        concurrency: args.concurrency,
        slow,
        // A page is judged slow long before this; the timeout only bounds a page that never answers.
        timeout: slow.saturating_mul(5).max(Duration::from_secs(30)),
        fail_on_4xx: args.fail_on_4xx,
    };
    let report = lookout_app::crawl::run(&args.url, &options).await.map_err(anyhow::Error::msg)?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&report, &options).as_bytes())?;
    }
    Ok(if report.failed { 1 } else { 0 })
}

/// The text report: verdict, summary table, problems (failures first, then warnings).
pub fn render(report: &CrawlReport, options: &CrawlOptions) -> String {
    use std::fmt::Write as _;
    let s = &report.summary;
    let mut text = String::new();
    let verdict = if report.failed { "FAILED" } else { "ok" };
    let _ = writeln!(text, "crawl of {}: {verdict}\n", printable(&report.start));
    let rows = [
        ("pages", s.pages.to_string()),
        ("ok", s.ok.to_string()),
        ("5xx", s.server_errors.to_string()),
        ("PHP errors", s.php_errors.to_string()),
        ("slow", format!("{} (over {} ms)", s.slow, options.slow.as_millis())),
        ("fetch errors", s.fetch_errors.to_string()),
        ("broken links", format!("{}{}", s.broken_links, if options.fail_on_4xx { "" } else { " (warnings)" })),
        ("other-origin links", format!("{} (not followed)", s.other_origin_links)),
        ("time", format!("{:.1}s", s.elapsed_ms as f64 / 1000.0)),
    ];
    for (name, value) in rows {
        let _ = writeln!(text, "  {name:<18}  {value}");
    }
    if s.not_visited > 0 {
        let _ = writeln!(
            text,
            "\nstopped at --max-pages {}: {} more URL(s) of the site were found but not fetched",
            options.max_pages, s.not_visited
        );
    }
    let mut problems: Vec<_> = report.problems.iter().collect();
    problems.sort_by_key(|p| !p.fails);
    if !problems.is_empty() {
        let _ = writeln!(text);
    }
    for p in problems {
        let level = if p.fails { "FAIL" } else { "warn" };
        let status = p.status.map_or_else(|| "-".to_string(), |s| s.to_string());
        let from = p
            .referrer
            .as_deref()
            .map_or_else(|| "the start URL".to_string(), |r| format!("linked from {}", printable(r)));
        let _ = writeln!(
            text,
            "{level} {} {} ({status}, {} ms) {from}: {}",
            p.kind.label(),
            printable(&p.url),
            p.elapsed_ms,
            printable(&p.detail)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_app::crawl::{Problem, ProblemKind, Summary};

    #[test]
    fn remote_text_is_printed_escaped() {
        let report = CrawlReport {
            start: "http://127.0.0.1:1/".into(),
            failed: true,
            summary: Summary { pages: 2, ok: 1, php_errors: 1, ..Summary::default() },
            problems: vec![Problem {
                kind: ProblemKind::PhpError,
                url: "http://127.0.0.1:1/a.php".into(),
                referrer: Some("http://127.0.0.1:1/".into()),
                status: Some(200),
                elapsed_ms: 3,
                detail: "Warning: x\x1b[2J in /a.php on line 1".into(),
                fails: true,
            }],
        };
        let text = render(&report, &CrawlOptions::new());
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("FAIL PHP error http://127.0.0.1:1/a.php (200, 3 ms) linked from http://127.0.0.1:1/: Warning: x\\u{1b}[2J"), "{text}");
        assert!(text.contains("crawl of http://127.0.0.1:1/: FAILED"), "{text}");
    }
}
