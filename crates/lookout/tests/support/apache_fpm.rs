//! A private Apache 2.4 (mpm_event) + PHP-FPM on 127.0.0.1: Apache hands `.php` to an FPM pool over a unix socket
//! through mod_proxy_fcgi (`SetHandler "proxy:unix:…|fcgi://localhost"`, what Debian's `a2enconf php8.2-fpm`
//! sets up), both with their own config, pid file and logs in one temporary directory — started the way
//! `../shared/context/apache-notes.md` and `php-stacks.md` describe, without touching /etc/apache2 or /etc/php.
//!
//! It takes the same machine-wide turn as [`super::php_fpm::PhpFpm`] (the same lock file): a test that traces
//! `--process php-fpm8.2` traces every FPM on the machine and would count the other stack's requests as its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::apache::{prologue, start_private, stop_private};

const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";
const APACHE2: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

pub struct ApacheFpm {
    root: PathBuf,
    pub port: u16,
    pub docroot: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
    pub fpm_log: PathBuf,
    // Dropped after the servers are stopped (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
    _turn: std::fs::File,
}

impl ApacheFpm {
    /// The command name of FPM's processes (`/proc/PID/comm`), as `lookout diagnose --process` takes it.
    pub const COMM: &str = "php-fpm8.2";

    /// Starts Apache + FPM serving `files` (path under the docroot → content; `index.php` is the index). `None`,
    /// with the reason given to `missing_package`, where apache2, its proxy modules or php-fpm is not installed.
    pub fn start(files: &[(&str, &str)]) -> Option<ApacheFpm> {
        Self::start_with_index(files, "index.php")
    }

    /// [`ApacheFpm::start`] with Apache's `DirectoryIndex` set to `index` (e.g. `index.html index.php`, so that
    /// Apache negotiates the index on every request to a directory).
    pub fn start_with_index(files: &[(&str, &str)], index: &str) -> Option<ApacheFpm> {
        let needed = ["mod_mpm_event.so", "mod_proxy.so", "mod_proxy_fcgi.so"];
        if !Path::new(PHP_FPM).is_file()
            || !Path::new(APACHE2).is_file()
            || !needed.iter().all(|m| Path::new(MODULES).join(m).is_file())
        {
            crate::support::missing_package(
                "apache2 and php-fpm are not installed (apt-get install apache2 php-fpm: /usr/sbin/apache2, \
                 /usr/sbin/php-fpm8.2, mod_proxy_fcgi)",
            );
            return None;
        }
        let turn = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let docroot = root.join("www");
        for sub in ["www", "run", "logs"] {
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
        let apache_user = if root_user { "User www-data\nGroup www-data\n" } else { "" };
        let apache_conf = format!(
            r#"{prologue}
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule dir_module {MODULES}/mod_dir.so
LoadModule mime_module {MODULES}/mod_mime.so
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_fcgi_module {MODULES}/mod_proxy_fcgi.so
{apache_user}TypesConfig /etc/mime.types
ErrorLog {r}/logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
CustomLog {r}/logs/access.log combined
DocumentRoot {r}/www
DirectoryIndex {index}
StartServers 1
ServerLimit 2
ThreadsPerChild 8
MaxRequestWorkers 16
<FilesMatch "\.php$">
    SetHandler "proxy:unix:{r}/run/fpm.sock|fcgi://localhost"
</FilesMatch>
<Directory {r}/www>
    Require all granted
</Directory>
"#,
            prologue = prologue(&root),
        );
        std::fs::write(root.join("apache2.conf"), apache_conf).unwrap();
        // mktemp's 0700 would keep the www-data workers out.
        let out = Command::new("chmod").args(["-R", "a+rX"]).arg(&root).output().unwrap();
        assert!(out.status.success(), "chmod: {}", String::from_utf8_lossy(&out.stderr));

        let server = ApacheFpm {
            error_log: root.join("logs/error.log"),
            access_log: root.join("logs/access.log"),
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
        start_private(Path::new(APACHE2), &server.root, &[port]);
        Some(server)
    }

    fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                std::fs::read_to_string(&self.fpm_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid_from(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.root.join("run").join(file)).ok()?.trim().parse().ok()
    }

    /// FPM's master process (from its pid file).
    pub fn master(&self) -> i32 {
        self.pid_from("fpm.pid").expect("FPM's pid file")
    }

    /// Apache's parent process (from its PidFile).
    pub fn apache_master(&self) -> Option<i32> {
        self.pid_from("apache2.pid")
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

/// Waits for, then holds, the machine-wide turn to run a private PHP-FPM stack — the lock file
/// `support::php_fpm` takes too (released when the file is closed, also when the test process dies).
fn one_at_a_time() -> std::fs::File {
    let path = std::env::temp_dir().join("lookout-tests-php-fpm.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).unwrap();
    file.lock().unwrap();
    file
}

impl Drop for ApacheFpm {
    fn drop(&mut self) {
        let mut pids = Vec::new();
        if let Some(pid) = self.pid_from("apache2.pid") {
            pids.extend(lookout_diagnose::trace::with_children(pid));
        }
        if let Some(pid) = self.pid_from("fpm.pid") {
            pids.extend(lookout_diagnose::trace::with_children(pid));
            // SIGTERM: FPM's immediate termination of its workers.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        stop_private(&self.root);
        // Gone before the next one starts (or its temporary directory is removed).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && pids.iter().any(|p| Path::new(&format!("/proc/{p}")).exists()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Only what is still ours: a pid that was reused meanwhile is someone else's process.
        for p in pids {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if !matches!(comm.trim(), "apache2" | "php-fpm8.2") {
                continue;
            }
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}
