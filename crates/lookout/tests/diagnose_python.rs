//! `lookout diagnose` on a real Python `http.server` whose handler opens a misspelled file: Python answers with
//! `sendto` (`send_error`, `wfile.write`), `sendmsg` and `sendfile` — never `write` — so the failing requests are
//! seen only when every way a worker can answer is. Quiet (like most real apps) and logging to stderr (the
//! access-log line comes *before* the status line there: one request, not two).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::support::{lookout_bin, missing_package};

const SERVER_PY: &str = r#"
import http.server, os, sys
ROOT, QUIET = sys.argv[1], sys.argv[2] == "quiet"

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        if not QUIET:
            super().log_message(*args)

    def do_GET(self):
        if self.path == "/ok":
            with open(os.path.join(ROOT, "static", "ok.html"), "rb") as f:
                self.send_response(200)
                self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
                self.end_headers()                 # status line and headers: sendto
                self.connection.sendfile(f)        # body: sendfile
            return
        try:
            with open(os.path.join(ROOT, "conf", "settings.jsn")) as f:   # the typo: settings.json exists
                f.read()
        except OSError:
            if self.path == "/msg":
                self.log_request(500)
                body = b"broken\n"
                head = b"HTTP/1.0 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % len(body)
                self.connection.sendmsg([head, body])                       # sendmsg
            else:
                self.send_error(500)                                        # sendto

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], os.getpid(), flush=True)
server.serve_forever()
"#;

/// The Python server, killed when dropped (also when an assertion fails).
struct PythonServer {
    child: Child,
    port: u16,
    pid: i32,
}

impl PythonServer {
    fn start(root: &std::path::Path, mode: &str) -> PythonServer {
        let mut child = Command::new("python3")
            .args(["-c", SERVER_PY])
            .arg(root)
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut words = line.split_whitespace();
        let port = words.next().unwrap().parse().unwrap();
        let pid = words.next().unwrap().parse().unwrap();
        PythonServer { child, port, pid }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_server_answering_by_sendto_sendmsg_and_sendfile_is_diagnosed() {
    if !nix::unistd::geteuid().is_root() {
        missing_package("tracing needs root here");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        crate::support::missing_package("python3");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf")).unwrap();
    std::fs::create_dir_all(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("conf/settings.json"), "{}\n").unwrap();
    std::fs::write(dir.path().join("static/ok.html"), "<h1>ok</h1>\n").unwrap();
    let missing = dir.path().join("conf/settings.jsn");
    let meant = dir.path().join("conf/settings.json");

    for mode in ["quiet", "logging"] {
        let server = PythonServer::start(dir.path(), mode);
        let args: Vec<String> = [
            "diagnose",
            "--pid",
            &server.pid.to_string(),
            "--url",
            &server.url("/"),
            "--url",
            &server.url("/msg"),
            "--url",
            &server.url("/ok"),
            "--requests",
            "5",
            "--duration",
            "4s",
            "--json",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let out = tokio::task::spawn_blocking(move || Command::new(lookout_bin()).args(&args).output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}{stderr}", String::from_utf8_lossy(&out.stdout));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["request_errors"], serde_json::json!([]), "{mode}: {v:#}");
        // Five 500s by sendto, five by sendmsg, five 200s whose body went by sendfile — each counted once.
        assert_eq!(v["failing_requests"], 10, "{mode}: {v:#}");
        assert_eq!(v["ok_requests"], 5, "{mode}: {v:#}");
        assert_eq!(v["candidates"][0]["path"], missing.to_str().unwrap(), "{mode}: {v:#}");
        assert_eq!(v["candidates"][0]["errno"], "ENOENT");
        assert_eq!(v["candidates"][0]["in_failing_requests"], 10, "{mode}: {v:#}");
        let verdict = v["verdict"].as_str().unwrap();
        assert!(
            verdict
                .starts_with(&format!("Probable root cause: {} does not exist (ENOENT in openat", missing.display())),
            "{mode}: {verdict}"
        );
        assert!(verdict.contains("in 10 of 10 failing requests, 0 of 5 successful"), "{mode}: {verdict}");
        assert!(verdict.ends_with(&format!("; did you mean {}?", meant.display())), "{mode}: {verdict}");

        // Detached: it answers again, untraced.
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid)).unwrap();
        assert!(status.lines().any(|l| l == "TracerPid:\t0"), "{mode}: still traced");
        let r = lookout_http::fetch(&lookout_http::HttpRequest::get(
            server.url("/ok").parse().unwrap(),
            std::time::Duration::from_secs(5),
        ))
        .await;
        assert_eq!(r.status, Some(200), "{mode}");
    }
}
