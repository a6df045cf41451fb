//! `lookout preflight` on real PHP applications installed from Debian packages (`wordpress`, `mediawiki`; `.ci/run`
//! installs them): the pristine trees give only the findings explained below, and a copy of WordPress with a
//! renamed required file, a case-only rename and a root-only 0600 include (`--web-user www-data`) fails the gate
//! with file:line and the right hint.
//!
//! The errors the pristine trees still give are true ones:
//! - WordPress `wp-admin/includes/update-core.php:1033`: `require WP_CONTENT_DIR . '/upgrade/version-current.php'`
//!   — the updater writes that file a few lines earlier, at run time; it is not in any release (once per
//!   definition of `WP_CONTENT_DIR`: Debian's `/var/lib/wordpress/wp-content` and `ABSPATH . 'wp-content'`).
//! - MediaWiki: `maintenance/includes/Maintenance.php` requires `tests/common/TestsAutoLoader.php` (Debian ships no
//!   `tests/`), and nine development scripts of vendored libraries (`demo/`, `bin/`, `benchmarks/`, `scripts/`,
//!   parsoid's `tools/Maintenance.php`) require their own `vendor/autoload.php`, which exists only in the library's
//!   own checkout. Run, each of them would die.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{lookout_bin, missing_package};

/// Runs `lookout preflight ARGS... DIR`: (exit code, stdout, stderr).
fn preflight(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(lookout_bin()).arg("preflight").args(args).arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `file:line` of each error line, sorted and deduplicated.
fn error_places(out: &str) -> Vec<String> {
    let mut places: Vec<String> = out
        .lines()
        .filter(|l| l.contains(": error: "))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            Some(format!("{}:{}", parts.next()?, parts.next()?))
        })
        .collect();
    places.dedup();
    places
}

/// The installed tree, or `None` (and a visible skip) when its package is not installed.
fn installed(package: &str) -> Option<PathBuf> {
    let tree = PathBuf::from("/usr/share").join(package);
    if tree.join("index.php").is_file() {
        Some(tree)
    } else {
        missing_package(&format!("{package} (apt-get install {package}) for preflight on a real application"));
        None
    }
}

/// A copy of Debian's WordPress in a world-traversable temp dir, configured for where it now is (Debian's
/// `wp-config.php` hard-codes `ABSPATH` as `/usr/share/wordpress/`; a deployment sets its own).
fn wordpress_copy(tree: &Path) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = tmp.path().canonicalize().unwrap().join("wordpress");
    let status = Command::new("cp").arg("-a").arg(tree).arg(&copy).status().unwrap();
    assert!(status.success(), "cp -a {} {}", tree.display(), copy.display());
    // Debian links some files into /usr/share/php relatively (wp-includes/ID3/getid3.php →
    // ../../../php/getid3/getid3.php): in the copy each such link points where the installed one leads.
    let links = Command::new("find").arg(&copy).args(["-type", "l"]).output().unwrap();
    for link in String::from_utf8_lossy(&links.stdout).lines().map(PathBuf::from) {
        let original = tree.join(link.strip_prefix(&copy).unwrap());
        if link.metadata().is_err()
            && let Ok(real) = original.canonicalize()
        {
            std::fs::remove_file(&link).unwrap();
            std::os::unix::fs::symlink(real, &link).unwrap();
        }
    }
    let config = copy.join("wp-config.php");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("'/usr/share/wordpress/'"), "Debian's wp-config.php changed: {text}");
    std::fs::write(&config, text.replace("'/usr/share/wordpress/'", &format!("'{}/'", copy.display()))).unwrap();
    (tmp, copy)
}

const WORDPRESS_ERRORS: [&str; 1] = ["wp-admin/includes/update-core.php:1033"];

#[test]
fn pristine_wordpress_gives_only_its_explained_errors() {
    let Some(tree) = installed("wordpress") else { return };
    let (code, out, err) = preflight(&[], &tree);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(error_places(&out), WORDPRESS_ERRORS, "{out}");
    // Both definitions of WP_CONTENT_DIR lead there; nothing else is an error.
    assert_eq!(out.matches(": error: ").count(), 2, "{out}");
    assert!(out.contains("/var/lib/wordpress/wp-content/upgrade/version-current.php"), "{out}");
    // The optional ones are info: guarded by file_exists, inside if (defined(…)), inside is_plugin_active(…).
    assert!(out.contains("wp-settings.php:95:2: info: include target "), "{out}");
    assert!(out.contains("(guarded by file_exists)"), "{out}");
    assert!(out.contains("wp-admin/press-this.php:25:3: info: ") && out.contains("an optional plugin)"), "{out}");
    let summary = out.lines().last().unwrap();
    assert!(summary.starts_with("preflight: 9") && summary.contains(" files read, "), "{summary}");
}

