//! Entries from the exact lines real nginx 1.22, PHP-FPM 8.2, PHP 8.2 and Apache 2.4 (proxy_fcgi) wrote on Debian 12
//! for a page whose `require_once` names a missing file, a parse error, an open_basedir refusal, and FPM down.

use super::*;

pub(crate) const NGINX: &str = r#"2026/11/30 21:20:53 [error] 13490#13490: *1 FastCGI sent in stderr: "PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1
Stack trace:
#0 {main}
  thrown in /tmp/h15/d/www/index.php on line 1" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:53 [error] 13490#13490: *3 FastCGI sent in stderr: "PHP message: PHP Parse error:  syntax error, unexpected end of file, expecting "," or ";" in /tmp/h15/d/www/parse.php on line 2" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /parse.php HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:20:53 [error] 13490#13490: *7 FastCGI sent in stderr: "Primary script unknown" while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /nope.php HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
2026/11/30 21:21:03 [error] 13490#13490: *16 connect() to unix:/tmp/h15/d/run/fpm.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/tmp/h15/d/run/fpm.sock:", host: "127.0.0.1:18915"
"#;

pub(crate) const FPM: &str = r##"[30-Nov-2026 21:20:52] NOTICE: fpm is running, pid 13484
[30-Nov-2026 21:20:52] NOTICE: ready to handle connections
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13486 said into stderr: "NOTICE: PHP message: PHP Parse error:  syntax error, unexpected end of file, expecting "," or ";" in /tmp/h15/d/www/parse.php on line 2"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "Stack trace:"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "#0 {main}"
[30-Nov-2026 21:20:53] WARNING: [pool www] child 13485 said into stderr: "  thrown in /tmp/h15/d/www/index.php on line 1"
[30-Nov-2026 21:20:54] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it
"##;

pub(crate) const PHP: &str = "[30-Nov-2026 21:21:02 UTC] PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1
[30-Nov-2026 21:21:02 UTC] PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1
Stack trace:
#0 {main}
  thrown in /tmp/h15/d/www/index.php on line 1
";

pub(crate) const APACHE_FCGI: &str = r#"[Mon Nov 30 21:21:14.269308 2026] [mpm_event:notice] [pid 13658:tid 13658] AH00489: Apache/2.4.71 (Debian) configured -- resuming normal operations
[Mon Nov 30 21:21:14.776088 2026] [proxy_fcgi:error] [pid 13662:tid 13717] [client 127.0.0.1:47886] AH01071: Got error 'PHP message: PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1; PHP message: PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1\nStack trace:\n#0 {main}\n  thrown in /tmp/h15/d/www/index.php on line 1'
[Mon Nov 30 21:21:14.791291 2026] [proxy_fcgi:error] [pid 13662:tid 13724] [client 127.0.0.1:47912] AH01071: Got error 'PHP message: PHP Warning:  include(): open_basedir restriction in effect. File(/etc/hostname) is not within the allowed path(s): (/tmp/h15/d/www) in /tmp/h15/d/www/basedir.php on line 1; PHP message: PHP Warning:  include(/etc/hostname): Failed to open stream: Operation not permitted in /tmp/h15/d/www/basedir.php on line 1; PHP message: PHP Warning:  include(): Failed opening '/etc/hostname' for inclusion (include_path='.:/usr/share/php') in /tmp/h15/d/www/basedir.php on line 1'
[Mon Nov 30 21:21:15.110553 2026] [proxy:error] [pid 13660:tid 13715] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /tmp/h15/d/run/fpm.sock (localhost:8000) failed
AH00016: Configuration Failed
"#;

const REQUIRE_WARNING: &str = "PHP Warning:  require_once(/tmp/h15/d/www/inc/Settings.php): Failed to open stream: No such file or directory in /tmp/h15/d/www/index.php on line 1";
const REQUIRE_FATAL: &str = "PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1\nStack trace:\n#0 {main}\n  thrown in /tmp/h15/d/www/index.php on line 1";

