use super::*;

/// A site in a temp dir: (relative path, contents).
fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn check(dir: &Path, extra: impl FnOnce(&mut Options)) -> Report {
    let mut opts = Options { paths: vec![dir.to_path_buf()], threads: Some(2), ..Options::default() };
    extra(&mut opts);
    run(&opts).unwrap()
}

fn lines(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| format!("{}:{}:{}: {}: {}", f.file, f.line, f.column, f.severity.as_str(), f.message))
        .collect()
}

#[test]
fn the_founding_incident_is_an_error_with_did_you_mean() {
    let dir = site(&[
        ("index.php", "<?php\n// the outage\nrequire_once __DIR__ . '/inc/settings.phpp';\necho 'shop';\n"),
        ("inc/settings.php", "<?php $db = 'x';"),
    ]);
    let r = check(dir.path(), |_| {});
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(
        lines(&r),
        [format!(
            "index.php:3:1: error: require_once target {}/inc/settings.phpp does not exist; did you mean settings.php?",
            real.display()
        )]
    );
    let f = &r.findings[0];
    assert_eq!((f.kind, f.suggestion.as_deref()), (FindingKind::Missing, Some("settings.php")));
    assert_eq!((r.summary.files, r.summary.includes, r.summary.resolved, r.summary.errors), (2, 1, 1, 1));
    // Fixed: nothing to say.
    std::fs::write(dir.path().join("index.php"), "<?php require_once __DIR__ . '/inc/settings.php';").unwrap();
    assert_eq!(check(dir.path(), |_| {}).findings, []);
}

#[test]
fn case_only_and_missing_directories_are_said_so() {
    let dir =
        site(&[("index.php", "<?php require 'Inc/Header.php';\nrequire 'lib/db.php';\n"), ("inc/header.php", "<?php")]);
    let r = check(dir.path(), |_| {});
    let real = dir.path().canonicalize().unwrap();
    assert_eq!(r.findings[0].kind, FindingKind::CaseOnly);
    assert!(r.findings[0].message.contains("differs only by case"), "{}", r.findings[0].message);
    assert_eq!(r.findings[0].suggestion, Some(real.join("inc/header.php").display().to_string()));
    assert_eq!(r.findings[1].kind, FindingKind::Missing);
    assert!(r.findings[1].message.starts_with(&format!("directory {} (on the way", real.join("lib").display())));
}

#[test]
fn guarded_and_silenced_includes_are_info_but_a_silenced_require_is_not() {
    let dir = site(&[(
        "index.php",
        "<?php\nif (file_exists(__DIR__ . '/local.php')) { include __DIR__ . '/local.php'; }\n@include 'opt.php';\n@require 'must.php';\n",
    )]);
    let r = check(dir.path(), |_| {});
    let got: Vec<(u32, Severity, &str)> = r.findings.iter().map(|f| (f.line, f.severity, f.message.as_str())).collect();
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].0, got[0].1), (2, Severity::Info));
    assert!(got[0].2.ends_with("(guarded by file_exists)"));
    assert_eq!((got[1].0, got[1].1), (3, Severity::Info));
    assert!(got[1].2.ends_with("(silenced with @)"));
    assert_eq!((got[2].0, got[2].1), (4, Severity::Error));
    assert!(got[2].2.ends_with("(@ does not help: a failed require is fatal)"));
    assert_eq!((r.summary.errors, r.summary.infos), (1, 2));
}

#[test]
fn unresolved_includes_are_counted_and_listed_only_when_asked() {
    let dir = site(&[("index.php", "<?php include $page . '.php'; include get_dir() . '/x.php';")]);
    let r = check(dir.path(), |_| {});
    assert_eq!((r.findings.len(), r.summary.unresolved, r.summary.resolved, r.summary.errors), (0, 2, 0, 0));
    let r = check(dir.path(), |o| o.show_unresolved = true);
    assert_eq!(r.findings.iter().map(|f| f.kind).collect::<Vec<_>>(), [FindingKind::Unresolved; 2]);
    assert_eq!((r.summary.errors, r.summary.infos), (0, 0));
    assert!(r.findings[0].message.contains("the variable $page"), "{}", r.findings[0].message);
}

