//! Which files are read, how they are shown (relative to the PATH given) and the work shared over all cores
//! (`std::thread::scope`: each thread takes the next file from a shared counter).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;

/// Extensions of the files a directory walk reads.
const PHP_EXTENSIONS: [&str; 6] = ["php", "inc", "phtml", "module", "install", "theme"];
/// Directories a walk never enters: version control, JavaScript dependencies.
const SKIPPED_DIRS: [&str; 4] = [".git", ".svn", ".hg", "node_modules"];

/// The PATHs given: each as written and as its real absolute path (what PHP's `__DIR__` says).
pub(crate) struct Roots {
    roots: Vec<(PathBuf, PathBuf, bool)>,
}

impl Roots {
    pub(crate) fn new(paths: &[PathBuf]) -> Result<Roots, Error> {
        let paths = if paths.is_empty() { vec![PathBuf::from(".")] } else { paths.to_vec() };
        let mut roots = Vec::new();
        for given in paths {
            let real = given.canonicalize().map_err(|_| Error::NoSuchPath(given.clone()))?;
            let is_dir = real.is_dir();
            roots.push((given, real, is_dir));
        }
        Ok(Roots { roots })
    }

    /// Every file to read, absolute, sorted, each once.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for (_, real, is_dir) in &self.roots {
            if *is_dir {
                walk(real, &mut out);
            } else {
                out.push(real.clone());
            }
        }
        // By bytes: `Path`'s own order compares component by component, which took 15 ms of a 10,000-file run on
        // the main thread. Any fixed order will do (findings are sorted for the report).
        out.sort_unstable_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
        out.dedup();
        out
    }

    /// `path` as the user will recognise it: relative to the one directory given, or under the PATH as written
    /// when several were given.
    pub(crate) fn display(&self, path: &Path) -> String {
        let single = self.roots.len() == 1;
        for (given, real, is_dir) in &self.roots {
            if !is_dir {
                if path == real {
                    return given.display().to_string();
                }
                continue;
            }
            if let Ok(rel) = path.strip_prefix(real) {
                return if single || given == Path::new(".") {
                    rel.display().to_string()
                } else {
                    given.join(rel).display().to_string()
                };
            }
        }
        path.display().to_string()
    }
}

/// PHP files under `dir` (symlinked directories are not followed: no loops, no tree read twice).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| e.file_name() == *s) {
                walk(&path, out);
            }
        } else if path.extension().and_then(|x| x.to_str()).is_some_and(|x| PHP_EXTENSIONS.contains(&x)) {
            out.push(path);
        }
    }
}

/// `work(state, i, &items[i])` for every item on `threads` threads, results in the items' order. Each thread makes
/// its `state` once with `init` (a read buffer, a checker): what would otherwise be made per item.
pub(crate) fn parallel_with<T, S, R, I, F>(items: &[T], threads: usize, init: I, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize, &T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, items.len().max(1));
    let mut parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut state = init();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, work(&mut state, i, item)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let mut all: Vec<(usize, R)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}
