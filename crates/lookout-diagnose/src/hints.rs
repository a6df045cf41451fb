//! What was probably meant: for a path that does not exist, the closest existing names (edit distance, case,
//! extension) and how they differ, the same path with other case at every step, a symlink pointing nowhere — or,
//! when a directory on the way is missing, the deepest existing ancestor and the names closest to the first
//! missing component; for a path that cannot be read, who owns each step and which permission is missing where.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Suggestions kept per hint.
const MAX_SUGGESTIONS: usize = 3;

/// Why a path does not resolve, and the names closest to what was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Missing {
    /// The directory exists; the last component does not.
    File { path: PathBuf, suggestions: Vec<PathBuf> },
    /// A directory on the way does not exist.
    Directory { path: PathBuf, deepest_existing: PathBuf, missing: String, suggestions: Vec<PathBuf> },
}

impl Missing {
    pub fn suggestions(&self) -> &[PathBuf] {
        match self {
            Missing::File { suggestions, .. } | Missing::Directory { suggestions, .. } => suggestions,
        }
    }
}

/// Explains an ENOENT for an absolute `path`; `None` if it exists after all (or is not absolute).
pub fn enoent(path: &Path) -> Option<Missing> {
    if !path.is_absolute() || path.symlink_metadata().is_ok() {
        return None;
    }
    // Walk down from the root to the first component that does not exist.
    let mut existing = PathBuf::from("/");
    let components: Vec<Component<'_>> = path.components().collect();
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { continue };
        let next = existing.join(name);
        if next.symlink_metadata().is_ok() {
            existing = next;
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        let suggestions: Vec<PathBuf> = closest_names(&existing, &name).into_iter().map(|n| existing.join(n)).collect();
        let is_last = i == components.len() - 1;
        return Some(if is_last {
            Missing::File { path: path.to_path_buf(), suggestions }
        } else {
            Missing::Directory { path: path.to_path_buf(), deepest_existing: existing, missing: name, suggestions }
        });
    }
    None
}

/// Names in `dir` closest to `wanted`, best first: same name in another case, same stem with another
/// extension, then small edit distances.
pub fn closest_names(dir: &Path, wanted: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let wanted_lower = wanted.to_lowercase();
    let (wanted_stem, _) = split_ext(wanted);
    let mut scored: Vec<(usize, String)> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| {
            let score = if name.to_lowercase() == wanted_lower {
                0
            } else {
                let d = strsim::damerau_levenshtein(wanted, &name);
                let same_stem = split_ext(&name).0 == wanted_stem;
                let limit = 2.max(wanted.chars().count() / 3);
                if same_stem {
                    1 + d.min(2)
                } else if d <= limit {
                    2 + d
                } else {
                    return None;
                }
            };
            Some((score, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, n)| n).collect()
}

/// How a suggestion differs from the name asked for — what to tell people, since each points at a different
/// mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    /// `Settings.php` for `settings.php`: works on the developer's macOS or Windows laptop, fails on Linux.
    Case,
    /// `settings.phpp` for `settings.php`, `footer.php` for `footer.inc`.
    Extension,
    /// Any other small edit.
    Spelling,
}

impl Difference {
    /// Between the name asked for and an existing one.
    pub fn between(wanted: &str, existing: &str) -> Difference {
        if wanted != existing && wanted.to_lowercase() == existing.to_lowercase() {
            Difference::Case
        } else if split_ext(wanted).0 == split_ext(existing).0 {
            Difference::Extension
        } else {
            Difference::Spelling
        }
    }

    /// What the summary adds after "did you mean …?", if anything: only a difference of case needs saying (the
    /// others are plain to see, and "it works on my machine" is not).
    pub fn says(self) -> Option<&'static str> {
        match self {
            Difference::Case => Some("it differs only by case — code written on a case-insensitive system?"),
            Difference::Extension | Difference::Spelling => None,
        }
    }
}

