//! Error-log findings: the formats and causes of issue 15 on the exact lines real servers wrote, and the old
//! Apache cases.

use super::*;
fn incident(dir: &Path) -> Vec<String> {
    let inc = dir.join("inc");
    let index = dir.join("index.php");
    let mut lines = Vec::new();
    for (i, client) in ["127.0.0.1:42820", "10.0.0.7:5000"].iter().enumerate() {
        lines.push(format!("[Wed Nov 25 14:36:2{i}.477068 2026] [php:warn] [pid 10643:tid 10643] [client {client}] PHP Warning:  require_once({}): Failed to open stream: No such file or directory in {} on line 3", inc.join("settings.phpp").display(), index.display()));
        lines.push(format!("[Wed Nov 25 14:36:2{i}.477100 2026] [php:error] [pid 10643:tid 10643] [client {client}] PHP Fatal error:  Uncaught Error: Failed opening required '{}' (include_path='.:/usr/share/php') in {}:3", inc.join("settings.phpp").display(), index.display()));
    }
    lines
}

#[test]
fn a_misspelled_require_is_named_with_the_file_meant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inc")).unwrap();
    std::fs::write(dir.path().join("inc/settings.php"), "<?php").unwrap();
    let lines = incident(dir.path());
    let findings = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.cause, Cause::Missing);
    assert_eq!(f.path, dir.path().join("inc/settings.phpp"));
    assert_eq!(f.occurrences, 4);
    assert_eq!(f.evidence.len(), 3);
    assert_eq!(
        f.summary,
        format!(
            "Probable root cause: {} does not exist (required by {}:3; 4 error-log lines from 2026-11-25T14:36:20Z to 2026-11-25T14:36:21Z); did you mean {}?",
            dir.path().join("inc/settings.phpp").display(),
            dir.path().join("index.php").display(),
            dir.path().join("inc/settings.php").display()
        )
    );
    let since = findings[0].last_seen_ms;
    let later = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, since);
    assert_eq!(later[0].occurrences, 2, "--since drops older lines");
}

#[test]
fn parse_errors_permission_problems_and_fixed_files() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("index.php");
    std::fs::write(&script, "<?php echo 'x'").unwrap();
    let lines = [
            format!("[Wed Nov 25 14:36:22 2026] [php:error] [pid 1] [client 1.2.3.4:5] PHP Parse error:  syntax error, unexpected end of file, expecting \",\" or \";\" in {} on line 2", script.display()),
            format!("[Wed Nov 25 14:36:23 2026] [core:error] [pid 1] [client 1.2.3.4:5] AH00035: access to /secret.php denied (filesystem path '{}') because search permissions are missing on a component of the path", dir.path().join("secret.php").display()),
            format!("[Wed Nov 25 14:36:24 2026] [php:warn] [pid 1] [client 1.2.3.4:5] PHP Warning:  include({}): Failed to open stream: No such file or directory in {} on line 1", script.display(), script.display()),
            "[Wed Nov 25 14:36:25 2026] [mpm_prefork:notice] [pid 1] AH00163: Apache/2.4.67 (Debian) configured -- resuming normal operations".to_string(),
            "garbage".to_string(),
        ];
    let findings = diagnose(lines.iter().map(String::as_str), ErrorFormat::Apache, None);
    let causes: Vec<Cause> = findings.iter().map(|f| f.cause).collect();
    assert_eq!(causes, [Cause::ParseError, Cause::Missing, Cause::Unreadable]);
    assert_eq!(
        findings[0].summary,
        format!(
            "Probable root cause: PHP cannot parse {s} (1 error-log line from 2026-11-25T14:36:22Z to 2026-11-25T14:36:22Z): syntax error, unexpected end of file, expecting \",\" or \";\" in {s} on line 2",
            s = script.display()
        )
    );
    assert_eq!(findings[0].needed_by, Some(format!("{}:2", script.display())));
    assert!(findings[1].summary.ends_with("; it exists now"), "{}", findings[1].summary);
    assert!(findings[2].summary.contains("may not read"), "{}", findings[2].summary);
}

#[test]
fn nginx_open_failures() {
    let line = r#"2026/11/25 14:36:22 [error] 1234#1234: *5 open() "/nonexistent-lookout-test/www/favicon.icoo" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /favicon.icoo HTTP/1.1", host: "localhost""#;
    let findings = diagnose([line], ErrorFormat::Nginx, None);
    assert_eq!(findings[0].cause, Cause::Missing);
    assert_eq!(findings[0].path, PathBuf::from("/nonexistent-lookout-test/www/favicon.icoo"));
    assert!(matches!(findings[0].hint, Some(Missing::Directory { .. })));
}

