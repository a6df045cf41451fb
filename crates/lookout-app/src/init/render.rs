//! The lookout.toml `lookout init` writes: commented, every value quoted as TOML, every name unique, and what
//! could not be set up said at the top and where it would have gone.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Found, Pool, Server, Site, safe_name};

/// A TOML basic string (JSON's string escapes are TOML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn qp(p: &Path) -> String {
    q(&p.to_string_lossy())
}

/// Names already given (targets, logs and status sources share one namespace).
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn take(&mut self, wanted: &str) -> String {
        let base = safe_name(wanted);
        let mut name = base.clone();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// The configuration for what was found; `notes` gains what was left out.
pub fn render(found: &Found, written_on: &str) -> (String, Vec<String>) {
    let mut notes = found.notes.clone();
    let mut out = String::new();
    let mut names = Names::default();
    let _ = writeln!(out, "# lookout.toml written by `lookout init` on {written_on}, from what runs on this machine:");
    for s in &found.servers {
        let pid = s.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let sites = lookout_core::text::count(s.sites.len() as u64, "site", None);
        let _ = writeln!(out, "#   {}{pid}: {} — {sites}", s.kind.name(), s.config.display());
    }
    for p in &found.pools {
        let _ = writeln!(out, "#   PHP-FPM pool {} ({}), listening on {}", p.name, p.config.display(), p.listen);
    }
    let body = body(found, &mut names, &mut notes);
    if !notes.is_empty() {
        let _ = writeln!(out, "# Not set up:");
        for n in &notes {
            let _ = writeln!(out, "#   - {n}");
        }
    }
    let _ = writeln!(
        out,
        "# Every key is explained in lookout.example.toml. Try it once with `lookout check --config lookout.toml`,\n\
         # then watch with `lookout run --config lookout.toml` (diagnosis traces workers: run it as root)."
    );
    out.push_str(&body);
    (out, notes)
}

fn body(found: &Found, names: &mut Names, notes: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut logs_written: Vec<PathBuf> = Vec::new();
    for server in &found.servers {
        let pools: Vec<&Pool> =
            found.pools.iter().filter(|p| server.fastcgi.iter().any(|r| same_socket(&r.socket, &p.listen))).collect();
        if server.sites.is_empty() {
            notes.push(format!("{} ({}): no site listens", server.kind.name(), server.config.display()));
        }
        for site in &server.sites {
            site_section(&mut out, server, site, &pools, names, &mut logs_written, notes);
        }
        for page in &server.status {
            let name = names.take(&format!("{}-status", server.command));
            status_section(&mut out, &name, page.kind, &page.url, None, &format!("{} status page", server.kind.name()));
        }
    }
    for pool in &found.pools {
        let Some(path) = &pool.status_path else {
            notes.push(format!(
                "PHP-FPM pool {}: no pm.status_path, so its queue and busy workers are not read",
                pool.name
            ));
            continue;
        };
        let route = found
            .servers
            .iter()
            .flat_map(|s| &s.fastcgi)
            .find(|r| same_socket(&r.socket, &pool.listen) && r.location == *path);
        match route {
            Some(r) => {
                let name = names.take(&format!("fpm-{}-status", pool.name));
                let url = format!("http://{}{path}", r.address);
                let what = format!("PHP-FPM pool {}'s status page, routed by the server on {}", pool.name, r.address);
                status_section(&mut out, &name, "php-fpm", &url, pool.max_children, &what);
            }
            None => notes.push(format!(
                "PHP-FPM pool {}: pm.status_path {path} is not routed by any web server found (add a location for \
                 it that passes to {}, then a [[status]] type = \"php-fpm\")",
                pool.name, pool.listen
            )),
        }
    }
    let mut commands: Vec<&str> = found.servers.iter().map(|s| s.command.as_str()).collect();
    commands.extend(found.pools.iter().map(|p| p.command.as_str()));
    let mut seen = BTreeSet::new();
    for command in commands.into_iter().filter(|c| !c.is_empty()) {
        if seen.insert(command) {
            let _ = writeln!(
                out,
                "\n# Fires when no {command} process runs, or its oldest one restarted.\n[[process]]\nname = {}",
                q(command)
            );
        }
    }
    out
}

fn same_socket(socket: &Path, listen: &str) -> bool {
    socket == Path::new(listen)
}

#[allow(clippy::too_many_arguments)]
fn site_section(
    out: &mut String,
    server: &Server,
    site: &Site,
    pools: &[&Pool],
    names: &mut Names,
    logs_written: &mut Vec<PathBuf>,
    notes: &mut Vec<String>,
) {
    let port = super::port_of(&site.address);
    let wanted = match &site.name {
        Some(n) => format!("{n}-{port}"),
        None => format!("{}-{port}", server.command),
    };
    let name = names.take(&wanted);
    let scheme = if site.tls { "https" } else { "http" };
    let _ = writeln!(
        out,
        "\n# {} site {}on {} ({})",
        server.kind.name(),
        site.name.as_ref().map(|n| format!("{n} ")).unwrap_or_default(),
        site.address,
        site.defined_at
    );
    let _ = writeln!(out, "[[target]]\nname = {}\nurl = {}", q(&name), q(&format!("{scheme}://{}/", site.address)));
    if let Some(host) = &site.name {
        let _ = writeln!(out, "headers = {{ Host = {} }}", q(host));
    }
    if site.tls {
        let _ = writeln!(
            out,
            "verify_tls = false                  # its certificate names the site, not {}; add a tls target on the \
             site's name to watch expiry",
            site.address
        );
    }
    let _ = writeln!(
        out,
        "group = {}\n# A front page may redirect or ask for a login: a 5xx or a PHP error printed into it fails.\n\
         conditions = [\"[STATUS] < 500\", {}]",
        q(&name),
        q("[BODY] not contains \"Fatal error\"")
    );
    let mut error_logs: Vec<PathBuf> = site.error_log.iter().cloned().collect();
    for p in pools {
        if let Some(log) = &p.error_log
            && !error_logs.contains(log)
        {
            error_logs.push(log.clone());
        }
    }
    let _ = writeln!(out, "\n[target.diagnose]");
    if !error_logs.is_empty() {
        let list: Vec<String> = error_logs.iter().map(|p| qp(p)).collect();
        let _ = writeln!(out, "error_log = [{}]", list.join(", "));
    }
    match &server.pid_file {
        Some(pid) => {
            let _ = writeln!(out, "pid_file = {}", qp(pid));
        }
        None => {
            let _ = writeln!(out, "processes = [{}]", q(&server.command));
        }
    }
    if !pools.is_empty() {
        let commands: BTreeSet<&str> = pools.iter().map(|p| p.command.as_str()).collect();
        let _ = writeln!(
            out,
            "# PHP runs in PHP-FPM here ({}): to trace it, set processes = [{}] instead of pid_file.",
            commands.iter().copied().collect::<Vec<_>>().join(", "),
            commands.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
        );
    }
    let access = site.access_log.as_ref().filter(|a| match &a.format {
        Ok(_) => true,
        Err(why) => {
            notes.push(format!("{}: access log {} is not read: {why}", name, a.path.display()));
            false
        }
    });
    let key = access.map(|a| a.path.clone()).or_else(|| site.error_log.clone());
    let Some(key) = key else {
        notes.push(format!("{name}: no access or error log to follow"));
        return;
    };
    if logs_written.contains(&key) {
        return; // another site of the same server writes the same log: one [[log]] reads it
    }
    logs_written.push(key);
    let log_name = names.take(&format!("{name}-log"));
    let _ = writeln!(
        out,
        "\n# Its logs: the 5xx ratio pages at 5 % (warns at 2 % from 120 requests a minute), PHP errors too.\n\
         [[log]]\nname = {}",
        q(&log_name)
    );
    if let Some(a) = access
        && let Ok(format) = &a.format
    {
        let _ = writeln!(out, "access = {}\nformat = {}", qp(&a.path), q(format));
    }
    if let Some(e) = &site.error_log {
        let _ = writeln!(out, "error = {}\nerror_format = {}", qp(e), q(server.kind.error_format()));
    }
    let _ = writeln!(
        out,
        "group = {}\nfire_when = [\"[5XX_RATIO] > 5%\", {}, {}]",
        q(&name),
        q("[ERROR_LOG] matches \"PHP (Fatal|Parse) error\""),
        q("[ERROR_LOG] matches \"AH00161|reached pm.max_children\"")
    );
    let _ = writeln!(out, "warn_when = [\"[5XX_RATIO] > 2%\"]");
}

fn status_section(out: &mut String, name: &str, kind: &str, url: &str, workers: Option<u32>, what: &str) {
    let _ = writeln!(out, "\n# The {what}.\n[[status]]\nname = {}\ntype = {}\nurl = {}", q(name), q(kind), q(url));
    if let Some(w) = workers {
        let _ = writeln!(out, "workers = {w}                         # pm.max_children: for [WORKER_SATURATION]");
    }
}
