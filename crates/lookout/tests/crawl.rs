//! `lookout crawl`, the smoke test after a deploy, against real sites on 127.0.0.1: a PHP site on Apache + mod_php
//! (a page that requires a misnamed file, a page printing a PHP warning), and small Rust servers for what is
//! easier to count there (an endless site for `--max-pages`, a slow page, another origin that must get nothing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lookout::http_server::{ServerRequest, respond, serve};

use crate::support::apache::Apache;
use crate::support::lookout_bin;

/// Runs `lookout crawl ARGS`: (exit code, stdout, stderr).
async fn crawl(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(lookout_bin()).arg("crawl").args(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A server on 127.0.0.1 that records every path it is asked for and answers with `page(path)`:
/// (status, content type, body, delay).
struct Site {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(page: fn(&str) -> (u16, &'static str, String, Duration)) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = requests.clone();
        let task = tokio::spawn(serve(listener, move |req: ServerRequest| {
            let path = req.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            seen.lock().unwrap().push(path.clone());
            async move {
                let (status, content_type, body, delay) = page(&path);
                tokio::time::sleep(delay).await;
                respond(status, content_type, body)
            }
        }));
        Site { port, requests, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn other_origin() -> fn(&str) -> (u16, &'static str, String, Duration) {
    |_| (200, "text/html", "<h1>elsewhere</h1>".into(), Duration::ZERO)
}

/// The PHP site: the founding mistake (`require` of `inc/Settings.php` when the file is `inc/settings.php`) two
/// links deep, a page that prints a warning with display_errors on (html_errors as mod_php prints them), links
/// the crawl must not follow, and links to `off` (another origin).
fn php_site(off: &str, item_requires: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "index.php",
            format!(
                r##"<?php require_once __DIR__ . '/inc/settings.php'; ?><!doctype html>
<html><head><link rel="stylesheet" href="/style.css"></head><body>
<h1>Shop (<?= $currency ?>)</h1>
<a href="about.php#team">About</a> <a href="shop/list.php">Shop</a> <a href="notices.php">Notices</a>
<a href="mailto:shop@example.test">Mail</a> <a href="javascript:void(0)">JS</a> <a href="#top">Top</a>
<a href="{off}/from-index">Partner</a> <img src="{off}/pixel.gif">
<form method="post" action="/delete.php"><button>Delete</button></form>
</body></html>"##
            ),
        ),
        ("about.php", "<p>About us.</p><a href='/'>Home</a> <a href='./shop/../about.php'>Self</a>".into()),
        ("style.css", "body { color: black } /* <a href=\"/not-a-link.php\"> */".into()),
        ("shop/list.php", "<a href=\"../about.php\">About</a> <a href=\"item.php?id=1\">Item 1</a>".into()),
        ("shop/item.php", format!("<?php require __DIR__ . '/../inc/{item_requires}'; ?><p>Item <?= $currency ?></p>")),
        ("notices.php", "<?php ini_set('display_errors', '1'); include 'banner.php'; ?><p>Notices</p>".into()),
        ("delete.php", "<?php file_put_contents(__DIR__ . '/deleted', 'yes'); ?>deleted".into()),
        ("inc/settings.php", "<?php $currency = 'EUR';\n".into()),
    ]
}

fn start_php_site(files: &[(&'static str, String)]) -> Option<Apache> {
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    Apache::start(&files)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misnamed_require_and_a_php_warning_fail_the_crawl_naming_page_and_referrer() {
    let off = Site::start(other_origin()).await;
    let files = php_site(&off.url(""), "Settings.php");
    let Some(apache) = start_php_site(&files) else { return };

    let (code, out, err) = crawl(&[&apache.url("/")]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let item = apache.url("/shop/item.php?id=1");
    let list = apache.url("/shop/list.php");
    assert!(
        out.contains(&format!("FAIL 5xx {item} (500, ")) && out.contains(&format!("linked from {list}: answered 500")),
        "the misnamed require is named with the page that links to it:\n{out}"
    );
    let notices = apache.url("/notices.php");
    assert!(
        out.contains(&format!("FAIL PHP error {notices} (200, "))
            && out.contains(&format!(
                "linked from {}: Warning:  include(banner.php): Failed to open stream",
                apache.url("/")
            )),
        "the warning mod_php printed into the page:\n{out}"
    );
    assert!(out.contains("crawl of ") && out.contains(": FAILED"), "{out}");
    // index, about, style.css, shop/list, shop/item, notices: each once, nothing else.
    assert!(out.contains("  pages               6\n"), "{out}");
    assert!(out.contains("  5xx                 1\n") && out.contains("  PHP errors          1\n"), "{out}");
    assert!(out.contains("  other-origin links  2 (not followed)"), "{out}");

    assert!(off.requests().is_empty(), "another origin got requests: {:?}", off.requests());
    let log = std::fs::read_to_string(&apache.access_log).unwrap();
    assert!(
        !log.contains("delete.php") && !apache.docroot.join("deleted").exists(),
        "a POST form was followed:\n{log}"
    );
    assert!(!log.contains("not-a-link") && !log.contains("mailto") && !log.contains("javascript"), "{log}");
    assert_eq!(log.matches("GET /about.php ").count(), 1, "fragments and `..` normalised, fetched once:\n{log}");

    // The same as JSON.
    let (code, out, err) = crawl(&[&apache.url("/"), "--json"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["failed"], true, "{report:#}");
    assert_eq!(report["start"], apache.url("/"), "{report:#}");
    assert_eq!(report["summary"]["pages"], 6, "{report:#}");
    assert_eq!(report["summary"]["server_errors"], 1, "{report:#}");
    assert_eq!(report["summary"]["php_errors"], 1, "{report:#}");
    assert_eq!(report["summary"]["other_origin_links"], 2, "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    let server_error = problems.iter().find(|p| p["kind"] == "server_error").expect("a 5xx problem");
    assert_eq!(server_error["url"], item, "{report:#}");
    assert_eq!(server_error["referrer"], list, "{report:#}");
    assert_eq!(server_error["status"], 500, "{report:#}");
    assert_eq!(server_error["fails"], true, "{report:#}");
    let php = problems.iter().find(|p| p["kind"] == "php_error").expect("a PHP problem");
    assert!(php["detail"].as_str().unwrap().contains(" on line 1"), "{php}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_php_site_passes_with_its_page_count_and_broken_links_are_warnings() {
    let off = Site::start(other_origin()).await;
    let mut files = php_site(&off.url(""), "settings.php");
    files.retain(|(p, _)| *p != "notices.php");
    files.push(("about.php", "<p>About us.</p><a href='/'>Home</a> <a href='/gone.php'>Old page</a>".into()));
    let Some(apache) = start_php_site(&files) else { return };

    let (code, out, err) = crawl(&[&apache.url("/"), "--concurrency", "2"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(": ok\n"), "{out}");
    // index, about, style.css, shop/list, shop/item, and the broken links: /notices.php and /gone.php.
    assert!(out.contains("  pages               7\n"), "{out}");
    assert!(out.contains("  broken links        2 (warnings)"), "{out}");
    assert!(
        out.contains(&format!("warn broken link {} (404, ", apache.url("/gone.php")))
            && out.contains(&format!("linked from {}: answered 404", apache.url("/about.php"))),
        "{out}"
    );
    assert!(off.requests().is_empty(), "{:?}", off.requests());

    let (code, out, err) = crawl(&[&apache.url("/"), "--fail-on-4xx"]).await;
    assert_eq!(code, 1, "with --fail-on-4xx a broken link fails:\n{out}\n{err}");
    assert!(out.contains(&format!("FAIL broken link {}", apache.url("/gone.php"))), "{out}");
}

/// An endless site: every page links to the next two.
fn endless(path: &str) -> (u16, &'static str, String, Duration) {
    let n: u64 = path.trim_start_matches("/p/").parse().unwrap_or(0);
    let body = format!("<a href=\"/p/{}\">next</a><a href=\"/p/{}\">after</a>", n + 1, n + 2);
    (200, "text/html; charset=utf-8", body, Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread")]
async fn max_pages_is_respected() {
    let site = Site::start(endless).await;
    let (code, out, err) = crawl(&[&site.url("/p/0"), "--max-pages", "5", "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["pages"], 5);
    assert!(report["summary"]["not_visited"].as_u64().unwrap() >= 1, "{report}");
    let mut requested = site.requests();
    requested.sort();
    assert_eq!(requested, ["/p/0", "/p/1", "/p/2", "/p/3", "/p/4"], "each page once, breadth first");

    let (code, out, _) = crawl(&[&site.url("/p/0"), "--max-pages", "3"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("stopped at --max-pages 3:"), "{out}");
}

fn slow_and_hostile(path: &str) -> (u16, &'static str, String, Duration) {
    match path {
        "/" => (200, "text/html", "<a href='/slow'>slow</a> <a href='/evil'>evil</a>".into(), Duration::ZERO),
        "/slow" => (200, "text/html", "<p>finally</p>".into(), Duration::from_millis(400)),
        // A PHP-shaped error line carrying a terminal escape sequence.
        _ => (
            200,
            "text/html",
            "<br />\n<b>Warning</b>:  x\x1b]0;pwned\x07\x1b[2J in <b>/srv/e.php</b> on line <b>7</b><br />".into(),
            Duration::ZERO,
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_page_fails_and_server_text_is_printed_escaped() {
    let site = Site::start(slow_and_hostile).await;
    let (code, out, err) = crawl(&[&site.url("/"), "--slow", "200ms"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!("FAIL slow {} (200, ", site.url("/slow"))) && out.contains("(limit 200 ms)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL PHP error") && out.contains("Warning:  x\\u{1b}]0;pwned\\u{7}\\u{1b}[2J in /srv/e.php"),
        "{out}"
    );
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "raw control characters reached the terminal:\n{out:?}");

    // With the default limit (2s) the same page is fine; only the PHP error fails.
    let (code, out, _) = crawl(&[&site.url("/"), "--json"]).await;
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["slow"], 0, "{report}");
    assert_eq!(report["summary"]["php_errors"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    for (args, why) in [
        (&["ftp://127.0.0.1/"][..], "only http:// and https://"),
        (&["javascript:alert(1)"], "only http:// and https://"),
        (&["http://127.0.0.1:80800/"], "port 80800 is out of range"),
        (&["http://admin:hunter2@127.0.0.1:0/"], "admin:***@"),
        (&["http://127.0.0.1:1/", "--max-pages", "0"], "--max-pages must be at least 1"),
        (&["http://127.0.0.1:1/", "--concurrency", "0"], "--concurrency must be from 1 to 64"),
        (&["http://127.0.0.1:1/", "--slow", "soon"], "--slow"),
    ] {
        let (code, out, err) = crawl(args).await;
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(why) && !err.contains("hunter2"), "{args:?}: {err}");
    }
    // Nothing listening: the start page cannot be fetched, which fails the crawl (1), not the usage (2).
    let port = crate::support::free_port().await;
    let (code, out, _) = crawl(&[&format!("http://127.0.0.1:{port}/")]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL fetch error") && out.contains(" the start URL: refused"), "{out}");
}