#[test]
fn times_are_utc_seconds() {
    assert_eq!(when(Some(1_795_617_382_477)), "2026-11-25T14:36:22Z");
    assert_eq!(when(None), "?");
}

/// What real nginx 1.22, PHP-FPM 8.2, PHP 8.2 and Apache 2.4.71 (mpm_event + proxy_fcgi) wrote on Debian 12 for
/// `index.php` requiring `inc/Settings.php` (the file is `inc/settings.php`), a parse error, open_basedir, and FPM
/// stopped. `/tmp/h15/d` is replaced by a test's own directory.
mod real {
    pub const NGINX: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *1 FastCGI sent in stderr: "PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1
Stack trace:
#0 {main}
  thrown in /tmp/h15/d/www/index.php on line 1" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
"#;
    pub const NGINX_PARSE: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *3 FastCGI sent in stderr: "PHP message: PHP Parse error:  syntax error, unexpected end of file, expecting "," or ";" in /tmp/h15/d/www/parse.php on line 2" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /parse.php HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:53 [error] 13490#13490: *7 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /nope.php HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
"#;
    pub const NGINX_FPM_DOWN: &str = r#"2026/11/30 21:21:03 [crit] 13490#13490: *12 connect() to unix:/tmp/h15/d/run/fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:21:03 [error] 13490#13490: *16 connect() to unix:/tmp/h15/d/run/fpm.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
"#;
    pub const FPM: &str = r##"[30-Nov-2026 21:20:52] NOTICE: fpm is running, pid 13484
[30-Nov-2026 21:20:52] NOTICE: ready to handle connections
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "Stack trace:"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "#0 {main}"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "  thrown in /tmp/h15/d/www/index.php on line 1"
[30-Nov-2026 21:20:54] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it
"##;
    pub const PHP: &str = "[30-Nov-2026 21:21:02 UTC] PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1
[30-Nov-2026 21:21:02 UTC] PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1
Stack trace:
#0 {main}
  thrown in /tmp/h15/d/www/index.php on line 1
";
    pub const APACHE_FCGI: &str = r#"[Mon Nov 30 21:21:14.269308 2026] [mpm_event:notice] [pid 13658:tid 13658] AH00489: Apache/2.4.71 (Debian) configured -- resuming normal operations
[Mon Nov 30 21:21:14.776088 2026] [proxy_fcgi:error] [pid 13662:tid 13717] [client 127.0.0.1:47886] AH01071: Got error 'PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1\nStack trace:\n#0 {main}\n  thrown in /tmp/h15/d/www/index.php on line 1'
[Mon Nov 30 21:21:14.791291 2026] [proxy_fcgi:error] [pid 13662:tid 13724] [client 127.0.0.1:47912] AH01071: Got error 'PHP message: PHP Warning:  include(): open_basedir restriction in effect. File(/etc/hostname) is not within the allowed path(s): (/tmp/h15/d/www) in /tmp/h15/d/www/basedir.php on line 1; PHP message: PHP Warning:  include(/etc/hostname): Failed to open stream: Operation not permitted in /tmp/h15/d/www/basedir.php on line 1; PHP message: PHP Warning:  include(): Failed opening '/etc/hostname' for inclusion (include_path='.:/usr/share/php') in /tmp/h15/d/www/basedir.php on line 1'
[Mon Nov 30 21:21:14.798750 2026] [proxy_fcgi:error] [pid 13662:tid 13725] [client 127.0.0.1:47928] AH01071: Got error 'Primary script unknown'
[Mon Nov 30 21:21:15.110553 2026] [proxy:error] [pid 13660:tid 13715] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /tmp/h15/d/run/fpm.sock (localhost:8000) failed
[Mon Nov 30 21:21:15.110613 2026] [proxy_fcgi:error] [pid 13660:tid 13715] [client 127.0.0.1:47936] AH01079: failed to make connection to backend: localhost
"#;
}

/// A site in a temp dir: `www/index.php`, `www/inc/settings.php` (lower case), `run/`.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www/inc")).unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::write(dir.path().join("www/index.php"), "<?php require_once __DIR__ . '/inc/Settings.php';").unwrap();
    std::fs::write(dir.path().join("www/inc/settings.php"), "<?php").unwrap();
    dir
}

