//! The JSON API and `/metrics` of `lookout run`: reads, incident changes and silences with bearer tokens (401
//! without, 403 with a wrong one), hostile text from a server arriving inert, and metrics that Prometheus's own
//! `promtool check metrics` accepts.

use std::time::Duration;

use http::Method;
use lookout_config::Config;
use lookout_http::HttpRequest;
use tokio::sync::watch;

use crate::support::{Receiver, Target, free_port};

const TOKEN: &str = "s3cret-token-for-tests";

struct Api {
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        let req = HttpRequest {
            url: format!("{}{path}", self.base).parse().unwrap(),
            method,
            headers,
            body: body.map(|b| b.to_string().into()),
            follow_redirects: false,
            verify_tls: true,
            timeout: Duration::from_secs(5),
            max_body: 1 << 20,
        };
        let obs = lookout_http::fetch(&req).await;
        assert!(obs.error.is_none(), "{path}: {:?}", obs.error);
        (obs.status.unwrap_or(0), obs.body)
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.call(Method::GET, path, None, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_reads_changes_with_tokens_and_metrics() {
    let site = Target::start().await;
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"TEST_LOOKOUT_TOKENS\"\n\n\
         [[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"100ms\"\nconditions = [\"[STATUS] == 200\", \"[BODY] not contains \\\"Fatal\\\"\"]\nfailure_threshold = 1\nsuccess_threshold = 1\n\n\
         [[target]]\nname = \"quiet\"\nurl = \"{}\"\ninterval = \"100ms\"\nconditions = [\"[CONNECTED] == true\"]\nmetrics = false\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"100ms\"\n",
        site.url("/"),
        site.url("/quiet"),
        receiver.url()
    );
    let env = |k: &str| (k == "TEST_LOOKOUT_TOKENS").then(|| format!("other-token, {TOKEN}"));
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &env).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let api = Api { base: format!("http://127.0.0.1:{port}") };

    // A hostile page: its text reaches the API as inert JSON.
    site.set(500, "<script>alert(1)</script> Fatal error & more");
    let fired = receiver.wait_for_target("site", "firing", Duration::from_secs(10)).await;
    let id = fired.body["incident"].as_str().unwrap().to_string();

    let targets = api.get("/api/v1/targets").await;
    let t = &targets[0];
    assert_eq!(
        (t["name"].as_str(), t["kind"].as_str(), t["state"].as_str()),
        (Some("site"), Some("http"), Some("firing"))
    );
    assert_eq!(t["last"]["status"], 500);
    let (_, raw) = api.call(Method::GET, "/api/v1/targets", None, None).await;
    assert!(!raw.contains("<script>") && raw.contains("\\u003cscript\\u003e"), "{raw}");
    assert_eq!(
        t["last"]["body_excerpt"], "<script>alert(1)</script> Fatal error & more",
        "the JSON value itself is intact"
    );
    let results = api.get("/api/v1/targets/site/results").await;
    assert!(results.as_array().unwrap().iter().any(|r| r["status"] == 500));
    let (status, _) = api.call(Method::GET, "/api/v1/targets/nope/results", None, None).await;
    assert_eq!(status, 404);

