//! Names the git commit the binary was built from, for `lookout --version`: `LOOKOUT_GIT_COMMIT` from the
//! environment when set (builds from a tarball), else `git rev-parse`, else "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LOOKOUT_GIT_COMMIT");
    let commit = std::env::var("LOOKOUT_GIT_COMMIT").ok().filter(|c| !c.trim().is_empty()).or_else(|| {
        // Build again when HEAD moves: HEAD itself (a checkout) and the branch it points at (a commit).
        // (Only files that exist: Cargo reruns a build script on every build for a missing one.)
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
            let branch = git(&["symbolic-ref", "-q", "HEAD"]).map(|b| dir.join(b));
            for watched in [Some(dir.join("HEAD")), branch, Some(dir.join("packed-refs"))].into_iter().flatten() {
                if watched.exists() {
                    println!("cargo:rerun-if-changed={}", watched.display());
                }
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=LOOKOUT_GIT_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