impl Missing {
    /// The best suggestion and how it differs from the name that was asked for (the file's, or the missing
    /// directory's).
    pub fn best(&self) -> Option<(&Path, Difference)> {
        let best = self.suggestions().first()?;
        let wanted = match self {
            Missing::File { path, .. } => path.file_name()?.to_string_lossy().into_owned(),
            Missing::Directory { missing, .. } => missing.clone(),
        };
        let existing = best.file_name()?.to_string_lossy();
        Some((best.as_path(), Difference::between(&wanted, &existing)))
    }
}

/// The existing path that `path` names when case is ignored at every step (one match per step, else `None`):
/// `/www/Inc/Settings.php` → `/www/inc/settings.php`. `None` when `path` exists as written.
pub fn ignoring_case(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || path.symlink_metadata().is_ok() {
        return None;
    }
    let mut found = PathBuf::from("/");
    for c in path.components().take(MAX_DEPTH) {
        let Component::Normal(name) = c else { continue };
        let exact = found.join(name);
        if exact.symlink_metadata().is_ok() {
            found = exact;
            continue;
        }
        let wanted = name.to_string_lossy().to_lowercase();
        let mut matches = std::fs::read_dir(&found)
            .ok()?
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().to_lowercase() == wanted)
            .take(2);
        let (Some(one), None) = (matches.next(), matches.next()) else { return None };
        found = found.join(one);
    }
    (found != path).then_some(found)
}

/// Components walked at most (a path deeper than this is not a path a server was asked for).
const MAX_DEPTH: usize = 256;

/// A symlink that points nowhere: its target, when `path` is a link whose target does not exist.
pub fn dangling(path: &Path) -> Option<PathBuf> {
    let meta = path.symlink_metadata().ok()?;
    if !meta.file_type().is_symlink() || path.metadata().is_ok() {
        return None;
    }
    std::fs::read_link(path).ok()
}

fn split_ext(name: &str) -> (&str, &str) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (name, ""),
    }
}

/// One step of a path, as the kernel checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, e.g. `0o750`.
    pub mode: u32,
    pub is_dir: bool,
    /// What the process lacks here, if anything: `search (x)` on a directory, `read (r)` on the file.
    pub missing: Option<String>,
}

