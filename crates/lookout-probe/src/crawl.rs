//! `lookout crawl`'s engine: the smoke test after a deploy. From a start URL it follows the links of its origin
//! (same scheme, host and port; never another), fetches each page once through [`lookout_http`] like a probe
//! does, and reports what a deploy must not ship: a 5xx, a PHP error printed into a page, a page slower than a
//! limit, a page that cannot be fetched at all — and links that answer 4xx.
//!
//! Redirects are not followed by the client but treated as links (`Location`), so a redirect to another host is
//! never requested either. Bodies are read up to [`lookout_http::MAX_BODY`]: a PHP error after the first MiB of
//! a page is not seen, and a link there is not followed.

mod links;
mod php;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use lookout_core::Observation;
use lookout_http::{HttpRequest, MAX_BODY, fetch};
use serde::Serialize;
use url::Url;

pub use links::{RawLink, Resolved, decode_entities, resolve, scan};
pub use php::first_error as php_error;

/// How a crawl runs. [`CrawlOptions::new`] gives the command's defaults.
#[derive(Clone, Debug)]
pub struct CrawlOptions {
    /// Pages fetched at most (the start page included).
    pub max_pages: usize,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// A page whose whole exchange (connect to last body byte) takes longer is a problem.
    pub slow: Duration,
    /// A page not answered within this is a fetch error.
    pub timeout: Duration,
    /// Whether a 4xx link fails the crawl (else it is a warning).
    pub fail_on_4xx: bool,
}

impl CrawlOptions {
    pub fn new() -> Self {
        CrawlOptions {
            max_pages: 200,
            concurrency: 4,
            slow: Duration::from_secs(2),
            timeout: Duration::from_secs(30),
            fail_on_4xx: false,
        }
    }
}

impl Default for CrawlOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong with one URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A 5xx answer.
    ServerError,
    /// A PHP fatal error, parse error or warning in the body.
    PhpError,
    /// Slower than `slow`.
    Slow,
    /// No answer: refused, reset, timed out, not HTTP.
    FetchError,
    /// A 4xx answer (the start page's 4xx always fails; a linked page's only with `fail_on_4xx`).
    BrokenLink,
}

impl ProblemKind {
    /// How the summary and the problem lines name it.
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::ServerError => "5xx",
            ProblemKind::PhpError => "PHP error",
            ProblemKind::Slow => "slow",
            ProblemKind::FetchError => "fetch error",
            ProblemKind::BrokenLink => "broken link",
        }
    }
}

/// One problem: the URL, the page that linked to it (none for the start URL), and what was seen.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub url: String,
    pub referrer: Option<String>,
    pub status: Option<u16>,
    pub elapsed_ms: u64,
    /// Text from the server (a PHP error line) or the client's error: print it escaped.
    pub detail: String,
    /// Whether it fails the crawl (exit 1) or is a warning.
    pub fails: bool,
}

/// The counts of a crawl.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Pages fetched (every URL requested once).
    pub pages: usize,
    /// Answered 2xx or 3xx, without a PHP error and in time.
    pub ok: usize,
    pub server_errors: usize,
    pub php_errors: usize,
    pub slow: usize,
    pub broken_links: usize,
    pub fetch_errors: usize,
    /// Distinct links to another origin, not followed.
    pub other_origin_links: usize,
    /// Same-origin URLs found but not fetched because `max_pages` was reached.
    pub not_visited: usize,
    pub elapsed_ms: u64,
}

/// A whole crawl's outcome, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct CrawlReport {
    pub start: String,
    pub failed: bool,
    pub summary: Summary,
    pub problems: Vec<Problem>,
}

