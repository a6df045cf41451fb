//! Which `include_path` a PHP file starts with, before any `set_include_path` of its own. Production sets it in
//! more places than php.ini, and a bare `require 'lib/x.php'` that works there would otherwise be a false
//! "does not exist" here (or a true one missed). For each file, the first of:
//!
//! 1. the nearest `.user.ini` (`include_path = "…"`, read by PHP-FPM/CGI) or `.htaccess`
//!    (`php_value include_path "…"`, read by mod_php) in the file's directory or a directory above it, up to the
//!    PATH given — both apply to their directory and every directory below, and a deeper one overrides. Where one
//!    directory has both, `.user.ini` is taken (PHP-FPM is the usual set-up; mod_php ignores `.user.ini`).
//!    A relative entry other than `.` is taken relative to the directory of the file that sets it;
//! 2. the `php_value`/`php_admin_value include_path` of the Apache configuration (`--apache-config`) whose
//!    `<Directory P>` is the deepest containing the file; else one set outside any `<Directory>` (server or
//!    `<VirtualHost>` level: the last one read, as a virtual host's comes after the server's). One inside
//!    `<Location>`, `<Files>` or a `…Match` section is not used: it cannot be tied to a directory statically;
//! 3. php.ini's (`--php-ini`), else `.`.
//!
//! `.` always stays the including script's directory, as in [`crate::resolve::candidates`]. A `php_admin_value`
//! in Apache cannot really be overridden by `.htaccess`; preflight does not model that (it is rare to set both).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::resolve::normalize;
use crate::webconfig::PhpIncludePath;

/// The include paths the files start with (see the module's documentation for the rule).
#[derive(Debug, Default)]
pub struct IncludePaths {
    /// Directory → the include path of the nearest `.user.ini`/`.htaccess` at or above it (`None`: there is none).
    local: HashMap<PathBuf, Option<Vec<u8>>>,
    /// Apache `<Directory P>` → its include path (the last one set for P).
    apache_dirs: Vec<(PathBuf, Vec<u8>)>,
    /// Apache's, set outside any `<Directory>`.
    apache_any: Option<Vec<u8>>,
    php_ini: Vec<u8>,
}

impl IncludePaths {
    /// Reads the `.user.ini`/`.htaccess` of every directory holding one of `files`, and the directories above it
    /// up to the root among `roots` (absolute, real) that contains it.
    pub fn build(files: &[PathBuf], roots: &[PathBuf], apache: &[PhpIncludePath], php_ini: Vec<u8>) -> IncludePaths {
        let mut paths = IncludePaths { php_ini, ..IncludePaths::default() };
        for file in files {
            let Some(dir) = file.parent() else { continue };
            let Some(root) = roots.iter().filter(|r| dir.starts_with(r)).max_by_key(|r| r.as_os_str().len()) else {
                continue;
            };
            paths.local_for(dir, root);
        }
        for p in apache {
            match directory_of(&p.context) {
                Scope::Directory(dir) => {
                    paths.apache_dirs.retain(|(d, _)| *d != dir);
                    paths.apache_dirs.push((dir, p.value.clone().into_bytes()));
                }
                Scope::Anywhere => paths.apache_any = Some(p.value.clone().into_bytes()),
                Scope::Unknown => {}
            }
        }
        paths
    }

    /// The include path `file` starts with.
    pub fn for_file(&self, file: &Path) -> &[u8] {
        if let Some(Some(local)) = file.parent().and_then(|d| self.local.get(d)) {
            return local;
        }
        let apache = self
            .apache_dirs
            .iter()
            .filter(|(dir, _)| file.starts_with(dir))
            .max_by_key(|(dir, _)| dir.as_os_str().len())
            .map(|(_, path)| path)
            .or(self.apache_any.as_ref());
        apache.map_or(&self.php_ini, |p| p)
    }

