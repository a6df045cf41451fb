//! The house's rules, checked over the sources so they stay true: which crate may depend on which (one way, no
//! circles; effects never import sources), only the composition root names a concrete store, and files stay a
//! size one can read. ARCHITECTURE.md states the same table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The lookout crates each crate may depend on (normal dependencies), as in ARCHITECTURE.md.
const MAY_DEPEND_ON: &[(&str, &[&str])] = &[
    ("lookout-core", &[]),
    ("lookout-engine", &["lookout-core"]),
    ("lookout-logs", &["lookout-core"]),
    ("lookout-http", &["lookout-core"]),
    ("lookout-config", &["lookout-core", "lookout-engine", "lookout-logs"]),
    ("lookout-store", &["lookout-core", "lookout-config", "lookout-http"]),
    ("lookout-probe", &["lookout-core", "lookout-config", "lookout-http"]),
    ("lookout-diagnose", &["lookout-core", "lookout-logs", "lookout-http"]),
    ("lookout-notify", &["lookout-core", "lookout-engine", "lookout-config", "lookout-store", "lookout-http"]),
    ("lookout-preflight", &["lookout-core", "lookout-diagnose"]),
    (
        "lookout-app",
        &[
            "lookout-core",
            "lookout-engine",
            "lookout-logs",
            "lookout-config",
            "lookout-store",
            "lookout-probe",
            "lookout-diagnose",
            "lookout-notify",
            "lookout-http",
            "lookout-preflight",
        ],
    ),
    ("lookout-web", &["lookout-core", "lookout-engine", "lookout-config", "lookout-store", "lookout-app"]),
    (
        "lookout",
        &[
            "lookout-core",
            "lookout-engine",
            "lookout-logs",
            "lookout-config",
            "lookout-store",
            "lookout-diagnose",
            "lookout-preflight",
            "lookout-app",
            "lookout-web",
        ],
    ),
];

/// The one file outside lookout-store that names the store type `[store]` chose.
const COMPOSITION_ROOT: &str = "crates/lookout/src/runtime.rs";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn crates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(workspace().join("crates")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    dirs
}

/// The lookout crates in a manifest's `[dependencies]` (not dev- or build-dependencies).
fn lookout_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && line.starts_with("lookout-") {
            let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            deps.insert(name);
        }
    }
    deps
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A source file's code without its comments and its inline test module (`#[cfg(test)] mod tests { … }`, by
/// convention at the bottom). A `#[cfg(test)] mod x;` declaration is not a cut: its file is skipped whole
/// ([`test_files`]).
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| {
            w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod ") && w[1].trim_end().ends_with('{')
        })
        .unwrap_or(lines.len());
    lines[..end].iter().filter(|l| !l.trim_start().starts_with("//")).copied().collect::<Vec<_>>().join("\n")
}

/// The files of test-only modules (`#[cfg(test)] mod x;` declares `x.rs` or `x/mod.rs` beside its parent).
fn test_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let stem = f.file_stem().unwrap().to_string_lossy();
        let dir = if ["lib", "main", "mod"].contains(&stem.as_ref()) {
            f.parent().unwrap().to_path_buf()
        } else {
            f.with_extension("")
        };
        for w in lines.windows(2).filter(|w| w[0] == "#[cfg(test)]") {
            if let Some(name) = w[1].strip_prefix("mod ").and_then(|m| m.strip_suffix(';')) {
                out.insert(dir.join(format!("{name}.rs")));
                out.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(workspace()).unwrap().display().to_string()
}

#[test]
fn every_crate_depends_only_on_what_the_architecture_allows() {
    let allowed: BTreeMap<&str, &[&str]> = MAY_DEPEND_ON.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for dir in crates() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        seen.insert(name.clone());
        let Some(may) = allowed.get(name.as_str()) else {
            wrong.push(format!("{name} is not in MAY_DEPEND_ON (and ARCHITECTURE.md): say what it may depend on"));
            continue;
        };
        for dep in lookout_dependencies(&manifest) {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}, which the architecture does not allow"));
            }
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
    assert!(seen.contains("lookout-app") && seen.contains("lookout-core"), "the crates were found: {seen:?}");
    // The check can fail: an effect that imports a source is caught.
    assert!(!allowed["lookout-notify"].contains(&"lookout-probe"));
    assert_eq!(
        lookout_dependencies("[dependencies]\nlookout-probe.workspace = true\n[dev-dependencies]\nlookout-x = 1\n")
            .len(),
        1
    );
}

