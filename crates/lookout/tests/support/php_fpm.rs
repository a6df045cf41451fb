//! A private nginx + PHP-FPM on 127.0.0.1: nginx passes `.php` to an FPM pool over a unix socket, both with their
//! own config, pid file, logs and temp paths in one temporary directory — started the way
//! `../shared/context/php-stacks.md` describes, without touching /etc/nginx or /etc/php.
//!
//! FPM itself, and the machine-wide turn (only one private FPM stack runs at a time), are [`FpmPool`]'s.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fpm_pool::FpmPool;

const NGINX: &str = "/usr/sbin/nginx";

pub struct PhpFpm {
    pub docroot: PathBuf,
    pub nginx_error_log: PathBuf,
    pub fpm_log: PathBuf,
    // Holds the temporary directory and the machine-wide turn: dropped after the servers are stopped (fields drop
    // after `Drop::drop`).
    pool: FpmPool,
}

impl PhpFpm {
    /// The command name of FPM's processes (`/proc/PID/comm`), as `lookout diagnose --process` takes it.
    pub const COMM: &str = FpmPool::COMM;

    /// Starts nginx + FPM serving `files` (path under the docroot → content; `index.php` is the index). `None`,
    /// with the reason given to `missing_package`, where php-fpm or nginx is not installed.
    pub fn start(files: &[(&str, &str)]) -> Option<PhpFpm> {
        Self::start_with_index(files, "index.php index.html")
    }

    /// As [`PhpFpm::start`], with nginx's `index` directive listing `index` (e.g. `index.html index.php`, so nginx
    /// looks for a missing index.html before settling on index.php, as Debian's default site does).
    pub fn start_with_index(files: &[(&str, &str)], index: &str) -> Option<PhpFpm> {
        if !FpmPool::installed() || !Path::new(NGINX).is_file() {
            crate::support::missing_package(
                "php-fpm and nginx are not installed (apt-get install php-fpm nginx: /usr/sbin/php-fpm8.2, /usr/sbin/nginx)",
            );
            return None;
        }
        let pool = FpmPool::prepare(files, &["tmp"]);
        let (r, port, socket) = (pool.root.display(), pool.port, pool.socket());
        let socket = socket.display();
        let nginx_user = if FpmPool::as_root() { "user www-data;\n" } else { "" };
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
        location = /nginx-status {{ stub_status; }}
        location = /fpm-status {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME /fpm-status;
            fastcgi_param SCRIPT_FILENAME /fpm-status;
            fastcgi_pass unix:{socket};
        }}
        location ~ \.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{socket};
        }}
    }}
}}
"#
        );
        std::fs::write(pool.root.join("nginx.conf"), nginx_conf).unwrap();
        let server = PhpFpm {
            docroot: pool.docroot.clone(),
            nginx_error_log: pool.root.join("logs/nginx-error.log"),
            fpm_log: pool.log.clone(),
            pool,
        };
        server.pool.start();
        let out = Command::new(NGINX)
            .arg("-c")
            .arg(server.pool.root.join("nginx.conf"))
            .arg("-e")
            .arg(&server.nginx_error_log)
            .output()
            .unwrap();
        assert!(out.status.success(), "nginx failed to start: {}", String::from_utf8_lossy(&out.stderr));
        server.pool.wait_for("nginx to listen", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        Some(server)
    }

    /// nginx's pid file, as `[target.diagnose] pid_file` names it.
    pub fn nginx_pid_file(&self) -> PathBuf {
        self.pool.root.join("run/nginx.pid")
    }

    /// nginx's master (its workers are its children).
    pub fn nginx_master(&self) -> Option<i32> {
        self.pool.pid_from("nginx.pid")
    }

    /// FPM's master process (from its pid file).
    pub fn master(&self) -> i32 {
        self.pool.master()
    }

    /// FPM's workers: the master's children.
    pub fn workers(&self) -> Vec<i32> {
        self.pool.workers()
    }

    pub fn url(&self, path: &str) -> String {
        self.pool.url(path)
    }

    /// nginx's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.pool.port
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        // SIGTERM: both stop at once (nginx's fast shutdown, FPM's immediate termination of its workers).
        let mut nginx = Vec::new();
        if let Some(pid) = self.nginx_master() {
            nginx.extend(lookout_diagnose::trace::with_children(pid));
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        self.pool.stop_with(nginx, "nginx");
    }
}
