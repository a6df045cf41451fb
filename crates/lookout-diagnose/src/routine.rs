//! Routine lookups: failing syscalls servers and PHP make on every request whether or not anything is wrong.
//!
//! When the whole site is down there is no successful request to compare a failing path with, so what is routine
//! has to be recognised from its shape inside the one request: DirectoryIndex negotiation (`index.html` missing,
//! then `index.php` found in the same directory), PHP's include_path walk (`lib/x.php` missing under one entry,
//! then found under a later one), per-directory config (`.htaccess`, `.user.ini`) and opcache's file-cache probes.
//! A missing file that is *not* followed by what makes it routine (no sibling index, no later namesake) stays a
//! possible cause.

use std::collections::HashSet;
use std::path::Path;

/// One path-taking syscall inside a request, in order: `errno` is `None` when it succeeded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lookup<'a> {
    pub path: &'a Path,
    pub errno: Option<&'a str>,
}

/// The indices of the failing lookups in `request` (one request's path syscalls, in order) that are routine.
pub(crate) fn routine_failures(request: &[Lookup<'_>]) -> HashSet<usize> {
    let mut routine = HashSet::new();
    for (i, l) in request.iter().enumerate() {
        if l.errno != Some("ENOENT") {
            // A permission denial on an index or .htaccess is a real problem (Apache answers 403 for it).
            continue;
        }
        let later_found = || request[i + 1..].iter().filter(|o| o.errno.is_none()).map(|o| o.path);
        if per_directory_config(l.path)
            || opcache_file_cache(l.path)
            || later_found().any(|found| other_index_beside(l.path, found) || same_name_elsewhere(l.path, found))
        {
            routine.insert(i);
        }
    }
    routine
}

/// `.htaccess` (Apache) and `.user.ini` (PHP CGI/FPM) are looked for in every directory on the way to a script.
fn per_directory_config(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| matches!(n, ".htaccess" | ".user.ini"))
}

/// opcache's file cache keeps `FILE_CACHE/SYSTEM_ID/full/path/of/script.php.bin`, where SYSTEM_ID is 32 hex
/// digits; a miss there just means the script was not cached yet.
fn opcache_file_cache(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "bin")
        && path
            .components()
            .any(|c| c.as_os_str().to_str().is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// Names DirectoryIndex / nginx `index` lists are made of: `index.html`, `index.php`, `default.htm`, `index`.
fn index_name(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next().unwrap_or(name);
    matches!(stem.to_ascii_lowercase().as_str(), "index" | "default").then_some(name)
}

/// `missing` is one index name and `found`, later in the same request, another one in the same directory: the
/// server tried its index names in turn and settled on `found`.
fn other_index_beside(missing: &Path, found: &Path) -> bool {
    matches!((index_name(missing), index_name(found)), (Some(a), Some(b)) if a != b)
        && missing.parent() == found.parent()
}

/// `missing` and `found` (later in the same request) end in the same relative name under different directories:
/// PHP tried each include_path entry in turn (`.:/usr/share/php`) and found the file under a later one.
fn same_name_elsewhere(missing: &Path, found: &Path) -> bool {
    missing != found && missing.file_name().is_some() && missing.file_name() == found.file_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(p: &str) -> Lookup<'_> {
        Lookup { path: Path::new(p), errno: Some("ENOENT") }
    }

    fn found(p: &str) -> Lookup<'_> {
        Lookup { path: Path::new(p), errno: None }
    }

    fn routine(request: &[Lookup<'_>]) -> Vec<usize> {
        let mut v: Vec<usize> = routine_failures(request).into_iter().collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn directory_index_negotiation_is_routine_only_when_another_index_is_found_beside_it() {
        let request = [
            failed("/srv/www/index.html"),
            failed("/srv/www/index.htm"),
            found("/srv/www/index.php"),
            failed("/srv/www/inc/settings.phpp"),
        ];
        assert_eq!(routine(&request), [0, 1], "the missing require stays a cause after the negotiation");
        // No sibling index found: the missing index is what fails the request.
        assert!(routine(&[failed("/srv/www/index.html"), found("/srv/www/style.css")]).is_empty());
        // Found before, or in another directory: not the negotiation.
        assert!(routine(&[found("/srv/www/index.php"), failed("/srv/www/index.html")]).is_empty());
        assert!(routine(&[failed("/srv/www/index.html"), found("/srv/www/admin/index.php")]).is_empty());
        // A denied index is a real problem.
        let denied =
            [Lookup { path: Path::new("/srv/www/index.html"), errno: Some("EACCES") }, found("/srv/www/index.php")];
        assert!(routine(&denied).is_empty());
    }

    #[test]
    fn the_include_path_walk_is_routine_when_a_later_entry_has_the_file() {
        let request =
            [failed("/srv/www/Mail/mime.php"), found("/usr/share/php/Mail/mime.php"), failed("/srv/www/lib/Cache.php")];
        assert_eq!(routine(&request), [0], "Cache.php is found nowhere: still a cause");
        // Same name found only before the miss: not a walk that succeeded.
        assert!(routine(&[found("/usr/share/php/x.php"), failed("/srv/www/x.php")]).is_empty());
    }

    #[test]
    fn per_directory_config_and_opcache_file_cache_misses_are_routine() {
        let request = [
            failed("/.user.ini"),
            failed("/srv/www/.user.ini"),
            failed("/srv/www/.htaccess"),
            failed("/var/cache/opcache/0123456789abcdef0123456789abcdef/srv/www/index.php.bin"),
            failed("/srv/www/data.bin"),
        ];
        assert_eq!(routine(&request), [0, 1, 2, 3]);
    }
}