#[test]
fn pristine_mediawiki_gives_only_its_explained_errors() {
    let Some(tree) = installed("mediawiki") else { return };
    let (code, out, err) = preflight(&[], &tree);
    assert_eq!(code, 1, "{out}{err}");
    // Composer's autoload maps are checked by another part of preflight (vendor/composer/…); these are the
    // include findings.
    let places: Vec<String> = error_places(&out).into_iter().filter(|p| !p.starts_with("vendor/composer/")).collect();
    assert_eq!(
        places,
        [
            "maintenance/includes/Maintenance.php:1345",
            "vendor/justinrainbow/json-schema/demo/demo.php:3",
            "vendor/wikimedia/ip-utils/benchmarks/bench.php:4",
            "vendor/wikimedia/parsoid/bin/domdiff.test.php:5",
            "vendor/wikimedia/parsoid/bin/normalize.test.php:5",
            "vendor/wikimedia/parsoid/tools/Maintenance.php:117",
            "vendor/wikimedia/remex-html/bin/fuzz.php:15",
            "vendor/wikimedia/remex-html/bin/test.php:8",
            "vendor/wikimedia/utfnormal/scripts/benchmark.php:33",
            "vendor/wikimedia/utfnormal/scripts/generate.php:34",
            "vendor/wikimedia/utfnormal/scripts/memstress.php:35",
        ],
        "{out}"
    );
    // PEAR's `require_once 'PEAR.php'` is found through Composer's include_paths.php, and smtpmx.php's
    // `if (!include_once 'Net/DNS.php')` handles a missing file.
    assert!(!out.contains("vendor/pear/mail/Mail.php:"), "{out}");
    assert!(out.contains("vendor/pear/mail/Mail/smtpmx.php:461:14: info: "), "{out}");
}

#[test]
fn a_renamed_required_wordpress_file_fails_with_file_line_and_did_you_mean() {
    let Some(tree) = installed("wordpress") else { return };
    let (_tmp, copy) = wordpress_copy(&tree);
    let (code, out, _) = preflight(&[], &copy);
    assert_eq!(code, 1, "{out}");
    assert_eq!(error_places(&out), WORDPRESS_ERRORS, "the pristine copy: {out}");

    std::fs::rename(copy.join("wp-includes/version.php"), copy.join("wp-includes/versions.php")).unwrap();
    let (code, out, _) = preflight(&[], &copy);
    assert_eq!(code, 1, "{out}");
    let expected = format!(
        "wp-settings.php:33:1: error: require target {}/wp-includes/version.php does not exist; did you mean versions.php?",
        copy.display()
    );
    assert!(out.lines().any(|l| l.starts_with(&expected)), "{expected}\n{out}");
}

#[test]
fn a_case_only_rename_in_wordpress_is_an_error_that_says_so() {
    let Some(tree) = installed("wordpress") else { return };
    let (_tmp, copy) = wordpress_copy(&tree);
    std::fs::rename(copy.join("wp-includes/load.php"), copy.join("wp-includes/Load.php")).unwrap();
    let (code, out, _) = preflight(&[], &copy);
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.starts_with("wp-settings.php:34:1: error: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&format!("require target {}/wp-includes/load.php does not exist", copy.display()))
            && line.contains("wp-includes/Load.php, which differs only by case"),
        "{line}"
    );
}

#[test]
fn a_root_only_wordpress_include_is_an_error_for_www_data() {
    if !nix::unistd::Uid::effective().is_root() {
        missing_package("root (to make a root-owned 0600 include) for preflight --web-user on WordPress");
        return;
    }
    if lookout_diagnose::hints::user_reader("www-data").is_none() {
        missing_package("the user www-data");
        return;
    }
    let Some(tree) = installed("wordpress") else { return };
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, copy) = wordpress_copy(&tree);
    let version = copy.join("wp-includes/version.php");
    std::os::unix::fs::chown(&version, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&version, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Root itself reads it: the copy is as pristine as before.
    let (code, out, _) = preflight(&[], &copy);
    assert_eq!((code, error_places(&out)), (1, WORDPRESS_ERRORS.map(String::from).to_vec()), "{out}");

    let (code, out, _) = preflight(&["--web-user", "www-data"], &copy);
    assert_eq!(code, 1, "{out}");
    let expected =
        format!("wp-settings.php:33:1: error: require target {} cannot be read by the web server: ", version.display());
    let line = out.lines().find(|l| l.starts_with(&expected)).unwrap_or_else(|| panic!("{expected}\n{out}"));
    assert!(line.contains("owner root, mode 0600, which does not let www-data (uid 33) read it"), "{line}");
}
