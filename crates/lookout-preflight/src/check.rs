//! What Linux will do with a path: each step is looked up among its directory's real entries (exact bytes), so a
//! name that differs only by case is missing even when preflight runs on a case-insensitive file system; a
//! symlink whose target is gone is named with its target; with a web server user, a step it may not traverse or
//! a file it may not read is named (`lookout_diagnose::hints`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use lookout_diagnose::hints::{self, Reader};

/// The result of looking a path up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exists (and the reader, if any, may read it).
    Found,
    /// `missing` is not an entry of `dir` (`last`: it is the file's own name, else a directory on the way).
    Missing { dir: PathBuf, missing: String, last: bool },
    /// It exists only with other case at some step: `real` is the path on disk.
    CaseOnly { real: PathBuf },
    /// `link` (the path or a directory on it) is a symlink to `target`, which does not exist.
    Dangling { link: PathBuf, target: PathBuf },
    /// The reader may not read it: `why` names the blocking step.
    Unreadable { why: String },
}

impl Outcome {
    pub fn is_found(&self) -> bool {
        *self == Outcome::Found
    }
}

/// Each directory's entries, read once and shared by every thread (a tree's files include from the same few
/// directories).
#[derive(Debug, Default)]
pub struct DirCache {
    entries: RwLock<PathMap<Option<Arc<Entries>>>>,
    /// Whole lookups already made, by the reader's uid (one reader per run) and path: a file included from a
    /// hundred places is walked and stat'ed once. Nested so that a lookup borrows the path instead of building a
    /// key.
    outcomes: RwLock<HashMap<Option<u32>, PathMap<Outcome>>>,
    /// Directories walked from `/` (the same for every reader: the walk lists, it does not open).
    dirs: RwLock<PathMap<Result<Reached, Outcome>>>,
}

impl DirCache {
    fn get(&self, dir: &Path) -> Option<Arc<Entries>> {
        if let Some(e) = self.entries.read().unwrap_or_else(PoisonError::into_inner).get(dir.as_os_str()) {
            return e.clone();
        }
        let read = std::fs::read_dir(dir).ok().map(|rd| {
            let names = rd.flatten().map(|e| (e.file_name(), e.file_type().map_or(true, |t| t.is_symlink())));
            Arc::new(Entries::new(names.collect()))
        });
        self.entries.write().unwrap_or_else(PoisonError::into_inner).insert(dir.as_os_str().to_owned(), read.clone());
        read
    }
}

/// Maps keyed by a path's bytes with a fast hash: `Path`'s own `Hash` walks its components, and SipHash guards
/// against hash flooding that a tree on our own disk cannot mount; both showed in the profile of a 10,000-file
/// run, which looks paths up ~100,000 times, and names in directories as often.
type PathMap<V> = HashMap<OsString, V, BuildHasherDefault<BytesHasher>>;

/// Eight bytes a step (the multiply-rotate mix of rustc's FxHasher).
#[derive(Default)]
struct BytesHasher(u64);

impl BytesHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for BytesHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A directory's entries.
#[derive(Debug)]
struct Entries {
    /// Each name, with whether it is (or may be) a symlink: only those are stat'ed to see whether they lead
    /// anywhere.
    names: PathMap<bool>,
    /// The names by their lower-case form, for the case-only check of a name that is missing — asked for every
    /// missing optional include, where scanning the whole directory each time was a fifteenth of a run.
    folded: HashMap<String, Vec<OsString>, BuildHasherDefault<BytesHasher>>,
}

impl Entries {
    fn new(names: PathMap<bool>) -> Entries {
        let mut folded: HashMap<String, Vec<OsString>, BuildHasherDefault<BytesHasher>> =
            HashMap::with_capacity_and_hasher(names.len(), BuildHasherDefault::default());
        for name in names.keys() {
            folded.entry(fold(name)).or_default().push(name.clone());
        }
        Entries { names, folded }
    }
}