    let list = api.get("/api/v1/incidents").await;
    assert_eq!(list[0]["id"], id.as_str());
    let one = api.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(one["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "alert-fired"));
    let (status, md) = api.call(Method::GET, &format!("/api/v1/incidents/{id}/postmortem"), None, None).await;
    assert_eq!(status, 200);
    assert!(md.contains("## Summary") && md.contains("## Root cause analysis"), "{md}");

    // The pages: the same text escaped as HTML, a strict CSP, nothing internal on the public status page.
    let fetch_page = |path: &str| {
        let req = HttpRequest::get(format!("{}{path}", api.base).parse().unwrap(), Duration::from_secs(5));
        async move { lookout_http::fetch(&req).await }
    };
    for path in ["/", &format!("/incidents/{id}"), "/incidents", "/status"] {
        let page = fetch_page(path).await;
        assert_eq!(page.status, Some(200), "{path}: {}", page.body);
        assert!(!page.body.contains("<script>alert"), "{path} renders log text as markup");
        let csp = page.headers.iter().find(|(k, _)| k == "content-security-policy").map(|(_, v)| v.clone());
        assert!(csp.is_some_and(|c| c.contains("script-src 'self'") && c.contains("frame-ancestors 'none'")), "{path}");
    }
    let dashboard = fetch_page("/").await.body;
    assert!(dashboard.contains("id=\"target-site\" class=\"state-firing\""), "{dashboard}");
    assert!(dashboard.contains(&format!("href=\"/incidents/{id}\"")));
    let page = fetch_page(&format!("/incidents/{id}")).await.body;
    assert!(page.contains("data-action=\"ack\"") && page.contains("alert-fired"), "{page}");
    assert!(
        page.contains("[BODY] (&lt;script&gt;alert(1)&lt;&#x2f;script&gt; Fatal error &amp; more)"),
        "the server's text appears as text: {page}"
    );
    let status = fetch_page("/status").await.body;
    assert!(status.contains("Some systems are having problems") && status.contains("badge-down"), "{status}");
    assert!(!status.contains("[STATUS]") && !status.contains("Fatal"), "no reasons on the public page: {status}");
    let js = fetch_page("/assets/app.js").await;
    assert!(js.body.contains("fetch(\"/events\"") && js.body.contains("Authorization"), "{}", js.body);
    let mut sse = HttpRequest::get(format!("{}/events", api.base).parse().unwrap(), Duration::from_millis(1500));
    sse.max_body = 256;
    let live = lookout_http::fetch(&sse).await;
    assert!(
        live.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{:?}",
        live.headers
    );

    // Changes need a token.
    let ack = format!("/api/v1/incidents/{id}/ack");
    let by = Some(serde_json::json!({"by": "alice"}));
    let (status, body) = api.call(Method::POST, &ack, None, by.clone()).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = api.call(Method::POST, &ack, Some("wrong"), by.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = api.call(Method::POST, &ack, Some(TOKEN), by.clone()).await;
    assert_eq!(status, 200, "{body}");
    let acked: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(acked["ack"]["by"], "alice");
    let (status, body) = api.call(Method::POST, &ack, Some(TOKEN), by).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already acknowledged by alice"), "{body}");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/note"),
            Some(TOKEN),
            Some(serde_json::json!({"text": "looking"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api.call(Method::POST, "/api/v1/incidents/2026-01-01-x-1/ack", Some(TOKEN), None).await;
    assert_eq!(status, 404);

    // Silences.
    let silence =
        serde_json::json!({"matchers": ["target=site"], "duration": "10m", "comment": "looking into it", "by": "bob"});
    let (status, _) = api.call(Method::POST, "/api/v1/silences", None, Some(silence.clone())).await;
    assert_eq!(status, 401);
    let (status, body) = api.call(Method::POST, "/api/v1/silences", Some(TOKEN), Some(silence)).await;
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sid = created["id"].as_i64().unwrap();
    assert_eq!(api.get("/api/v1/silences").await.as_array().unwrap().len(), 1);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/silences",
            Some(TOKEN),
            Some(serde_json::json!({"matchers": ["severity"], "comment": "x"})),
        )
        .await;
    assert_eq!(status, 422, "a validation error, not a conflict");
    assert!(body.contains("has no operator"), "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"], "matchers", "{body}");
    // The field at fault is named: one missing, one of the wrong type (with its place in the list).
    for (sent, field) in [
        (serde_json::json!({"matchers": ["group=shop"]}), "comment"),
        (serde_json::json!({"matchers": ["group=shop", 7], "comment": "x"}), "matchers[1]"),
        (serde_json::json!({"matchers": ["group=shop"], "comment": "x", "duration": 5}), "duration"),
    ] {
        let (status, body) = api.call(Method::POST, "/api/v1/silences", Some(TOKEN), Some(sent.clone())).await;
        assert_eq!(status, 422, "{sent}: {body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"], field, "{sent}: {body}");
    }
    // The same rule as `lookout silence add`: a silence of no length is refused, not stored.
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/silences",
            Some(TOKEN),
            Some(serde_json::json!({"matchers": ["group=shop"], "duration": "0s", "comment": "x"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("duration: must be more than 0s"), "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"], "duration", "{body}");
    assert_eq!(api.get("/api/v1/silences").await.as_array().unwrap().len(), 1);
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/silences/{sid}"), None, None).await;
    assert_eq!(status, 401);
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/silences/{sid}"), Some(TOKEN), None).await;
    assert_eq!(status, 204);
    let (status, _) = api.call(Method::DELETE, &format!("/api/v1/silences/{sid}"), Some(TOKEN), None).await;
    assert_eq!(status, 404);

    // Resolve by hand; then it is resolved for the API too.
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/resolve"),
            Some(TOKEN),
            Some(serde_json::json!({"by": "alice", "note": "fixed"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&format!("/api/v1/incidents/{id}")).await["incident"]["resolved_by"], "alice");

    // A note without text is invalid (422), not a conflict.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/note"),
            Some(TOKEN),
            Some(serde_json::json!({"note": "x"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("a note needs some text"), "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"], "text", "{body}");

    // Every operation of the served OpenAPI document is served (a route-less 404 says "no route", a wrong method 405).
    let doc = api.get("/api/v1/openapi.json").await;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{name}", "site").replace("{id}", "1");
        for method in ops.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let (status, body) = api.call(m, &concrete, Some(TOKEN), Some(serde_json::json!({}))).await;
            assert!(status != 405 && !body.contains("no route"), "{method} {concrete}: {status} {body}");
        }
    }

    // Metrics, checked by Prometheus's own linter.
    let (status, metrics) = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 200);
    for expected in [
        "lookout_probe_success{target=\"site\"} 0",
        "lookout_probe_duration_seconds_bucket{le=\"0.005\",target=\"site\"}",
        "lookout_http_status_total{target=\"site\",code=\"500\"}",
        "lookout_alerts_firing 1",
        "lookout_notifications_total{channel=\"ops\",result=\"delivered\"} 1",
        "lookout_build_info{version=\"",
    ] {
        assert!(metrics.contains(expected), "{expected:?} not in\n{metrics}");
    }
    // A target with `metrics = false` is checked (and counted in the process-wide series) but has no series.
    assert!(!metrics.contains("target=\"quiet\""), "no per-target series for quiet:\n{metrics}");
    // The same text gzip-compressed for a scraper that accepts it (Prometheus does).
    let raw = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut body = &raw[split + 4..];
    let chunked;
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        chunked = out;
        body = &chunked;
    }
    let mut unpacked = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut unpacked).unwrap();
    assert!(unpacked.contains("lookout_alerts_firing 1"), "{unpacked}");
    assert!(body.len() < unpacked.len(), "compressed: {} of {}", body.len(), unpacked.len());
    if std::path::Path::new("/usr/bin/promtool").exists() {
        let mut child = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        crate::support::missing_package("promtool is not installed (apt-get install prometheus)");
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_can_require_a_token_and_changes_need_configured_tokens() {
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\npublic_reads = false\n");
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let api = Api { base: format!("http://127.0.0.1:{port}") };
    let mut status = 0;
    for _ in 0..50 {
        let req = HttpRequest::get(format!("{}/api/v1/incidents", api.base).parse().unwrap(), Duration::from_secs(2));
        if let Some(s) = lookout_http::fetch(&req).await.status {
            status = s;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401, "reads need a token when public_reads = false");
    let (status, body) = api.call(Method::GET, "/metrics", Some("anything"), None).await;
    assert_eq!(status, 403, "no tokens configured: nobody may read or change: {body}");
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/silences",
            Some("anything"),
            Some(serde_json::json!({"matchers": ["a=b"], "comment": "c"})),
        )
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("no [web] tokens_env is configured"), "{body}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}

/// Text from a server's logs reaches every page as text: the dashboard, the incident page (timeline, diagnosis
/// evidence, postmortem) and the API; the public status page shows none of it.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_log_text_is_escaped_on_every_page() {
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let error_log = dir.path().join("error.log");
    let now = std::process::Command::new("date").arg("+%a %b %d %H:%M:%S.000000 %Y").output().unwrap();
    let now = String::from_utf8(now.stdout).unwrap();
    std::fs::write(
        &error_log,
        format!(
            "[{}] [php:error] [pid 7] [client 10.0.0.9:1] PHP Fatal error:  Uncaught Error: Failed opening required '/srv/<script>alert(2)</script>.php' (include_path='.') in /srv/index.php:3\n",
            now.trim()
        ),
    )
    .unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[log]]\nname = \"apache\"\nerror = \"{}\"\nstart_at = \"beginning\"\nwindow = \"30s\"\nfire_when = [\"[ERROR_LOG] matches \\\"PHP Fatal\\\"\"]\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        error_log.display(),
        receiver.url()
    );
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let fired = receiver.wait_for_target("apache", "firing", Duration::from_secs(10)).await;
    let id = fired.body["incident"].as_str().unwrap().to_string();
    let api = Api { base: format!("http://127.0.0.1:{port}") };
    for path in [
        "/".to_string(),
        format!("/incidents/{id}"),
        "/status".to_string(),
        "/api/v1/targets".to_string(),
        format!("/api/v1/incidents/{id}"),
    ] {
        let (status, body) = api.call(Method::GET, &path, None, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains("<script>alert(2)"), "{path} carries the log's markup: {body}");
    }
    let (_, dashboard) = api.call(Method::GET, "/", None, None).await;
    assert!(dashboard.contains("class=\"reason\">[ERROR_LOG] (PHP Fatal error:"), "{dashboard}");
    let (_, page) = api.call(Method::GET, &format!("/incidents/{id}"), None, None).await;
    assert!(page.contains("<h2>Root cause analysis</h2>"), "the postmortem is rendered: {page}");
    // The evidence (the whole error-log line) appears as text, in the diagnosis and in the rendered postmortem.
    assert!(page.contains("&#x2f;srv&#x2f;&lt;script&gt;alert(2)&lt;&#x2f;script&gt;.php"), "{page}");
    assert!(page.contains("/srv/&lt;script&gt;alert(2)&lt;/script&gt;.php"), "{page}");
    let (_, status) = api.call(Method::GET, "/status", None, None).await;
    assert!(!status.contains("alert(2)") && !status.contains("/srv/"), "no internals on the status page: {status}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}

/// What an attacker or a careless client sends is refused before anything is parsed, always as JSON: no token
/// beats a bad body, a bad query or a missing content type; the scheme's case does not matter; a page naming
/// another host (DNS rebinding) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_refused_before_parsing_and_answered_in_json() {
    use crate::web_limits::{json_body, raw_http};
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"T\"\npublic_reads = false\n"
    );
    let cfg =
        Config::parse(&text, &dir.path().join("lookout.toml"), &|k| (k == "T").then(|| TOKEN.to_string())).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ask = |head: String, body: &'static str| async move {
        let req = format!(
            "{head}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        raw_http(addr, &req).await
    };
    crate::support::wait_until("the web side", Duration::from_secs(10), || async {
        ask("GET /status HTTP/1.1".into(), "").await.0 == 200
    })
    .await;
    let cases: Vec<(String, &str, u16)> = vec![
        ("POST /api/v1/silences HTTP/1.1\r\nContent-Type: application/json".into(), "{\"matchers\": [", 401),
        ("POST /api/v1/silences HTTP/1.1".into(), "matchers=a", 401),
        ("POST /api/v1/silences HTTP/1.1\r\nContent-Type: text/plain".into(), "", 401),
        ("GET /api/v1/incidents?limit=abc HTTP/1.1".into(), "", 401),
        (format!("GET /api/v1/incidents?limit=abc HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"), "", 400),
        (format!("GET /api/v1/incidents?limit=2 HTTP/1.1\r\nAuthorization: bearer {TOKEN}"), "", 200),
        (format!("GET /api/v1/incidents HTTP/1.1\r\nAuthorization: BEARER {TOKEN}"), "", 200),
        (format!("GET /api/v1/incidents HTTP/1.1\r\nAuthorization: Bearer {TOKEN}x"), "", 403),
        ("GET /api/v1/incidents HTTP/1.1\r\nAuthorization: Bearer s3cret".into(), "", 403),
        (
            format!("POST /api/v1/silences HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
            "{\"matchers\": [\"group=shop\"], \"comment\": \"deploy\"}",
            201,
        ),
        (format!("POST /api/v1/silences HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"), "{\"matchers\": [", 400),
        (format!("POST /api/v1/silences HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"), "{\"matchers\": 1}", 422),
        (format!("DELETE /api/v1/silences/abc HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"), "", 400),
    ];
    for (head, body, want) in cases {
        let (status, answer) = ask(head.clone(), body).await;
        assert_eq!(status, want, "{head} {body}: {answer}");
        let json = json_body(&answer);
        if want >= 400 {
            assert!(json["error"].is_string(), "{head}: {answer}");
        }
        if want == 401 {
            assert!(answer.to_ascii_lowercase().contains("www-authenticate: bearer"), "{answer}");
        }
    }
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
    let req = format!(
        "GET /api/v1/incidents HTTP/1.1\r\nHost: evil.example:{port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    let (status, answer) = raw_http(addr, &req).await;
    assert_eq!(status, 421, "{answer}");
    assert!(json_body(&answer)["error"].as_str().unwrap().contains("allowed_hosts"), "{answer}");
    let req = format!("GET /status HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_http(addr, &req).await.0, 200);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}

/// The status page tells the truth: a firing log source is on it by its public name and the headline is not "operational"
/// while its group's incident is open; uptime says over how long it was measured.
#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_log_sources_open_incidents_and_honest_uptime() {
    let site = Target::start().await;
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let error_log = dir.path().join("error.log");
    let now = std::process::Command::new("date").arg("+%a %b %d %H:%M:%S.000000 %Y").output().unwrap();
    let line = format!(
        "[{}] [php:error] [pid 7] [client 10.0.0.9:1] PHP Fatal error:  Uncaught Error: boom in /srv/index.php:3\n",
        String::from_utf8(now.stdout).unwrap().trim()
    );
    std::fs::write(&error_log, line).unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[target]]\nname = \"site\"\nurl = \"{}\"\ninterval = \"100ms\"\ngroup = \"shop\"\n\n\
         [[log]]\nname = \"shop-logs\"\npublic_name = \"Shop <checkout> & cart\"\nerror = \"{}\"\nstart_at = \"beginning\"\nwindow = \"60s\"\ngroup = \"shop\"\nfire_when = [\"[ERROR_LOG] matches \\\"PHP Fatal\\\"\"]\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        site.url("/"),
        error_log.display(),
        receiver.url()
    );
    let cfg = Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    receiver.wait_for_target("shop-logs", "firing", Duration::from_secs(10)).await;
    let api = Api { base: format!("http://127.0.0.1:{port}") };
    // The site's first check comes at its phase of the interval: wait until it has one.
    let mut page = String::new();
    for _ in 0..100 {
        let (status, body) = api.call(Method::GET, "/status", None, None).await;
        assert_eq!(status, 200);
        page = body;
        if !page.contains("no data yet") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!page.contains("All systems operational"), "{page}");
    assert!(page.contains("Some systems are having problems"), "{page}");
    assert!(page.contains("id=\"status-shop-logs\""), "the log source is on the page: {page}");
    let logs_row = page.split("id=\"status-shop-logs\"").nth(1).unwrap_or("");
    let logs_row = logs_row.split("</div>").next().unwrap_or("");
    assert!(logs_row.contains("badge-down"), "{page}");
    assert!(
        logs_row.contains("<span class=\"name\">Shop &lt;checkout&gt; &amp; cart</span>"),
        "shown by its public name, escaped: {logs_row}"
    );
    assert!(page.contains("<span class=\"name\">site</span>"), "a target without one by its name: {page}");
    assert!(page.contains("incident in progress"), "{page}");
    assert!(page.contains("uptime since today") && !page.contains("over 90 days"), "{page}");
    assert!(!page.contains("PHP Fatal") && !page.contains("/srv/"), "no internals: {page}");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