    /// The nearest `.user.ini`/`.htaccess` include path at or above `dir` (up to `root`), remembered per directory.
    fn local_for(&mut self, dir: &Path, root: &Path) -> Option<Vec<u8>> {
        if let Some(known) = self.local.get(dir) {
            return known.clone();
        }
        let found = match read_local(dir) {
            Some(path) => Some(path),
            None => match dir.parent() {
                Some(parent) if dir != root && parent.starts_with(root) => self.local_for(parent, root),
                _ => None,
            },
        };
        self.local.insert(dir.to_path_buf(), found.clone());
        found
    }
}

/// The include path `dir`'s own `.user.ini` or `.htaccess` sets, relative entries made absolute against `dir`.
fn read_local(dir: &Path) -> Option<Vec<u8>> {
    let value = std::fs::read(dir.join(".user.ini"))
        .ok()
        .and_then(|text| crate::include_path_of_ini(&text))
        .or_else(|| std::fs::read(dir.join(".htaccess")).ok().and_then(|text| include_path_of_htaccess(&text)))?;
    Some(anchored(&value, dir))
}

/// `php_value include_path "…"` from an `.htaccess` (the last one wins, like Apache's merge). `php_admin_value`
/// is not allowed there (Apache answers 500), so it is not read.
pub fn include_path_of_htaccess(text: &[u8]) -> Option<Vec<u8>> {
    let mut found = None;
    for line in text.split(|&b| b == b'\n') {
        let mut words = line.trim_ascii().splitn(2, |b| b.is_ascii_whitespace());
        let (Some(directive), Some(rest)) = (words.next(), words.next()) else { continue };
        if !directive.eq_ignore_ascii_case(b"php_value") {
            continue;
        }
        let mut rest = rest.trim_ascii().splitn(2, |b| b.is_ascii_whitespace());
        let (Some(name), Some(value)) = (rest.next(), rest.next()) else { continue };
        if !name.eq_ignore_ascii_case(b"include_path") {
            continue;
        }
        let value = value.trim_ascii();
        let value = match value.strip_prefix(b"\"") {
            Some(quoted) => quoted.split(|&b| b == b'"').next().unwrap_or(quoted),
            None => value.split(|b| b.is_ascii_whitespace()).next().unwrap_or(value),
        };
        found = Some(value.to_vec());
    }
    found
}

/// Each relative entry of `include_path` other than `.` joined to `dir` (absolute entries and `.` unchanged).
pub fn anchored(include_path: &[u8], dir: &Path) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = include_path
        .split(|&b| b == b':')
        .map(|e| {
            let path = Path::new(std::ffi::OsStr::from_bytes(e));
            if e.is_empty() || e == b"." || path.is_absolute() {
                e.to_vec()
            } else {
                normalize(&dir.join(path)).as_os_str().as_bytes().to_vec()
            }
        })
        .collect();
    entries.join(&b':')
}

/// Where an Apache `php_value` applies, from its enclosing sections.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    Directory(PathBuf),
    Anywhere,
    Unknown,
}

/// From `<VirtualHost *:80> <Directory "/srv/app">` (as [`PhpIncludePath::context`] gives it): the innermost
/// `<Directory>`'s path.
fn directory_of(context: &str) -> Scope {
    let mut scope = Scope::Anywhere;
    for section in context.split('<').skip(1) {
        let section = section.trim_end().trim_end_matches('>');
        let mut words = section.split_whitespace();
        let name = words.next().unwrap_or_default().to_ascii_lowercase();
        match name.as_str() {
            "directory" => {
                let path = words.collect::<Vec<_>>().join(" ");
                let path = path.trim_matches('"');
                if path.starts_with('/') {
                    scope = Scope::Directory(normalize(Path::new(path)));
                } else {
                    return Scope::Unknown;
                }
            }
            "location" | "locationmatch" | "files" | "filesmatch" | "directorymatch" => return Scope::Unknown,
            _ => {}
        }
    }
    scope
}

#[cfg(test)]
mod tests;
