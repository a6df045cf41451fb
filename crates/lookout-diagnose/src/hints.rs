//! What was probably meant: for a path that does not exist, the closest existing names (edit distance, case,
//! extension) — or, when a directory on the way is missing, the deepest existing ancestor and the names closest
//! to the first missing component; for a path that cannot be read, who owns each step and which permission
//! is missing where.

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
