//! `lookout demo-site` (hidden): the demo's web shop, run as a separate process like a real web server.
//!
//! It serves files from a directory. A `.php` page may `require_once 'relative/file';`: the required file is
//! opened (a real `openat`, visible to strace) and, if that fails, the request is answered with HTTP 500 and
//! the error log gets the same two lines PHP writes — exactly the founding incident, in miniature. Access and
//! error logs use Apache's `combined` and 2.4 error-log formats so the log pipeline can read them.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::http_server::{Body, ServerRequest, respond, serve};

pub struct SiteOptions {
    pub root: PathBuf,
    pub listen: SocketAddr,
    pub access_log: Option<PathBuf>,
    pub error_log: Option<PathBuf>,
}

struct Site {
    root: PathBuf,
    access_log: Option<PathBuf>,
    error_log: Option<PathBuf>,
}

/// Serves until killed. Prints `listening on http://ADDR/` on stdout once ready.
pub async fn run(opts: SiteOptions) -> anyhow::Result<()> {
    let root = opts.root.canonicalize().with_context(|| format!("cannot open site root {}", opts.root.display()))?;
    let listener = TcpListener::bind(opts.listen).await.with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}/")?;
    stdout.flush()?;
    let site = Arc::new(Site { root, access_log: opts.access_log, error_log: opts.error_log });
    serve(listener, move |req| {
        let site = site.clone();
        async move { site.handle(req) }
    })
    .await;
    Ok(())
}

impl Site {
    fn handle(&self, req: ServerRequest) -> hyper::Response<Body> {
        let (status, content_type, body) = self.page(&req);
        self.access(&req, status, body.len());
        respond(status, content_type, body)
    }

    fn page(&self, req: &ServerRequest) -> (u16, &'static str, Vec<u8>) {
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return (405, "text/plain", b"method not allowed\n".to_vec());
        }
        let path = req.uri.path();
        let rel = if path == "/" { "index.php" } else { path.trim_start_matches('/') };
        let rel = Path::new(rel);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return (404, "text/plain", b"not found\n".to_vec());
        }
        let file = self.root.join(rel);
        let Ok(text) = std::fs::read(&file) else {
            return (404, "text/html", b"<h1>Not Found</h1>\n".to_vec());
        };
        if file.extension().and_then(|e| e.to_str()) != Some("php") {
            return (200, content_type_for(&file), text);
        }
        let text = String::from_utf8_lossy(&text);
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(required) = required_file(line) {
                let target = file.parent().unwrap_or(&self.root).join(required);
                if let Err(e) = std::fs::File::open(&target) {
                    self.php_failure(req, &file, i + 1, &target, &e);
                    // display_errors=Off, as in production: an empty 500.
                    return (500, "text/html", Vec::new());
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        (200, "text/html; charset=utf-8", out.into_bytes())
    }

    fn php_failure(&self, req: &ServerRequest, page: &Path, line: usize, target: &Path, e: &std::io::Error) {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "No such file or directory",
            std::io::ErrorKind::PermissionDenied => "Permission denied",
            _ => "Failed to open",
        };
        let prefix = format!("[{}] ", apache_error_time(OffsetDateTime::now_utc()));
        let pid = std::process::id();
        let client = format!("[client {}]", req.peer);
        let lines = format!(
            "{prefix}[php:warn] [pid {pid}:tid {pid}] {client} PHP Warning:  require_once({t}): Failed to open stream: {reason} in {p} on line {line}\n\
             {prefix}[php:error] [pid {pid}:tid {pid}] {client} PHP Fatal error:  Uncaught Error: Failed opening required '{t}' (include_path='.:/usr/share/php') in {p}:{line}\n",
            t = target.display(),
            p = page.display(),
        );
        append(self.error_log.as_deref(), &lines);
    }

    fn access(&self, req: &ServerRequest, status: u16, bytes: usize) {
        let Some(path) = &self.access_log else { return };
        let header = |name: &str| {
            req.headers.get(name).and_then(|v| v.to_str().ok()).map_or_else(|| "-".to_string(), escape_log)
        };
        let size = if bytes == 0 { "-".to_string() } else { bytes.to_string() };
        let line = format!(
            "{} - - [{}] \"{} {} HTTP/1.1\" {status} {size} \"{}\" \"{}\"\n",
            req.peer.ip(),
            apache_access_time(OffsetDateTime::now_utc()),
            req.method,
            escape_log(req.uri.path_and_query().map_or("/", |p| p.as_str())),
            header("referer"),
            header("user-agent"),
        );
        append(Some(path), &line);
    }
}

/// `require_once 'inc/settings.conf';` (or `require`, with single or double quotes) → `inc/settings.conf`.
fn required_file(line: &str) -> Option<&str> {
    let l = line.trim().trim_start_matches("<?php").trim();
    let rest = l.strip_prefix("require_once").or_else(|| l.strip_prefix("require"))?.trim_start();
    let rest = rest.trim_start_matches('(');
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = &rest[1..];
    let end = inner.find(quote)?;
    Some(&inner[..end])
}

fn content_type_for(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "application/javascript",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// Escapes like Apache does for request lines and headers in the access log.
fn escape_log(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if c.is_control() => format!("\\x{:02x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

fn append(path: Option<&Path>, text: &str) {
    let Some(path) = path else { return };
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "Cannot write log.");
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Wed Nov 25 14:36:22.477068 2026`, as in Apache 2.4's error log.
fn apache_error_time(t: OffsetDateTime) -> String {
    format!(
        "{} {} {:02} {:02}:{:02}:{:02}.{:06} {}",
        DAYS[t.weekday().number_days_from_monday() as usize],
        MONTHS[u8::from(t.month()) as usize - 1],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
        t.year()
    )
}

/// `25/Nov/2026:14:36:22 +0000`, as in the access log's `%t`.
fn apache_access_time(t: OffsetDateTime) -> String {
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_required_files() {
        assert_eq!(required_file("<?php require_once 'inc/settings.conf'; ?>"), Some("inc/settings.conf"));
        assert_eq!(required_file("require(\"a.php\");"), Some("a.php"));
        assert_eq!(required_file("<h1>require</h1>"), None);
        assert_eq!(required_file("require_once 'unterminated"), None);
    }

    #[test]
    fn apache_timestamps() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_795_617_382_477_068_000).unwrap();
        assert_eq!(apache_error_time(t), "Wed Nov 25 14:36:22.477068 2026");
        assert_eq!(apache_access_time(t), "25/Nov/2026:14:36:22 +0000");
    }

    #[test]
    fn log_escaping_keeps_lines_whole() {
        assert_eq!(escape_log("a\"b\nc"), "a\\\"b\\x0ac");
    }
}
