//! Receivers for every channel, on 127.0.0.1: a recorder that checks Slack's and PagerDuty's documented payloads
//! field by field (their servers cannot run here), a real Alertmanager, and a real SMTP server (aiosmtpd) with
//! STARTTLS and AUTH.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookout::http_server::{ServerRequest, respond, serve};
use tokio::net::TcpListener;

/// One request a recorder got.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub raw: String,
}

type Check = fn(&serde_json::Value) -> Vec<String>;

/// An HTTP receiver that validates each body with `check`, records it, and answers `status` (400 with the
/// problems when the body is invalid, as the real services do).
pub struct Recorder {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Request>>>,
    problems: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub async fn start(check: Check, status: u16, answer: &'static str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let problems: Arc<Mutex<Vec<String>>> = Arc::default();
        let (g, p) = (got.clone(), problems.clone());
        let task = tokio::spawn(serve(listener, move |req: ServerRequest| {
            let (g, p) = (g.clone(), p.clone());
            async move {
                let raw = String::from_utf8_lossy(&req.body).into_owned();
                let body: serde_json::Value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
                let mut found = check(&body);
                if req.method != http::Method::POST {
                    found.push(format!("method {} is not POST", req.method));
                }
                let headers =
                    req.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
                g.lock().unwrap().push(Request { path: req.uri.path().to_string(), headers, body, raw });
                if !found.is_empty() {
                    let answer = serde_json::json!({"status": "invalid event", "errors": found}).to_string();
                    p.lock().unwrap().extend(found);
                    return respond(400, "application/json", answer);
                }
                respond(status, "application/json", answer)
            }
        }));
        Recorder { addr, got, problems, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Request> {
        self.got.lock().unwrap().clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Request) -> bool) -> Request {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.received().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {what} within {timeout:?}; got {:?}", self.received());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Slack incoming webhooks with Block Kit (docs.slack.dev: header ≤ 150 characters of plain_text, section text
/// ≤ 3000, context ≤ 10 elements, ≤ 50 blocks; `text` is the notification fallback).
pub fn check_slack(body: &serde_json::Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            p.push(format!("slack: {what}"));
        }
    };
    expect(body["text"].as_str().is_some_and(|t| !t.is_empty()), "text (the fallback) missing");
    let Some(blocks) = body["blocks"].as_array() else {
        expect(false, "blocks missing");
        return p;
    };
    expect(!blocks.is_empty() && blocks.len() <= 50, "1 to 50 blocks");
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => {
                expect(b["text"]["type"] == "plain_text", "header text is not plain_text");
                expect(b["text"]["text"].as_str().is_some_and(|t| t.chars().count() <= 150), "header over 150");
            }
            Some("section") => {
                expect(matches!(b["text"]["type"].as_str(), Some("mrkdwn" | "plain_text")), "section text type");
                expect(b["text"]["text"].as_str().is_some_and(|t| t.chars().count() <= 3000), "section over 3000");
            }
            Some("context") => {
                let n = b["elements"].as_array().map_or(0, Vec::len);
                expect((1..=10).contains(&n), "context needs 1 to 10 elements");
            }
            Some("divider") => {}
            other => expect(false, &format!("unknown block type {other:?}")),
        }
    }
    p
}

