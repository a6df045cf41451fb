//! A minimal W3C WebDriver client (the handful of commands the browser test needs) over lookout's own HTTP
//! client, driving Debian's headless Chromium through chromedriver on 127.0.0.1 — no browser download, no extra
//! crate.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use lookout_http::HttpRequest;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None`, with the reason printed, where chromium or chromedriver is not installed (CI installs both).
    pub async fn start() -> Option<Browser> {
        if !Path::new("/usr/bin/chromedriver").exists() || !Path::new("/usr/bin/chromium").exists() {
            crate::support::missing_package(
                "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // A process group of its own, so that dropping the browser ends chromedriver and every Chromium process it
        // started (killing chromedriver alone leaves them running, ~40 per test run).
        let driver = Command::new("/usr/bin/chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut b =
            Browser { driver, base: format!("http://127.0.0.1:{port}"), session: String::new(), _profile: profile };
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--no-first-run", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", format!("--user-data-dir={}", b._profile.path().display())]
        }}}});
        let v = b.call(Method::POST, "/session", Some(caps)).await;
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        Some(b)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let req = HttpRequest {
            url: format!("{}{path}", self.base).parse().unwrap(),
            method,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.map(|b| b.to_string().into()),
            follow_redirects: false,
            verify_tls: true,
            timeout: Duration::from_secs(60),
            max_body: 32 << 20,
        };
        let obs = lookout_http::fetch(&req).await;
        assert!(obs.error.is_none(), "webdriver {path}: {:?}", obs.error);
        let v: Value = serde_json::from_str(&obs.body).unwrap_or(Value::Null);
        v["value"].clone()
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, &self.at("/url"), Some(json!({ "url": url }))).await;
    }

    /// The element matching a CSS selector, if there is one now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v =
            self.call(Method::POST, &self.at("/element"), Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await?;
        self.call(Method::GET, &self.at(&format!("/element/{e}/attribute/{name}")), None)
            .await
            .as_str()
            .map(str::to_string)
    }

    pub async fn text(&self, css: &str) -> Option<String> {
        let e = self.find(css).await?;
        self.call(Method::GET, &self.at(&format!("/element/{e}/text")), None).await.as_str().map(str::to_string)
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await.unwrap_or_else(|| panic!("nothing matches {css}"));
        self.call(Method::POST, &self.at(&format!("/element/{e}/click")), Some(json!({}))).await;
    }

    pub async fn run(&self, script: &str) -> Value {
        self.call(Method::POST, &self.at("/execute/sync"), Some(json!({"script": script, "args": []}))).await
    }

    /// Sizes the viewport to `width`×`height` CSS pixels, as a desktop screen or a phone (`mobile` below 700 px)
    /// shows the page: Chromium's device metrics through chromedriver's DevTools bridge (a headless window's
    /// rect does not fix its viewport).
    pub async fn viewport(&self, width: u32, height: u32) {
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700});
        self.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
    }

    /// Makes the page see the system's colour scheme as `scheme` (`dark`, `light`): `prefers-color-scheme`.
    pub async fn color_scheme(&self, scheme: &str) {
        let features = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.cdp("Emulation.setEmulatedMedia", features).await;
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(Method::POST, &self.at("/goog/cdp/execute"), Some(json!({"cmd": cmd, "params": params}))).await
    }

    /// Saves a PNG screenshot.
    pub async fn screenshot(&self, path: &Path) {
        let b64 = self.call(Method::GET, &self.at("/screenshot"), None).await;
        let bytes = base64_decode(b64.as_str().unwrap_or(""));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Polls until `f` is true (the page updates itself), failing after `timeout`.
    pub async fn wait_for<F: std::future::Future<Output = bool>>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> F,
    ) {
        let deadline = Instant::now() + timeout;
        while !f().await {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}
