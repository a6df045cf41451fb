//! `lookout init` against the real servers of the test suite: a private Apache with mod_status, and nginx in
//! front of a PHP-FPM pool with both status pages. It finds them running (in /proc, with the configuration each
//! was started with), writes a configuration that loads and whose every target passes `lookout check`, and does
//! not overwrite a file without --force.

use std::path::Path;

use crate::support::apache::Apache;
use crate::support::php_fpm::PhpFpm;
use crate::support::{lookout_with, lookout_with_config};

async fn init(args: &[&str]) -> (i32, String, String) {
    lookout_with(&[&["init"], args].concat()).await
}

/// `lookout check` on the written file: every target probed once; (exit code, stdout and stderr).
async fn check(config: &Path) -> (i32, String) {
    let (code, out, err) = lookout_with_config(&["check"], config).await;
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn finds_the_running_apache_and_writes_probes_logs_status_and_diagnosis_that_pass_check() {
    let extra = "LoadModule status_module /usr/lib/apache2/modules/mod_status.so\n\
                 <Location /server-status>\n    SetHandler server-status\n    Require all granted\n</Location>\n";
    let Some(apache) = Apache::start_with(&[("index.php", "<?php echo 'shop';")], extra) else { return };
    let root = apache.docroot.parent().unwrap();
    let conf = root.join("apache2.conf");

    // Found running: the whole machine is scanned (other tests' servers may be listed too).
    let (code, text, err) = init(&["--dry-run"]).await;
    assert_eq!(code, 0, "{text}\n{err}");
    let pid = std::fs::read_to_string(root.join("run/apache2.pid")).unwrap();
    assert!(text.contains(&format!("#   Apache (pid {}): {} — 1 site", pid.trim(), conf.display())), "{text}");
    let expected = [
        format!("url = \"http://127.0.0.1:{}/\"", apache.port),
        format!("access = \"{}\"", apache.access_log.display()),
        r#"format = "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"""#.to_string(),
        format!("error = \"{}\"\nerror_format = \"apache\"", apache.error_log.display()),
        format!("pid_file = \"{}\"", root.join("run/apache2.pid").display()),
        format!("type = \"apache\"\nurl = \"http://127.0.0.1:{}/server-status\"", apache.port),
        "[[process]]\nname = \"apache2\"".to_string(),
    ];
    for line in &expected {
        assert!(text.contains(line.as_str()), "{line}\nnot in:\n{text}");
    }

    // Written for this one server, it loads and every target passes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lookout.toml");
    let (code, said, err) =
        init(&["--no-scan", "--apache-config", conf.to_str().unwrap(), "--config", out.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{said}\n{err}");
    assert!(said.contains(&format!("Found Apache ({}): 1 site.", conf.display())), "{said}");
    assert!(
        said.contains(&format!("Wrote {}: ", out.display())) && said.contains("Next: `lookout check --config"),
        "{said}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    for line in &expected {
        assert!(written.contains(line.as_str()), "{line}\nnot in:\n{written}");
    }
    let (code, report) = check(&out).await;
    assert_eq!(code, 0, "every target of the written file passes:\n{report}\n{written}");
    assert!(report.contains(&format!("apache2-{}", apache.port)) && report.contains("apache2-status"), "{report}");

    // A second run does not overwrite it.
    let (code, said, err) =
        init(&["--no-scan", "--apache-config", conf.to_str().unwrap(), "--config", out.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{said}\n{err}");
    assert!(err.contains("exists; pass --force to replace it"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn finds_nginx_and_php_fpm_with_both_status_pages_and_the_pools_log_for_diagnosis() {
    let Some(stack) = PhpFpm::start(&[("index.php", "<?php echo 'blog';")]) else { return };
    let root = stack.docroot.parent().unwrap();
    let (nginx_conf, fpm_conf) = (root.join("nginx.conf"), root.join("fpm.conf"));
    let port = stack.port();

    let (code, text, err) = init(&["--dry-run"]).await;
    assert_eq!(code, 0, "{text}\n{err}");
    assert!(text.contains(&format!(": {} — 1 site", nginx_conf.display())), "nginx found running:\n{text}");
    assert!(text.contains(&format!("#   PHP-FPM pool www ({}), listening on ", fpm_conf.display())), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lookout.toml");
    let args =
        ["--no-scan", "--nginx-config", nginx_conf.to_str().unwrap(), "--fpm-config", fpm_conf.to_str().unwrap()];
    let (code, said, err) = init(&[&args[..], &["--config", out.to_str().unwrap()]].concat()).await;
    assert_eq!(code, 0, "{said}\n{err}");
    let written = std::fs::read_to_string(&out).unwrap();
    let expected = [
        format!("url = \"http://127.0.0.1:{port}/\""),
        format!("access = \"{}\"\nformat = \"combined\"", root.join("logs/nginx-access.log").display()),
        format!("error = \"{}\"\nerror_format = \"nginx\"", stack.nginx_error_log.display()),
        format!("error_log = [\"{}\", \"{}\"]", stack.nginx_error_log.display(), stack.fpm_log.display()),
        format!("pid_file = \"{}\"", stack.nginx_pid_file().display()),
        format!("type = \"nginx\"\nurl = \"http://127.0.0.1:{port}/nginx-status\""),
        format!("type = \"php-fpm\"\nurl = \"http://127.0.0.1:{port}/fpm-status\"\nworkers = 3"),
        "[[process]]\nname = \"nginx\"".to_string(),
        "[[process]]\nname = \"php-fpm8.2\"".to_string(),
    ];
    for line in &expected {
        assert!(written.contains(line.as_str()), "{line}\nnot in:\n{written}");
    }
    let (code, report) = check(&out).await;
    assert_eq!(code, 0, "every target of the written file passes:\n{report}\n{written}");
    assert!(report.contains("fpm-www-status") && report.contains("nginx-status"), "{report}");
}
