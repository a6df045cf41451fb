//! A private Apache 2.4 (mpm_event) + PHP-FPM on 127.0.0.1: Apache hands `.php` to an FPM pool over a unix socket
//! through mod_proxy_fcgi (`SetHandler "proxy:unix:…|fcgi://localhost"`, what Debian's `a2enconf php8.2-fpm`
//! sets up), both with their own config, pid file and logs in one temporary directory — started the way
//! `../shared/context/apache-notes.md` and `php-stacks.md` describe, without touching /etc/apache2 or /etc/php.
//!
//! FPM itself, and the machine-wide turn it shares with [`super::php_fpm::PhpFpm`] (a test that traces
//! `--process php-fpm8.2` traces every FPM on the machine), are [`FpmPool`]'s.

use std::path::{Path, PathBuf};

use super::apache::{prologue, start_private, stop_private};
use super::fpm_pool::FpmPool;

const APACHE2: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

pub struct ApacheFpm {
    pub docroot: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
    // Holds the temporary directory and the machine-wide turn: dropped after the servers are stopped (fields drop
    // after `Drop::drop`).
    pool: FpmPool,
}

impl ApacheFpm {
    /// The command name of FPM's processes (`/proc/PID/comm`), as `lookout diagnose --process` takes it.
    pub const COMM: &str = FpmPool::COMM;

    /// Starts Apache + FPM serving `files` (path under the docroot → content; `index.php` is the index). `None`,
    /// with the reason given to `missing_package`, where apache2, its proxy modules or php-fpm is not installed.
    pub fn start(files: &[(&str, &str)]) -> Option<ApacheFpm> {
        Self::start_with_index(files, "index.php")
    }

    /// [`ApacheFpm::start`] with Apache's `DirectoryIndex` set to `index` (e.g. `index.html index.php`, so that
    /// Apache negotiates the index on every request to a directory).
    pub fn start_with_index(files: &[(&str, &str)], index: &str) -> Option<ApacheFpm> {
        let needed = ["mod_mpm_event.so", "mod_proxy.so", "mod_proxy_fcgi.so"];
        if !FpmPool::installed()
            || !Path::new(APACHE2).is_file()
            || !needed.iter().all(|m| Path::new(MODULES).join(m).is_file())
        {
            crate::support::missing_package(
                "apache2 and php-fpm are not installed (apt-get install apache2 php-fpm: /usr/sbin/apache2, \
                 /usr/sbin/php-fpm8.2, mod_proxy_fcgi)",
            );
            return None;
        }
        let pool = FpmPool::prepare(files, &[]);
        let (r, port, socket) = (pool.root.display(), pool.port, pool.socket());
        let socket = socket.display();
        let apache_user = if FpmPool::as_root() { "User www-data\nGroup www-data\n" } else { "" };
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
    SetHandler "proxy:unix:{socket}|fcgi://localhost"
</FilesMatch>
<Directory {r}/www>
    Require all granted
</Directory>
"#,
            prologue = prologue(&pool.root),
        );
        std::fs::write(pool.root.join("apache2.conf"), apache_conf).unwrap();
        let mut server = ApacheFpm {
            docroot: pool.docroot.clone(),
            error_log: pool.root.join("logs/error.log"),
            access_log: pool.root.join("logs/access.log"),
            pool,
        };
        server.pool.start();
        server.pool.port = start_private(Path::new(APACHE2), &server.pool.root, &[port])[0];
        Some(server)
    }

    /// FPM's master process (from its pid file).
    pub fn master(&self) -> i32 {
        self.pool.master()
    }

    /// Apache's parent process (from its PidFile).
    pub fn apache_master(&self) -> Option<i32> {
        self.pool.pid_from("apache2.pid")
    }

    /// FPM's workers: the master's children.
    pub fn workers(&self) -> Vec<i32> {
        self.pool.workers()
    }

    pub fn url(&self, path: &str) -> String {
        self.pool.url(path)
    }
}

impl Drop for ApacheFpm {
    fn drop(&mut self) {
        let apache = self.apache_master().map(lookout_diagnose::trace::with_children).unwrap_or_default();
        stop_private(&self.pool.root);
        self.pool.stop_with(apache, "apache2");
    }
}