#[test]
fn only_the_composition_root_names_a_concrete_store() {
    let store_src = workspace().join("crates/lookout-store/src");
    let mut store_files = Vec::new();
    rust_files(&store_src, &mut store_files);
    // Every store type lookout-store declares: the backends (e.g. SqliteStore) and AnyStore, the chosen one.
    let mut concrete: Vec<String> = Vec::new();
    for f in &store_files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            for decl in ["pub struct ", "pub enum "] {
                if let Some(rest) = line.trim().strip_prefix(decl) {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if name.ends_with("Store") {
                        concrete.push(name);
                    }
                }
            }
        }
    }
    assert!(concrete.iter().any(|c| c == "SqliteStore"), "found the backends: {concrete:?}");
    assert!(concrete.iter().any(|c| c == "AnyStore"));

    let mut named = Vec::new();
    for dir in crates().iter().filter(|d| !d.ends_with("lookout-store")) {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        let tests = test_files(&files);
        for f in files.iter().filter(|f| !tests.contains(*f)) {
            let rel = relative(f);
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            for c in &concrete {
                let allowed = c == "AnyStore" && rel == COMPOSITION_ROOT;
                if code.contains(c.as_str()) && !allowed {
                    named.push(format!("{rel} names {c}: work through the Store trait (the composition root chooses)"));
                }
            }
        }
    }
    assert_eq!(named, Vec::<String>::new());

    // What the scan leaves out: inline test modules and test-only files, nothing else.
    let code = code_of("use a;\n#[cfg(test)]\nmod tests;\nfn real() {}\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n");
    assert!(code.contains("fn real()") && !code.contains("fn t()"), "{code}");
    let condition = workspace().join("crates/lookout-engine/src/condition/mod.rs");
    let skipped = test_files(std::slice::from_ref(&condition));
    assert!(skipped.contains(&condition.with_file_name("tests.rs")) && !skipped.contains(&condition));
}

#[test]
fn source_files_stay_readable_and_the_binary_stays_thin() {
    let mut too_long = Vec::new();
    let mut binary_lines = 0;
    for dir in crates() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for f in files {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            if lines > 900 {
                too_long.push(format!("{} has {lines} lines: split it by job", relative(&f)));
            }
            if dir.ends_with("crates/lookout") {
                binary_lines += lines;
            }
        }
    }
    assert_eq!(too_long, Vec::<String>::new());
    assert!(
        binary_lines > 0 && binary_lines < 3000,
        "crates/lookout/src has {binary_lines} lines: domain logic belongs in the library crates"
    );
}

#[test]
fn the_only_unsafe_code_is_the_test_harness_atexit() {
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir, &mut files);
    }
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Split so that this file's own needle is not a hit.
            if line.contains(concat!("allow(", "unsafe_code)"))
                || line.trim_start().starts_with(concat!("unsafe", " {"))
            {
                found.push(format!("{}:{}", relative(f), n + 1));
            }
        }
    }
    assert!(files.len() > 100, "the scan saw the workspace: {} files", files.len());
    let support: Vec<&String> =
        found.iter().filter(|f| f.starts_with("crates/lookout/tests/support/mod.rs:")).collect();
    assert_eq!((found.len(), support.len()), (2, 2), "unsafe code outside the test harness's atexit: {found:?}");
}

/// Logs read as sentences with plain values: no Rust `Debug` formatting (`Some("x")`, `1.234567ms`) in a log line.
#[test]
fn log_lines_carry_no_debug_formatting() {
    let mut files = Vec::new();
    for dir in crates() {
        rust_files(&dir.join("src"), &mut files);
    }
    let mut found = Vec::new();
    for f in &files {
        let code = std::fs::read_to_string(f).unwrap();
        for (n, line) in code.lines().enumerate() {
            let logs = ["tracing::trace!", "tracing::debug!", "tracing::info!", "tracing::warn!", "tracing::error!"];
            if logs.iter().any(|m| line.contains(m)) && (line.contains(" = ?") || line.contains("(?")) {
                found.push(format!("{}:{}", relative(f), n + 1));
            }
        }
    }
    assert_eq!(found, Vec::<String>::new(), "a log field written with `?` (Debug): use `%` or a plain value");
}