/// A name in lower case (Unicode's, which is ASCII's for ASCII names), for comparing names without case.
fn fold(name: &std::ffi::OsStr) -> String {
    let name = name.to_string_lossy();
    if name.is_ascii() { name.to_ascii_lowercase() } else { name.to_lowercase() }
}

/// Looks paths up for one reader (or none).
pub struct Checker<'r> {
    cache: &'r DirCache,
    reader: Option<&'r Reader>,
}

impl<'r> Checker<'r> {
    pub fn new(cache: &'r DirCache, reader: Option<&'r Reader>) -> Checker<'r> {
        Checker { cache, reader }
    }

    fn entries(&mut self, dir: &Path) -> Option<Arc<Entries>> {
        self.cache.get(dir)
    }

    /// Looks up an absolute, normalized `path` (each path once per run: see [`DirCache`]).
    pub fn check(&mut self, path: &Path) -> Outcome {
        let uid = self.reader.map(|r| r.uid);
        let known = self.cache.outcomes.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = known.get(&uid).and_then(|by_path| by_path.get(path.as_os_str())) {
            return o.clone();
        }
        drop(known);
        let outcome = self.check_uncached(path);
        let mut known = self.cache.outcomes.write().unwrap_or_else(PoisonError::into_inner);
        known.entry(uid).or_default().insert(path.as_os_str().to_owned(), outcome.clone());
        outcome
    }

    fn check_uncached(&mut self, path: &Path) -> Outcome {
        let reached = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => self.reached(dir).and_then(|at| self.step(at, name, true)),
            _ => self.walk(path, true),
        };
        match reached {
            Ok(at) => self.finish(path, at),
            Err(outcome) => outcome,
        }
    }

    /// Directory `dir` walked from `/`, remembered: every file of a directory starts from the same walk (a
    /// 10,000-file tree walked each of its 40,000 include targets from the root before).
    fn reached(&mut self, dir: &Path) -> Result<Reached, Outcome> {
        let known = self.cache.dirs.read().unwrap_or_else(PoisonError::into_inner).get(dir.as_os_str()).cloned();
        if let Some(r) = known {
            return r;
        }
        let r = self.walk(dir, false);
        self.cache.dirs.write().unwrap_or_else(PoisonError::into_inner).insert(dir.as_os_str().to_owned(), r.clone());
        r
    }

    /// Every step of `path` from `/` (`is_file`: its last name is the file's own).
    fn walk(&mut self, path: &Path, is_file: bool) -> Result<Reached, Outcome> {
        let names: Vec<&std::ffi::OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        let mut at = Reached { real: PathBuf::from("/"), case_differs: false, last_is_link: true };
        for (i, name) in names.iter().enumerate() {
            at = self.step(at, name, is_file && i + 1 == names.len())?;
        }
        Ok(at)
    }

    /// One step: `name` among the entries of the directory reached (`last`: it is the file's own name).
    fn step(&mut self, mut at: Reached, name: &std::ffi::OsStr, last: bool) -> Result<Reached, Outcome> {
        let missing = |dir: PathBuf| Outcome::Missing { dir, missing: name.to_string_lossy().into_owned(), last };
        let Some(entries) = self.entries(&at.real) else {
            if let Some(target) = hints::dangling(&at.real) {
                return Err(Outcome::Dangling { link: at.real, target });
            }
            // Not a directory we may list: trust the kernel's answer for this step.
            if at.real.join(name).symlink_metadata().is_err() {
                return Err(missing(at.real));
            }
            at.real.push(name);
            at.last_is_link = true;
            return Ok(at);
        };
        if let Some(&link) = entries.names.get(name) {
            at.last_is_link = link;
            at.real.push(name);
            return Ok(at);
        }
        match entries.folded.get(&fold(name)).map(Vec::as_slice) {
            Some([one]) => {
                at.real.push(one);
                at.case_differs = true;
                Ok(at)
            }
            _ => Err(missing(at.real)),
        }
    }

    /// The outcome for `path`, reached as `at`.
    fn finish(&self, path: &Path, at: Reached) -> Outcome {
        if at.case_differs {
            return Outcome::CaseOnly { real: at.real };
        }
        // Only a symlink can be there and lead nowhere (a directory on the way that did would not have listed).
        if at.last_is_link
            && std::fs::metadata(path).is_err()
            && let Some(target) = hints::dangling(path)
        {
            return Outcome::Dangling { link: path.to_path_buf(), target };
        }
        if let Some(reader) = self.reader
            && hints::eacces(path, reader.uid, &reader.gids).iter().any(|s| s.missing.is_some())
        {
            return Outcome::Unreadable { why: hints::eacces_says(path, Some(reader)) };
        }
        Outcome::Found
    }
}

