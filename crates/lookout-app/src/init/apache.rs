//! An Apache server from its directives: sites from `<VirtualHost>`s (or from `Listen` without any), each with
//! the `CustomLog` and `ErrorLog` in force and its `LogFormat` resolved, the `PidFile`, `mod_status`'s location
//! and the FastCGI sockets PHP is passed to (`SetHandler "proxy:unix:…|fcgi://…"`).

use std::collections::HashMap;
use std::path::PathBuf;

use lookout_preflight::webconfig::{Directive, apache_directives};

use super::processes::Master;
use super::{AccessLog, FastCgiRoute, Kind, Server, Site, StatusPage, at, one_per_port, port_of};

pub fn read(master: &Master) -> Result<Server, String> {
    let directives = apache_directives(&master.config)
        .map_err(|e| format!("Apache: cannot read {}: {e}", master.config.display()))?;
    Ok(from_directives(master, &directives))
}

/// Where lookout on this machine reaches `*:80`, `127.0.0.1:8080`, `80`, `[::]:443`.
pub(super) fn local_address(listen: &str) -> Option<String> {
    let (host, port) = match listen.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => ("", listen),
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = match host {
        "" | "*" | "0.0.0.0" | "_default_" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_string(),
    };
    Some(format!("{host}:{port}"))
}

struct Vhost {
    addresses: Vec<String>,
    tls: bool,
    name: Option<String>,
    access: Option<(PathBuf, String)>,
    error: Option<PathBuf>,
    defined_at: String,
}

