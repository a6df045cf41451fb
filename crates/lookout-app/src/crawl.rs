//! `lookout crawl`'s use case: the smoke test after a deploy — follow a site's own links from a start URL and
//! fail on a 5xx, a PHP error in a page, a slow page or a page that cannot be fetched. The engine is a source
//! (`lookout_probe::crawl`, it requests the site like a probe); the binary reaches it through here, as it
//! reaches the probes through `check`, and prints the report.

pub use lookout_probe::crawl::{CrawlOptions, CrawlReport, Problem, ProblemKind, Summary, start_url};

/// Checks `url` (http or https, a host, a valid port) and crawls from it. `Err` is a usage error (exit 2).
pub async fn run(url: &str, options: &CrawlOptions) -> Result<CrawlReport, String> {
    let start = start_url(url)?;
    Ok(lookout_probe::crawl::crawl(&start, options).await)
}