#[test]
fn formats_are_recognised_from_the_first_lines() {
    assert_eq!(detect(NGINX.lines()), Some(ErrorFormat::Nginx));
    assert_eq!(detect(FPM.lines()), Some(ErrorFormat::Fpm));
    assert_eq!(detect(PHP.lines()), Some(ErrorFormat::Php));
    assert_eq!(detect(APACHE_FCGI.lines()), Some(ErrorFormat::Apache));
    assert_eq!(detect(["", "garbage", "Stack trace:"]), None);
    let none = read(ErrorFormat::Auto, ["garbage", "", "more"]);
    assert_eq!((none.format, none.entries.len(), none.malformed), (None, 0, 2));
}

#[test]
fn an_nginx_fastcgi_entry_spans_lines_and_carries_each_php_message() {
    let e = read(ErrorFormat::Auto, NGINX.lines());
    assert_eq!((e.format, e.entries.len(), e.malformed), (Some(ErrorFormat::Nginx), 4, 0));
    let first = &e.entries[0];
    assert_eq!(first.lines, 4);
    assert_eq!(first.messages, [REQUIRE_WARNING, REQUIRE_FATAL]);
    assert_eq!((first.client.as_str(), first.request.as_str()), ("127.0.0.1", "GET / HTTP/1.1"));
    assert_eq!(first.upstream, "fastcgi://unix:/tmp/h15/d/run/fpm.sock:");
    assert_eq!((first.pid, first.level.as_str()), (Some(13490), "error"));
    assert!(first.text.ends_with(r#"host: "127.0.0.1:18915""#), "{}", first.text);
    assert_eq!(
        e.entries[1].messages,
        [
            r#"PHP Parse error:  syntax error, unexpected end of file, expecting "," or ";" in /tmp/h15/d/www/parse.php on line 2"#
        ]
    );
    assert_eq!(e.entries[2].messages, ["Primary script unknown"]);
    assert!(first.relayed && e.entries[2].relayed, "PHP-FPM's words, through nginx");
    assert!(!e.entries[3].relayed, "nginx's own");
    assert_eq!(
        e.entries[3].messages,
        ["connect() to unix:/tmp/h15/d/run/fpm.sock failed (111: Connection refused) while connecting to upstream"]
    );
}

#[test]
fn fpm_lines_of_one_child_are_joined_back_into_whole_messages() {
    let e = read(ErrorFormat::Auto, FPM.lines());
    assert_eq!(e.format, Some(ErrorFormat::Fpm));
    let said: Vec<(Option<u32>, &[String])> = e.entries.iter().map(|e| (e.pid, e.messages.as_slice())).collect();
    assert_eq!(said.len(), 6, "{said:#?}");
    // The master's lines come as they are; a child's message when its next one starts or at the end.
    assert_eq!(said[0].1, ["fpm is running, pid 13484"]);
    assert!(said.contains(&(Some(13485), &[REQUIRE_WARNING.to_string()][..])), "{said:#?}");
    assert!(said.contains(&(Some(13485), &[REQUIRE_FATAL.to_string()][..])), "{said:#?}");
    assert!(said.iter().any(|(p, m)| *p == Some(13486) && m[0].starts_with("PHP Parse error:")));
    let max = e.entries.iter().find(|e| e.messages[0].contains("pm.max_children")).unwrap();
    assert_eq!(max.messages, ["server reached pm.max_children setting (5), consider raising it"]);
    let fatal = e.entries.iter().find(|e| e.messages[0].starts_with("PHP Fatal")).unwrap();
    assert_eq!(fatal.lines, 4, "the fatal error and its three stack-trace lines");
}

#[test]
fn a_line_fpm_cut_goes_on_in_the_next_one() {
    let long = "x".repeat(30);
    let lines = [
        format!(
            r#"[30-Nov-2026 21:20:53] WARNING: [pool www] child 5 said into stderr: "NOTICE: PHP message: PHP Warning:  {long}..."#
        ),
        format!(
            r#"[30-Nov-2026 21:20:53] WARNING: [pool www] child 5 said into stderr: "{long} in /srv/a.php on line 1""#
        ),
    ];
    let e = read(ErrorFormat::Fpm, lines.iter().map(String::as_str));
    assert_eq!(e.entries.len(), 1);
    assert_eq!(e.entries[0].messages, [format!("PHP Warning:  {long}{long} in /srv/a.php on line 1")]);
}

#[test]
fn php_error_log_keeps_the_stack_trace_with_its_error() {
    let e = read(ErrorFormat::Auto, PHP.lines());
    assert_eq!((e.format, e.entries.len(), e.malformed), (Some(ErrorFormat::Php), 2, 0));
    assert_eq!(e.entries[0].messages, [REQUIRE_WARNING]);
    assert_eq!(e.entries[1].messages, [REQUIRE_FATAL]);
    assert_eq!(e.entries[1].time_ms, Some(1_796_073_662_000));
}

#[test]
fn apache_proxy_fcgi_errors_carry_php_messages() {
    let e = read(ErrorFormat::Auto, APACHE_FCGI.lines());
    assert_eq!((e.format, e.entries.len(), e.malformed), (Some(ErrorFormat::Apache), 4, 1));
    assert_eq!(e.entries[1].messages, [REQUIRE_WARNING, REQUIRE_FATAL]);
    assert_eq!(e.entries[1].client, "127.0.0.1");
    assert_eq!(e.entries[2].messages.len(), 3);
    assert!(e.entries[2].messages[0].contains("open_basedir restriction in effect"));
    assert!(e.entries[3].messages[0].contains("AH02454: FCGI: attempt to connect to Unix domain socket"));
    assert_eq!(e.entries.iter().map(|e| e.relayed).collect::<Vec<_>>(), [false, true, true, false]);
}

#[test]
fn apache_escapes_are_undone() {
    assert_eq!(unescape_apache(r#"a\nb\tc\"d\\e\x41\xzz\"#), "a\nb\tc\"d\\eA\\xzz\\");
    assert_eq!(unescape_apache("é\\"), "é\\");
}

#[test]
fn an_explicit_format_still_wins_and_lines_before_any_entry_are_malformed() {
    let text = format!("Stack trace:\n{NGINX}");
    let e = read(ErrorFormat::Nginx, text.lines());
    assert_eq!((e.entries.len(), e.malformed), (4, 1));
    let wrong = read(ErrorFormat::Apache, NGINX.lines());
    assert_eq!((wrong.entries.len(), wrong.malformed), (0, 7));
}

#[test]
fn runaway_entries_are_cut() {
    let huge = format!("2026/11/30 21:20:53 [error] 1#1: *1 {}", "é(/".repeat(200_000));
    let mut lines = vec![huge.as_str()];
    let more = "continuation ".repeat(100);
    lines.extend(std::iter::repeat_n(more.as_str(), 1000));
    let e = read(ErrorFormat::Auto, lines);
    assert_eq!(e.entries.len(), 1);
    assert!(e.entries[0].text.len() <= MAX_ENTRY_BYTES);
    assert_eq!(e.entries[0].lines, 1001);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn fragments() -> impl Strategy<Value = String> {
        let pieces: Vec<&'static str> = NGINX
            .lines()
            .chain(FPM.lines())
            .chain(PHP.lines())
            .chain(APACHE_FCGI.lines())
            .chain(["", "\"", "'", "\\", "é", "PHP message: ", "; PHP message: ", "...", "said into stderr: \""])
            .collect();
        // Real lines cut anywhere (by bytes, made valid the way a lossy read does) and glued together.
        proptest::collection::vec((proptest::sample::select(pieces), any::<usize>(), ".{0,20}"), 0..12).prop_map(
            |parts| {
                let mut s = String::new();
                for (p, cut, noise) in parts {
                    let b = p.as_bytes();
                    let cut = if b.is_empty() { 0 } else { cut % (b.len() + 1) };
                    s.push_str(&String::from_utf8_lossy(&b[..cut]));
                    s.push_str(&noise);
                    s.push('\n');
                }
                s
            },
        )
    }

    proptest! {
        #[test]
        fn never_panics(text in fragments()) {
            for f in [ErrorFormat::Auto, ErrorFormat::Apache, ErrorFormat::Nginx, ErrorFormat::Fpm, ErrorFormat::Php] {
                let e = read(f, text.lines());
                for entry in &e.entries {
                    prop_assert!(entry.text.len() <= MAX_ENTRY_BYTES);
                    prop_assert!(entry.messages.len() <= 64);
                }
            }
        }

        #[test]
        fn garbage_never_panics(text in "(?s).{0,400}") {
            let _ = read(ErrorFormat::Auto, text.lines());
            let _ = read(ErrorFormat::Fpm, text.lines());
            let _ = read(ErrorFormat::Nginx, text.lines());
        }
    }
}