#[test]
fn constants_from_other_files_resolve_and_a_bad_definition_is_named() {
    let dir = site(&[
        ("index.php", "<?php define('ROOT', __DIR__ . '/');\nrequire ROOT . 'boot.php';"),
        ("boot.php", "<?php const LIB = ROOT . 'lib/';\nrequire_once LIB . 'db.php';"),
        ("lib/db.php", "<?php"),
        // Another entry point defines ROOT as its own directory: lib/db.php is not there.
        ("admin/index.php", "<?php define('ROOT', __DIR__ . '/');"),
        ("admin/boot.php", "<?php"),
    ]);
    let r = check(dir.path(), |_| {});
    let got = lines(&r);
    assert_eq!(r.findings.len(), 1, "{got:?}");
    let f = &r.findings[0];
    assert_eq!((f.file.as_str(), f.line, f.kind), ("boot.php", 2, FindingKind::ConstantDefinition));
    assert!(f.message.starts_with("with ROOT as defined at admin/index.php:1, directory "), "{}", f.message);
    assert!(f.message.ends_with("(its other definitions lead to existing files)"), "{}", f.message);
}

#[test]
fn include_path_from_php_ini_and_set_include_path() {
    let dir = site(&[
        (
            "web/index.php",
            "<?php require 'Mail.php';\nset_include_path('/nonexistent-lookout' . PATH_SEPARATOR . __DIR__ . '/../vendor');\nrequire 'Mail2.php';",
        ),
        ("shared/Mail.php", "<?php"),
        ("vendor/Mail2.php", "<?php"),
    ]);
    let ini = dir.path().join("php.ini");
    let shared = dir.path().canonicalize().unwrap().join("shared");
    std::fs::write(
        &ini,
        format!("; include_path = \"/nope\"\n[PHP]\ninclude_path = \".:{}\" ; comment\n", shared.display()),
    )
    .unwrap();
    let web = dir.path().join("web");
    let without = check(&web, |_| {});
    assert_eq!(without.findings.len(), 1, "{:?}", lines(&without));
    assert_eq!(without.findings[0].line, 1);
    let with = check(&web, |o| o.php_ini = Some(ini.clone()));
    assert_eq!(with.findings, [], "{:?}", lines(&with));
    assert_eq!(include_path_of_ini(b"include_path=.:/a\ninclude_path = '/b'"), Some(b"'/b'".to_vec()));
}

#[test]
fn usage_errors_are_errors() {
    let missing = Options { paths: vec!["/nonexistent-lookout/site".into()], ..Options::default() };
    assert!(matches!(run(&missing), Err(Error::NoSuchPath(_))));
    let dir = site(&[("a.php", "<?php")]);
    let user =
        Options { paths: vec![dir.path().into()], web_user: Some("no-such-user-lookout".into()), ..Options::default() };
    assert!(matches!(run(&user), Err(Error::UnknownUser(_))));
}

#[test]
fn a_dangling_symlink_is_an_error_naming_its_target() {
    let dir = site(&[("index.php", "<?php require __DIR__ . '/vendor/getid3.php';")]);
    std::fs::create_dir(dir.path().join("vendor")).unwrap();
    std::os::unix::fs::symlink("/nonexistent-lookout/getid3.php", dir.path().join("vendor/getid3.php")).unwrap();
    let r = check(dir.path(), |_| {});
    assert_eq!(r.findings[0].kind, FindingKind::Dangling);
    assert!(r.findings[0].message.contains("is a symlink to /nonexistent-lookout/getid3.php, which does not exist"));
}

#[test]
fn many_files_are_checked_on_several_threads_in_order() {
    let mut files: Vec<(String, String)> =
        (0..200).map(|i| (format!("d{}/f{i}.php", i % 7), format!("<?php require __DIR__ . '/g{i}.php';"))).collect();
    files.push(("x.txt".into(), "<?php require 'not-php-file';".into()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let dir = site(&refs);
    let r = check(dir.path(), |o| o.threads = Some(8));
    assert_eq!((r.summary.files, r.summary.errors), (200, 200));
    let mut sorted = r.findings.clone();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    assert_eq!(sorted, r.findings);
}