/// Explains an EACCES for `path` opened for reading by a process with `uid` and `gids`: each existing step from
/// the root, its owner and mode, and the permission that is missing where.
pub fn eacces(path: &Path, uid: u32, gids: &[u32]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut current = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = vec![current.clone()];
    for c in path.components() {
        if let Component::Normal(name) = c {
            current = current.join(name);
            todo.push(current.clone());
        }
    }
    let last = todo.len().saturating_sub(1);
    for (i, p) in todo.into_iter().enumerate() {
        let Ok(meta) = std::fs::metadata(&p) else { break };
        let mode = meta.mode() & 0o7777;
        let is_dir = meta.is_dir();
        let (needed, label) = if i == last && !is_dir { (0o4, "read (r)") } else { (0o1, "search (x)") };
        let class_bits = if uid == 0 {
            // root passes r and x checks on anything with at least one x bit (for x) or always (for r).
            if needed == 0o1 && mode & 0o111 == 0 { 0 } else { 0o7 }
        } else if meta.uid() == uid {
            (mode >> 6) & 0o7
        } else if gids.contains(&meta.gid()) {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        let missing = (class_bits & needed == 0).then(|| label.to_string());
        steps.push(Step { path: p, uid: meta.uid(), gid: meta.gid(), mode, is_dir, missing });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("www/inc")).unwrap();
        for f in ["settings.php", "Header.php", "footer.inc", "db.php", "unrelated-name.txt"] {
            std::fs::write(dir.path().join("www/inc").join(f), "x").unwrap();
        }
        dir
    }

    #[test]
    fn misspelled_extension_suggests_the_real_file() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let hint = enoent(&inc.join("settings.phpp")).unwrap();
        assert_eq!(
            hint,
            Missing::File { path: inc.join("settings.phpp"), suggestions: vec![inc.join("settings.php")] }
        );
    }

    #[test]
    fn case_and_other_extensions_rank_first() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        assert_eq!(enoent(&inc.join("header.php")).unwrap().suggestions(), [inc.join("Header.php")]);
        assert_eq!(enoent(&inc.join("footer.php")).unwrap().suggestions(), [inc.join("footer.inc")]);
        assert!(enoent(&inc.join("completely-different")).unwrap().suggestions().is_empty());
        assert_eq!(enoent(&inc.join("settings.php")), None, "it exists");
        assert_eq!(enoent(Path::new("relative/path")), None);
    }

    #[test]
    fn differences_are_named() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let case = enoent(&inc.join("header.php")).unwrap();
        assert_eq!(case.best(), Some((inc.join("Header.php").as_path(), Difference::Case)));
        assert_eq!(
            Difference::Case.says(),
            Some("it differs only by case — code written on a case-insensitive system?")
        );
        let ext = enoent(&inc.join("settings.phpp")).unwrap();
        assert_eq!(ext.best().map(|b| b.1), Some(Difference::Extension));
        let typo = enoent(&inc.join("setings.php")).unwrap();
        assert_eq!(typo.best().map(|b| b.1), Some(Difference::Spelling));
        let dir_case = enoent(&dir.path().join("www/INC/settings.php")).unwrap();
        assert_eq!(dir_case.best().map(|b| b.1), Some(Difference::Case));
    }

    #[test]
    fn a_path_that_exists_ignoring_case_is_found_whole() {
        let dir = tree();
        let www = dir.path().join("www");
        assert_eq!(ignoring_case(&www.join("INC/header.PHP")), Some(www.join("inc/Header.php")));
        assert_eq!(ignoring_case(&www.join("inc/Header.php")), None, "it exists as written");
        assert_eq!(ignoring_case(&www.join("inc/nothing.php")), None);
        assert_eq!(ignoring_case(Path::new("relative")), None);
        // Two names equal but for case: ambiguous, no answer.
        std::fs::write(www.join("inc/DB.php"), "x").unwrap();
        assert_eq!(ignoring_case(&www.join("inc/Db.php")), None);
    }

    #[test]
    fn dangling_symlinks_name_their_target() {
        let dir = tree();
        let link = dir.path().join("www/inc/getid3.php");
        std::os::unix::fs::symlink("/nonexistent-lookout/getid3.php", &link).unwrap();
        assert_eq!(dangling(&link), Some(PathBuf::from("/nonexistent-lookout/getid3.php")));
        assert_eq!(dangling(&dir.path().join("www/inc/db.php")), None);
        assert_eq!(dangling(&dir.path().join("www/inc/nothing")), None);
    }

    #[test]
    fn a_missing_directory_names_the_deepest_existing_ancestor() {
        let dir = tree();
        let www = dir.path().join("www");
        let hint = enoent(&www.join("incc/settings.php")).unwrap();
        assert_eq!(
            hint,
            Missing::Directory {
                path: www.join("incc/settings.php"),
                deepest_existing: www.clone(),
                missing: "incc".into(),
                suggestions: vec![www.join("inc")],
            }
        );
    }

    #[test]
    fn permission_steps_say_what_is_missing_where() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let file = inc.join("settings.php");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        // Someone else (not the owner, not in its group) cannot read a 0600 file.
        let other_uid = meta.uid().wrapping_add(12345);
        let steps = eacces(&file, other_uid, &[meta.gid().wrapping_add(999)]);
        let last = steps.last().unwrap();
        assert_eq!(last.path, file);
        assert_eq!(last.mode, 0o600);
        assert_eq!(last.missing.as_deref(), Some("read (r)"));
        // The owner can.
        let owner = eacces(&file, meta.uid(), &[]);
        assert_eq!(owner.last().unwrap().missing, None);
        // A directory without x for others blocks the search.
        std::fs::set_permissions(&inc, std::fs::Permissions::from_mode(0o750)).unwrap();
        let blocked = eacces(&file, other_uid, &[]);
        let inc_step = blocked.iter().find(|s| s.path == inc).unwrap();
        assert_eq!(inc_step.missing.as_deref(), Some("search (x)"));
        assert!(inc_step.is_dir);
    }
}
