//! Timeouts, slow scripts, `Primary script unknown`, Apache's AH01079 and permission denials on a directory of the
//! path — on the lines nginx, PHP-FPM, PHP and Apache (mod_php, proxy_fcgi, proxy_http) write for them.

use super::*;

/// PHP-FPM's own log for `slow.php` sleeping 40 s with `request_slowlog_timeout = 5s`,
/// `request_terminate_timeout = 30s` and `pm.max_children = 5`: the slowlog notice and its tracing, the kill, the
/// child's exit, a new child, a full pool.
const FPM_SLOW: &str = r#"[30-Nov-2026 21:22:10] WARNING: [pool www] child 14001, script '/srv/www/slow.php' (request: "GET /slow.php?token=s3cret") executing too slow (5.012345 sec), logging
[30-Nov-2026 21:22:10] NOTICE: child 14001 stopped for tracing
[30-Nov-2026 21:22:10] NOTICE: about to trace 14001
[30-Nov-2026 21:22:10] NOTICE: finished trace of 14001
[30-Nov-2026 21:22:35] WARNING: [pool www] child 14001, script '/srv/www/slow.php' (request: "GET /slow.php?token=s3cret") execution timed out (30.012345 sec), terminating
[30-Nov-2026 21:22:35] WARNING: [pool www] child 14001 exited on signal 15 (SIGTERM) after 40.500000 seconds from start
[30-Nov-2026 21:22:35] NOTICE: [pool www] child 14010 started
[30-Nov-2026 21:22:40] WARNING: [pool www] child 14002, script '/srv/www/slow.php' (request: "POST /slow.php") execution timed out (30.004120 sec), terminating
[30-Nov-2026 21:22:40] WARNING: [pool www] child 14002 exited on signal 15 (SIGTERM) after 35.100000 seconds from start
[30-Nov-2026 21:22:41] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it
"#;

/// nginx: `fastcgi_read_timeout` ran out for `slow.php`; `loop.php` ran into PHP's `max_execution_time`.
const NGINX_TIMEOUT: &str = r#"2026/11/30 21:23:35 [error] 13490#13490: *25 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /slow.php?token=s3cret HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:23:40 [error] 13490#13490: *27 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Maximum execution time of 30 seconds exceeded in /srv/www/loop.php on line 3" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /loop.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
"#;

/// Apache: proxy_fcgi's poll timed out (AH01075 with APR's 70007), PHP's max_execution_time through proxy_fcgi,
/// mod_proxy_http's read timed out (AH01102, then AH00898), and a connection reset (AH01075, not a timeout).
const APACHE_TIMEOUT: &str = r#"[Mon Nov 30 21:24:14.776088 2026] [proxy_fcgi:error] [pid 13662:tid 13717] (70007)The timeout specified has expired: [client 127.0.0.1:47886] AH01075: Error dispatching request to : (polling)
[Mon Nov 30 21:24:15.000120 2026] [proxy_fcgi:error] [pid 13662:tid 13718] [client 127.0.0.1:47890] AH01071: Got error 'PHP message: PHP Fatal error:  Maximum execution time of 30 seconds exceeded in /srv/www/loop.php on line 3'
[Mon Nov 30 21:24:16.200000 2026] [proxy_http:error] [pid 13662:tid 13719] (70007)The timeout specified has expired: [client 127.0.0.1:47900] AH01102: error reading status line from remote server 127.0.0.1:8081
[Mon Nov 30 21:24:16.200100 2026] [proxy:error] [pid 13662:tid 13719] [client 127.0.0.1:47900] AH00898: Error reading from remote server returned by /api/report
[Mon Nov 30 21:24:17.000000 2026] [proxy_fcgi:error] [pid 13662:tid 13720] (104)Connection reset by peer: [client 127.0.0.1:47910] AH01075: Error dispatching request to : 
"#;

/// PHP's max_execution_time as PHP's own log, FPM's child and Apache's mod_php write it.
const PHP_TIMEOUT: &str = "[30-Nov-2026 21:23:40 UTC] PHP Fatal error:  Maximum execution time of 1 second exceeded in /srv/www/loop.php on line 7\n";
const FPM_CHILD_TIMEOUT: &str = r#"[30-Nov-2026 21:23:40] WARNING: [pool www] child 14002 said into stderr: "NOTICE: PHP message: PHP Fatal error:  Maximum execution time of 30 seconds exceeded in /srv/www/loop.php on line 3"
"#;
const MOD_PHP_TIMEOUT: &str = "[Mon Nov 30 21:23:40.123456 2026] [php:error] [pid 10643:tid 10643] [client 127.0.0.1:42820] PHP Fatal error:  Maximum execution time of 30 seconds exceeded in /srv/www/loop.php on line 3\n";

