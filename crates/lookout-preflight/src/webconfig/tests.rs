use std::path::{Path, PathBuf};

use super::nginx::{Kind, tokenize};
use super::*;
use crate::{Options, Severity};

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn apache(conf: &Path) -> ConfigReport {
    apache::check(conf, &DirCache::default(), None).unwrap()
}

fn nginx(conf: &Path) -> ConfigReport {
    nginx::check(conf, &DirCache::default(), None).unwrap()
}

/// (file name, line, severity) of each finding.
fn located(r: &ConfigReport) -> Vec<(String, u32, Severity)> {
    r.findings
        .iter()
        .map(|f| {
            let name = Path::new(&f.file).file_name().unwrap().to_string_lossy().into_owned();
            (name, f.line, f.severity)
        })
        .collect()
}

#[test]
fn a_missing_document_root_is_an_error_at_its_line_and_an_index_less_one_an_info() {
    let (_d, root) = tmp();
    std::fs::create_dir_all(root.join("www/app")).unwrap();
    std::fs::create_dir_all(root.join("www/site")).unwrap();
    write(&root.join("www/site/index.php"), "<?php");
    let conf = root.join("conf/httpd.conf");
    let text = format!(
        "# a comment\nDirectoryIndex index.html index.php\n<VirtualHost *:80>\n  DocumentRoot {r}/www/sitee\n</VirtualHost>\n\
         <VirtualHost *:81>\n  DocumentRoot \"{r}/www/site\"\n</VirtualHost>\n<VirtualHost *:82>\n  documentroot {r}/www/app\n</VirtualHost>\n",
        r = root.display()
    );
    write(&conf, &text);
    let r = apache(&conf);
    assert_eq!(
        located(&r),
        [("httpd.conf".into(), 4, Severity::Error), ("httpd.conf".into(), 10, Severity::Info)],
        "{:#?}",
        r.findings
    );
    let f = &r.findings[0];
    assert_eq!(f.column, 3);
    assert_eq!(f.kind, FindingKind::Missing);
    assert_eq!(f.suggestion.as_deref(), Some("site"));
    assert_eq!(f.resolved, Some(format!("{}/www/sitee", root.display())));
    assert!(f.message.contains("<VirtualHost *:80>") && f.message.contains("did you mean site?"), "{}", f.message);
    assert!(r.findings[1].message.contains("index.html index.php"), "{}", r.findings[1].message);
}

#[test]
fn include_optional_may_match_nothing_include_may_not() {
    let (_d, root) = tmp();
    let conf = root.join("conf/httpd.conf");
    write(&root.join("conf.d/a.conf"), "DocumentRoot /nonexistent-lookout/a\n");
    write(&root.join("conf.d/b.txt"), "DocumentRoot /nonexistent-lookout/b\n");
    write(
        &conf,
        "IncludeOptional conf.d/*.none\nInclude conf.d/*.none\nInclude conf.d/*.conf\nIncludeOptional missing.conf\n\
         Include missing.conf\nIncludeOptional \"conf.d/[a]*\"\n",
    );
    let r = apache(&conf);
    // ServerRoot defaults to the parent of a directory named conf: the includes are relative to `root`.
    assert_eq!(
        located(&r),
        [
            ("httpd.conf".into(), 2, Severity::Error),
            ("a.conf".into(), 1, Severity::Error),
            ("httpd.conf".into(), 5, Severity::Error),
            ("a.conf".into(), 1, Severity::Error),
        ],
        "{:#?}",
        r.findings
    );
    assert!(r.findings[0].message.contains("no file matches"), "{}", r.findings[0].message);
    assert!(r.findings[2].message.contains("missing.conf does not exist"), "{}", r.findings[2].message);
    assert_eq!(r.files, 3);
}