pub(super) fn from_directives(master: &Master, directives: &[Directive]) -> Server {
    let mut formats: HashMap<String, String> = HashMap::new();
    let mut listens: Vec<(String, bool, String)> = Vec::new();
    let mut server =
        Vhost { addresses: Vec::new(), tls: false, name: None, access: None, error: None, defined_at: String::new() };
    let mut vhosts: HashMap<usize, Vhost> = HashMap::new();
    let mut pid_file = None;
    let mut status_module = false;
    let mut status_locations: Vec<(Option<usize>, String)> = Vec::new();
    let mut fastcgi: Vec<(Option<usize>, PathBuf, String)> = Vec::new();
    let mut loaded: Vec<String> = STATIC_MODULES.iter().map(|m| m.to_string()).collect();
    for d in directives {
        if !in_loaded_modules(d, &loaded) {
            continue;
        }
        if d.name == "loadmodule"
            && let Some(m) = d.args.first()
        {
            loaded.push(m.clone());
        }
        let vhost = d.block.map(|b| vhosts.entry(b).or_insert_with(|| new_vhost(d)));
        let first = d.args.first().map(String::as_str).unwrap_or("");
        match d.name.as_str() {
            "logformat" if d.args.len() >= 2 => {
                formats.insert(d.args[1].clone(), d.args[0].clone());
            }
            "listen" => {
                if let Some(addr) = local_address(first) {
                    let tls = d.args.get(1).is_some_and(|p| p.eq_ignore_ascii_case("https")) || addr.ends_with(":443");
                    listens.push((addr, tls, at(&d.file, d.line)));
                }
            }
            "pidfile" => pid_file = d.path(0),
            "loadmodule" if first == "status_module" => status_module = true,
            "servername" => {
                let name = first.split("://").last().unwrap_or(first).split(':').next().unwrap_or("").to_string();
                // An address is no name: the probe's URL already carries it (and a Host header would repeat it).
                vhost.unwrap_or(&mut server).name =
                    Some(name).filter(|n| !n.is_empty() && n.parse::<std::net::IpAddr>().is_err());
            }
            "sslengine" if first.eq_ignore_ascii_case("on") => vhost.unwrap_or(&mut server).tls = true,
            "customlog" | "transferlog" if !first.starts_with('|') && !first.starts_with("syslog") => {
                let format =
                    if d.name == "transferlog" { "common" } else { d.args.get(1).map_or("common", String::as_str) };
                let target = vhost.unwrap_or(&mut server);
                // The first CustomLog of a context is the one counted (a second is usually a referer or agent log).
                if target.access.is_none()
                    && let Some(path) = d.path(0)
                {
                    target.access = Some((path, format.to_string()));
                }
            }
            "errorlog" if !first.starts_with('|') && !first.starts_with("syslog") => {
                vhost.unwrap_or(&mut server).error = d.path(0);
            }
            "sethandler" => {
                let location = d.sections.iter().rev().find_map(|s| location_of(s));
                if first.eq_ignore_ascii_case("server-status") {
                    status_locations.push((d.block, location.unwrap_or_else(|| "/server-status".into())));
                } else if let Some(socket) = first.strip_prefix("proxy:unix:").map(|s| s.split('|').next().unwrap_or(s))
                {
                    fastcgi.push((d.block, PathBuf::from(socket), location.unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    let default_error = server.error.clone();
    let default_access = server.access.clone();
    let mut sites = Vec::new();
    let mut blocks: Vec<(usize, Vhost)> = vhosts.into_iter().collect();
    blocks.sort_by_key(|(b, _)| *b);
    let address_of = |block: Option<usize>, blocks: &[(usize, Vhost)]| {
        block
            .and_then(|b| blocks.iter().find(|(n, _)| *n == b))
            .and_then(|(_, v)| v.addresses.first().cloned())
            .or_else(|| listens.first().map(|l| l.0.clone()))
    };
    let status = if status_module {
        status_locations
            .iter()
            .filter_map(|(block, path)| {
                let addr = address_of(*block, &blocks)?;
                Some(StatusPage { kind: "apache", url: format!("http://{addr}{path}") })
            })
            .collect()
    } else {
        Vec::new()
    };
    let routes = fastcgi
        .iter()
        .filter_map(|(block, socket, location)| {
            Some(FastCgiRoute {
                socket: socket.clone(),
                location: location.clone(),
                address: address_of(*block, &blocks)?,
            })
        })
        .collect();
    for (_, v) in &blocks {
        for addr in &v.addresses {
            sites.push(site(v, addr, v.tls, &formats, &default_access, &default_error));
        }
    }
    // Ports no <VirtualHost> covers answer with the server-level settings.
    for (addr, tls, defined_at) in &listens {
        if !sites.iter().any(|s: &Site| port_of(&s.address) == port_of(addr)) {
            let v = Vhost { defined_at: defined_at.clone(), ..clone_of(&server) };
            sites.push(site(&v, addr, *tls || server.tls, &formats, &default_access, &default_error));
        }
    }
    Server { status, fastcgi: routes, ..Server::of(Kind::Apache, master, pid_file, sites) }
}

/// The modules Debian's and upstream's httpd have built in: `<IfModule>` on them always holds.
const STATIC_MODULES: [&str; 8] = [
    "core_module",
    "so_module",
    "watchdog_module",
    "http_module",
    "log_config_module",
    "logio_module",
    "version_module",
    "unixd_module",
];

/// Whether every `<IfModule>` around `d` holds for the modules loaded so far. Preflight reads every branch (a
/// path in either may be wrong); what runs is only the branch of the modules loaded — Debian's `Listen 443`
/// sits in `<IfModule ssl_module>` and is no site until mod_ssl is enabled.
fn in_loaded_modules(d: &Directive, loaded: &[String]) -> bool {
    d.sections.iter().all(|section| {
        let Some(inner) = section.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else { return true };
        let mut words = inner.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("ifmodule")) {
            return true;
        }
        let Some(arg) = words.next() else { return true };
        let (negated, module) = match arg.strip_prefix('!') {
            Some(m) => (true, m),
            None => (false, arg),
        };
        // `mod_ssl.c` is the source file's name for `ssl_module`.
        let module = match module.strip_prefix("mod_").and_then(|m| m.strip_suffix(".c")) {
            Some(short) => format!("{short}_module"),
            None => module.to_string(),
        };
        loaded.contains(&module) != negated
    })
}

fn clone_of(v: &Vhost) -> Vhost {
    Vhost {
        addresses: v.addresses.clone(),
        tls: v.tls,
        name: v.name.clone(),
        access: v.access.clone(),
        error: v.error.clone(),
        defined_at: v.defined_at.clone(),
    }
}

fn new_vhost(d: &Directive) -> Vhost {
    // The outermost section naming a VirtualHost: `<VirtualHost 127.0.0.1:8080 *:8081>`.
    let words: Vec<String> = d
        .sections
        .iter()
        .find(|s| s.to_lowercase().starts_with("<virtualhost"))
        .map(|s| {
            s.trim_start_matches('<').trim_end_matches('>').split_whitespace().skip(1).map(str::to_string).collect()
        })
        .unwrap_or_default();
    let mut addresses: Vec<String> = words.iter().filter_map(|w| local_address(w)).collect();
    one_per_port(&mut addresses);
    Vhost {
        addresses,
        tls: words.iter().any(|w| w.ends_with(":443")),
        name: None,
        access: None,
        error: None,
        defined_at: at(&d.file, d.line),
    }
}

/// `/server-status` from `<Location /server-status>` (or `<Location "/x">`).
fn location_of(section: &str) -> Option<String> {
    let inner = section.strip_prefix('<')?.strip_suffix('>')?;
    let (name, rest) = inner.split_once(char::is_whitespace)?;
    name.eq_ignore_ascii_case("location").then(|| rest.trim().trim_matches('"').to_string())
}

fn site(
    v: &Vhost,
    addr: &str,
    tls: bool,
    formats: &HashMap<String, String>,
    default_access: &Option<(PathBuf, String)>,
    default_error: &Option<PathBuf>,
) -> Site {
    let access = v.access.clone().or_else(|| default_access.clone()).map(|(path, format)| {
        let format = match formats.get(&format) {
            Some(defined) => defined.clone(),
            None if format.contains('%') => format,
            None if matches!(format.as_str(), "common" | "combined" | "vhost_combined") => format,
            None => return AccessLog { path, format: Err(format!("LogFormat {format:?} is not defined")) },
        };
        let format = lookout_logs::format::LogFormat::named_or_custom(&format)
            .map(|_| format.clone())
            .map_err(|e| format!("its LogFormat is not one lookout reads: {e}"));
        AccessLog { path, format }
    });
    Site {
        name: v.name.clone(),
        address: addr.to_string(),
        tls,
        access_log: access,
        error_log: v.error.clone().or_else(|| default_error.clone()),
        defined_at: v.defined_at.clone(),
    }
}