/// nginx passing PHP-FPM a `SCRIPT_FILENAME` under the wrong root: every PHP request `Primary script unknown`.
const NGINX_SCRIPT_UNKNOWN: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *7 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /nope.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:54 [error] 13490#13490: *9 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /index.php?session=abc HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:55 [error] 13490#13490: *11 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /nope.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
"#;

const APACHE_SCRIPT_UNKNOWN: &str = "[Mon Nov 30 21:21:14.798750 2026] [proxy_fcgi:error] [pid 13662:tid 13725] [client 127.0.0.1:47928] AH01071: Got error 'Primary script unknown'\n";

/// Apache's AH01079 without the AH02454 before it (a log cut by `--since`, or read from its end).
const APACHE_AH01079: &str = "[Mon Nov 30 21:21:15.110613 2026] [proxy_fcgi:error] [pid 13660:tid 13715] [client 127.0.0.1:47936] AH01079: failed to make connection to backend: localhost\n";

/// PHP-FPM 8.2's own log, workers of a `pm = static` pool killing themselves with `posix_kill(getmypid(), N)`
/// (11, 6, 7, 11), first without a core limit, then with `rlimit_core = unlimited`; then a reload (children exit
/// on SIGQUIT, logged at a level below the default) and a stop.
const FPM_CRASH: &str = r#"[30-Nov-2026 23:13:01] NOTICE: fpm is running, pid 20915
[30-Nov-2026 23:13:01] NOTICE: ready to handle connections
[30-Nov-2026 23:13:02] WARNING: [pool www] child 20918 exited on signal 11 (SIGSEGV) after 0.985691 seconds from start
[30-Nov-2026 23:13:02] NOTICE: [pool www] child 21131 started
[30-Nov-2026 23:13:02] WARNING: [pool www] child 20917 exited on signal 6 (SIGABRT) after 1.003361 seconds from start
[30-Nov-2026 23:13:02] NOTICE: [pool www] child 21134 started
[30-Nov-2026 23:13:02] WARNING: [pool www] child 21131 exited on signal 7 (SIGBUS) after 0.024918 seconds from start
[30-Nov-2026 23:13:02] NOTICE: [pool www] child 21138 started
[30-Nov-2026 23:13:02] WARNING: [pool www] child 21134 exited on signal 11 (SIGSEGV) after 0.022626 seconds from start
[30-Nov-2026 23:13:02] NOTICE: [pool www] child 21145 started
[30-Nov-2026 23:13:16] WARNING: [pool www] child 22412 exited on signal 11 (SIGSEGV - core dumped) after 0.348478 seconds from start
[30-Nov-2026 23:13:16] NOTICE: [pool www] child 22421 started
[30-Nov-2026 23:13:18] NOTICE: Reloading in progress ...
[30-Nov-2026 23:13:19] NOTICE: Terminating ...
[30-Nov-2026 23:13:19] NOTICE: exiting, bye-bye!
"#;

/// nginx 1.22 in front of that pool, for the same four requests.
const NGINX_CRASH: &str = r#"2026/11/30 23:13:02 [error] 19970#19970: *29 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /crash.php?sig=11 HTTP/1.1", upstream: "fastcgi://unix:/tmp/crash/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 23:13:02 [error] 19970#19970: *31 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /crash.php?sig=6 HTTP/1.1", upstream: "fastcgi://unix:/tmp/crash/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 23:13:02 [error] 19970#19970: *33 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /crash.php?sig=7 HTTP/1.1", upstream: "fastcgi://unix:/tmp/crash/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 23:13:02 [error] 19970#19970: *35 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /crash.php?sig=11 HTTP/1.1", upstream: "fastcgi://unix:/tmp/crash/run/fpm.sock:", host: "127.0.0.1:18915"
"#;

/// nginx when the backend closed instead of resetting: FastCGI's empty STDOUT record, or the connection itself.
const NGINX_CLOSED: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *7 upstream prematurely closed FastCGI stdout while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /crash.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:54 [error] 13490#13490: *9 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "POST /api/save HTTP/1.1", upstream: "http://127.0.0.1:8080/api/save", host: "127.0.0.1:18915"
"#;