#[test]
fn server_root_is_the_configuration_s_directory_unless_it_is_named_conf() {
    let (_d, root) = tmp();
    let conf = root.join("apache2/apache2.conf");
    write(&root.join("apache2/mods-enabled/x.load"), "LoadModule x_module modules/mod_x.so\n");
    write(&conf, "IncludeOptional mods-enabled/*.load\nLoadModule y_module /nonexistent-lookout/mod_y.so\n");
    let r = apache(&conf);
    assert_eq!(
        located(&r),
        [("x.load".into(), 1, Severity::Error), ("apache2.conf".into(), 2, Severity::Error)],
        "{:#?}",
        r.findings
    );
    assert_eq!(r.findings[0].resolved, Some(format!("{}/apache2/modules/mod_x.so", root.display())));
}

#[test]
fn defines_and_envvars_are_substituted_and_an_undefined_variable_is_an_info() {
    let (_d, root) = tmp();
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    write(&root.join("www/index.html"), "hi");
    let conf = root.join("etc/apache2.conf");
    let text = format!(
        "Define WWW {r}/www\nDocumentRoot ${{WWW}}\nDocumentRoot ${{WWW}}/nope\nErrorLog ${{NOPE}}/error.log\n\
         CustomLog ${{APACHE_LOG_DIR}}/access.log combined\n",
        r = root.display()
    );
    write(&conf, &text);
    let r = apache(&conf);
    assert_eq!(
        located(&r),
        [
            ("apache2.conf".into(), 3, Severity::Error),
            ("apache2.conf".into(), 4, Severity::Info),
            ("apache2.conf".into(), 5, Severity::Info),
        ],
        "{:#?}",
        r.findings
    );
    assert_eq!(r.findings[1].kind, FindingKind::Unresolved);
    assert!(r.findings[1].message.contains("${NOPE} is not defined"), "{}", r.findings[1].message);

    // With Debian's envvars beside it, ${APACHE_LOG_DIR} is known and checked.
    let env = format!(
        "unset HOME\nif [ x ] ; then\n\tSUFFIX=\"-x\"\nelse\n\tSUFFIX=\nfi\nexport APACHE_LOG_DIR={r}/logs$SUFFIX\nexport NOPE={r}/nolog\n",
        r = root.display()
    );
    write(&root.join("etc/envvars"), &env);
    let r = apache(&conf);
    assert_eq!(
        located(&r),
        [("apache2.conf".into(), 3, Severity::Error), ("apache2.conf".into(), 4, Severity::Error)],
        "{:#?}",
        r.findings
    );
    assert!(r.findings[1].message.contains("/nolog does not exist"), "{}", r.findings[1].message);
}

#[test]
fn a_vhost_with_a_missing_ssl_key_names_the_vhost_and_line() {
    let (_d, root) = tmp();
    write(&root.join("ssl/site.crt"), "cert");
    let conf = root.join("sites/ssl.conf");
    let text = format!(
        "<IfModule mod_ssl.c>\n<VirtualHost _default_:443>\n\tSSLEngine on\n\tSSLCertificateFile {r}/ssl/site.crt\n\
         \tSSLCertificateKeyFile {r}/ssl/site.key\n\tErrorLog \"|/usr/bin/logger\"\n\tErrorLog syslog:local1\n\
         \tCustomLog {r}/nolog/access.log combined\n</VirtualHost>\n</IfModule>\n",
        r = root.display()
    );
    write(&conf, &text);
    let r = apache(&conf);
    assert_eq!(
        located(&r),
        [("ssl.conf".into(), 5, Severity::Error), ("ssl.conf".into(), 8, Severity::Error)],
        "{:#?}",
        r.findings
    );
    let m = &r.findings[0].message;
    assert!(m.starts_with("SSLCertificateKeyFile: ") && m.contains("<VirtualHost _default_:443>"), "{m}");
    assert!(r.findings[1].message.contains("nolog does not exist"), "{}", r.findings[1].message);
}

