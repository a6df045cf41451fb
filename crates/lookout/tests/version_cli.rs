//! `lookout --version` names the commit it was built from, so a report or a bug names exactly what ran.

use crate::support::lookout_bin;

#[test]
fn version_names_the_git_commit() {
    let out = std::process::Command::new(lookout_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = std::env::var("LOOKOUT_GIT_COMMIT").ok().or(head).unwrap_or_else(|| "unknown".into());
    assert_eq!(text, format!("lookout {} (commit {commit})", env!("CARGO_PKG_VERSION")));
}