/// Apache 2.4.71 (mpm_event, `SetHandler "proxy:unix:…|fcgi://localhost"`) in front of that pool, three requests
/// whose workers crashed: each thread logs AH01067, then AH01075 with the reset.
const APACHE_CRASH: &str = "[Mon Nov 30 23:13:15.397937 2026] [proxy_fcgi:error] [pid 22112:tid 22116] [client 127.0.0.1:51086] AH01067: Failed to read FastCGI header
[Mon Nov 30 23:13:15.398040 2026] [proxy_fcgi:error] [pid 22112:tid 22116] (104)Connection reset by peer: [client 127.0.0.1:51086] AH01075: Error dispatching request to :18978: 
[Mon Nov 30 23:13:15.596692 2026] [proxy_fcgi:error] [pid 22112:tid 22117] [client 127.0.0.1:51100] AH01067: Failed to read FastCGI header
[Mon Nov 30 23:13:15.596726 2026] [proxy_fcgi:error] [pid 22112:tid 22117] (104)Connection reset by peer: [client 127.0.0.1:51100] AH01075: Error dispatching request to :18978: 
[Mon Nov 30 23:13:15.971248 2026] [proxy_fcgi:error] [pid 22113:tid 22144] [client 127.0.0.1:51112] AH01067: Failed to read FastCGI header
[Mon Nov 30 23:13:15.971341 2026] [proxy_fcgi:error] [pid 22113:tid 22144] (104)Connection reset by peer: [client 127.0.0.1:51112] AH01075: Error dispatching request to :18978: 
";

/// Every fixture here, for the garbage test.
pub const REAL: [&str; 14] = [
    FPM_CRASH,
    NGINX_CRASH,
    NGINX_CLOSED,
    APACHE_CRASH,
    FPM_SLOW,
    NGINX_TIMEOUT,
    APACHE_TIMEOUT,
    PHP_TIMEOUT,
    FPM_CHILD_TIMEOUT,
    MOD_PHP_TIMEOUT,
    NGINX_SCRIPT_UNKNOWN,
    APACHE_SCRIPT_UNKNOWN,
    APACHE_AH01079,
    DENIED,
];

fn timeout_detail(f: &Finding) -> (Limit, Option<u64>, Option<u32>, Option<&str>) {
    match &f.detail {
        Some(Detail::Timeout { limit, seconds, line, request, .. }) => (*limit, *seconds, *line, request.as_deref()),
        other => panic!("not a timeout: {other:?}"),
    }
}

#[test]
fn fpm_killing_a_script_at_request_terminate_timeout_is_a_root_cause_that_names_it() {
    let findings = diagnose(FPM_SLOW.lines(), ErrorFormat::Auto, None);
    let causes: Vec<(Cause, &Path)> = findings.iter().map(|f| (f.cause, f.path.as_path())).collect();
    let slow = Path::new("/srv/www/slow.php");
    assert_eq!(
        causes,
        [(Cause::Timeout, slow), (Cause::Saturated, Path::new("pool www")), (Cause::Slow, slow)],
        "the kill first; a full pool and the slowlog are context: {findings:#?}"
    );
    let killed = &findings[0];
    assert_eq!(killed.occurrences, 2);
    assert_eq!(timeout_detail(killed), (Limit::RequestTerminateTimeout, Some(30), None, Some("GET /slow.php")));
    assert_eq!(
        killed.summary,
        "Probable root cause: /srv/www/slow.php ran longer than PHP-FPM's request_terminate_timeout (30 s) and was killed (pool www; e.g. GET /slow.php; 2 error-log lines from 2026-11-30T21:22:35Z to 2026-11-30T21:22:40Z): the web server answered 502 or 504; find what it waits for (request_slowlog_timeout makes PHP-FPM log its stack), or raise request_terminate_timeout"
    );
    assert!(!killed.summary.contains("s3cret"), "the query string stays out of the verdict");
    // The child's exit on SIGTERM is evidence of the kill, not a second one.
    assert!(
        killed.evidence[1].ends_with("child 14001 exited on signal 15 (SIGTERM) after 40.500000 seconds from start")
    );
    assert_eq!(killed.diagnosis().path, None, "a slow script is not a file to look at again");
    assert_eq!(
        findings[2].summary,
        "Slow: /srv/www/slow.php ran longer than PHP-FPM's request_slowlog_timeout (5 s) (pool www; e.g. GET /slow.php; 1 error-log line from 2026-11-30T21:22:10Z to 2026-11-30T21:22:10Z); the pool's slowlog has the stack it was waiting in"
    );
    // The slowlog alone names the script, after any root cause.
    let only_slow: Vec<&str> = FPM_SLOW.lines().take(4).collect();
    let f = diagnose(only_slow, ErrorFormat::Auto, None);
    assert_eq!(f.iter().map(|f| f.cause).collect::<Vec<_>>(), [Cause::Slow]);
    let with_missing = format!(
        "{}\n[30-Nov-2026 21:22:11] WARNING: [pool www] child 14003 said into stderr: \"NOTICE: PHP message: PHP Warning:  require_once(/nonexistent-lookout/x.php): Failed to open stream: No such file or directory in /srv/www/index.php on line 1\"",
        FPM_SLOW.lines().next().unwrap_or_default()
    );
    let f = diagnose(with_missing.lines(), ErrorFormat::Auto, None);
    assert_eq!(f.iter().map(|f| f.cause).collect::<Vec<_>>(), [Cause::Missing, Cause::Slow]);
}

