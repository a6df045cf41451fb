//! `lookout preflight --apache-config/--nginx-config` against the real Debian configurations the packages install
//! (apache2, nginx): the pristine ones pass, and a copy with a broken DocumentRoot / root fails naming file:line —
//! where `apache2ctl -t` only warns and `nginx -t` says nothing.

use std::path::Path;
use std::process::Command;

use crate::support::{lookout_bin, missing_package};

const APACHE: &str = "/etc/apache2/apache2.conf";
const NGINX: &str = "/etc/nginx/nginx.conf";

/// Runs `lookout preflight ARGS...` in an empty directory: (exit code, stdout, stderr).
fn preflight(args: &[&str]) -> (i32, String, String) {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(lookout_bin()).arg("preflight").args(args).current_dir(cwd.path()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn installed() -> bool {
    let mut ok = true;
    for (conf, package) in [(APACHE, "apache2"), (NGINX, "nginx")] {
        if !Path::new(conf).exists() {
            missing_package(&format!("{package} ({conf})"));
            ok = false;
        }
    }
    ok
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap()
}

#[test]
fn the_pristine_debian_configurations_pass() {
    if !installed() {
        return;
    }
    let (code, out, err) = preflight(&["--apache-config", APACHE, "--nginx-config", NGINX]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(": error:"), "{out}");
    assert!(out.contains("0 errors"), "{out}");
}

#[test]
fn a_copy_with_a_broken_document_root_and_root_fails_naming_file_and_line() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().canonicalize().unwrap();
    let status = Command::new("cp").args(["-a", "/etc/apache2", "/etc/nginx"]).arg(&copy).status().unwrap();
    assert!(status.success());

    // Apache: sites-enabled/000-default.conf is a relative symlink into sites-available; break its DocumentRoot.
    let site = copy.join("apache2/sites-available/000-default.conf");
    let text = std::fs::read_to_string(&site).unwrap();
    let line = line_of(&text, "DocumentRoot");
    std::fs::write(&site, text.replacen("DocumentRoot /var/www/html", "DocumentRoot /var/www/htmll", 1)).unwrap();

    // nginx: its includes and its sites-enabled link are absolute (/etc/nginx/...): point them at the copy.
    let nginx = copy.join("nginx");
    let main = std::fs::read_to_string(nginx.join("nginx.conf")).unwrap();
    std::fs::write(nginx.join("nginx.conf"), main.replace("/etc/nginx/", &format!("{}/", nginx.display()))).unwrap();
    let default = std::fs::read_to_string("/etc/nginx/sites-available/default").unwrap();
    let root_line = line_of(&default, "root /var/www/html;");
    std::fs::remove_file(nginx.join("sites-enabled/default")).unwrap();
    std::fs::write(
        nginx.join("sites-enabled/default"),
        default.replacen("root /var/www/html;", "root /var/www/htm;", 1),
    )
    .unwrap();

    let apache_conf = copy.join("apache2/apache2.conf");
    let nginx_conf = nginx.join("nginx.conf");
    let (code, out, err) =
        preflight(&["--apache-config", apache_conf.to_str().unwrap(), "--nginx-config", nginx_conf.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let apache_at = format!("{}/apache2/sites-enabled/000-default.conf:{line}:", copy.display());
    let nginx_at = format!("{}/sites-enabled/default:{root_line}:", nginx.display());
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(": error:")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors[0].starts_with(&apache_at)
            && errors[0].contains("DocumentRoot: /var/www/htmll does not exist; did you mean html?"),
        "{out}"
    );
    assert!(errors[1].starts_with(&nginx_at) && errors[1].contains("root: /var/www/htm does not exist"), "{out}");

    // The same configuration given twice over (repeatable flags) and a PHP tree alongside: both are checked.
    let php = copy.join("app");
    std::fs::create_dir_all(&php).unwrap();
    std::fs::write(php.join("index.php"), "<?php require __DIR__ . '/missing.php';\n").unwrap();
    let (code, out, _) = preflight(&[
        php.to_str().unwrap(),
        "--apache-config",
        apache_conf.to_str().unwrap(),
        "--apache-config",
        apache_conf.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains(": error:")).count(), 3, "{out}");

    // An unreadable configuration is a usage error.
    let (code, _, err) = preflight(&["--nginx-config", "/nonexistent-lookout/nginx.conf"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--nginx-config /nonexistent-lookout/nginx.conf"), "{err}");
}

/// The include_path production gives PHP outside php.ini: Apache's `php_admin_value include_path` for the
/// DocumentRoot's `<Directory>`, and a `.user.ini` below it (nearer, so it wins there). Without the configuration
/// the bare `require 'lib/x.php'` is an error; with it, it resolves.
#[test]
fn include_path_from_apache_config_and_user_ini() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    for (path, text) in [
        ("index.php", "<?php require 'lib/x.php';\n"),
        ("shared/lib/x.php", "<?php\n"),
        ("admin/index.php", "<?php require 'lib/admin.php';\n"),
        ("admin/.user.ini", "include_path = \".:../shared/admin\"\n"),
        ("shared/admin/lib/admin.php", "<?php\n"),
    ] {
        let p = app.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let conf = dir.path().join("site.conf");
    std::fs::write(
        &conf,
        format!(
            "<VirtualHost *:80>\n  DocumentRoot {a}\n  DirectoryIndex index.php\n  <Directory {a}>\n    \
             php_admin_value include_path \".:{a}/shared\"\n  </Directory>\n</VirtualHost>\n",
            a = app.display()
        ),
    )
    .unwrap();
    let (code, out, err) = preflight(&[app.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("index.php:1:") && out.contains("lib/x.php"), "{out}");
    let (code, out, err) = preflight(&[app.to_str().unwrap(), "--apache-config", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().filter(|l| l.contains(": error:")).count(), 0, "{out}");
}
