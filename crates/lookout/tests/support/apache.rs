//! A private Apache 2.4 + mod_php (prefork) on 127.0.0.1, with its own config, docroot and logs — started the
//! way `../shared/context/apache-notes.md` describes, without touching /etc/apache2.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Apache {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pub port: u16,
    pub docroot: PathBuf,
    pub access_log: PathBuf,
    pub error_log: PathBuf,
}

fn php_module() -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/lib/apache2/modules").ok()?;
    dir.flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libphp") && n.ends_with(".so")))
}

fn chmod_755(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Apache {
    /// Starts Apache serving `files` (relative path → content). `None`, with the reason printed, where Apache
    /// or mod_php is not installed (CI installs both, so there it always runs).
    pub fn start(files: &[(&str, &str)]) -> Option<Apache> {
        Self::start_with(files, "")
    }

    /// As [`Apache::start`], with `extra` appended to the configuration (later directives win: `StartServers 5`).
    pub fn start_with(files: &[(&str, &str)], extra: &str) -> Option<Apache> {
        let Ok(apache2) = which("apache2") else {
            crate::support::missing_package("apache2 is not installed (apt-get install apache2 libapache2-mod-php)");
            return None;
        };
        let Some(php) = php_module() else {
            crate::support::missing_package("mod_php is not installed (apt-get install libapache2-mod-php)");
            return None;
        };
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
        // mktemp's 0700 would make the www-data workers answer 403 (AH00035).
        for d in [&root, &docroot, &docroot.join("inc")] {
            if d.exists() {
                chmod_755(d);
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let user = if nix::unistd::geteuid().is_root() { "User www-data\nGroup www-data\n" } else { "" };
        let conf = format!(
            r#"{prologue}
Listen 127.0.0.1:{port}
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule php_module {php}
{user}TypesConfig /etc/mime.types
ErrorLog {root}/logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
CustomLog {root}/logs/access.log combined
DocumentRoot {root}/www
DirectoryIndex index.html index.php
StartServers 2
MinSpareServers 1
MaxSpareServers 3
<FilesMatch "\.php$">
    SetHandler application/x-httpd-php
</FilesMatch>
<Directory {root}/www>
    Require all granted
</Directory>
{extra}
"#,
            root = root.display(),
            php = php.display(),
            prologue = prologue(&root),
        );
        std::fs::write(root.join("apache2.conf"), conf).unwrap();
        let port = start_private(&apache2, &root, &[port])[0];
        Some(Apache {
            access_log: root.join("logs/access.log"),
            error_log: root.join("logs/error.log"),
            root,
            port,
            docroot,
            _dir: dir,
        })
    }

    /// The parent process (from the PidFile).
    pub fn pid(&self) -> i32 {
        let file = self.root.join("run/apache2.pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(pid) = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse().ok()) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no pid in {}: {:?}",
                file.display(),
                std::fs::read_dir(self.root.join("run"))
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        stop_private(&self.root);
    }
}

/// The first lines of a private Apache's configuration: its server root, pid file and locks all in `root`.
pub fn prologue(root: &Path) -> String {
    let root = root.display();
    format!(
        "ServerRoot \"{root}\"\nServerName 127.0.0.1\nPidFile {root}/run/apache2.pid\nDefaultRuntimeDir {root}/run\n\
         Mutex file:{root}/run default"
    )
}

/// Starts a private Apache from `root/apache2.conf` (server root `root`, logs in `root/logs`, the pid file of
/// [`prologue`]) and waits until it listens on every port; returns the ports it listens on.
///
/// Why it may not be `ports`: a port is picked free before Apache binds it, and any process (another test's
/// outgoing connection, another server) can take it in between. Then `apache2 -k start` fails with "could not
/// bind" (or, should a bind fail after it detached, its error log says so and no pid file appears), and the
/// configuration's `127.0.0.1:PORT` moves to newly picked ports and Apache starts again. Waiting for the pid
/// file, which Apache writes once its sockets are bound, also makes sure the listener found is Apache's.
pub fn start_private(apache2: &Path, root: &Path, ports: &[u16]) -> Vec<u16> {
    let mut ports = ports.to_vec();
    for _attempt in 0..5 {
        let out = Command::new(apache2)
            .arg("-d")
            .arg(root)
            .arg("-f")
            .arg(root.join("apache2.conf"))
            .args(["-k", "start"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() || stderr.contains("could not bind"), "apache2 failed to start: {stderr}");
        if out.status.success() && started(root) {
            wait_for_ports(root, &ports);
            return ports;
        }
        let conf_path = root.join("apache2.conf");
        let mut conf = std::fs::read_to_string(&conf_path).unwrap();
        for port in &mut ports {
            let new = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            conf = conf.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{new}"));
            *port = new;
        }
        std::fs::write(&conf_path, conf).unwrap();
        std::fs::write(root.join("logs/error.log"), "").unwrap();
    }
    panic!("apache2 could not bind a free port in five attempts");
}

/// Waits for the pid file of an Apache just started: `true` once it names a running process, `false` when the
/// error log says a port could not be bound (Apache has exited).
fn started(root: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid = std::fs::read_to_string(root.join("run/apache2.pid")).ok().and_then(|s| s.trim().parse::<u32>().ok());
        if pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
            return true;
        }
        let log = std::fs::read_to_string(root.join("logs/error.log")).unwrap_or_default();
        if log.contains("could not bind") {
            return false;
        }
        assert!(Instant::now() < deadline, "apache2 wrote no pid file:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_ports(root: &Path, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &port in ports {
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "apache2 did not listen on {port}: {}",
                std::fs::read_to_string(root.join("logs/error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Stops a private Apache started with [`start_private`].
pub fn stop_private(root: &Path) {
    let _ = Command::new("apache2")
        .arg("-d")
        .arg(root)
        .arg("-f")
        .arg(root.join("apache2.conf"))
        .args(["-k", "stop"])
        .output();
}

fn which(name: &str) -> Result<PathBuf, ()> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/sbin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(())
}