#[test]
fn max_execution_time_names_script_and_line_on_every_stack() {
    for (log, seconds, line) in [
        (NGINX_TIMEOUT, 30, 3),
        (APACHE_TIMEOUT, 30, 3),
        (PHP_TIMEOUT, 1, 7),
        (FPM_CHILD_TIMEOUT, 30, 3),
        (MOD_PHP_TIMEOUT, 30, 3),
    ] {
        let findings = diagnose(log.lines(), ErrorFormat::Auto, None);
        let f = &findings[0];
        assert_eq!((f.cause, f.path.as_path()), (Cause::Timeout, Path::new("/srv/www/loop.php")), "{log}");
        let (limit, s, l, _) = timeout_detail(f);
        assert_eq!((limit, s, l), (Limit::MaxExecutionTime, Some(seconds), Some(line)), "{log}");
        assert!(
            f.summary.starts_with(&format!(
                "Probable root cause: /srv/www/loop.php:{line} ran longer than PHP's max_execution_time ({seconds} s) and was stopped with a fatal error ("
            )),
            "{}",
            f.summary
        );
    }
    let f = &diagnose(NGINX_TIMEOUT.lines(), ErrorFormat::Auto, None)[0];
    assert_eq!(
        f.summary,
        "Probable root cause: /srv/www/loop.php:3 ran longer than PHP's max_execution_time (30 s) and was stopped with a fatal error (e.g. GET /loop.php; 1 error-log line from 2026-11-30T21:23:40Z to 2026-11-30T21:23:40Z): find what it waits for, or raise max_execution_time"
    );
}

#[test]
fn an_nginx_upstream_timeout_names_the_request_and_the_upstream() {
    let findings = diagnose(NGINX_TIMEOUT.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    // Logged as often, the script's own limit (which names its line) comes before nginx's.
    let f = &findings[1];
    assert_eq!((f.cause, f.path.as_path()), (Cause::Timeout, Path::new("GET /slow.php")));
    assert_eq!(
        f.summary,
        "Probable root cause: the backend at fastcgi://unix:/run/php/php8.2-fpm.sock did not answer GET /slow.php in time: nginx waited longer than fastcgi_read_timeout while reading response header from upstream (answered 504; 1 error-log line from 2026-11-30T21:23:35Z to 2026-11-30T21:23:35Z): find what makes it slow, or raise fastcgi_read_timeout"
    );
    assert_eq!(f.diagnosis().path, None, "a request is not a file");
    // Connecting to an HTTP upstream: proxy_connect_timeout.
    let connect = r#"2026/11/30 21:23:35 [error] 1#1: *2 upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: , request: "POST /api HTTP/1.1", upstream: "http://10.0.0.9:8080/api", host: "x""#;
    let f = &diagnose([connect], ErrorFormat::Nginx, None)[0];
    assert!(
        f.summary.starts_with("Probable root cause: the backend at http://10.0.0.9:8080/api did not answer POST /api in time: nginx waited longer than proxy_connect_timeout while connecting to upstream (answered 504;"),
        "{}",
        f.summary
    );
}

#[test]
fn apache_proxy_timeouts_and_not_every_dispatch_error() {
    let findings = diagnose(APACHE_TIMEOUT.lines(), ErrorFormat::Auto, None);
    let paths: Vec<(Cause, &Path)> = findings.iter().map(|f| (f.cause, f.path.as_path())).collect();
    assert_eq!(
        paths,
        [
            (Cause::Timeout, Path::new("/srv/www/loop.php")),
            (Cause::Timeout, Path::new("proxy_fcgi backend")),
            (Cause::Timeout, Path::new("127.0.0.1:8081")),
            (Cause::BackendClosed, Path::new("proxy_fcgi backend")),
        ],
        "a connection reset is no timeout: {findings:#?}"
    );
    // Apache 2.4.71 with `Listen 127.0.0.1:18978`: the port after `to` is its own, not the backend's.
    let on_port = "[Mon Nov 30 22:47:49.616330 2026] [proxy_fcgi:error] [pid 11804:tid 11815] (70007)The timeout specified has expired: [client 127.0.0.1:48514] AH01075: Error dispatching request to :18978: (polling)";
    let f = &diagnose([on_port], ErrorFormat::Auto, None)[0];
    assert_eq!((f.cause, f.path.as_path()), (Cause::Timeout, Path::new("proxy_fcgi backend")));
    assert_eq!(
        findings[1].summary,
        "Probable root cause: PHP-FPM did not answer in time: Apache's proxy_fcgi gave up waiting for its response (answered 503 or 504; 1 error-log line from 2026-11-30T21:24:14Z to 2026-11-30T21:24:14Z): find which script is slow (PHP-FPM's slowlog says), or raise ProxyTimeout (or timeout= of the proxy worker)"
    );
    assert_eq!(
        findings[2].summary,
        "Probable root cause: the upstream server 127.0.0.1:8081 did not answer in time: Apache's mod_proxy gave up reading its status line (answered 502 or 504; 1 error-log line from 2026-11-30T21:24:16Z to 2026-11-30T21:24:16Z): find what makes it slow, or raise ProxyTimeout"
    );
}

#[test]
fn primary_script_unknown_is_a_root_cause_only_when_nothing_else_ran() {
    let findings = diagnose(NGINX_SCRIPT_UNKNOWN.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!((f.cause, f.occurrences), (Cause::ScriptUnknown, 3));
    assert_eq!(
        f.detail,
        Some(Detail::ScriptUnknown { requests: vec!["GET /nope.php".into(), "GET /index.php".into()] })
    );
    assert_eq!(
        f.summary,
        "Probable root cause: PHP-FPM found no script for every PHP request that failed (\"Primary script unknown\"; e.g. GET /nope.php, GET /index.php; 3 error-log lines from 2026-11-30T21:20:53Z to 2026-11-30T21:20:55Z): check the SCRIPT_FILENAME the web server passes (nginx: root and fastcgi_param SCRIPT_FILENAME; Apache: the path of ProxyPass or SetHandler \"proxy:unix:…|fcgi://…\")"
    );
    let apache = &diagnose(APACHE_SCRIPT_UNKNOWN.lines(), ErrorFormat::Auto, None)[0];
    assert!(
        apache.summary.starts_with("Probable root cause: PHP-FPM found no script for every PHP request that failed (\"Primary script unknown\"; 1 error-log line from 2026-11-30T21:21:14Z"),
        "{}",
        apache.summary
    );
    // A full pool does not show that a script ran; a slow or killed one does.
    let full_pool = FPM_SLOW.lines().last().unwrap_or_default();
    let logs = [NGINX_SCRIPT_UNKNOWN, FPM_SLOW, full_pool];
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let p = dir.path().join(format!("{i}.log"));
            std::fs::write(&p, log).unwrap();
            p
        })
        .collect();
    let d = diagnose_files(&paths[..2], ErrorFormat::Auto, None).unwrap();
    let causes: Vec<Cause> = d.findings.iter().map(|f| f.cause).collect();
    assert_eq!(causes, [Cause::Timeout, Cause::Saturated, Cause::Slow, Cause::ScriptUnknown]);
    assert!(
        d.findings[3].summary.starts_with("Also: PHP-FPM found no script for 3 requests"),
        "{}",
        d.findings[3].summary
    );
    let pool = diagnose_files(&[paths[0].clone(), paths[2].clone()], ErrorFormat::Auto, None).unwrap();
    assert_eq!(pool.findings.iter().map(|f| f.cause).collect::<Vec<_>>(), [Cause::ScriptUnknown, Cause::Saturated]);
    assert!(pool.findings[0].summary.starts_with("Probable root cause: PHP-FPM found no script"));
}

