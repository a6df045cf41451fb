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

/// Runs `program args`, returning (success, stdout + stderr).
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The Debian package `packaging/deb.sh` builds (from the test's binary) installs with the real dpkg — into a
/// root of its own, so the test leaves the machine as it was — runs, carries a unit that verifies, man pages
/// and completions made from the binary's own clap definitions, and removes cleanly.
#[test]
fn the_debian_package_installs_with_dpkg_runs_and_brings_its_unit_man_pages_and_completions() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        crate::support::missing_package("dpkg (dpkg-deb, to build and install the Debian package)");
        return;
    }
    let bin = crate::support::lookout_bin();
    let dir = tempfile::tempdir().unwrap();
    let script = workspace().join("packaging/deb.sh");
    let (ok, said) = run(script.to_str().unwrap(), &[bin.to_str().unwrap(), dir.path().join("out").to_str().unwrap()]);
    assert!(ok, "{said}");
    let deb = said.trim().to_string();
    let (_, version) = run(bin.to_str().unwrap(), &["--version"]);
    let version = version.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        deb.ends_with(&format!("lookout_{version}_amd64.deb")) || deb.contains(&format!("lookout_{version}_")),
        "{deb}"
    );
    let (ok, info) = run("dpkg-deb", &["--info", &deb]);
    assert!(ok && info.contains("Package: lookout") && info.contains(&format!("Version: {version}")), "{info}");

    // dpkg -i into a root of its own (its database made empty, as on a fresh machine; libc6 is not in it).
    let root = dir.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        std::fs::write(root.join(f), "").unwrap();
    }
    let root_arg = format!("--root={}", root.display());
    let (ok, said) = run("dpkg", &[&root_arg, "--force-depends", "--force-not-root", "-i", &deb]);
    assert!(ok, "{said}");
    let (ok, status) = run("dpkg", &[&root_arg, "-s", "lookout"]);
    assert!(ok && status.contains("Status: install ok installed"), "{status}");

    // It runs: the version, and `init` on an nginx configuration.
    let installed = root.join("usr/bin/lookout");
    let (ok, said) = run(installed.to_str().unwrap(), &["--version"]);
    assert!(ok && said.starts_with(&format!("lookout {version}")), "{said}");
    let nginx = dir.path().join("nginx.conf");
    std::fs::write(&nginx, "http {\n  server {\n    listen 127.0.0.1:8089;\n    access_log /var/log/x.log;\n  }\n}\n")
        .unwrap();
    let (ok, said) = run(
        installed.to_str().unwrap(),
        &["init", "--dry-run", "--no-scan", "--nginx-config", nginx.to_str().unwrap()],
    );
    assert!(ok && said.contains("url = \"http://127.0.0.1:8089/\""), "{said}");

    // The unit starts the installed binary, and systemd accepts it.
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/lookout.service")).unwrap();
    assert!(unit.contains("\nExecStart=/usr/bin/lookout run --config /etc/lookout/lookout.toml\n"), "{unit}");
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let here = dir.path().join("lookout.service");
        std::fs::write(&here, unit.replace("/usr/bin/lookout", installed.to_str().unwrap())).unwrap();
        let (ok, said) = run("systemd-analyze", &["verify", here.to_str().unwrap()]);
        assert!(ok && !said.contains("lookout.service"), "{said}");
    }

    // Man pages: the program's and each command's, from the same definitions as --help.
    let page = root.join("usr/share/man/man1/lookout-init.1.gz");
    let (ok, text) = run("zcat", &[page.to_str().unwrap()]);
    assert!(ok && text.contains(".TH lookout-init 1") && text.contains("dry\\-run"), "{text}");
    assert!(root.join("usr/share/man/man1/lookout.1.gz").is_file());
    // Completions: bash completes `lookout in` to the two commands starting so.
    let bash = root.join("usr/share/bash-completion/completions/lookout");
    let (ok, words) = run(
        "bash",
        &[
            "-c",
            &format!(
                "source {}; COMP_WORDS=(lookout in); COMP_CWORD=1; _lookout lookout in lookout; echo ${{COMPREPLY[@]}}",
                bash.display()
            ),
        ],
    );
    assert!(ok && words.split_whitespace().collect::<Vec<_>>() == ["incidents", "init"], "{words}");
    assert!(root.join("usr/share/zsh/vendor-completions/_lookout").is_file());
    assert!(root.join("usr/share/fish/vendor_completions.d/lookout.fish").is_file());
    assert!(root.join("usr/share/doc/lookout/lookout.example.toml").is_file());

    let (ok, said) = run("dpkg", &[&root_arg, "--force-not-root", "-r", "lookout"]);
    assert!(ok, "{said}");
    assert!(!installed.exists(), "dpkg -r removed the binary");
}
