use std::path::Path;

use super::*;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn parses(text: &str) -> lookout_config::Config {
    let env = |_: &str| None;
    match lookout_config::Config::parse(text, Path::new("/tmp/lookout.toml"), &env) {
        Ok(c) => c,
        Err(e) => panic!("the written configuration does not load: {e}\n{text}"),
    }
}

const APACHE: &str = r#"ServerRoot "{root}/httpd"
PidFile run/httpd.pid
Define LOGS /var/log/shop
Listen 8080
Listen 127.0.0.1:8443 https
<IfModule ssl_module>
    Listen 9443
</IfModule>
<IfModule !mod_ssl.c>
    ServerAdmin webmaster@shop.example
</IfModule>
LoadModule status_module modules/mod_status.so
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D" timed
ErrorLog ${LOGS}/error.log
CustomLog ${LOGS}/access.log combined
<Location /server-status>
    SetHandler server-status
</Location>
Include sites/*.conf
"#;

const SHOP: &str = r#"<VirtualHost *:8080>
    ServerName shop.example
    CustomLog ${LOGS}/shop-access.log timed
    <FilesMatch "\.php$">
        SetHandler "proxy:unix:/run/php/fpm.sock|fcgi://localhost"
    </FilesMatch>
    <Location /fpm-status>
        SetHandler "proxy:unix:/run/php/fpm.sock|fcgi://localhost"
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:8443>
    ServerName shop.example
    SSLEngine on
</VirtualHost>
"#;

const FPM: &str = "[global]\npid = /run/php/fpm.pid\nerror_log = /var/log/php-fpm.log\ninclude = pool.d/*.conf\n";
const POOL: &str = "[www]\nlisten = /run/php/fpm.sock\npm.max_children = 5\npm.status_path = /fpm-status\n\n\
                    [admin]\nlisten = 127.0.0.1:9001\n";

#[test]
fn an_apache_with_two_vhosts_status_and_an_fpm_pool_becomes_a_configuration_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let apache_conf = APACHE.replace("{root}", &d.display().to_string());
    write(
        d,
        &[
            ("httpd/httpd.conf", &apache_conf),
            ("httpd/sites/shop.conf", SHOP),
            ("fpm/php-fpm.conf", FPM),
            ("fpm/pool.d/www.conf", POOL),
        ],
    );
    let options = Options {
        apache_configs: vec![d.join("httpd/httpd.conf")],
        fpm_configs: vec![d.join("fpm/php-fpm.conf")],
        ..Options::default()
    };
    let found = detect(&options);
    assert_eq!(found.servers.len(), 1, "{found:#?}");
    let apache = &found.servers[0];
    let pid_file = d.join("httpd/run/httpd.pid");
    assert_eq!(apache.pid_file.as_deref(), Some(pid_file.as_path()));
    let addresses: Vec<&str> = apache.sites.iter().map(|s| s.address.as_str()).collect();
    // Not 9443: its Listen is inside <IfModule ssl_module>, and mod_ssl is not loaded.
    assert_eq!(addresses, ["127.0.0.1:8080", "127.0.0.1:8443"]);
    let shop = &apache.sites[0];
    assert_eq!(shop.name.as_deref(), Some("shop.example"));
    let access = shop.access_log.as_ref().unwrap();
    assert_eq!(access.path, Path::new("/var/log/shop/shop-access.log"));
    assert_eq!(access.format.as_deref(), Ok(r#"%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i" %D"#));
    assert_eq!(shop.error_log.as_deref(), Some(Path::new("/var/log/shop/error.log")), "the server's, inherited");
    assert!(apache.sites[1].tls);
    assert_eq!(apache.sites[1].access_log.as_ref().unwrap().path, Path::new("/var/log/shop/access.log"));
    assert_eq!(apache.status, [StatusPage { kind: "apache", url: "http://127.0.0.1:8080/server-status".into() }]);
    assert_eq!(found.pools.len(), 2);
    assert_eq!(found.pools[0].error_log.as_deref(), Some(Path::new("/var/log/php-fpm.log")));

    let (text, notes) = render(&found, "2026-12-01");
    let config = parses(&text);
    assert!(
        text.contains(
            "name = \"shop.example-8080\"\nurl = \"http://127.0.0.1:8080/\"\nheaders = { Host = \"shop.example\" }"
        ),
        "{text}"
    );
    assert!(text.contains("url = \"https://127.0.0.1:8443/\"") && text.contains("verify_tls = false"), "{text}");
    assert!(text.contains("error_log = [\"/var/log/shop/error.log\", \"/var/log/php-fpm.log\"]"), "{text}");
    assert!(text.contains(&format!("pid_file = \"{}\"", pid_file.display())), "{text}");
    assert!(text.contains("type = \"php-fpm\"\nurl = \"http://127.0.0.1:8080/fpm-status\"\nworkers = 5"), "{text}");
    assert!(
        text.contains("[[process]]\nname = \"apache2\"") && text.contains("[[process]]\nname = \"php-fpm"),
        "{text}"
    );
    let logs: Vec<&str> = config.logs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        logs,
        [
            "shop.example-8080-log",
            "shop.example-8080-log-warning",
            "shop.example-8443-log",
            "shop.example-8443-log-warning"
        ],
        "{text}"
    );
    for name in ["shop.example-8080", "shop.example-8443", "apache2-status", "fpm-www-status"] {
        assert!(config.target(name).is_some(), "{name} in:\n{text}");
    }
    assert!(config.target("shop.example-8080").and_then(|t| t.diagnose.as_ref()).is_some(), "{text}");
    assert!(notes.iter().any(|n| n.contains("pool admin: no pm.status_path")), "{notes:?}");
    assert!(text.contains("# Not set up:\n#   - PHP-FPM pool admin: no pm.status_path"), "{text}");
}

const NGINX: &str = r#"pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
http {
    log_format timed '$remote_addr - $remote_user [$time_local] "$request" '
                     '$status $body_bytes_sent "$http_referer" "$http_user_agent"';
    log_format odd '$remote_addr $request_time';
    access_log /var/log/nginx/access.log;
    server {
        listen 80;
        listen [::]:80;
        server_name blog.example www.blog.example;
        access_log /var/log/nginx/blog.log timed;
        location = /nginx-status { stub_status; }
        location ~ \.php$ { fastcgi_pass unix:/run/php/fpm.sock; }
    }
    server {
        listen 127.0.0.1:8081;
        access_log /var/log/nginx/odd.log odd;
    }
}
"#;

#[test]
fn an_nginx_with_a_translated_log_format_stub_status_and_an_untranslatable_format_said() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("nginx.conf", NGINX)]);
    let found = detect(&Options { nginx_configs: vec![dir.path().join("nginx.conf")], ..Options::default() });
    let nginx = &found.servers[0];
    assert_eq!(nginx.sites.len(), 2, "one site per block, [::]:80 beside 80 is the same one: {nginx:#?}");
    let blog = &nginx.sites[0];
    assert_eq!((blog.name.as_deref(), blog.address.as_str()), (Some("blog.example"), "127.0.0.1:80"));
    assert_eq!(
        blog.access_log.as_ref().unwrap().format.as_deref(),
        Ok(r#"%h - %u %t "%r" %>s %B "%{Referer}i" "%{User-Agent}i""#)
    );
    assert_eq!(blog.error_log.as_deref(), Some(Path::new("/var/log/nginx/error.log")));
    let odd = nginx.sites[1].access_log.as_ref().unwrap();
    assert!(odd.format.as_ref().is_err_and(|e| e.contains("$request_time")), "{odd:?}");
    assert_eq!(nginx.status, [StatusPage { kind: "nginx", url: "http://127.0.0.1:80/nginx-status".into() }]);

    let (text, notes) = render(&found, "2026-12-01");
    parses(&text);
    assert!(notes.iter().any(|n| n.contains("odd.log is not read: log_format odd: $request_time")), "{notes:?}");
    assert!(text.contains("error_format = \"nginx\""), "{text}");
    assert!(text.contains("[[process]]\nname = \"nginx\""), "{text}");
}

#[test]
fn nothing_found_renders_nothing_to_watch_and_names_are_made_safe_and_unique() {
    assert!(detect(&Options::default()).is_empty());
    let missing = detect(&Options { apache_configs: vec!["/nonexistent/apache2.conf".into()], ..Options::default() });
    assert!(missing.is_empty() && missing.notes[0].contains("cannot read /nonexistent/apache2.conf"), "{missing:?}");
    assert_eq!(safe_name("shop example/8080"), "shop-example-8080");
    assert_eq!(safe_name("***"), "site");
}

#[test]
fn a_running_server_that_cannot_be_read_falls_back_to_the_installed_configuration() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("nginx.conf", NGINX)]);
    let gone = processes::Master::named(processes::MasterKind::Apache, Path::new("/nonexistent/apache2.conf"));
    let installed = processes::Master::named(processes::MasterKind::Nginx, &dir.path().join("nginx.conf"));
    let options = Options { scan_processes: true, ..Options::default() };
    let found = detect_from(&options, vec![gone.clone()], || vec![installed.clone()]);
    assert_eq!(found.servers.len(), 1, "{found:?}");
    assert_eq!(found.servers[0].kind, Kind::Nginx);
    assert!(found.notes[0].contains("cannot read /nonexistent/apache2.conf"), "{:?}", found.notes);
    assert!(found.notes[1].contains("read the installed configurations"), "{:?}", found.notes);
    // A readable running server is enough: the installed ones are not read then.
    let found = detect_from(&options, vec![installed.clone()], || panic!("not asked"));
    assert_eq!(found.servers.len(), 1);
}
