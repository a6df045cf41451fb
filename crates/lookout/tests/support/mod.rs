//! Real servers for tests: an HTTP target whose behaviour tests change at will, a TLS target with a
//! certificate of chosen lifetime, and a webhook receiver that checks and records what it gets.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lookout::http_server::{ServerRequest, respond, serve, serve_up_to};
use tokio::net::TcpListener;

pub mod apache;
pub mod apache_fpm;
pub mod channels;
pub mod fpm_pool;
pub mod php_fpm;
pub mod tracing;
pub mod webdriver;

/// How the target answers.
#[derive(Clone, Debug)]
pub struct Behavior {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior { status: 200, body: "<h1>hello</h1>".into(), delay: Duration::ZERO }
    }
}

/// An HTTP target on 127.0.0.1 whose answers tests change while it runs. Extra routes: `/redirect` (302 to
/// `/final`), `/final`, `/echo` (method, headers and body back as JSON), `/big` (2 MiB).
pub struct Target {
    pub addr: SocketAddr,
    behavior: Arc<Mutex<Behavior>>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    pub async fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behavior: Arc<Mutex<Behavior>> = Arc::default();
        let b = behavior.clone();
        let task = tokio::spawn(serve(listener, move |req: ServerRequest| {
            let b = b.lock().unwrap().clone();
            async move {
                match req.uri.path() {
                    "/redirect" => {
                        let mut r = respond(302, "text/plain", "moved");
                        r.headers_mut().insert("location", "/final".parse().unwrap());
                        r
                    }
                    "/final" => respond(200, "text/plain", "final"),
                    "/big" => respond(200, "text/plain", vec![b'x'; 2 * 1024 * 1024]),
                    "/echo" => {
                        let headers: serde_json::Map<String, serde_json::Value> =
                            req.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into())).collect();
                        let body = serde_json::json!({
                            "method": req.method.as_str(),
                            "headers": headers,
                            "host_headers": req.headers.get_all("host").iter().count(),
                            "body": String::from_utf8_lossy(&req.body),
                        });
                        respond(200, "application/json", body.to_string())
                    }
                    _ => {
                        tokio::time::sleep(b.delay).await;
                        respond(b.status, "text/html", b.body)
                    }
                }
            }
        }));
        Target { addr, behavior, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, status: u16, body: &str) {
        let mut b = self.behavior.lock().unwrap();
        b.status = status;
        b.body = body.to_string();
    }

    pub fn set_delay(&self, delay: Duration) {
        self.behavior.lock().unwrap().delay = delay;
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS server with a fresh self-signed certificate valid for `valid_for`, answering 200 "secure".
pub struct TlsTarget {
    pub addr: SocketAddr,
    pub not_after: time::OffsetDateTime,
    task: tokio::task::JoinHandle<()>,
}

impl TlsTarget {
    pub async fn start(valid_for: time::Duration) -> TlsTarget {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        // X.509 validity has second precision.
        let not_after = (now + valid_for).replace_nanosecond(0).unwrap();
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = service_fn(|_req| async { Ok::<_, hyper::Error>(respond(200, "text/plain", "secure")) });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
                });
            }
        });
        TlsTarget { addr, not_after, task }
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server that answers every connection with `bytes` and closes: for malformed-response tests.
pub async fn raw_server(bytes: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A port on 127.0.0.1 held for a test and refusing connections (bound, never listening) until dropped. A receiver
/// meant to be down must stay down: a port merely found free (as [`free_port`] does) can meanwhile be handed to
/// another test's server, which then answers in its place.
pub struct ReservedPort {
    pub port: u16,
    _socket: socket2::Socket,
}

pub fn reserved_port() -> ReservedPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    ReservedPort { port, _socket: socket }
}

/// A temporary directory holding `files` (path under it → content), directories made as needed: a PHP site for
/// the preflight tests.
pub fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// A port with nothing listening on it (bound, then released): for a server the test starts at once.
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// One POST the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub key: String,
    pub body: serde_json::Value,
}