#[test]
fn continuation_lines_aliases_and_php_include_path() {
    let (_d, root) = tmp();
    std::fs::create_dir_all(root.join("icons")).unwrap();
    let conf = root.join("a/apache.conf");
    let text = format!(
        "ALIAS /icons/ \\\n    \"{r}/icons/\"\nAlias /docs {r}/docs\n<Directory /srv/app>\n  php_admin_value include_path \".:/usr/share/php\"\n</Directory>\n\
         AliasMatch ^/x/(.*) /srv/$1\n",
        r = root.display()
    );
    write(&conf, &text);
    let r = apache(&conf);
    assert_eq!(located(&r), [("apache.conf".into(), 3, Severity::Error)], "{:#?}", r.findings);
    assert!(r.findings[0].message.starts_with("Alias /docs target: "), "{}", r.findings[0].message);
    assert_eq!(r.php_include_paths.len(), 1);
    let p = &r.php_include_paths[0];
    assert_eq!((p.line, p.value.as_str(), p.context.as_str()), (5, ".:/usr/share/php", "<Directory /srv/app>"));
}

#[test]
fn an_include_cycle_and_an_unclosed_section_are_reported_not_followed_forever() {
    let (_d, root) = tmp();
    let conf = root.join("x/loop.conf");
    write(&conf, "<VirtualHost *:80>\nInclude loop.conf\n");
    let r = apache(&conf);
    assert!(r.findings.iter().any(|f| f.message.contains("includes itself")), "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.message.contains("never closed")), "{:#?}", r.findings);
}

#[test]
fn nginx_tokens() {
    let toks = tokenize(b"location ~ \\.php$ { # c\n  return 200 \"a \\\"b\\\" ;\";\n set ${x}y z;}");
    let words: Vec<(&str, Kind, u32)> = toks.iter().map(|t| (t.text.as_str(), t.kind, t.line)).collect();
    assert_eq!(
        words,
        [
            ("location", Kind::Word, 1),
            ("~", Kind::Word, 1),
            ("\\.php$", Kind::Word, 1),
            ("{", Kind::Open, 1),
            ("return", Kind::Word, 2),
            ("200", Kind::Word, 2),
            ("a \"b\" ;", Kind::Word, 2),
            (";", Kind::Semicolon, 2),
            ("set", Kind::Word, 3),
            ("${x}y", Kind::Word, 3),
            ("z", Kind::Word, 3),
            (";", Kind::Semicolon, 3),
            ("}", Kind::Close, 3),
        ]
    );
    assert_eq!(toks[4].column, 3);
}

#[test]
fn nginx_root_alias_index_include_ssl_socket_and_logs() {
    let (_d, root) = tmp();
    std::fs::create_dir_all(root.join("www/site")).unwrap();
    std::fs::create_dir_all(root.join("www/app")).unwrap();
    std::fs::create_dir_all(root.join("run/php")).unwrap();
    std::fs::create_dir_all(root.join("log")).unwrap();
    write(&root.join("www/site/index.html"), "hi");
    write(&root.join("etc/mime.types"), "types { text/html html; }\n");
    write(&root.join("etc/tls.crt"), "cert");
    write(
        &root.join("etc/sites/app"),
        &format!("server {{\n  root {r}/www/app;\n  index index.php;\n}}\n", r = root.display()),
    );
    let conf = root.join("etc/nginx.conf");
    let text = format!(
        "error_log {r}/log/error.log;\nhttp {{\n  include mime.types;\n  include sites/*;\n  include conf.d/*.conf;\n  include missing.conf;\n\
         \n  access_log off;\n  server {{\n    root {r}/www/site;\n    ssl_certificate tls.crt;\n    ssl_certificate_key tls.key;\n\
         location /a {{ alias {r}/www/nope/; }}\n    location /b {{ root $document_root/x; }}\n\
         location ~ \\.php$ {{ fastcgi_pass unix:{r}/run/php/fpm.sock; }}\n    location /c {{ fastcgi_pass unix:{r}/run/nophp/fpm.sock; }}\n\
         access_log {r}/nolog/access.log combined;\n  }}\n}}\n",
        r = root.display()
    );
    write(&conf, &text);
    let r = nginx(&conf);
    assert_eq!(
        located(&r),
        [
            ("app".into(), 2, Severity::Info),
            ("nginx.conf".into(), 6, Severity::Error),
            ("nginx.conf".into(), 12, Severity::Error),
            ("nginx.conf".into(), 13, Severity::Error),
            ("nginx.conf".into(), 15, Severity::Info),
            ("nginx.conf".into(), 16, Severity::Error),
            ("nginx.conf".into(), 17, Severity::Error),
        ],
        "{:#?}",
        r.findings
    );
    let messages: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(messages[0].contains("none of its index files (index.php)"), "{}", messages[0]);
    assert!(messages[1].contains("missing.conf does not exist"), "{}", messages[1]);
    assert!(
        messages[2].starts_with("ssl_certificate_key: ") && messages[2].contains("(in http server)"),
        "{}",
        messages[2]
    );
    assert!(messages[3].starts_with("alias: ") && messages[3].contains("location /a"), "{}", messages[3]);
    assert!(messages[4].contains("exists only while PHP-FPM runs"), "{}", messages[4]);
    assert!(messages[5].contains("run/nophp does not exist; did you mean php?"), "{}", messages[5]);
    assert_eq!(r.files, 3);
}

#[test]
fn nginx_unclosed_block_and_stray_brace_do_not_confuse_the_walk() {
    let (_d, root) = tmp();
    let conf = root.join("n.conf");
    write(&conf, "}\nhttp {\n server {\n  root /nonexistent-lookout;\n");
    let r = nginx(&conf);
    assert_eq!(
        located(&r),
        [("n.conf".into(), 4, Severity::Error), ("n.conf".into(), 1, Severity::Error)],
        "{:#?}",
        r.findings
    );
    assert!(r.findings[1].message.contains("never closed"), "{}", r.findings[1].message);
}

#[test]
fn wildcards_match_like_fnmatch() {
    assert!(fnmatch(b"*.conf", b"a.conf"));
    assert!(!fnmatch(b"*.conf", b"a.conf.bak"));
    assert!(fnmatch(b"*", b""));
    assert!(fnmatch(b"a?c", b"abc"));
    assert!(fnmatch(b"[a-c]x", b"bx"));
    assert!(!fnmatch(b"[!a-c]x", b"bx"));
    assert!(fnmatch(b"[]x", b"[]x") || !fnmatch(b"[]x", b"a"));
    assert!(fnmatch(b"*a*b*c", b"xxaxxbxxc"));
    assert!(!fnmatch(b"*a*b*c", b"xxaxxbxx"));
    assert!(fnmatch(b"\\*", b"*"));
    assert!(fnmatch(b"[", b"["));
}

#[test]
fn random_bytes_never_panic() {
    let (_d, root) = tmp();
    let alphabet: &[u8] = b" \t\n\\\"'#;{}<>/$*?[]!-abcDefineIncludeDocumentRootroot alias index ${}";
    for round in 0..300 {
        let len = fastrand::usize(0..400);
        let bytes: Vec<u8> = if round % 2 == 0 {
            (0..len).map(|_| fastrand::u8(..)).collect()
        } else {
            (0..len).map(|_| alphabet[fastrand::usize(..alphabet.len())]).collect()
        };
        let conf = root.join("random.conf");
        std::fs::write(&conf, &bytes).unwrap();
        let _ = apache(&conf);
        let _ = nginx(&conf);
        let _ = tokenize(&bytes);
        let _ = apache::words(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn run_with_only_configurations_reads_no_php_and_counts_their_errors() {
    let (_d, root) = tmp();
    let conf = root.join("conf/httpd.conf");
    write(&conf, "DocumentRoot /nonexistent-lookout/www\n");
    let php = root.join("conf/bad.php");
    write(&php, "<?php require 'nope.php';");
    let opts = Options { apache_configs: vec![conf.clone()], ..Options::default() };
    let prev = std::env::current_dir().unwrap();
    let r = crate::run(&opts).unwrap();
    assert_eq!(std::env::current_dir().unwrap(), prev);
    assert_eq!((r.summary.files, r.summary.errors), (0, 1), "{:#?}", r.findings);
    assert_eq!(r.findings[0].file, conf.display().to_string());
    assert_eq!(r.findings[0].statement.as_str(), "directive");

    let opts = Options { paths: vec![php], nginx_configs: vec![root.join("nothere.conf")], ..Options::default() };
    assert!(matches!(crate::run(&opts), Err(crate::Error::WebConfig { flag: "--nginx-config", .. })));
}