fn at(dir: &Path, log: &str) -> String {
    log.replace("/tmp/h15/d", dir.to_str().unwrap())
}

/// The verdict every PHP stack must reach for the case-mismatched require.
fn assert_case_only_require(f: &Finding, dir: &Path, occurrences: u64) {
    let missing = dir.join("www/inc/Settings.php");
    assert_eq!((f.cause, &f.path, f.occurrences), (Cause::Missing, &missing, occurrences), "{f:#?}");
    assert_eq!(f.needed_by, Some(format!("{}:1", dir.join("www/index.php").display())));
    assert_eq!(f.case_only, Some(dir.join("www/inc/settings.php")));
    assert!(
        f.summary.starts_with(&format!("Probable root cause: {} does not exist (required by ", missing.display())),
        "{}",
        f.summary
    );
    assert!(
        f.summary.ends_with(&format!(
            "; did you mean {}? (it differs only by case — code written on a case-insensitive system?)",
            dir.join("www/inc/settings.php").display()
        )),
        "{}",
        f.summary
    );
}

#[test]
fn nginx_fastcgi_stderr_names_the_missing_require_and_its_case() {
    let dir = site();
    let log = at(dir.path(), real::NGINX);
    let findings = diagnose(log.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_case_only_require(&findings[0], dir.path(), 2);
    assert_eq!(findings[0].evidence.len(), 1, "one entry, once");
    assert!(findings[0].evidence[0].contains("\nStack trace:\n"));
    // The explicit format reads it the same; the old line-by-line reading found nothing.
    assert_eq!(diagnose(log.lines(), ErrorFormat::Nginx, None), findings);
}

#[test]
fn fpm_log_joins_a_childs_lines_and_reports_a_full_pool_last() {
    let dir = site();
    let findings = diagnose(at(dir.path(), real::FPM).lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_case_only_require(&findings[0], dir.path(), 2);
    let full = &findings[1];
    assert_eq!(full.cause, Cause::Saturated);
    assert_eq!(full.detail, Some(Detail::Saturation { pool: "www".into(), max_children: Some(5) }));
    assert!(
        full.summary.starts_with("Probable cause: PHP-FPM pool www is saturated: it reached pm.max_children (5) (1 error-log line from 2026-11-30T21:20:54Z"),
        "{}",
        full.summary
    );
    assert_eq!(full.diagnosis().path, None, "a pool is not a file");
}

#[test]
fn php_error_log_names_the_missing_require() {
    let dir = site();
    let findings = diagnose(at(dir.path(), real::PHP).lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_case_only_require(&findings[0], dir.path(), 2);
    assert_eq!(findings[0].first_seen_ms, Some(1_796_073_662_000));
}

#[test]
fn apache_proxy_fcgi_require_open_basedir_and_fpm_down() {
    let dir = site();
    let findings = diagnose(at(dir.path(), real::APACHE_FCGI).lines(), ErrorFormat::Auto, None);
    let causes: Vec<(Cause, String)> = findings.iter().map(|f| (f.cause, f.path.display().to_string())).collect();
    let socket = dir.path().join("run/fpm.sock").display().to_string();
    assert_eq!(
        causes,
        [
            (Cause::BackendDown, socket.clone()),
            (Cause::Missing, dir.path().join("www/inc/Settings.php").display().to_string()),
            (Cause::Unreadable, "/etc/hostname".into()),
            (Cause::ScriptUnknown, "SCRIPT_FILENAME".into()),
        ],
        "FPM down as of the last line comes first, a script PHP-FPM did not find last: {findings:#?}"
    );
    // AH01079 is the same failed connection as the AH02454 before it: evidence, not a second occurrence.
    assert_eq!(findings[0].occurrences, 1);
    assert_eq!(findings[0].evidence.len(), 2, "{:#?}", findings[0].evidence);
    assert!(findings[0].evidence[1].contains("AH01079: failed to make connection to backend: localhost"));
    assert_case_only_require(&findings[1], dir.path(), 2);
    let basedir = &findings[2];
    let www = dir.path().join("www").display().to_string();
    assert_eq!(basedir.detail, Some(Detail::OpenBasedir { allowed: vec![www.clone()] }));
    assert_eq!(basedir.occurrences, 2, "the open_basedir warning and the EPERM after it");
    assert!(
        basedir.summary.starts_with(&format!("Probable root cause: open_basedir restriction in effect: PHP may not open /etc/hostname, which is not within the allowed path(s) {www} (required by {www}/basedir.php:1; 2 error-log lines")),
        "{}",
        basedir.summary
    );
    assert!(findings[0].summary.starts_with(&format!(
        "Probable root cause: PHP-FPM is not answering at unix:{socket} (the socket does not exist; 1 error-log line"
    )));
    assert!(findings[0].summary.ends_with("): start or restart PHP-FPM"), "{}", findings[0].summary);
}

#[test]
fn fpm_down_is_a_root_cause_of_its_own() {
    let sock = "/run/php/php8.2-fpm.sock";
    let line = |errno: &str| {
        format!(
            r#"2026/11/30 12:53:58 [error] 19219#19219: *3 connect() to unix:{sock} failed ({errno}) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:{sock}:", host: "127.0.0.1:8080""#
        )
    };
    let refused = line("111: Connection refused");
    let f = &diagnose([refused.as_str()], ErrorFormat::Auto, None)[0];
    assert_eq!((f.cause, f.path.as_path()), (Cause::BackendDown, Path::new(sock)));
    assert_eq!(
        f.summary,
        "Probable root cause: PHP-FPM is not answering at unix:/run/php/php8.2-fpm.sock (connection refused; 1 error-log line from 2026-11-30T12:53:58Z to 2026-11-30T12:53:58Z): start or restart php8.2-fpm"
    );
    assert_eq!(f.diagnosis().cause, Some(Cause::BackendDown));
    let gone = line("2: No such file or directory");
    let f = &diagnose([gone.as_str(), refused.as_str()], ErrorFormat::Nginx, None)[0];
    assert_eq!(f.occurrences, 2, "one finding per socket, whatever the errno");
    let denied = line("13: Permission denied");
    let f = &diagnose([denied.as_str()], ErrorFormat::Nginx, None)[0];
    assert_eq!((f.cause, f.path.as_path()), (Cause::Unreadable, Path::new(sock)));
    let tcp = r#"2026/11/30 12:53:58 [error] 1#1: *3 connect() to 127.0.0.1:9000 failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "x""#;
    let f = &diagnose([tcp], ErrorFormat::Nginx, None)[0];
    assert!(
        f.summary.starts_with("Probable root cause: PHP-FPM is not answering at 127.0.0.1:9000 (connection refused;")
    );
    assert_eq!(f.diagnosis().path, None, "an address is not a file");
    let http = tcp.replace("fastcgi://", "http://").replace("9000", "8081");
    let f = &diagnose([http.as_str()], ErrorFormat::Nginx, None)[0];
    assert!(
        f.summary.starts_with("Probable root cause: the upstream server is not answering at 127.0.0.1:8081"),
        "{}",
        f.summary
    );
}

#[test]
fn a_parse_error_through_nginx_says_what_php_said() {
    let dir = site();
    let findings = diagnose(at(dir.path(), real::NGINX_PARSE).lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 2, "the parse error, then `Primary script unknown`: {findings:#?}");
    assert_eq!(findings[1].cause, Cause::ScriptUnknown);
    assert_eq!(
        findings[1].summary,
        "Also: PHP-FPM found no script for 1 request (\"Primary script unknown\", answered 404; e.g. GET /nope.php; 1 error-log line from 2026-11-30T21:20:53Z to 2026-11-30T21:20:53Z): if those scripts exist, check the SCRIPT_FILENAME the web server passes (nginx: root and fastcgi_param SCRIPT_FILENAME; Apache: the path of ProxyPass or SetHandler \"proxy:unix:…|fcgi://…\")"
    );
    assert_eq!(findings[1].diagnosis().path, None, "a request is not a file");
    let script = dir.path().join("www/parse.php");
    assert_eq!(
        findings[0].summary,
        format!(
            "Probable root cause: PHP cannot parse {s} (1 error-log line from 2026-11-30T21:20:53Z to 2026-11-30T21:20:53Z): syntax error, unexpected end of file, expecting \",\" or \";\" in {s} on line 2",
            s = script.display()
        )
    );
}

#[test]
fn several_logs_are_merged_by_cause_and_path() {
    let dir = site();
    let nginx = dir.path().join("nginx-error.log");
    let fpm = dir.path().join("fpm.log");
    let down = dir.path().join("nginx-later.log");
    std::fs::write(&nginx, at(dir.path(), real::NGINX)).unwrap();
    std::fs::write(&fpm, at(dir.path(), real::FPM)).unwrap();
    std::fs::write(&down, at(dir.path(), real::NGINX_FPM_DOWN)).unwrap();
    let d = diagnose_files(&[nginx.clone(), fpm.clone(), down.clone()], ErrorFormat::Auto, None).unwrap();
    let formats: Vec<Option<ErrorFormat>> = d.logs.iter().map(|l| l.format).collect();
    assert_eq!(formats, [Some(ErrorFormat::Nginx), Some(ErrorFormat::Fpm), Some(ErrorFormat::Nginx)]);
    let causes: Vec<Cause> = d.findings.iter().map(|f| f.cause).collect();
    // FPM down is the last thing said: it comes first, though the missing file was logged more often.
    assert_eq!(causes, [Cause::BackendDown, Cause::Missing, Cause::Saturated], "{:#?}", d.findings);
    assert_case_only_require(&d.findings[1], dir.path(), 4);
    assert_eq!(d.findings[1].evidence.len(), 3, "evidence from both logs, capped");
    assert_eq!(d.findings[1].first_seen_ms, Some(1_796_073_653_000));
    let before = diagnose_files(&[nginx.clone(), fpm.clone()], ErrorFormat::Auto, None).unwrap();
    assert_eq!(before.findings[0].cause, Cause::Missing);
    // --since applies to every log.
    let later = diagnose_files(&[nginx, fpm, down], ErrorFormat::Auto, Some(1_796_073_660_000)).unwrap();
    assert_eq!(later.findings.iter().map(|f| f.cause).collect::<Vec<_>>(), [Cause::BackendDown]);
    let missing = dir.path().join("nope.log");
    let err = diagnose_files(std::slice::from_ref(&missing), ErrorFormat::Auto, None).unwrap_err();
    assert_eq!(err.path, missing);
}

#[test]
fn a_dangling_symlink_is_named_with_its_target() {
    let dir = site();
    let link = dir.path().join("www/inc/Settings.php");
    std::os::unix::fs::symlink("/nonexistent-lookout/settings.php", &link).unwrap();
    let f = &diagnose(at(dir.path(), real::PHP).lines(), ErrorFormat::Auto, None)[0];
    assert_eq!(f.dangling_target.as_deref(), Some(Path::new("/nonexistent-lookout/settings.php")));
    assert!(
        f.summary.starts_with(&format!(
            "Probable root cause: {} is a symlink to /nonexistent-lookout/settings.php, which does not exist (dangling; required by",
            link.display()
        )),
        "{}",
        f.summary
    );
}

mod stacks;

/// Real entries cut at random bytes, glued to garbage and invalid UTF-8 (read lossily, as files are), in every
/// format: nothing panics, and whatever is found has a summary.
#[test]
fn garbage_truncation_and_invalid_utf8_never_panic() {
    let corpus: Vec<&str> =
        [real::NGINX, real::NGINX_PARSE, real::NGINX_FPM_DOWN, real::FPM, real::PHP, real::APACHE_FCGI]
            .into_iter()
            .chain(stacks::REAL)
            .collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..400 {
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..(next() % 8) {
            let piece = corpus[(next() % corpus.len() as u64) as usize].as_bytes();
            let a = (next() % (piece.len() as u64 + 1)) as usize;
            let b = a + (next() % ((piece.len() - a) as u64 + 1)) as usize;
            bytes.extend_from_slice(&piece[a..b]);
            for _ in 0..(next() % 6) {
                bytes.push(match next() % 6 {
                    0 => b'\n',
                    1 => b'"',
                    2 => 0xff,
                    3 => b'(',
                    4 => b'/',
                    _ => (next() % 256) as u8,
                });
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for format in [ErrorFormat::Auto, ErrorFormat::Apache, ErrorFormat::Nginx, ErrorFormat::Fpm, ErrorFormat::Php] {
            for f in diagnose(text.lines(), format, None) {
                assert!(!f.summary.is_empty());
            }
        }
    }
    // One huge line.
    let huge = format!(
        "2026/11/30 21:20:53 [error] 1#1: *1 FastCGI sent in stderr: \"{}",
        "PHP message: (/x; ".repeat(100_000)
    );
    let _ = diagnose([huge.as_str()], ErrorFormat::Auto, None);
}