/// A webhook receiver that validates the documented payload field by field and records every POST. It can
/// be told to fail the next N requests with 500.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    problems: Arc<Mutex<Vec<String>>>,
    fail_next: Arc<Mutex<u32>>,
    delay: Arc<Mutex<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let problems: Arc<Mutex<Vec<String>>> = Arc::default();
        let fail_next: Arc<Mutex<u32>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let (g, p, f, d) = (got.clone(), problems.clone(), fail_next.clone(), delay.clone());
        // A storm of 5,000 alerts is one message of several megabytes.
        let task = tokio::spawn(serve_up_to(listener, 64 << 20, move |req: ServerRequest| {
            let (g, p, f, d) = (g.clone(), p.clone(), f.clone(), d.clone());
            async move {
                let key = req.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
                for problem in validate_payload(&req, &key, &body) {
                    p.lock().unwrap().push(problem);
                }
                g.lock().unwrap().push(Received { key, body });
                let wait = *d.lock().unwrap();
                tokio::time::sleep(wait).await;
                let mut fail = f.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    return respond(500, "text/plain", "try again later");
                }
                respond(204, "text/plain", Bytes::new())
            }
        }));
        Receiver { addr, got, problems, fail_next, delay, task }
    }

    /// Answers only after `delay` (the request is recorded when it arrives).
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn fail_next(&self, n: u32) {
        *self.fail_next.lock().unwrap() = n;
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    /// Waits until a POST with a key ending in `suffix` (e.g. `/firing`) arrived.
    pub async fn wait_for(&self, suffix: &str, timeout: Duration) -> Received {
        self.wait_for_message(suffix, timeout, |r| r.key.ends_with(suffix)).await
    }

    /// Waits until a POST for `target` in `state` (`firing`/`resolved`) arrived, on its own or in a group.
    pub async fn wait_for_target(&self, target: &str, state: &str, timeout: Duration) -> Received {
        let what = format!("{target} {state}");
        let is = |n: &serde_json::Value| n["target"] == target && n["state"] == state;
        self.wait_for_message(&what, timeout, |r| {
            is(&r.body) || r.body["alerts"].as_array().is_some_and(|a| a.iter().any(is))
        })
        .await
    }

    /// Waits until a POST matching `pred` arrived (`what` names it in the failure message).
    pub async fn wait_for_message(&self, what: &str, timeout: Duration, pred: impl Fn(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.received().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {what} webhook within {timeout:?}; got {:?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks a webhook POST against the documented payload (README "Webhook payload").
fn validate_payload(req: &ServerRequest, key: &str, body: &serde_json::Value) -> Vec<String> {
    // A group: the key names the group, and each alert in `alerts` is a whole notification of its own.
    if let Some(alerts) = body["alerts"].as_array().filter(|a| a.len() > 1) {
        let mut problems = Vec::new();
        if !key.starts_with("lookout/group/") || body["idempotency_key"] != key {
            problems.push(format!("a group's key is not lookout/group/...: {key}"));
        }
        for a in alerts {
            let own = a["idempotency_key"].as_str().unwrap_or("");
            problems.extend(validate_payload(req, own, a));
        }
        return problems;
    }
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("{what} in {body}"));
        }
    };
    expect(req.method == http::Method::POST, "method is not POST");
    expect(req.uri.path() == "/hook", "path is not /hook");
    expect(
        req.headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/json"),
        "content-type is not application/json",
    );
    expect(!key.is_empty(), "no Idempotency-Key header");
    expect(body["version"] == 1, "version is not 1");
    expect(
        body["idempotency_key"] == key || body["alerts"].as_array().is_some_and(|a| a.len() > 1),
        "idempotency_key differs from the header",
    );
    let state = body["state"].as_str().unwrap_or("");
    expect(state == "firing" || state == "resolved", "state is not firing/resolved");
    let reminder = body["reminder"].as_u64();
    match reminder {
        None => expect(key.ends_with(&format!("/{state}")), "key does not end with the state"),
        Some(n) => expect(key.ends_with(&format!("/firing/{n}")) && state == "firing", "reminder key or state"),
    }
    expect(body["target"].is_string(), "target missing");
    expect(body["alert_id"].as_str().is_some_and(|a| key.contains(a)), "alert_id not in key");
    expect(body["at"].as_str().is_some_and(|s| s.ends_with('Z') && s.len() == 24), "at is not RFC 3339 UTC");
    expect(body["since"].as_str().is_some_and(|s| s.ends_with('Z')), "since missing");
    expect(body["summary"].is_string(), "summary missing");
    expect(body["reasons"].is_array(), "reasons missing");
    expect(body["diagnosis"].is_null() || body["diagnosis"].is_string(), "diagnosis is neither null nor a string");
    if state == "resolved" {
        expect(body["diagnosis"].is_null(), "a resolved message carries a diagnosis");
    }
    // Every firing alert opens or joins an incident: `{UTC day}-{group}-{n}` — but lookout's alert about its own
    // store, which has none (incidents live in the store that fails).
    let own = body["target"] == "lookout" && body["alert_id"].as_str().is_some_and(|a| a.starts_with("lookout-store@"));
    let incident = body["incident"].as_str().unwrap_or("");
    let well_formed = incident.len() > 13
        && incident.as_bytes()[10] == b'-'
        && incident.rsplit('-').next().is_some_and(|n| n.parse::<u32>().is_ok());
    expect(state == "resolved" || well_formed || own, "firing message without a well-formed incident id");
    // last_result is null only when an alert is closed without a probe (its target left the configuration).
    if !body["last_result"].is_null() {
        expect(body["last_result"]["ok"].is_boolean(), "last_result.ok missing");
        expect(body["last_result"]["latency_ms"].is_number(), "last_result.latency_ms missing");
        expect(body["last_result"]["failed_conditions"].is_array(), "last_result.failed_conditions missing");
    } else {
        expect(state == "resolved" || reminder.is_some(), "last_result is null on a firing message");
    }
    if state == "resolved" {
        expect(body["duration_seconds"].is_u64(), "duration_seconds missing on resolve");
    }
    problems
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lookout.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Path of the built `lookout` executable, or of `$LOOKOUT_TEST_BIN` when set: to see a test fail against
/// another build (e.g. the commit before a fix).
pub fn lookout_bin() -> PathBuf {
    match std::env::var_os("LOOKOUT_TEST_BIN") {
        Some(other) => PathBuf::from(other),
        None => PathBuf::from(env!("CARGO_BIN_EXE_lookout")),
    }
}

/// A command that runs lookout: the build under test, or `bin` (a copy `nobody` may run) as `nobody` via
/// `setpriv` — for the faults only an unprivileged lookout meets (a file it may not read or write).
pub fn lookout_command(as_nobody: Option<&Path>) -> std::process::Command {
    match as_nobody {
        Some(bin) => {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin);
            c
        }
        None => std::process::Command::new(lookout_bin()),
    }
}

/// Runs the lookout binary with `args` and `--config config`; returns (exit code, stdout, stderr).
pub async fn lookout_with_config(args: &[&str], config: &Path) -> (i32, String, String) {
    lookout_output(tokio::process::Command::new(lookout_bin()).args(args).arg("--config").arg(config)).await
}

/// Runs the lookout binary with `args`; returns (exit code, stdout, stderr).
pub async fn lookout_with(args: &[&str]) -> (i32, String, String) {
    lookout_output(tokio::process::Command::new(lookout_bin()).args(args)).await
}

async fn lookout_output(command: &mut tokio::process::Command) -> (i32, String, String) {
    let out = command.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GET `url` with lookout's own HTTP client: (status, body), status 0 when nothing answered.
pub async fn http_get(url: &str) -> (u16, String) {
    http_call(http::Method::GET, url, None).await
}

/// A request with `method` to `url`, with `Authorization: Bearer token` when given: (status, body).
pub async fn http_call(method: http::Method, url: &str, token: Option<&str>) -> (u16, String) {
    http_send(method, url, token, None).await
}

/// [`http_call`] with a request body.
pub async fn http_send(method: http::Method, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let req = lookout_http::HttpRequest {
        url: url.parse().unwrap(),
        method,
        headers: token.map(|t| ("Authorization".to_string(), format!("Bearer {t}"))).into_iter().collect(),
        body: body.map(|b| b.to_string().into()),
        follow_redirects: false,
        verify_tls: true,
        timeout: Duration::from_secs(5),
        max_body: 4 << 20,
    };
    let obs = lookout_http::fetch(&req).await;
    (obs.status.unwrap_or(0), obs.body)
}

/// Starts `lookout run --config config` as a process (output discarded), for tests that kill it.
pub fn spawn_run(config: &Path) -> std::process::Child {
    std::process::Command::new(lookout_bin())
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Parses one `[[target]]` body and probes it once.
pub async fn probe_once(target_toml: &str) -> (lookout_core::Observation, lookout_engine::Verdict) {
    let text = format!("[[target]]\nname = \"t\"\n{target_toml}\n");
    let config = lookout_config::Config::parse(&text, Path::new("test.toml"), &|_| None).unwrap();
    let t = &config.targets[0];
    let obs = lookout_probe::probe(t).await;
    let verdict = lookout_engine::judge(&t.conditions, &obs);
    (obs, verdict)
}

/// A `lookout run` process killed when dropped, so a failing test leaves none behind (one with thousands of
/// targets left running would load the machine for every later test).
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` until it is true; fails the test after `timeout`, naming `what`.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `f` until it gives `Ok(Some(_))`; fails the test after `timeout`, naming `what`.
pub async fn wait_for_some<T, F>(what: &str, timeout: Duration, mut f: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = lookout_store::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(v)) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SQLite store at `path`, opened the way lookout opens it (through `[store]`).
pub fn open_store(path: &Path) -> lookout_store::AnyStore {
    lookout_store::AnyStore::sqlite(path).expect("the test's store opens")
}

/// A real component a test needs is not installed (or a privilege it needs is not held): the test is skipped,
/// visibly. Under `LOOKOUT_REQUIRE_ALL=1` (set by `.ci/run`, which runs the tests as root) that is a failure, so a
/// missing install step cannot pass CI unseen.
///
/// Visibly means in the run's summary, not only in captured output: libtest counts a returning test as passed
/// and has no "skipped", so the line goes straight to standard error (past the capture, beside `test … ok`) and
/// the whole list is printed again when the test binary exits, after libtest's `test result:` line.
pub fn missing_package(what: &str) {
    if std::env::var("LOOKOUT_REQUIRE_ALL").is_ok_and(|v| v == "1") {
        panic!("SKIPPED but LOOKOUT_REQUIRE_ALL=1: {what}");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let line = format!("{test}: {what}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {line}");
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: `print_skipped` is an `extern "C" fn` without arguments that locks a static and writes to
        // stderr; it is registered once, and a failed registration only loses the closing list.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(print_skipped);
        }
    }
    skipped.push(line);
}

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn print_skipped() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nSKIPPED: {} (a real component is missing; `sudo ./.ci/run` installs them all):",
        lookout_core::text::count(skipped.len() as u64, "test", None)
    );
    for line in skipped.iter() {
        let _ = writeln!(err, "  {line}");
    }
}

/// Mounts a small tmpfs (root only) and unmounts it when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
