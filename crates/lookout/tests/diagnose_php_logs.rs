//! `lookout diagnose --error-log A --error-log B` on the error logs of the PHP stacks (issue 15, item 2): the real
//! `lookout` binary on logs written with the exact lines real servers wrote (nginx + PHP-FPM, PHP's own log,
//! Apache + proxy_fcgi), formats recognised without being told, findings merged across logs — and against a real
//! private nginx + PHP-FPM: a missing require, then FPM stopped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::lookout_bin;
use crate::support::php_fpm::PhpFpm;

fn diagnose(args: &[&str]) -> std::process::Output {
    Command::new(lookout_bin()).arg("diagnose").args(args).output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// nginx's one multi-line entry and FPM's five lines for one request to `index.php` requiring `inc/Settings.php`
/// (as nginx 1.22 and PHP-FPM 8.2 wrote them on Debian 12; `DIR` is the site).
const NGINX: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *1 FastCGI sent in stderr: "PHP message: PHP Warning:  require_once(DIR/www/inc/Settings.php): Failed to open stream: No such file or directory in DIR/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required 'DIR/www/inc/Settings.php' (include_path='.:/usr/share/php') in DIR/www/index.php:1
Stack trace:
#0 {main}
  thrown in DIR/www/index.php on line 1" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:DIR/run/fpm.sock:", host: "127.0.0.1:18915"
"#;
const FPM: &str = r##"[30-Nov-2026 21:20:52] NOTICE: fpm is running, pid 13484
[30-Nov-2026 21:20:52] NOTICE: ready to handle connections
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Warning:  require_once(DIR/www/inc/Settings.php): Failed to open stream: No such file or directory in DIR/www/index.php on line 1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Failed opening required 'DIR/www/inc/Settings.php' (include_path='.:/usr/share/php') in DIR/www/index.php:1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "Stack trace:"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "#0 {main}"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "  thrown in DIR/www/index.php on line 1"
"##;
const PHP: &str = "[30-Nov-2026 21:21:02 UTC] PHP Warning:  require_once(DIR/www/inc/Settings.php): Failed to open stream: No such file or directory in DIR/www/index.php on line 1
[30-Nov-2026 21:21:02 UTC] PHP Fatal error:  Uncaught Error: Failed opening required 'DIR/www/inc/Settings.php' (include_path='.:/usr/share/php') in DIR/www/index.php:1
Stack trace:
#0 {main}
  thrown in DIR/www/index.php on line 1
";
const APACHE_FCGI: &str = r#"[Mon Nov 30 21:21:14.776088 2026] [proxy_fcgi:error] [pid 13662:tid 13717] [client 127.0.0.1:47886] AH01071: Got error 'PHP message: PHP Warning:  require_once(DIR/www/inc/Settings.php): Failed to open stream: No such file or directory in DIR/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required 'DIR/www/inc/Settings.php' (include_path='.:/usr/share/php') in DIR/www/index.php:1\nStack trace:\n#0 {main}\n  thrown in DIR/www/index.php on line 1'
"#;
const FPM_DOWN: &str = r#"2026/11/30 12:53:58 [error] 19219#19219: *3 connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:8080"
"#;
const HEALTHY_FPM: &str = "[30-Nov-2026 21:20:52] NOTICE: fpm is running, pid 13484\n[30-Nov-2026 21:20:52] NOTICE: ready to handle connections\n";

/// A site whose `index.php` requires `inc/Settings.php` where `inc/settings.php` exists, and its logs.
fn site(logs: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www/inc")).unwrap();
    std::fs::write(dir.path().join("www/index.php"), "<?php require_once __DIR__ . '/inc/Settings.php';\n").unwrap();
    std::fs::write(dir.path().join("www/inc/settings.php"), "<?php\n").unwrap();
    let paths = logs
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text.replace("DIR", dir.path().to_str().unwrap())).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect();
    (dir, paths)
}

/// The verdict's first line for the case-mismatched require, with `n` messages behind it.
fn assert_names_the_require(first: &str, root: &Path, n: u64) {
    let missing = root.join("www/inc/Settings.php");
    assert!(
        first.starts_with(&format!(
            "Probable root cause: {} does not exist (required by {}:1; {n} error-log lines from ",
            missing.display(),
            root.join("www/index.php").display()
        )),
        "{first}"
    );
    assert!(
        first.ends_with(&format!(
            "; did you mean {}? (it differs only by case — code written on a case-insensitive system?)",
            root.join("www/inc/settings.php").display()
        )),
        "{first}"
    );
}

