//! The masters of running web servers and PHP-FPM, from `/proc`, with the configuration each was started with.

use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterKind {
    Apache,
    Nginx,
    Fpm,
}

/// A server's master process (or a configuration named on the command line: no pid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Master {
    pub kind: MasterKind,
    pub pid: Option<i32>,
    /// `/proc/PID/comm`, or the program's usual name for a named configuration.
    pub command: String,
    pub config: PathBuf,
}

impl Master {
    pub fn named(kind: MasterKind, config: &Path) -> Master {
        let command = match kind {
            MasterKind::Apache => "apache2".to_string(),
            MasterKind::Nginx => "nginx".to_string(),
            MasterKind::Fpm => installed_fpm().unwrap_or_else(|| "php-fpm".to_string()),
        };
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Master { kind, pid: None, command, config: cwd.join(config) }
    }
}

/// The command name of the one PHP-FPM installed (`php-fpm8.2`, Debian's), as its processes are called.
fn installed_fpm() -> Option<String> {
    let dir = std::fs::read_dir("/usr/sbin").ok()?;
    let mut names: Vec<String> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().filter(|n| n.starts_with("php-fpm")).map(str::to_string))
        .collect();
    names.sort();
    (names.len() == 1).then(|| names.remove(0))
}

struct Proc {
    pid: i32,
    ppid: i32,
    comm: String,
    /// `argv`, split at NULs; nginx and FPM rewrite theirs into one title (`nginx: master process … -c F`).
    args: Vec<String>,
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so cut at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
        let comm = head.split_once(" (").map_or("", |(_, c)| c).to_string();
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push(Proc { pid, ppid, comm, args });
    }
    out.sort_by_key(|p| p.pid);
    out
}

fn kind_of(comm: &str) -> Option<MasterKind> {
    match comm {
        "apache2" | "httpd" => Some(MasterKind::Apache),
        "nginx" => Some(MasterKind::Nginx),
        c if c.starts_with("php-fpm") => Some(MasterKind::Fpm),
        _ => None,
    }
}

/// Every running master: a server process whose parent is not one of the same program (its workers are).
pub fn masters() -> Vec<Master> {
    let all = processes();
    let comm_of = |pid: i32| all.iter().find(|p| p.pid == pid).map(|p| p.comm.as_str());
    let mut out = Vec::new();
    for p in &all {
        let Some(kind) = kind_of(&p.comm) else { continue };
        if comm_of(p.ppid) == Some(p.comm.as_str()) {
            continue;
        }
        if let Some(config) = config_of(kind, &p.args, p.pid) {
            out.push(Master { kind, pid: Some(p.pid), command: p.comm.clone(), config });
        }
    }
    out
}

/// The configuration a master was started with.
fn config_of(kind: MasterKind, args: &[String], pid: i32) -> Option<PathBuf> {
    // nginx and FPM overwrite argv with a title: split it back into words.
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let after = |flag: &str| words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1)).copied();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|_| PathBuf::from("/"));
    match kind {
        MasterKind::Apache => {
            let dir = after("-d").map(PathBuf::from).or_else(|| environ(pid, "APACHE_CONFDIR").map(PathBuf::from));
            let file = after("-f");
            let (dir, default) = match dir {
                Some(d) => (d, "apache2.conf"),
                None if Path::new("/etc/apache2/apache2.conf").exists() => ("/etc/apache2".into(), "apache2.conf"),
                None => ("/etc/httpd".into(), "conf/httpd.conf"),
            };
            let dir = cwd.join(dir);
            Some(dir.join(file.unwrap_or(default)))
        }
        MasterKind::Nginx => {
            let prefix = after("-p").map(|p| cwd.join(p));
            match after("-c") {
                Some(c) => Some(prefix.unwrap_or(cwd).join(c)),
                None => Some(PathBuf::from("/etc/nginx/nginx.conf")),
            }
        }
        MasterKind::Fpm => {
            // "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"
            let title = args.join(" ");
            let inside = title.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).map(|(c, _)| c.to_string());
            inside.or_else(|| after("--fpm-config").or_else(|| after("-y")).map(str::to_string)).map(|c| cwd.join(c))
        }
    }
}

/// One variable of a process's environment (readable for one's own processes, or as root).
fn environ(pid: i32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
    })
}

/// The installed default configurations, for a machine where nothing runs yet.
pub fn installed_defaults() -> Vec<Master> {
    let mut out = Vec::new();
    for (kind, path) in [
        (MasterKind::Apache, "/etc/apache2/apache2.conf"),
        (MasterKind::Apache, "/etc/httpd/conf/httpd.conf"),
        (MasterKind::Nginx, "/etc/nginx/nginx.conf"),
    ] {
        if Path::new(path).is_file() {
            out.push(Master::named(kind, Path::new(path)));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/etc/php") {
        let mut versions: Vec<PathBuf> = dir.flatten().map(|e| e.path().join("fpm/php-fpm.conf")).collect();
        versions.sort();
        for conf in versions.into_iter().filter(|c| c.is_file()) {
            let version = conf.iter().nth(3).map(|v| v.to_string_lossy().into_owned()).unwrap_or_default();
            let mut m = Master::named(MasterKind::Fpm, &conf);
            m.command = format!("php-fpm{version}");
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split('\0').map(str::to_string).collect()
    }

    #[test]
    fn the_configuration_each_master_was_started_with() {
        let apache =
            config_of(MasterKind::Apache, &args("/usr/sbin/apache2\0-d\0/tmp/a\0-f\0/tmp/a/x.conf\0-k\0start"), 1);
        assert_eq!(apache, Some(PathBuf::from("/tmp/a/x.conf")));
        let relative = config_of(MasterKind::Apache, &args("apache2\0-d\0/srv/httpd\0-f\0conf/h.conf"), 1);
        assert_eq!(relative, Some(PathBuf::from("/srv/httpd/conf/h.conf")));
        let nginx =
            config_of(MasterKind::Nginx, &args("nginx: master process /usr/sbin/nginx -c /tmp/n/nginx.conf"), 1);
        assert_eq!(nginx, Some(PathBuf::from("/tmp/n/nginx.conf")));
        let plain = config_of(MasterKind::Nginx, &args("nginx: master process /usr/sbin/nginx -g daemon on;"), 1);
        assert_eq!(plain, Some(PathBuf::from("/etc/nginx/nginx.conf")));
        let fpm = config_of(MasterKind::Fpm, &args("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)"), 1);
        assert_eq!(fpm, Some(PathBuf::from("/etc/php/8.2/fpm/php-fpm.conf")));
        assert_eq!(kind_of("php-fpm8.2"), Some(MasterKind::Fpm));
        assert_eq!(kind_of("bash"), None);
    }
}
