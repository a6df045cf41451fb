use super::*;
use crate::{Options, Report, Severity, run};

/// A temporary tree of `(relative path, contents)`.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn errors(dir: &Path, extra: impl FnOnce(&mut Options)) -> Vec<String> {
    let mut opts = Options { paths: vec![dir.join("app")], threads: Some(2), ..Options::default() };
    extra(&mut opts);
    let report: Report = run(&opts).unwrap();
    report.findings.iter().filter(|f| f.severity == Severity::Error).map(|f| f.message.clone()).collect()
}

/// `require 'lib/x.php'` in `app/web/page/index.php`, with `lib/x.php` only under `app/shared` (and a decoy
/// `lib/y.php` under `app/other`).
const PAGE: (&str, &str) = ("app/web/page/index.php", "<?php require 'lib/x.php';\n");
const SHARED: (&str, &str) = ("app/shared/lib/x.php", "<?php\n");

#[test]
fn a_user_ini_in_a_parent_directory_gives_the_include_path() {
    let without = tree(&[PAGE, SHARED]);
    let missing = errors(without.path(), |_| {});
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("web/page/lib/x.php) does not exist"), "{missing:?}");

    // Relative to the .user.ini's own directory (app/web), not the script's.
    let with = tree(&[PAGE, SHARED, ("app/web/.user.ini", "; FPM\ninclude_path = \".:../shared\"\n")]);
    assert_eq!(errors(with.path(), |_| {}), Vec::<String>::new());
}

#[test]
fn an_htaccess_php_value_gives_the_include_path() {
    let shared = "php_value include_path \".:/nonexistent-lookout:{}/app/shared\"\n";
    let dir = tree(&[PAGE, SHARED]);
    let text = format!(
        "# mod_php\n<IfModule mod_php.c>\n  {}</IfModule>\n",
        shared.replace("{}", &dir.path().display().to_string())
    );
    std::fs::write(dir.path().join("app/.htaccess"), text).unwrap();
    assert_eq!(errors(dir.path(), |_| {}), Vec::<String>::new());
    // php_admin_value is not allowed in .htaccess: not read.
    std::fs::write(dir.path().join("app/.htaccess"), shared.replace("php_value", "php_admin_value")).unwrap();
    assert_eq!(errors(dir.path(), |_| {}).len(), 1);
}

#[test]
fn the_nearest_one_wins() {
    // app/.user.ini points to shared/ (where lib/x.php is); app/web/page/.user.ini, nearer, points elsewhere.
    let dir = tree(&[
        PAGE,
        SHARED,
        ("app/.user.ini", "include_path = \"shared\"\n"),
        ("app/web/page/.user.ini", "include_path = \"/nonexistent-lookout\"\n"),
        ("app/web/other/index.php", "<?php require 'lib/x.php';\n"),
    ]);
    let found = errors(dir.path(), |_| {});
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("web/page/lib/x.php) does not exist"), "{found:?}");
    // The same directory's .user.ini beats its .htaccess.
    std::fs::write(dir.path().join("app/web/page/.htaccess"), "php_value include_path \"/nonexistent\"\n").unwrap();
    std::fs::write(dir.path().join("app/web/page/.user.ini"), "include_path = \"../../shared\"\n").unwrap();
    assert_eq!(errors(dir.path(), |_| {}), Vec::<String>::new());
}

#[test]
fn apache_php_admin_value_for_the_document_root_applies() {
    let dir = tree(&[PAGE, SHARED]);
    let app = dir.path().join("app");
    let conf = dir.path().join("site.conf");
    let write = |directory: &Path| {
        let text = format!(
            "<VirtualHost *:80>\n  DocumentRoot {app}\n  <Directory \"{d}\">\n    php_admin_value include_path \
             \".:{app}/shared\"\n  </Directory>\n</VirtualHost>\n",
            app = app.display(),
            d = directory.display()
        );
        std::fs::write(&conf, text).unwrap();
    };
    write(&app);
    let with_conf = |o: &mut Options| o.apache_configs = vec![conf.clone()];
    assert_eq!(errors(dir.path(), with_conf), Vec::<String>::new());
    // A <Directory> that does not contain the file does not apply; php.ini's then does.
    write(&dir.path().join("elsewhere"));
    assert_eq!(errors(dir.path(), with_conf).len(), 1);
    let ini = dir.path().join("php.ini");
    std::fs::write(&ini, format!("include_path = \".:{}/shared\"\n", app.display())).unwrap();
    assert_eq!(
        errors(dir.path(), |o| {
            with_conf(o);
            o.php_ini = Some(ini.clone())
        }),
        Vec::<String>::new()
    );
    // A .user.ini beats Apache's.
    write(&app);
    std::fs::write(app.join(".user.ini"), "include_path = \"/nonexistent-lookout\"\n").unwrap();
    assert_eq!(errors(dir.path(), with_conf).len(), 1);
}

#[test]
fn parsing_and_scoping() {
    assert_eq!(include_path_of_htaccess(b"PHP_VALUE  Include_Path  /a:/b # x\n"), Some(b"/a:/b".to_vec()));
    assert_eq!(include_path_of_htaccess(b"php_value include_path \"/a b\" \nphp_value x y"), Some(b"/a b".to_vec()));
    assert_eq!(include_path_of_htaccess(b"php_value include_path\nphp_flag include_path 1\n"), None);
    assert_eq!(
        anchored(b".:lib:/usr/share/php::../x", Path::new("/srv/app")),
        b".:/srv/app/lib:/usr/share/php::/srv/x"
    );
    assert_eq!(directory_of(""), Scope::Anywhere);
    assert_eq!(directory_of("<VirtualHost *:80>"), Scope::Anywhere);
    assert_eq!(directory_of("<VirtualHost *:80> <Directory \"/srv/app/\">"), Scope::Directory("/srv/app".into()));
    assert_eq!(directory_of("<Directory /srv> <Directory /srv/app>"), Scope::Directory("/srv/app".into()));
    assert_eq!(directory_of("<Directory /srv> <Files x.php>"), Scope::Unknown);
    assert_eq!(directory_of("<Directory ~ \"^/srv\">"), Scope::Unknown);
    assert_eq!(directory_of("<Location /app>"), Scope::Unknown);
}