/// The start URL, checked as `lookout diagnose --url` checks its URLs: `http` or `https`, a host, a port from 1
/// to 65535. The error never repeats credentials written in the URL.
pub fn start_url(text: &str) -> Result<Url, String> {
    let shown = lookout_core::text::truncate(&lookout_core::text::one_line(&lookout_core::url::redact(text)), 200);
    let refuse = |why: &str| format!("{shown:?} cannot be crawled: {why} (write e.g. https://staging.example/)");
    let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(refuse("only http:// and https:// URLs can be crawled"));
    }
    // The same port rules as every other URL lookout requests (`http` would take 80800 as "no port").
    let authority = text.split_once("://").map_or("", |(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let parts = lookout_core::url::split_authority(authority);
    if parts.host.is_empty() {
        return Err(refuse("it has no host"));
    }
    lookout_core::url::parse_port(parts.port).map_err(|why| refuse(&why))?;
    let mut url = Url::parse(text).map_err(|e| refuse(&format!("it is not a URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("it has no host"));
    }
    if url.as_str().parse::<http::Uri>().is_err() {
        return Err(refuse("it is not a URL the HTTP client can request"));
    }
    url.set_fragment(None);
    Ok(url)
}

/// A URL to fetch and the page that led to it.
struct Visit {
    url: Url,
    referrer: Option<Url>,
}

/// Crawls from `start` (see [`start_url`]). Credentials in the start URL are sent to every page of its origin
/// (as Basic authentication) and never shown.
pub async fn crawl(start: &Url, options: &CrawlOptions) -> CrawlReport {
    let began = Instant::now();
    let mut shown_start = start.clone();
    let _ = shown_start.set_username("");
    let _ = shown_start.set_password(None);

    let mut seen: HashSet<String> = HashSet::from([shown_start.to_string()]);
    let mut other_origin: HashSet<String> = HashSet::new();
    let mut queue = VecDeque::from([Visit { url: shown_start.clone(), referrer: None }]);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut summary = Summary::default();
    let mut problems = Vec::new();

    loop {
        while in_flight.len() < options.concurrency.max(1) && summary.pages < options.max_pages.max(1) {
            let Some(visit) = queue.pop_front() else { break };
            summary.pages += 1;
            let request = request_for(&visit.url, start, options.timeout);
            in_flight.spawn(async move {
                let obs = match request {
                    Some(r) => fetch(&r).await,
                    None => Observation::new("", lookout_core::ProbeKind::Http, lookout_core::Timestamp::now()),
                };
                (visit, obs)
            });
        }
        let Some(joined) = in_flight.join_next().await else { break };
        // A fetch task does not panic (fetch never fails); if one did, its page is simply not judged.
        let Ok((visit, obs)) = joined else { continue };
        let found = judge(&visit, &obs, options, &mut summary, &mut problems);
        if let Some(found) = found {
            for link in found {
                match link {
                    Resolved::Follow(url) => {
                        if seen.insert(url.to_string()) {
                            queue.push_back(Visit { url, referrer: Some(visit.url.clone()) });
                        }
                    }
                    Resolved::OtherOrigin(url) => {
                        other_origin.insert(url);
                    }
                    Resolved::Ignored => {}
                }
            }
        }
    }
    summary.not_visited = queue.len();
    summary.other_origin_links = other_origin.len();
    summary.elapsed_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    let failed = problems.iter().any(|p| p.fails);
    // Completion order depends on timing: failures first, then by URL, so two runs print alike.
    problems.sort_by(|a, b| b.fails.cmp(&a.fails).then_with(|| a.url.cmp(&b.url)));
    CrawlReport { start: shown_start.to_string(), failed, summary, problems }
}

/// The request for one page: a GET that does not follow redirects (the crawl decides where to go), with the
/// start URL's credentials. `None` when the URL is not one the HTTP client can carry.
fn request_for(url: &Url, start: &Url, timeout: Duration) -> Option<HttpRequest> {
    let mut with_credentials = url.clone();
    if !start.username().is_empty() {
        let _ = with_credentials.set_username(start.username());
        let _ = with_credentials.set_password(start.password());
    }
    let uri = with_credentials.as_str().parse().ok()?;
    let mut request = HttpRequest::get(uri, timeout);
    request.follow_redirects = false;
    request.max_body = MAX_BODY;
    request.headers.push(("accept".into(), "text/html,application/xhtml+xml,*/*;q=0.8".into()));
    Some(request)
}

/// Judges one fetched page into `summary` and `problems`; returns its links (and its redirect) when it is a page
/// whose links the crawl follows.
fn judge(
    visit: &Visit,
    obs: &Observation,
    options: &CrawlOptions,
    summary: &mut Summary,
    problems: &mut Vec<Problem>,
) -> Option<Vec<Resolved>> {
    let elapsed_ms = obs.timings.total_ms.max(0.0).round() as u64;
    let mut problem = |kind: ProblemKind, detail: String, fails: bool| {
        problems.push(Problem {
            kind,
            url: visit.url.to_string(),
            referrer: visit.referrer.as_ref().map(Url::to_string),
            status: obs.status,
            elapsed_ms,
            detail,
            fails,
        });
    };
    let Some(status) = obs.status.filter(|_| obs.error.is_none()) else {
        summary.fetch_errors += 1;
        let detail = obs.error.as_ref().map_or_else(|| "the URL cannot be requested".to_string(), |e| e.to_string());
        problem(ProblemKind::FetchError, detail, true);
        return None;
    };
    let mut ok = true;
    if status >= 500 {
        summary.server_errors += 1;
        problem(ProblemKind::ServerError, format!("answered {status}"), true);
        ok = false;
    } else if status >= 400 {
        summary.broken_links += 1;
        let fails = options.fail_on_4xx || visit.referrer.is_none();
        let detail = if visit.referrer.is_none() { "the start page" } else { "a broken link" };
        problem(ProblemKind::BrokenLink, format!("answered {status}: {detail}"), fails);
        ok = false;
    }
    if let Some(line) = php::first_error(&obs.body) {
        summary.php_errors += 1;
        problem(ProblemKind::PhpError, line, true);
        ok = false;
    }
    if obs.timings.total_ms > options.slow.as_secs_f64() * 1000.0 {
        summary.slow += 1;
        problem(ProblemKind::Slow, format!("took {elapsed_ms} ms (limit {} ms)", options.slow.as_millis()), true);
        ok = false;
    }
    if ok {
        summary.ok += 1;
    }
    let origin = visit.url.origin();
    if (300..400).contains(&status) {
        let location = header(obs, "location")?;
        return Some(vec![resolve(&visit.url, None, location, &origin)]);
    }
    if !(200..300).contains(&status) || !is_html(obs) {
        return None;
    }
    let (raw, base) = scan(&obs.body);
    Some(raw.iter().map(|l| resolve(&visit.url, base.as_deref(), &l.value, &origin)).collect())
}

fn header<'a>(obs: &'a Observation, name: &str) -> Option<&'a str> {
    obs.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Whether the body is HTML whose links are followed: `text/html` or XHTML, or no content type at all.
fn is_html(obs: &Observation) -> bool {
    header(obs, "content-type").is_none_or(|t| t.to_ascii_lowercase().contains("html"))
}

#[cfg(test)]
mod tests {
    use super::start_url;

    #[test]
    fn only_http_and_https_urls_with_a_host_are_crawled() {
        assert_eq!(start_url("http://127.0.0.1:8080/#x").unwrap().as_str(), "http://127.0.0.1:8080/");
        assert!(start_url("HTTPS://Staging.Example/").is_ok());
        assert!(start_url("http://[::1]:8080/x?y=1").is_ok());
        for (bad, why) in [
            ("javascript:alert(1)", "only http:// and https://"),
            ("file:///etc/passwd", "only http:// and https://"),
            ("ftp://127.0.0.1/", "only http:// and https://"),
            ("127.0.0.1:8080", "only http:// and https://"),
            ("", "only http:// and https://"),
            ("http://127.0.0.1:80800/", "port 80800 is out of range"),
            ("http://127.0.0.1:0/", "port 0 is out of range"),
            ("http:///x", "no host"),
            ("http://exa mple/", "not a URL"),
        ] {
            let e = start_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = start_url("http://admin:hunter2@127.0.0.1:0/").unwrap_err();
        assert!(e.contains("admin:***@") && !e.contains("hunter2"), "{e}");
    }
}