#[test]
fn nginx_and_fpm_logs_together_name_the_missing_file_with_the_case_hint() {
    let (dir, logs) = site(&[("nginx-error.log", NGINX), ("fpm.log", FPM)]);
    let out = diagnose(&["--error-log", &logs[0], "--error-log", &logs[1]]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_names_the_require(text.lines().next().unwrap(), dir.path(), 4);
    assert_eq!(text.matches("\n[").count(), 1, "one finding, merged over both logs: {text}");
    assert!(text.contains("    | Stack trace:\n"), "a multi-line entry is shown line by line: {text}");
    assert!(text.contains(&format!("{} (nginx format, 1 entry)", logs[0])), "{text}");
    assert!(text.contains(&format!("{} (fpm format, 4 entries)", logs[1])), "{text}");

    let out = diagnose(&["--error-log", &logs[0], "--error-log", &logs[1], "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["cause"], "missing");
    assert_eq!(v["findings"][0]["occurrences"], 4);
    assert_eq!(v["findings"][0]["case_only"], dir.path().join("www/inc/settings.php").to_str().unwrap());
    assert_eq!(v["error_logs"][1]["format"], "fpm");
}

#[test]
fn php_and_apache_proxy_fcgi_logs_are_recognised_too() {
    let (dir, logs) = site(&[("php-error.log", PHP), ("apache-error.log", APACHE_FCGI)]);
    for log in &logs {
        let out = diagnose(&["--error-log", log]);
        assert_eq!(out.status.code(), Some(0), "{log}: {}", stdout(&out));
        assert_names_the_require(stdout(&out).lines().next().unwrap(), dir.path(), 2);
    }
    // Told the format, it is read in that one.
    let out = diagnose(&["--error-log", &logs[0], "--error-format", "php"]);
    assert_eq!(out.status.code(), Some(0));
    let out = diagnose(&["--error-log", &logs[0], "--error-format", "nginx"]);
    assert_eq!(out.status.code(), Some(1), "a PHP log read as nginx's: nothing: {}", stdout(&out));
    assert!(stdout(&out).contains("(nginx format, 0 entries, 5 lines skipped)"), "{}", stdout(&out));
    let garbage = dir.path().join("garbage.log");
    std::fs::write(&garbage, b"\xff\xfe not a log\n\n\x1b[2J\n").unwrap();
    let out = diagnose(&["--error-log", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("(no line in a known error-log format"), "{}", stdout(&out));
    let out = diagnose(&["--error-log", &logs[0], "--error-format", "iis"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn fpm_down_is_said_as_such_and_a_healthy_log_finds_nothing() {
    let (_dir, logs) = site(&[("nginx-error.log", FPM_DOWN), ("fpm.log", HEALTHY_FPM)]);
    let out = diagnose(&["--error-log", &logs[0], "--error-log", &logs[1]]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).lines().next().unwrap(),
        "Probable root cause: PHP-FPM is not answering at unix:/run/php/php8.2-fpm.sock (connection refused; 1 error-log line from 2026-11-30T12:53:58Z to 2026-11-30T12:53:58Z): start or restart php8.2-fpm"
    );
    let out = diagnose(&["--error-log", &logs[1]]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("No probable cause in the error log"));
}

/// Drives `n` requests at `url`, returning their statuses.
async fn get(url: &str, n: usize) -> Vec<Option<u16>> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let req = lookout_http::HttpRequest::get(url.parse().unwrap(), Duration::from_secs(5));
        statuses.push(lookout_http::fetch(&req).await.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_nginx_and_fpm_missing_require_then_fpm_stopped() {
    let Some(site) = PhpFpm::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/Settings.php'; ?>\n<h1>Shop</h1>\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    assert_eq!(get(&site.url("/"), 3).await, [Some(500); 3]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let nginx = site.nginx_error_log.to_str().unwrap().to_string();
    let fpm = site.fpm_log.to_str().unwrap().to_string();
    let args = ["--error-log".to_string(), nginx.clone(), "--error-log".to_string(), fpm.clone()];
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            diagnose(&args)
        })
    };
    let out = run(args.to_vec()).await.unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // 3 requests, a warning and a fatal error each, in both logs.
    let root = site.docroot.parent().unwrap().to_path_buf();
    assert_names_the_require(text.lines().next().unwrap(), &root, 12);
    assert!(text.contains("(nginx format,") && text.contains("(fpm format,"), "{text}");

    // FPM stopped: nginx cannot connect; that is the cause now, however often the require failed before.
    let master = site.master();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(master), nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{master}")).exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&site.url("/"), 2).await, [Some(502); 2]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = run(args.to_vec()).await.unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let first = text.lines().next().unwrap();
    let socket = root.join("run/fpm.sock");
    assert!(
        first.starts_with(&format!("Probable root cause: PHP-FPM is not answering at unix:{} (", socket.display())),
        "{text}"
    );
    assert!(first.ends_with("): start or restart PHP-FPM"), "{text}");
}
