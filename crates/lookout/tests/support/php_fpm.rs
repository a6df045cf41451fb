//! A private nginx + PHP-FPM on 127.0.0.1: nginx passes `.php` to an FPM pool over a unix socket, both with their
//! own config, pid file, logs and temp paths in one temporary directory — started the way
//! `../shared/context/php-stacks.md` describes, without touching /etc/nginx or /etc/php.
//!
//! Only one runs at a time on the machine (a file lock held from start to drop, so also across test binaries and
//! concurrent `cargo test` runs): a test that traces `--process php-fpm8.2` traces every FPM on the machine, would
//! count another test's failing requests as its own, and two tracers cannot share a process.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";
const NGINX: &str = "/usr/sbin/nginx";

pub struct PhpFpm {
    root: PathBuf,
    pub port: u16,
    pub docroot: PathBuf,
    pub nginx_error_log: PathBuf,
    pub fpm_log: PathBuf,
    // Dropped after the servers are stopped (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
    _turn: std::fs::File,
}

impl PhpFpm {
    /// The command name of FPM's processes (`/proc/PID/comm`), as `lookout diagnose --process` takes it.
    pub const COMM: &str = "php-fpm8.2";

    /// Starts nginx + FPM serving `files` (path under the docroot → content; `index.php` is the index). `None`,
    /// with the reason given to `missing_package`, where php-fpm or nginx is not installed.
    pub fn start(files: &[(&str, &str)]) -> Option<PhpFpm> {
        Self::start_with_index(files, "index.php index.html")
    }

    /// As [`PhpFpm::start`], with nginx's `index` directive listing `index` (e.g. `index.html index.php`, so nginx
    /// looks for a missing index.html before settling on index.php, as Debian's default site does).
    pub fn start_with_index(files: &[(&str, &str)], index: &str) -> Option<PhpFpm> {
        if !Path::new(PHP_FPM).is_file() || !Path::new(NGINX).is_file() {
            crate::support::missing_package(
                "php-fpm and nginx are not installed (apt-get install php-fpm nginx: /usr/sbin/php-fpm8.2, /usr/sbin/nginx)",
            );
            return None;
        }
        let turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let docroot = root.join("www");
        for sub in ["www", "run", "logs", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for (rel, content) in files {
            let p = docroot.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        let root_user = nix::unistd::geteuid().is_root();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let r = root.display();
        // As root FPM refuses to run without -R, and the pool runs as www-data like a real one.
        let pool_user = if root_user { "user = www-data\ngroup = www-data\n" } else { "" };
        let fpm_conf = format!(
            "[global]\npid = {r}/run/fpm.pid\nerror_log = {r}/logs/fpm.log\ndaemonize = yes\n\n[www]\n{pool_user}\
             listen = {r}/run/fpm.sock\nlisten.mode = 0666\npm = static\npm.max_children = 3\n\
             catch_workers_output = yes\nphp_admin_flag[log_errors] = on\n"
        );
        std::fs::write(root.join("fpm.conf"), fpm_conf).unwrap();
        let nginx_user = if root_user { "user www-data;\n" } else { "" };
        let nginx_conf = format!(
            r#"{nginx_user}worker_processes 1;
pid {r}/run/nginx.pid;
error_log {r}/logs/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {r}/logs/nginx-access.log;
    client_body_temp_path {r}/tmp/client_body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fastcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {r}/www;
        index {index};
        location ~ \.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{r}/run/fpm.sock;
        }}
    }}
}}
"#
        );
        std::fs::write(root.join("nginx.conf"), nginx_conf).unwrap();
        // mktemp's 0700 would keep the www-data workers out.
        let out = Command::new("chmod").args(["-R", "a+rX"]).arg(&root).output().unwrap();
        assert!(out.status.success(), "chmod: {}", String::from_utf8_lossy(&out.stderr));

        let server = PhpFpm {
            nginx_error_log: root.join("logs/nginx-error.log"),
            fpm_log: root.join("logs/fpm.log"),
            root,
            port,
            docroot,
            _dir: dir,
            _turn: turn,
        };
        let mut fpm = Command::new(PHP_FPM);
        fpm.arg("--fpm-config").arg(server.root.join("fpm.conf"));
        if root_user {
            fpm.arg("-R");
        }
        let out = fpm.output().unwrap();
        assert!(out.status.success(), "php-fpm failed to start: {}", String::from_utf8_lossy(&out.stderr));
        server.wait_for("FPM's socket", || server.root.join("run/fpm.sock").exists() && server.workers().len() == 3);
        let out = Command::new(NGINX)
            .arg("-c")
            .arg(server.root.join("nginx.conf"))
            .arg("-e")
            .arg(&server.nginx_error_log)
            .output()
            .unwrap();
        assert!(out.status.success(), "nginx failed to start: {}", String::from_utf8_lossy(&out.stderr));
        server.wait_for("nginx to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        Some(server)
    }

    fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}{}",
                std::fs::read_to_string(&self.fpm_log).unwrap_or_default(),
                std::fs::read_to_string(&self.nginx_error_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// nginx's master (its workers are its children).
    pub fn nginx_master(&self) -> Option<i32> {
        self.pid_from("nginx.pid")
    }

    fn pid_from(&self, file: &str) -> Option<i32> {
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
}

/// Waits for, then holds, the machine-wide turn to run a private nginx + FPM (released when the file is closed,
/// also when the test process dies).
fn one_at_a_time() -> std::fs::File {
    let path = std::env::temp_dir().join("lookout-tests-php-fpm.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).unwrap();
    file.lock().unwrap();
    file
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        // SIGTERM: both stop at once (nginx's fast shutdown, FPM's immediate termination of its workers).
        let mut pids = Vec::new();
        for file in ["nginx.pid", "fpm.pid"] {
            if let Some(pid) = self.pid_from(file) {
                pids.extend(lookout_diagnose::trace::with_children(pid));
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        // Gone before the next one starts (or its temporary directory is removed).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && pids.iter().any(|p| Path::new(&format!("/proc/{p}")).exists()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Only what is still ours: a pid that was reused meanwhile is someone else's process.
        for p in pids {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if !matches!(comm.trim(), "nginx" | "php-fpm8.2") {
                continue;
            }
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}