/// Where a walk from `/` got to.
#[derive(Clone, Debug)]
struct Reached {
    /// The path as it is on disk (its case where a step differed only by case).
    real: PathBuf,
    case_differs: bool,
    /// Whether the step just taken may be a symlink (unknown: yes).
    last_is_link: bool,
}

/// What to suggest for a missing name: the closest existing name in its directory and how it differs.
pub fn suggestion(dir: &Path, missing: &str) -> Option<(String, hints::Difference)> {
    let best = hints::closest_names(dir, missing).into_iter().next()?;
    let difference = hints::Difference::between(missing, &best);
    Some((best, difference))
}

impl Checker<'_> {
    /// [`suggestion`] from the directory listing already cached: a tree with thousands of missing optional
    /// includes in one directory reads it once, not once per finding.
    pub fn suggestion(&self, dir: &Path, missing: &str) -> Option<(String, hints::Difference)> {
        let names = self.cache.get(dir)?;
        let best = hints::closest_among(names.names.keys().filter_map(|n| n.to_str().map(str::to_owned)), missing)
            .into_iter()
            .next()?;
        let difference = hints::Difference::between(missing, &best);
        Some((best, difference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_step_is_matched_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("inc")).unwrap();
        std::fs::write(root.join("inc/Settings.php"), "<?php").unwrap();
        let cache = DirCache::default();
        let mut c = Checker::new(&cache, None);
        assert_eq!(c.check(&root.join("inc/Settings.php")), Outcome::Found);
        assert_eq!(c.check(&root.join("INC/settings.php")), Outcome::CaseOnly { real: root.join("inc/Settings.php") });
        assert_eq!(
            c.check(&root.join("inc/settings.phpp")),
            Outcome::Missing { dir: root.join("inc"), missing: "settings.phpp".into(), last: true }
        );
        assert_eq!(
            c.check(&root.join("lib/x.php")),
            Outcome::Missing { dir: root.clone(), missing: "lib".into(), last: false }
        );
        assert_eq!(suggestion(&root.join("inc"), "settings.phpp").map(|s| s.0), Some("Settings.php".into()));
    }

    #[test]
    fn a_dangling_symlink_is_named_with_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink("/nonexistent-lookout/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-lookout/x.php", root.join("x.php")).unwrap();
        let cache = DirCache::default();
        let mut c = Checker::new(&cache, None);
        let target = PathBuf::from("/nonexistent-lookout/x.php");
        assert_eq!(c.check(&root.join("x.php")), Outcome::Dangling { link: root.join("x.php"), target });
        assert_eq!(
            c.check(&root.join("lib/a.php")),
            Outcome::Dangling { link: root.join("lib"), target: PathBuf::from("/nonexistent-lookout/lib") }
        );
    }

    #[test]
    fn a_reader_that_may_not_read_is_told_where() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = root.join("secret.php");
        std::fs::write(&file, "<?php").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let me = std::fs::metadata(&file).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
        let other = Reader { name: Some("someone".into()), uid: me.wrapping_add(4242), gids: vec![], pid: None };
        let cache = DirCache::default();
        let Outcome::Unreadable { why } = Checker::new(&cache, Some(&other)).check(&file) else { panic!("readable") };
        assert!(why.contains("mode 0600") && why.contains("someone"), "{why}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Checker::new(&DirCache::default(), Some(&other)).check(&file), Outcome::Found);
    }
}
