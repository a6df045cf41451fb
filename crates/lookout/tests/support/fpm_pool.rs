//! One private PHP-FPM pool for the stacks that put a web server in front of it — nginx (`php_fpm`) and Apache
//! mpm_event + proxy_fcgi (`apache_fpm`): the temporary directory both servers live in (`www`, `run`, `logs`),
//! FPM's config, FPM started as a real pool is (as root with `-R`, its workers as www-data), its pid file and
//! workers, and stopping it together with the server in front. Written once so the two stacks cannot drift apart.
//!
//! It also holds the machine-wide turn (a file lock from [`FpmPool::prepare`] to drop, so also across test binaries
//! and concurrent `cargo test` runs): a test that traces `--process php-fpm8.2` traces every FPM on the machine,
//! would count another test's failing requests as its own, and two tracers cannot share a process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct FpmPool {
    /// The temporary directory: `www` (the docroot), `run` (pid files, FPM's socket), `logs`, the configs.
    pub root: PathBuf,
    pub docroot: PathBuf,
    /// A free port on 127.0.0.1 for the server in front.
    pub port: u16,
    /// FPM's own log (`child N said into stderr` lines with `catch_workers_output`).
    pub log: PathBuf,
    // Dropped after the servers are stopped (fields drop in order, after the owner's `Drop::drop`).
    _dir: tempfile::TempDir,
    _turn: std::fs::File,
}

impl FpmPool {
    /// The command name of FPM's processes (`/proc/PID/comm`), as `lookout diagnose --process` takes it.
    pub const COMM: &str = "php-fpm8.2";
    const BINARY: &str = "/usr/sbin/php-fpm8.2";
    /// `pm = static`: the pool always has this many workers.
    pub const WORKERS: usize = 3;

    /// Whether Debian's php-fpm is installed.
    pub fn installed() -> bool {
        Path::new(Self::BINARY).is_file()
    }

    /// Whether the servers start as root: then FPM needs `-R` and the pool and the server's workers run as
    /// www-data, like real ones.
    pub fn as_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Waits for the machine-wide turn, then lays out a temporary directory — `files` under the docroot (path →
    /// content), `www`, `run`, `logs` and `dirs` — and writes FPM's config (a static pool of 3 listening on
    /// `run/fpm.sock`). The server in front writes its own config into [`FpmPool::root`], then calls
    /// [`FpmPool::start`].
    pub fn prepare(files: &[(&str, &str)], dirs: &[&str]) -> FpmPool {
        let turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let docroot = root.join("www");
        for sub in ["www", "run", "logs"].iter().chain(dirs) {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for (rel, content) in files {
            let p = docroot.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let r = root.display();
        // As root FPM refuses to run without -R, and the pool runs as www-data like a real one.
        let pool_user = if Self::as_root() { "user = www-data\ngroup = www-data\n" } else { "" };
        let fpm_conf = format!(
            "[global]\npid = {r}/run/fpm.pid\nerror_log = {r}/logs/fpm.log\ndaemonize = yes\n\n[www]\n{pool_user}\
             listen = {r}/run/fpm.sock\nlisten.mode = 0666\npm = static\npm.max_children = {}\n\
             catch_workers_output = yes\nphp_admin_flag[log_errors] = on\npm.status_path = /fpm-status\n",
            Self::WORKERS
        );
        std::fs::write(root.join("fpm.conf"), fpm_conf).unwrap();
        FpmPool { log: root.join("logs/fpm.log"), root, docroot, port, _dir: dir, _turn: turn }
    }

    /// Where FPM listens (for the server's `fastcgi_pass unix:…` or `proxy:unix:…`).
    pub fn socket(&self) -> PathBuf {
        self.root.join("run/fpm.sock")
    }

    /// Opens the directory to www-data and starts FPM; returns once its socket and all its workers are there.
    pub fn start(&self) {
        // mktemp's 0700 would keep the www-data workers out.
        let out = Command::new("chmod").args(["-R", "a+rX"]).arg(&self.root).output().unwrap();
        assert!(out.status.success(), "chmod: {}", String::from_utf8_lossy(&out.stderr));
        let mut fpm = Command::new(Self::BINARY);
        fpm.arg("--fpm-config").arg(self.root.join("fpm.conf"));
        if Self::as_root() {
            fpm.arg("-R");
        }
        let out = fpm.output().unwrap();
        assert!(out.status.success(), "php-fpm failed to start: {}", String::from_utf8_lossy(&out.stderr));
        self.wait_for("FPM's socket", || self.socket().exists() && self.workers().len() == Self::WORKERS);
    }

    /// Waits up to 10 s for `ready`; on timeout fails with every log of the stack.
    pub fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log in `logs/`, for a failure message.
    fn logs(&self) -> String {
        let Ok(dir) = std::fs::read_dir(self.root.join("logs")) else { return String::new() };
        let mut logs: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        logs.sort();
        logs.iter().map(|p| format!("\n{}:\n{}", p.display(), std::fs::read_to_string(p).unwrap_or_default())).collect()
    }

    /// The pid in `run/FILE` (FPM's `fpm.pid`, the server's own pid file).
    pub fn pid_from(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.root.join("run").join(file)).ok()?.trim().parse().ok()
    }

    /// FPM's master process (from its pid file).
    pub fn master(&self) -> i32 {
        self.pid_from("fpm.pid").expect("FPM's pid file")
    }

    /// FPM's workers: the master's children.
    pub fn workers(&self) -> Vec<i32> {
        let Some(master) = self.pid_from("fpm.pid") else { return Vec::new() };
        lookout_diagnose::trace::with_children(master).into_iter().filter(|p| *p != master).collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops FPM (SIGTERM: it terminates its workers at once) and waits until it and `server` — the pids of the
    /// server in front, already told to stop — are gone, so the next stack starts alone and the temporary
    /// directory is removed after them. What is left after 5 s is killed if it is still one of ours by name
    /// (`server_comm` or FPM's): a pid reused meanwhile is someone else's process.
    pub fn stop_with(&self, mut server: Vec<i32>, server_comm: &str) {
        if let Some(pid) = self.pid_from("fpm.pid") {
            server.extend(lookout_diagnose::trace::with_children(pid));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && server.iter().any(|p| Path::new(&format!("/proc/{p}")).exists()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in server {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if comm.trim() != server_comm && comm.trim() != Self::COMM {
                continue;
            }
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Waits for, then holds, the machine-wide turn to run a private PHP-FPM stack (released when the file is closed,
/// also when the test process dies).
fn one_at_a_time() -> std::fs::File {
    let path = std::env::temp_dir().join("lookout-tests-php-fpm.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).unwrap();
    file.lock().unwrap();
    file
}