#[test]
fn apache_ah01079_alone_is_fpm_down() {
    let findings = diagnose(APACHE_AH01079.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!((f.cause, f.path.as_path()), (Cause::BackendDown, Path::new("localhost")));
    assert_eq!(
        f.summary,
        "Probable root cause: PHP-FPM is not answering at localhost (failed to make a connection; 1 error-log line from 2026-11-30T21:21:15Z to 2026-11-30T21:21:15Z): start or restart PHP-FPM"
    );
    assert_eq!(f.diagnosis().path, None, "a host name is not a file");
}

/// `DIR` is replaced by a test's own directory: `index.php` requires `inc/settings.php` in a 0700 directory.
const DENIED: &str = "[30-Nov-2026 21:25:00 UTC] PHP Warning:  require_once(DIR/www/inc/settings.php): Failed to open stream: Permission denied in DIR/www/index.php on line 2
[30-Nov-2026 21:25:00 UTC] PHP Fatal error:  Uncaught Error: Failed opening required 'DIR/www/inc/settings.php' (include_path='.:/usr/share/php') in DIR/www/index.php:2
";

/// A site whose `www/inc` (owned by this test's user, root in CI) is 0700, the rest 0755.
fn locked_site() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = site();
    for (p, mode) in [("", 0o755), ("www", 0o755), ("www/inc", 0o700)] {
        std::fs::set_permissions(dir.path().join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

fn owner_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(path).unwrap().uid();
    hints::user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

#[test]
fn a_denial_names_the_directory_that_blocks_the_web_server_user() {
    let dir = locked_site();
    let log = DENIED.replace("DIR", dir.path().to_str().unwrap());
    let findings = diagnose(log.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    let file = dir.path().join("www/inc/settings.php");
    let inc = dir.path().join("www/inc");
    assert_eq!((f.cause, &f.path, f.pid), (Cause::Unreadable, &file, None));
    let seen = "2 error-log lines from 2026-11-30T21:25:00Z to 2026-11-30T21:25:00Z";
    match hints::user_reader("www-data") {
        Some(www) if www.uid != 0 => assert_eq!(
            f.summary,
            format!(
                "Probable root cause: the web server may not read {} (permission denied; {seen}): its directory {} (owner {}, mode 0700) does not let www-data (uid {}) enter",
                file.display(),
                inc.display(),
                owner_of(&inc),
                www.uid
            )
        ),
        // No www-data here: each step's owner and mode.
        _ => assert!(
            f.summary.contains(&format!("{} (owner {}, mode 0700)", inc.display(), owner_of(&inc))),
            "{}",
            f.summary
        ),
    }
}

/// A process named like a web server, running as `nobody`, for as long as the test needs it.
struct FakeServer {
    child: std::process::Child,
    /// Holds its binary.
    _bin: tempfile::TempDir,
}

impl FakeServer {
    fn start() -> Option<FakeServer> {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let bin = tempfile::tempdir().unwrap();
        std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nginx = bin.path().join("nginx");
        std::fs::copy("/bin/sleep", &nginx).ok()?;
        let child = std::process::Command::new(&nginx).arg("30").uid(65534).gid(65534).spawn().ok()?;
        Some(FakeServer { child, _bin: bin })
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_denial_checks_the_credentials_of_the_server_process_that_logged_it() {
    let dir = locked_site();
    let inc = dir.path().join("www/inc");
    let file = inc.join("settings.php");
    let Some(server) = FakeServer::start() else {
        eprintln!("skipped: needs root to run a process as another user");
        return;
    };
    let pid = server.child.id();
    // /proc needs a moment to show the exec'd name.
    for _ in 0..100 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nginx") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let own = format!(
        r#"2026/11/30 21:25:00 [error] {pid}#{pid}: *3 open() "{}" failed (13: Permission denied), client: 127.0.0.1, server: , request: "GET /inc/settings.php HTTP/1.1", host: "127.0.0.1:18915""#,
        file.display()
    );
    let f = &diagnose([own.as_str()], ErrorFormat::Auto, None)[0];
    assert_eq!((f.cause, f.pid), (Cause::Unreadable, Some(pid)));
    let Some(Detail::Access { reader: Some(reader), steps }) = &f.detail else { panic!("{f:#?}") };
    assert_eq!((reader.uid, reader.pid), (65534, Some(pid)));
    assert_eq!(steps.iter().find(|s| s.missing.is_some()).map(|s| s.path.as_path()), Some(inc.as_path()));
    let nobody = reader.label();
    assert!(
        f.summary.ends_with(&format!(
            ": its directory {} (owner {}, mode 0700) does not let {nobody} enter",
            inc.display(),
            owner_of(&inc)
        )),
        "{}",
        f.summary
    );
    // Relayed by nginx from PHP-FPM, the message is the FPM worker's: nginx's pid says nothing about it.
    let relayed = format!(
        r#"2026/11/30 21:25:00 [error] {pid}#{pid}: *5 FastCGI sent in stderr: "PHP message: PHP Warning:  require_once({}): Failed to open stream: Permission denied in {} on line 2" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "127.0.0.1:18915""#,
        file.display(),
        dir.path().join("www/index.php").display()
    );
    let f = &diagnose([relayed.as_str()], ErrorFormat::Auto, None)[0];
    assert_eq!(f.pid, None);
    assert!(!f.summary.contains(&nobody), "{}", f.summary);
    // Once the process is gone, its pid says nothing either.
    drop(server);
    let f = &diagnose([own.as_str()], ErrorFormat::Auto, None)[0];
    let Some(Detail::Access { reader, .. }) = &f.detail else { panic!("{f:#?}") };
    assert_ne!(reader.as_ref().and_then(|r| r.pid), Some(pid));
}

fn write_logs(dir: &Path, logs: &[&str]) -> Vec<PathBuf> {
    logs.iter()
        .enumerate()
        .map(|(i, log)| {
            let p = dir.join(format!("{i}.log"));
            std::fs::write(&p, log).unwrap();
            p
        })
        .collect()
}

#[test]
fn fpm_workers_dying_of_a_crash_signal_are_a_root_cause() {
    let findings = diagnose(FPM_CRASH.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "started, reloading and stopping are no findings: {findings:#?}");
    let f = &findings[0];
    assert_eq!((f.cause, f.path.as_path(), f.occurrences), (Cause::Crashed, Path::new("pool www"), 5));
    let Some(Detail::Crash { pool, signals, core_dumped }) = &f.detail else { panic!("{f:#?}") };
    let signals: Vec<(&str, u64)> = signals.iter().map(|s| (s.signal.as_str(), s.count)).collect();
    assert_eq!(
        (pool.as_str(), signals, *core_dumped),
        ("www", vec![("SIGSEGV", 3), ("SIGABRT", 1), ("SIGBUS", 1)], true)
    );
    assert_eq!(
        f.summary,
        "Probable root cause: PHP-FPM workers of pool www crashed 5× (SIGSEGV 3×, SIGABRT, SIGBUS, core dumped; 5 error-log lines from 2026-11-30T23:13:02Z to 2026-11-30T23:13:16Z): the request each was serving got no answer (nginx answers 502, Apache 503); a PHP extension or opcache is failing, not a script's own error: the core dump (core_pattern says where; `coredumpctl` under systemd) or `dmesg` says in which library"
    );
    assert!(f.evidence[0].ends_with("child 20918 exited on signal 11 (SIGSEGV) after 0.985691 seconds from start"));
    let d = f.diagnosis();
    assert_eq!((d.cause.map(Cause::as_str), d.path), (Some("crashed"), None), "a pool is not a file");
    // Without a core limit: how to get a core.
    let one = "[30-Nov-2026 23:13:02] WARNING: [pool api] child 20917 exited on signal 6 (SIGABRT) after 1.003361 seconds from start";
    let f = &diagnose([one], ErrorFormat::Auto, None)[0];
    assert_eq!(
        f.summary,
        "Probable root cause: a PHP-FPM worker of pool api crashed (SIGABRT; 1 error-log line from 2026-11-30T23:13:02Z to 2026-11-30T23:13:02Z): the request each was serving got no answer (nginx answers 502, Apache 503); a PHP extension or opcache is failing, not a script's own error: `dmesg` says in which library; for a core dump set rlimit_core = unlimited in the pool"
    );
}

#[test]
fn workers_stopped_by_the_master_or_an_operator_are_no_crash() {
    for line in [
        "[30-Nov-2026 23:13:19] WARNING: [pool www] child 20918 exited on signal 15 (SIGTERM) after 12.500000 seconds from start",
        "[30-Nov-2026 23:13:19] WARNING: [pool www] child 20918 exited on signal 9 (SIGKILL) after 12.500000 seconds from start",
        "[30-Nov-2026 23:13:19] NOTICE: [pool www] child 20918 exited on signal 3 (SIGQUIT) after 12.500000 seconds from start",
        "[30-Nov-2026 23:13:19] NOTICE: [pool www] child 20918 exited on signal 3 (SIGQUIT - core dumped) after 12.500000 seconds from start",
        "[30-Nov-2026 23:13:19] NOTICE: [pool www] child 20918 exited with code 0 after 12.500000 seconds from start",
        "[30-Nov-2026 23:13:19] NOTICE: [pool www] child 20918 started",
    ] {
        assert_eq!(diagnose([line], ErrorFormat::Auto, None), [], "{line}");
    }
    // A signal FPM has no name for, with a core: a crash all the same.
    let unnamed = "[30-Nov-2026 23:13:19] WARNING: [pool www] child 20918 exited on signal 40 ( - core dumped) after 1.000000 seconds from start";
    let f = &diagnose([unnamed], ErrorFormat::Auto, None)[0];
    assert_eq!(f.cause, Cause::Crashed);
    assert!(f.summary.contains("(signal 40, core dumped;"), "{}", f.summary);
    // After request_terminate_timeout, the SIGTERM stays the kill's evidence; a crash beside it is its own finding.
    let both = format!("{FPM_SLOW}{FPM_CRASH}");
    let findings = diagnose(both.lines(), ErrorFormat::Auto, None);
    let causes: Vec<(Cause, u64)> = findings.iter().map(|f| (f.cause, f.occurrences)).collect();
    assert_eq!(
        causes,
        [(Cause::Crashed, 5), (Cause::Timeout, 2), (Cause::Saturated, 1), (Cause::Slow, 1)],
        "{findings:#?}"
    );
    assert!(findings[1].evidence.iter().any(|e| e.contains("exited on signal 15 (SIGTERM)")));
}

#[test]
fn nginx_names_the_requests_a_backend_closed_mid_request() {
    let findings = diagnose(NGINX_CRASH.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.cause, f.path.as_path(), f.occurrences),
        (Cause::BackendClosed, Path::new("fastcgi://unix:/tmp/crash/run/fpm.sock"), 4)
    );
    assert_eq!(
        f.summary,
        "Probable root cause: the backend at fastcgi://unix:/tmp/crash/run/fpm.sock closed the connection before answering 4 requests (connection reset by peer; e.g. GET /crash.php; answered 502; 4 error-log lines from 2026-11-30T23:13:02Z to 2026-11-30T23:13:02Z): a PHP-FPM worker died mid-request: PHP-FPM's log says why (`child N exited on signal 11 (SIGSEGV)` is a crash, `execution timed out` a request_terminate_timeout kill); read it too (--error-log)"
    );
    assert_eq!(f.pid, None, "nginx's pid is not the process that died");
    assert_eq!(f.diagnosis().path, None);
    // Closed rather than reset: FastCGI's empty STDOUT, and an HTTP upstream's EOF (not PHP-FPM).
    let findings = diagnose(NGINX_CLOSED.lines(), ErrorFormat::Auto, None);
    let paths: Vec<&Path> = findings.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [Path::new("fastcgi://unix:/run/php/php8.2-fpm.sock"), Path::new("http://127.0.0.1:8080/api/save")]
    );
    assert!(
        findings[0].summary.starts_with("Probable root cause: the backend at fastcgi://unix:/run/php/php8.2-fpm.sock closed the connection before answering a request (closed FastCGI stdout before the header; e.g. GET /crash.php; answered 502;"),
        "{}",
        findings[0].summary
    );
    assert!(
        findings[1].summary.ends_with("(closed the connection; e.g. POST /api/save; answered 502; 1 error-log line from 2026-11-30T21:20:54Z to 2026-11-30T21:20:54Z): the upstream server dropped the request: its own log says why"),
        "{}",
        findings[1].summary
    );
}

/// The choice made when nginx's and FPM's logs are read together: the crash is the root cause; the closed
/// connections stay a finding of their own after it, since they name the requests that failed.
#[test]
fn with_fpm_log_the_crash_comes_first_and_closed_connections_are_context() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_logs(dir.path(), &[NGINX_CRASH, FPM_CRASH, FPM_SLOW]);
    for logs in [vec![paths[0].clone(), paths[1].clone()], vec![paths[1].clone(), paths[0].clone()]] {
        let d = diagnose_files(&logs, ErrorFormat::Auto, None).unwrap();
        let causes: Vec<Cause> = d.findings.iter().map(|f| f.cause).collect();
        assert_eq!(causes, [Cause::Crashed, Cause::BackendClosed], "{logs:?}");
        assert_eq!(
            d.findings[1].summary,
            "Also: the backend at fastcgi://unix:/tmp/crash/run/fpm.sock closed the connection before answering 4 requests (connection reset by peer; e.g. GET /crash.php; answered 502; 4 error-log lines from 2026-11-30T23:13:02Z to 2026-11-30T23:13:02Z): the worker serving each died (above)"
        );
    }
    // A request_terminate_timeout kill explains closed connections as well.
    let d = diagnose_files(&[paths[0].clone(), paths[2].clone()], ErrorFormat::Auto, None).unwrap();
    let causes: Vec<Cause> = d.findings.iter().map(|f| f.cause).collect();
    assert_eq!(causes, [Cause::Timeout, Cause::BackendClosed, Cause::Saturated, Cause::Slow]);
    assert!(d.findings[1].summary.starts_with("Also: "), "{}", d.findings[1].summary);
}

#[test]
fn apache_proxy_fcgi_failing_to_read_a_header_is_a_closed_backend() {
    let findings = diagnose(APACHE_CRASH.lines(), ErrorFormat::Auto, None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.cause, f.path.as_path(), f.occurrences),
        (Cause::BackendClosed, Path::new("proxy_fcgi backend"), 3),
        "each AH01075 is the evidence of the AH01067 before it"
    );
    assert!(f.evidence[1].ends_with("AH01075: Error dispatching request to :18978:"), "{:?}", f.evidence);
    assert_eq!(
        f.summary,
        "Probable root cause: PHP-FPM closed the connection before answering 3 requests (no FastCGI header; answered 503; 3 error-log lines from 2026-11-30T23:13:15Z to 2026-11-30T23:13:15Z): a PHP-FPM worker died mid-request: PHP-FPM's log says why (`child N exited on signal 11 (SIGSEGV)` is a crash, `execution timed out` a request_terminate_timeout kill); read it too (--error-log)"
    );
    // The reset alone (a log cut between the two lines) says the same.
    let reset = APACHE_CRASH.lines().nth(1).unwrap_or_default();
    let f = &diagnose([reset], ErrorFormat::Auto, None)[0];
    assert_eq!((f.cause, f.path.as_path()), (Cause::BackendClosed, Path::new("proxy_fcgi backend")));
    assert!(f.summary.contains("(connection reset by peer; answered 503;"), "{}", f.summary);
    // With FPM's log: the crash first.
    let dir = tempfile::tempdir().unwrap();
    let paths = write_logs(dir.path(), &[APACHE_CRASH, FPM_CRASH]);
    let d = diagnose_files(&paths, ErrorFormat::Auto, None).unwrap();
    assert_eq!(d.findings.iter().map(|f| f.cause).collect::<Vec<_>>(), [Cause::Crashed, Cause::BackendClosed]);
    assert!(d.findings[1].summary.starts_with("Also: PHP-FPM closed the connection before answering 3 requests"));
}
