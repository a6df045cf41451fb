//! An nginx server from its directives: a site per `server` block and `listen`, with the `access_log` and
//! `error_log` in force (an `http`-level one when the block has none) and its `log_format` translated,
//! the `pid` file, `stub_status` locations and the `fastcgi_pass unix:` sockets with their locations.

use std::collections::HashMap;
use std::path::PathBuf;

use lookout_preflight::webconfig::{Directive, nginx_directives};

use super::apache::local_address;
use super::processes::Master;
use super::{AccessLog, FastCgiRoute, Kind, Server, Site, StatusPage, at, nginx_format, one_per_port};

pub fn read(master: &Master) -> Result<Server, String> {
    let directives =
        nginx_directives(&master.config).map_err(|e| format!("nginx: cannot read {}: {e}", master.config.display()))?;
    Ok(from_directives(master, &directives))
}

#[derive(Default)]
struct Block {
    listens: Vec<(String, bool)>,
    name: Option<String>,
    access: Option<(PathBuf, String)>,
    error: Option<PathBuf>,
    defined_at: String,
    status: Vec<String>,
    fastcgi: Vec<(PathBuf, String)>,
}

pub(super) fn from_directives(master: &Master, directives: &[Directive]) -> Server {
    let mut formats: HashMap<String, String> = HashMap::new();
    let (mut http_access, mut http_error, mut main_error, mut pid_file) = (None, None, None, None);
    let mut blocks: HashMap<usize, Block> = HashMap::new();
    for d in directives {
        let first = d.args.first().map(String::as_str).unwrap_or("");
        let block = d
            .block
            .map(|b| blocks.entry(b).or_insert_with(|| Block { defined_at: at(&d.file, d.line), ..Block::default() }));
        let location = d.sections.iter().rev().find_map(|s| location_of(s));
        match d.name.as_str() {
            "log_format" if d.args.len() >= 2 => {
                let parts: Vec<&str> =
                    d.args[1..].iter().map(String::as_str).filter(|a| !a.starts_with("escape=")).collect();
                formats.insert(first.to_string(), parts.concat());
            }
            "pid" => pid_file = d.path(0),
            "error_log" if first != "stderr" && !first.starts_with("syslog:") && !first.starts_with("memory:") => {
                match (block, d.sections.is_empty()) {
                    (Some(b), _) => b.error = d.path(0),
                    (None, true) => main_error = d.path(0),
                    (None, false) => http_error = d.path(0),
                }
            }
            "access_log" if first != "off" && !first.starts_with("syslog:") => {
                let entry = d.path(0).map(|p| (p, d.args.get(1).cloned().unwrap_or_else(|| "combined".into())));
                match block {
                    Some(b) if location.is_none() && b.access.is_none() => b.access = entry,
                    Some(_) => {}
                    None => http_access = http_access.or(entry),
                }
            }
            "listen" => {
                if let (Some(b), Some(addr)) = (block, local_address(first)) {
                    b.listens.push((addr, d.args.iter().any(|a| a == "ssl" || a == "quic")));
                }
            }
            "server_name" => {
                if let Some(b) = block {
                    b.name = d
                        .args
                        .iter()
                        .find(|n| {
                            !n.is_empty() && *n != "_" && !n.starts_with('~') && n.parse::<std::net::IpAddr>().is_err()
                        })
                        .cloned();
                }
            }
            "stub_status" => {
                if let (Some(b), Some(l)) = (block, location) {
                    b.status.push(l);
                }
            }
            "fastcgi_pass" => {
                if let (Some(b), Some(socket)) = (block, first.strip_prefix("unix:")) {
                    b.fastcgi.push((PathBuf::from(socket), location.unwrap_or_default()));
                }
            }
            _ => {}
        }
    }
    let error = http_error.or(main_error);
    let mut numbered: Vec<(usize, Block)> = blocks.into_iter().collect();
    numbered.sort_by_key(|(n, _)| *n);
    let (mut sites, mut status, mut fastcgi) = (Vec::new(), Vec::new(), Vec::new());
    for (_, b) in &mut numbered {
        if b.listens.is_empty() {
            b.listens.push(("127.0.0.1:80".into(), false)); // nginx's default for a server without listen
        }
        let mut addresses: Vec<String> = b.listens.iter().map(|(a, _)| a.clone()).collect();
        one_per_port(&mut addresses);
        b.listens.retain(|(a, _)| addresses.contains(a));
        let addr = b.listens[0].0.clone();
        status.extend(b.status.iter().map(|l| StatusPage { kind: "nginx", url: format!("http://{addr}{l}") }));
        fastcgi.extend(b.fastcgi.iter().map(|(socket, location)| FastCgiRoute {
            socket: socket.clone(),
            location: location.clone(),
            address: addr.clone(),
        }));
        let access = b.access.clone().or_else(|| http_access.clone()).map(|(path, name)| AccessLog {
            path,
            format: match name.as_str() {
                "combined" => Ok("combined".to_string()),
                other => match formats.get(other) {
                    Some(f) => nginx_format::to_apache(f).map_err(|e| format!("log_format {other}: {e}")),
                    None => Err(format!("log_format {other:?} is not defined")),
                },
            },
        });
        for (addr, tls) in &b.listens {
            sites.push(Site {
                name: b.name.clone(),
                address: addr.clone(),
                tls: *tls,
                access_log: access.clone(),
                error_log: b.error.clone().or_else(|| error.clone()),
                defined_at: b.defined_at.clone(),
            });
        }
    }
    Server { status, fastcgi, ..Server::of(Kind::Nginx, master, pid_file, sites) }
}

/// `/nginx-status` from `location = /nginx-status` or `location /nginx-status` (not a regex location).
fn location_of(section: &str) -> Option<String> {
    let mut words = section.split_whitespace();
    if words.next()? != "location" {
        return None;
    }
    let next = words.next()?;
    let path = if next == "=" || next == "^~" { words.next()? } else { next };
    (path.starts_with('/')).then(|| path.to_string()).or_else(|| (next.starts_with('~')).then(String::new))
}
