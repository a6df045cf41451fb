//! PHP-FPM's configuration: `php-fpm.conf` with its `include` globs, `[global]` and one section per pool (an INI
//! file: `key = value`, `;` comments). Only what lookout uses is read.

use std::path::{Path, PathBuf};

use super::Pool;
use super::processes::Master;

pub fn read(master: &Master) -> Result<Vec<Pool>, String> {
    let mut state = State { section: String::new(), error_log: None, pools: Vec::new(), files: 0 };
    let text = std::fs::read_to_string(&master.config)
        .map_err(|e| format!("PHP-FPM: cannot read {}: {e}", master.config.display()))?;
    state.file(&master.config, &text, 0);
    let prefix = master.config.parent().unwrap_or(Path::new("/")).to_path_buf();
    let error_log = state.error_log.map(|l| prefix.join(l));
    let pools = state
        .pools
        .into_iter()
        .map(|mut p| {
            p.error_log.clone_from(&error_log);
            p.command.clone_from(&master.command);
            p
        })
        .collect();
    Ok(pools)
}

struct State {
    section: String,
    error_log: Option<String>,
    pools: Vec<Pool>,
    files: usize,
}

impl State {
    fn file(&mut self, path: &Path, text: &str, depth: usize) {
        self.files += 1;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                self.section = name.trim().to_string();
                if self.section != "global" {
                    self.pools.push(Pool {
                        name: self.section.clone(),
                        config: path.to_path_buf(),
                        listen: String::new(),
                        status_path: None,
                        max_children: None,
                        error_log: None,
                        command: String::new(),
                    });
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let (key, value) = (key.trim(), value.trim().trim_matches('"').trim_matches('\''));
            match (key, self.section.as_str()) {
                ("include", _) if depth < 8 && self.files < 1000 => {
                    for f in glob(path.parent().unwrap_or(Path::new("/")), value) {
                        if let Ok(t) = std::fs::read_to_string(&f) {
                            self.file(&f, &t, depth + 1);
                        }
                    }
                }
                ("error_log", "global") => self.error_log = Some(value.to_string()),
                (_, "global") => {}
                ("listen", _) => self.pool(|p| p.listen = value.to_string()),
                ("pm.status_path", _) => self.pool(|p| p.status_path = Some(value.to_string())),
                ("pm.max_children", _) => self.pool(|p| p.max_children = value.parse().ok()),
                _ => {}
            }
        }
    }

    fn pool(&mut self, set: impl FnOnce(&mut Pool)) {
        if let Some(p) = self.pools.last_mut() {
            set(p);
        }
    }
}

/// `include = /etc/php/8.2/fpm/pool.d/*.conf`: a `*` in the file name only (FPM's own use), sorted.
fn glob(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = base.join(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Some((before, after)) = name.split_once('*') else { return vec![path.clone()] };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(before) && n.ends_with(after) && n.len() >= name.len() - 1)
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}
