//! `lookout init`: sets lookout up from what runs on this machine. It finds the running web servers (Apache,
//! nginx) and PHP-FPM masters in `/proc`, reads their configuration the way preflight does (includes, `Define`s,
//! sections), and writes a commented lookout.toml: a probe per site, a `[[log]]` per access log with its format,
//! the error logs and pid files diagnosis needs, the status pages (`mod_status`, `stub_status`, FPM's
//! `pm.status_path` where a server routes it) and the processes.
//!
//! Why from the running processes and not from `/etc`: what runs is what must be watched, with the configuration
//! it was started with (`apache2 -f`, `nginx -c`, `php-fpm --fpm-config`); the default places are read only
//! when nothing runs, and a configuration can always be named (`--apache-config` …). What could not be set up is
//! said, in the file and on the terminal, never guessed.

mod apache;
pub mod command;
mod fpm;
mod nginx;
mod nginx_format;
mod processes;
mod render;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use render::render;

/// What to read besides the running processes.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub apache_configs: Vec<PathBuf>,
    pub nginx_configs: Vec<PathBuf>,
    pub fpm_configs: Vec<PathBuf>,
    /// Look for running servers in `/proc` (off in unit tests, which name their configurations).
    pub scan_processes: bool,
}

/// The kind of web server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apache,
    Nginx,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Apache => "Apache",
            Kind::Nginx => "nginx",
        }
    }

    /// lookout's `error_format` for this server's error log.
    pub fn error_format(self) -> &'static str {
        match self {
            Kind::Apache => "apache",
            Kind::Nginx => "nginx",
        }
    }
}

/// A web server and what its configuration says.
#[derive(Clone, Debug)]
pub struct Server {
    pub kind: Kind,
    pub config: PathBuf,
    /// The master process, when it runs.
    pub pid: Option<i32>,
    /// Its command name (`/proc/PID/comm`: `apache2`, `httpd`, `nginx`).
    pub command: String,
    pub pid_file: Option<PathBuf>,
    pub sites: Vec<Site>,
    /// Status pages it serves (`mod_status`, `stub_status`) and FPM status paths it routes.
    pub status: Vec<StatusPage>,
    /// `unix:` sockets it passes PHP to, with the locations (path prefixes) that do (for FPM's status page).
    pub fastcgi: Vec<FastCgiRoute>,
}

/// A site: one address and port, with its name and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// `ServerName` / `server_name`, when it has one.
    pub name: Option<String>,
    /// `127.0.0.1:8080`: where lookout on this machine reaches it.
    pub address: String,
    pub tls: bool,
    pub access_log: Option<AccessLog>,
    pub error_log: Option<PathBuf>,
    /// Where the configuration says it (`/etc/apache2/sites-enabled/shop.conf:3`).
    pub defined_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    pub path: PathBuf,
    /// lookout's `format`: a preset name or an Apache `LogFormat` string; `Err` says why there is none.
    pub format: Result<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPage {
    /// lookout's `[[status]] type`: `apache`, `nginx`, `php-fpm`.
    pub kind: &'static str,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastCgiRoute {
    pub socket: PathBuf,
    /// The `location`/`<Location>` it is in (`/fpm-status`), or empty for a `\.php$` match.
    pub location: String,
    /// Where the server that routes it listens (`127.0.0.1:8080`).
    pub address: String,
}

/// A PHP-FPM pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub config: PathBuf,
    /// `listen`: a socket path or `127.0.0.1:9000`.
    pub listen: String,
    pub status_path: Option<String>,
    pub max_children: Option<u32>,
    /// FPM's own log (`[global] error_log`), where PHP's errors arrive with `catch_workers_output`.
    pub error_log: Option<PathBuf>,
    pub command: String,
}

/// Everything found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub servers: Vec<Server>,
    pub pools: Vec<Pool>,
    /// What was looked at and not set up, and why: the terminal and the file's head both say it.
    pub notes: Vec<String>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.pools.is_empty()
    }
}

/// Finds the servers: the running ones (when `options.scan_processes`), then the configurations named.
pub fn detect(options: &Options) -> Found {
    let running = if options.scan_processes { processes::masters() } else { Vec::new() };
    detect_from(options, running, processes::installed_defaults)
}

/// [`detect`] with the running masters and the installed configurations given (tests give their own).
fn detect_from(
    options: &Options,
    running: Vec<processes::Master>,
    installed: impl FnOnce() -> Vec<processes::Master>,
) -> Found {
    let mut found = Found::default();
    let mut seen: Vec<PathBuf> = Vec::new();
    if options.scan_processes {
        read_all(running, &mut found, &mut seen);
        // Nothing runs (or what runs cannot be read: a configuration deleted under a running server): what is
        // installed is what will run.
        if found.is_empty() {
            let before = found.notes.len();
            read_all(installed(), &mut found, &mut seen);
            if !found.is_empty() {
                found
                    .notes
                    .insert(before, "no running web server could be read: read the installed configurations".into());
            }
        }
    }
    let named = options
        .apache_configs
        .iter()
        .map(|c| processes::Master::named(processes::MasterKind::Apache, c))
        .chain(options.nginx_configs.iter().map(|c| processes::Master::named(processes::MasterKind::Nginx, c)))
        .chain(options.fpm_configs.iter().map(|c| processes::Master::named(processes::MasterKind::Fpm, c)));
    read_all(named.collect(), &mut found, &mut seen);
    found
}

/// Reads each master's configuration once (by path) into `found`; what cannot be read becomes a note.
fn read_all(masters: Vec<processes::Master>, found: &mut Found, seen: &mut Vec<PathBuf>) {
    for master in masters {
        if seen.contains(&master.config) {
            continue;
        }
        seen.push(master.config.clone());
        let read = match master.kind {
            processes::MasterKind::Apache => apache::read(&master).map(|s| found.servers.push(s)),
            processes::MasterKind::Nginx => nginx::read(&master).map(|s| found.servers.push(s)),
            processes::MasterKind::Fpm => fpm::read(&master).map(|p| found.pools.extend(p)),
        };
        if let Err(why) = read {
            found.notes.push(why);
        }
    }
}

/// A name lookout accepts for a target or log (letters, digits, `-`, `_`, `.`; at most 64), from `raw`.
fn safe_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(64)
        .collect();
    name = name.trim_matches('-').to_string();
    if name.is_empty() { "site".to_string() } else { name }
}

/// The port of an address as [`Site::address`] holds it (`127.0.0.1:8080` → `8080`).
fn port_of(address: &str) -> &str {
    address.rsplit(':').next().unwrap_or("")
}

/// Keeps the first address of each port: `80` and `[::]:80` are one site reached twice, probed once (on IPv4,
/// listed first by servers' convention).
fn one_per_port(addresses: &mut Vec<String>) {
    let mut ports: Vec<String> = Vec::new();
    addresses.retain(|a| {
        let port = port_of(a).to_string();
        let new = !ports.contains(&port);
        ports.push(port);
        new
    });
}

impl Server {
    fn of(kind: Kind, master: &processes::Master, pid_file: Option<PathBuf>, sites: Vec<Site>) -> Server {
        Server {
            kind,
            config: master.config.clone(),
            pid: master.pid,
            command: master.command.clone(),
            pid_file,
            sites,
            status: Vec::new(),
            fastcgi: Vec::new(),
        }
    }
}

/// `file:line` as a person reads it.
fn at(file: &Path, line: u32) -> String {
    format!("{}:{line}", file.display())
}