/// PagerDuty Events API v2 (`/v2/enqueue`): routing_key of 32 characters, event_action, dedup_key ≤ 255, and for
/// a trigger a payload with summary (≤ 1024), source and severity (critical, error, warning, info).
pub fn check_pagerduty(body: &serde_json::Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            p.push(format!("pagerduty: {what}"));
        }
    };
    expect(body["routing_key"].as_str().is_some_and(|k| k.len() == 32), "routing_key is not 32 characters");
    let action = body["event_action"].as_str().unwrap_or("");
    expect(["trigger", "acknowledge", "resolve"].contains(&action), "event_action");
    expect(body["dedup_key"].as_str().is_some_and(|k| !k.is_empty() && k.len() <= 255), "dedup_key");
    if action == "trigger" {
        let pl = &body["payload"];
        expect(pl["summary"].as_str().is_some_and(|s| !s.is_empty() && s.chars().count() <= 1024), "payload.summary");
        expect(pl["source"].as_str().is_some_and(|s| !s.is_empty()), "payload.source");
        expect(
            ["critical", "error", "warning", "info"].contains(&pl["severity"].as_str().unwrap_or("")),
            "payload.severity",
        );
        expect(pl["timestamp"].is_null() || pl["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "timestamp");
    }
    p
}

pub const PAGERDUTY_ACCEPTED: &str = r#"{"status":"success","message":"Event processed"}"#;

/// Anything goes (for a generic webhook with a template).
pub fn check_nothing(_: &serde_json::Value) -> Vec<String> {
    Vec::new()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, clustering off.
pub struct RealAlertmanager {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RealAlertmanager {
    /// `None`, with the reason printed, where Alertmanager is not installed (CI installs it).
    pub fn start() -> Option<RealAlertmanager> {
        let bin =
            ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"].into_iter().find(|p| Path::new(p).exists());
        let Some(bin) = bin else {
            crate::support::missing_package("Alertmanager is not installed (apt-get install prometheus-alertmanager)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n")
            .unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, "alertmanager");
        Some(RealAlertmanager { port, child, _dir: dir })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The active alerts, read back through Alertmanager's own API.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let req = lookout_http::HttpRequest::get(
            format!("{}/api/v2/alerts?active=true&silenced=true&inhibited=true", self.url()).parse().unwrap(),
            Duration::from_secs(5),
        );
        let obs = lookout_http::fetch(&req).await;
        serde_json::from_str(&obs.body).unwrap_or_default()
    }
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SMTP_SERVER: &str = r#"
import json, os, ssl, sys, warnings
warnings.filterwarnings("ignore")
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Handler:
    n = 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        base = os.path.join(out, "%04d" % Handler.n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "tls": session.ssl is not None, "user": (session.auth_data.login.decode()
                       if isinstance(session.auth_data, LoginPassword) else None)}, f)
        return "250 OK"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"lookout" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=auth_data)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticate, auth_required=True)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

/// A real SMTP server (aiosmtpd) that requires STARTTLS and AUTH (user `lookout`, password `s3cret`), refuses
/// recipients named `reject@…` with 550, and writes each message to `dir` as `NNNN.eml` + `NNNN.json`.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    /// The CA (the server's self-signed certificate) to trust, PEM.
    pub ca_file: PathBuf,
    child: Child,
    _tmp: tempfile::TempDir,
}

impl SmtpSink {
    /// `None`, with the reason printed, where aiosmtpd is not installed (CI installs python3-aiosmtpd).
    pub fn start() -> Option<SmtpSink> {
        let python = "/usr/bin/python3";
        let ok = Command::new(python).args(["-c", "import aiosmtpd"]).output().is_ok_and(|o| o.status.success());
        if !ok {
            crate::support::missing_package("aiosmtpd is not installed (apt-get install python3-aiosmtpd)");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mail");
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let (cert_file, key_file) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let script = tmp.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let port = free_port();
        let child = Command::new(python)
            .arg(&script)
            .arg(&dir)
            .arg(port.to_string())
            .arg(&cert_file)
            .arg(&key_file)
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_listening(port, "aiosmtpd");
        Some(SmtpSink { port, dir, ca_file: cert_file, child, _tmp: tmp })
    }

    /// The messages received so far: (envelope JSON, raw message), in order.
    pub fn messages(&self) -> Vec<(serde_json::Value, String)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|j| {
                let env = serde_json::from_str(&std::fs::read_to_string(&j).ok()?).ok()?;
                let raw = std::fs::read_to_string(j.with_extension("eml")).ok()?;
                Some((env, raw))
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
