//! The router's layers against the whole route table, in process: nothing is parsed before the token, every
//! error is JSON, the Host is checked, bodies are limited.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use lookout_app::metrics::Metrics;
use lookout_config::Config;
use lookout_store::AnyStore;
use tower::Service;

use crate::{BODY_LIMIT, WebState, router};

const TOKEN: &str = "unit-token";

fn app(public_reads: bool) -> axum::Router {
    let text = format!(
        "[web]\ntokens_env = \"T\"\npublic_reads = {public_reads}\nallowed_hosts = [\"lookout.example.com\"]\n\n\
         [[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:1/\"\n"
    );
    let dir = std::env::temp_dir();
    let config = Config::parse(&text, &dir.join("lookout.toml"), &|k| (k == "T").then(|| TOKEN.to_string()))
        .expect("the test config parses");
    let store = Arc::new(AnyStore::in_memory().expect("an in-memory store"));
    router(WebState {
        store,
        config: Arc::new(config),
        metrics: Arc::new(Metrics::new()),
        events: None,
        health: Default::default(),
        reload: None,
    })
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        assert!(self.content_type.starts_with("application/json"), "not JSON: {} {}", self.content_type, self.body);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error in {}", self.body)).to_string()
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> Answer {
    let mut app = app.clone();
    let _ = std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut app, cx)).await;
    let r = match app.call(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = r.status();
    let content_type =
        r.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("a body");
    Answer { status, content_type, body: String::from_utf8_lossy(&body).into_owned() }
}

fn request(method: Method, path: &str, token: Option<&str>, body: Body) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path).header(header::HOST, "127.0.0.1:9898");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(body).expect("a request")
}

/// Every concrete route of the OpenAPI document and every page, without a token, with private reads: 401 JSON
/// (pages: the sign-in page), except the public ones; with the token nothing answers 401 or 403.
#[tokio::test]
async fn with_private_reads_every_route_but_the_public_ones_needs_the_token() {
    let app = app(false);
    let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).expect("the OpenAPI document");
    let mut routes: Vec<(Method, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for m in ops.as_object().expect("operations").keys() {
            let concrete = path.replace("{name}", "site").replace("{id}", "1");
            routes.push((m.to_uppercase().parse().expect("a method"), concrete));
        }
    }
    for p in ["/", "/incidents", "/incidents/1", "/events", "/metrics"] {
        routes.push((Method::GET, p.to_string()));
    }
    for (method, path) in routes {
        let public = path == "/api/v1/openapi.json";
        let a = call(&app, request(method.clone(), &path, None, Body::from("{\"not json"))).await;
        if public {
            assert_eq!(a.status, StatusCode::OK, "{method} {path}");
            continue;
        }
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", a.body);
        assert!(a.error().contains("Bearer"), "{method} {path}");
        let a = call(&app, request(method.clone(), &path, Some(TOKEN), Body::empty())).await;
        assert!(
            a.status != StatusCode::UNAUTHORIZED && a.status != StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.status
        );
    }
    // A browser opening a page gets the sign-in page (no data), still 401.
    let mut page = request(Method::GET, "/", None, Body::empty());
    page.headers_mut().insert(header::ACCEPT, "text/html".parse().expect("a header"));
    let a = call(&app, page).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("id=\"sign-in\"") && !a.body.contains("site"), "{}", a.body);
    for public in ["/status", "/assets/app.js"] {
        assert_eq!(call(&app, request(Method::GET, public, None, Body::empty())).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn errors_are_json_and_validation_is_not_a_conflict() {
    let app = app(true);
    let post =
        |path: &str, token: Option<&str>, body: &'static str| request(Method::POST, path, token, Body::from(body));
    // No token: 401 before the body or the content type is looked at.
    for body in ["{\"not json", "", "matchers=a"] {
        let a = call(&app, post("/api/v1/silences", None, body)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{body:?}");
        assert!(a.error().contains("Bearer"));
    }
    let lower = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/silences")
        .header(header::HOST, "localhost")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::from(r#"{"matchers": ["group=shop"], "duration": "1h", "comment": "deploy"}"#))
        .expect("a request");
    let a = call(&app, lower).await;
    assert_eq!(a.status, StatusCode::CREATED, "lower-case bearer: {}", a.body);
    let a = call(&app, post("/api/v1/silences", Some(TOKEN), "{\"not json")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("not JSON"), "{}", a.body);
    let a = call(&app, post("/api/v1/silences", Some(TOKEN), r#"{"matchers": "x"}"#)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let a = call(&app, post("/api/v1/silences", Some(TOKEN), r#"{"matchers": ["severity"], "comment": "x"}"#)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.error().contains("has no operator"));
    let a = call(&app, request(Method::GET, "/api/v1/incidents?limit=abc", None, Body::empty())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("limit"), "{}", a.body);
    let a = call(&app, request(Method::DELETE, "/api/v1/silences/abc", Some(TOKEN), Body::empty())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    a.error();
    let a = call(&app, request(Method::GET, "/api/v1/nothing", None, Body::empty())).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("no route GET /api/v1/nothing"));
    let a = call(&app, request(Method::PUT, "/api/v1/incidents", Some(TOKEN), Body::empty())).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    a.error();
    // Bodies: too large when declared, and when not declared (the extractor stops at the same limit).
    let big = vec![b' '; BODY_LIMIT + 1];
    let mut declared = request(Method::POST, "/api/v1/silences", Some(TOKEN), Body::from(big.clone()));
    declared.headers_mut().insert(header::CONTENT_LENGTH, big.len().into());
    let a = call(&app, declared).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    a.error();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(axum::body::Bytes::from(big))]);
    let a = call(&app, request(Method::POST, "/api/v1/silences", Some(TOKEN), Body::from_stream(stream))).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    a.error();
}

#[tokio::test]
async fn a_request_for_another_host_is_refused() {
    let app = app(true);
    for host in ["evil.example", "evil.example:9898", "127.0.0.1.nip.io"] {
        let mut r = request(Method::GET, "/api/v1/targets", None, Body::empty());
        r.headers_mut().insert(header::HOST, host.parse().expect("a header"));
        let a = call(&app, r).await;
        assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(a.error().contains("allowed_hosts"));
    }
    for host in ["lookout.example.com:9898", "[::1]:9898", "localhost"] {
        let mut r = request(Method::GET, "/api/v1/targets", None, Body::empty());
        r.headers_mut().insert(header::HOST, host.parse().expect("a header"));
        assert_eq!(call(&app, r).await.status, StatusCode::OK, "{host}");
    }
}
