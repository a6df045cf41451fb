//! What a packager installs: the systemd unit is one systemd itself accepts (`systemd-analyze verify`, with the
//! built binary in place of the installed one), reloads by SIGHUP, keeps the store in its state directory and
//! grants what diagnosis and ICMP need and nothing else; the LICENSE is the one Cargo.toml names.

use std::process::Command;

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_systemd_unit_verifies_and_grants_what_diagnosis_needs() {
    let unit = std::fs::read_to_string(workspace().join("packaging/lookout.service")).unwrap();
    let value = |key: &str| {
        unit.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}= in the unit"))
    };
    assert_eq!(value("ExecStart"), "/usr/local/bin/lookout run --config /etc/lookout/lookout.toml");
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID", "systemctl reload is lookout's SIGHUP reload");
    assert_eq!(value("StateDirectory"), "lookout");
    let caps: Vec<&str> = value("AmbientCapabilities").split_whitespace().collect();
    assert_eq!(caps, ["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_NET_RAW"]);
    assert_eq!(value("CapabilityBoundingSet"), value("AmbientCapabilities"), "nothing beyond them");
    assert_eq!(value("NoNewPrivileges"), "yes");

    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        crate::support::missing_package("systemd (systemd-analyze, to verify the unit)");
        return;
    };
    assert!(analyze.status.success());
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("lookout.service");
    let bin = crate::support::lookout_bin();
    std::fs::write(&here, unit.replace("/usr/local/bin/lookout", &bin.display().to_string())).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&here).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // Warnings (an unknown key, a misspelt value) do not fail verify: none may be said about the unit.
    assert!(!said.contains("lookout.service"), "{said}");

    let license = std::fs::read_to_string(workspace().join("LICENSE")).unwrap();
    assert!(license.trim_start().starts_with("Apache License") && license.contains("Version 2.0, January 2004"));
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
}
