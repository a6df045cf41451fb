use super::*;
use crate::extract::extract;
use crate::token::tokenize;

fn expr(src: &str) -> Vec<Tok> {
    let code = format!("<?php include {src};");
    extract(&tokenize(code.as_bytes())).includes.remove(0).expr
}

fn eval(src: &str, file: &str, constants: &dyn Lookup) -> Result<Vec<String>, String> {
    let scope = Scope { file: Path::new(file), include_path: b".:/usr/share/php", constants };
    evaluate(&expr(src), &scope)
        .map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a.value).into_owned()).collect())
}

#[test]
fn literals_magic_constants_and_dirname() {
    let none = Constants::default();
    let f = "/srv/app/wp-admin/index.php";
    assert_eq!(eval("'a' . \"b\" . 'c.php'", f, &none), Ok(vec!["abc.php".into()]));
    assert_eq!(eval("__DIR__ . '/x.php'", f, &none), Ok(vec!["/srv/app/wp-admin/x.php".into()]));
    assert_eq!(eval("__FILE__", f, &none), Ok(vec![f.into()]));
    assert_eq!(eval("dirname(__FILE__) . '/x.php'", f, &none), Ok(vec!["/srv/app/wp-admin/x.php".into()]));
    assert_eq!(eval("dirname(__DIR__) . '/x.php'", f, &none), Ok(vec!["/srv/app/x.php".into()]));
    assert_eq!(eval("\\dirname( __DIR__ , 2 ) . '/x.php'", f, &none), Ok(vec!["/srv/x.php".into()]));
    assert_eq!(eval("realpath(__dir__) . DIRECTORY_SEPARATOR . 'x'", f, &none), Ok(vec!["/srv/app/wp-admin/x".into()]));
    assert_eq!(eval("(get_include_path())", f, &none), Ok(vec![".:/usr/share/php".into()]));
    assert_eq!(dirname(b"/a", 1), b"/");
    assert_eq!(dirname(b"/a/b/", 5), b"/");
    assert_eq!(dirname(b"x.php", 1), b".");
}

#[test]
fn variables_and_calls_are_unresolved() {
    let none = Constants::default();
    let f = "/srv/app/index.php";
    assert_eq!(eval("$path . '/x.php'", f, &none), Err("the variable $path".into()));
    assert_eq!(eval("plugin_dir_path(__FILE__) . 'x.php'", f, &none), Err("the call plugin_dir_path()".into()));
    assert_eq!(eval("\"$dir/x.php\"", f, &none), Err("a string with variables in it".into()));
    assert_eq!(eval("UNKNOWN . 'x'", f, &none), Err("the constant UNKNOWN".into()));
    assert!(eval("'a' ? 'b' : 'c'", f, &none).is_err());
}

fn def(name: &str, file: &str, line: u32, src: &str) -> ConstDef {
    ConstDef { name: name.into(), file: file.into(), line, expr: expr(src) }
}

#[test]
fn constants_are_evaluated_where_they_are_defined() {
    let defs = [
        def("ABSPATH", "/srv/app/wp-load.php", 3, "__DIR__ . '/'"),
        def("WPINC", "/srv/app/wp-settings.php", 4, "'wp-includes'"),
        def("INC", "/srv/app/lib/x.php", 9, "ABSPATH . WPINC"),
        def("LOOP", "/srv/app/a.php", 1, "LOOP . 'x'"),
        def("DYN", "/srv/app/a.php", 2, "$x"),
    ];
    let c = Constants::build(&defs, b".");
    assert_eq!(
        eval("INC . '/version.php'", "/elsewhere/f.php", &c),
        Ok(vec!["/srv/app/wp-includes/version.php".into()])
    );
    assert_eq!(eval("\\Foo\\ABSPATH", "/f.php", &c), Ok(vec!["/srv/app/".into()]));
    assert!(eval("LOOP", "/f.php", &c).is_err(), "a circle is unresolved, not a hang");
    assert!(eval("DYN", "/f.php", &c).is_err());
    assert_eq!(c.len(), 3);
}

#[test]
fn a_constant_defined_differently_has_each_value_and_says_where() {
    let defs = [
        def("ROOT", "/srv/app/index.php", 2, "__DIR__ . '/'"),
        def("ROOT", "/srv/app/admin/index.php", 5, "__DIR__ . '/'"),
        def("ROOT", "/srv/app/cli.php", 7, "__DIR__ . '/'"),
    ];
    let c = Constants::build(&defs, b".");
    let scope = Scope { file: Path::new("/srv/app/x.php"), include_path: b".", constants: &c };
    let alts = evaluate(&expr("ROOT . 'lib.php'"), &scope).unwrap();
    let got: Vec<(String, Vec<(String, u32)>)> = alts
        .into_iter()
        .map(|a| {
            let via = a.via.into_iter().map(|d| (d.file.display().to_string(), d.line)).collect();
            (String::from_utf8_lossy(&a.value).into_owned(), via)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/srv/app/lib.php".into(), vec![("/srv/app/index.php".into(), 2)]),
            ("/srv/app/admin/lib.php".into(), vec![("/srv/app/admin/index.php".into(), 5)]),
        ]
    );
    // Defined the same way everywhere: one value, no choice to name.
    let same = [def("V", "/a.php", 1, "'x'"), def("V", "/b.php", 1, "'x'")];
    let c = Constants::build(&same, b".");
    assert_eq!(c.constant("V").unwrap(), [Alternative { value: b"x".to_vec(), via: vec![] }]);
}

#[test]
fn candidates_follow_php_rules() {
    let dir = Path::new("/srv/app/inc");
    let p = |v: &str, ip: &str| -> Vec<String> {
        candidates(v.as_bytes(), dir, ip.as_bytes()).into_iter().map(|p| p.display().to_string()).collect()
    };
    assert_eq!(p("/abs/./x/../y.php", ".:/usr/share/php"), ["/abs/y.php"]);
    assert_eq!(p("./a.php", ".:/usr/share/php"), ["/srv/app/inc/a.php"]);
    assert_eq!(p("../a.php", "/usr/share/php"), ["/srv/app/a.php"]);
    assert_eq!(
        p("a.php", ".:/usr/share/php:lib"),
        ["/srv/app/inc/a.php", "/usr/share/php/a.php", "/srv/app/inc/lib/a.php"]
    );
    assert_eq!(p("a.php", "/usr/share/php"), ["/usr/share/php/a.php", "/srv/app/inc/a.php"]);
    assert_eq!(p("phar://x.phar/a.php", "."), Vec::<String>::new());
    assert_eq!(p("", "."), Vec::<String>::new());
    assert_eq!(normalize(Path::new("/../a/./b/..")), PathBuf::from("/a"));
    // The fast path (already normal) and each thing that sends a path down the slow one.
    for (given, normal) in [
        ("/srv/app/a.php", "/srv/app/a.php"),
        ("/", "/"),
        ("/srv//app/a.php", "/srv/app/a.php"),
        ("/srv/app/", "/srv/app"),
        ("/srv/app/.", "/srv/app"),
        ("/srv/app/..", "/srv"),
        ("/srv/./app/../b.php", "/srv/b.php"),
        ("srv/a.php", "srv/a.php"),
    ] {
        assert_eq!(normalize(Path::new(given)), PathBuf::from(normal), "{given}");
    }
}

/// MediaWiki's Composer autoloader puts `vendor/pear/*` on the include path (`vendor/composer/include_paths.php`,
/// generated with `$vendorDir = dirname(__DIR__)`), so PEAR's `require_once 'PEAR.php'` is found there — not next
/// to the including file, where it was wrongly reported missing.
#[test]
fn composer_include_paths_are_read_from_the_generated_file() {
    let dir = std::env::temp_dir().join(format!("lookout-preflight-composer-{}", std::process::id()));
    let composer = dir.join("app/vendor/composer");
    std::fs::create_dir_all(&composer).unwrap();
    let generated = composer.join("include_paths.php");
    std::fs::write(
        &generated,
        "<?php\n\n// include_paths.php @generated by Composer\n\n$vendorDir = dirname(__DIR__);\n$baseDir = \
         dirname($vendorDir);\n\nreturn array(\n    $vendorDir . '/pear/console_getopt',\n    $vendorDir . \
         '/pear/pear-core-minimal/src',\n    $baseDir . '/lib', $unknown . '/skipped',\n);\n",
    )
    .unwrap();
    let files = vec![dir.join("app/index.php"), generated.clone(), dir.join("other/index.php")];
    let got = composer_include_paths(&files, b".:/usr/share/php");
    let app = dir.join("app");
    let v = app.join("vendor");
    let expected = format!(
        "{}/pear/console_getopt:{}/pear/pear-core-minimal/src:{}/lib:.:/usr/share/php",
        v.display(),
        v.display(),
        app.display()
    );
    let entries = expected.strip_suffix(":.:/usr/share/php").unwrap_or_default();
    assert_eq!(got, vec![(app.clone(), entries.as_bytes().to_vec())]);
    // Files of the project see it; files elsewhere keep php.ini's.
    let mail = app.join("vendor/pear/mail/Mail.php");
    assert_eq!(&*include_path_for(&mail, &got, b".:/usr/share/php"), expected.as_bytes());
    assert_eq!(&*include_path_for(&dir.join("other/index.php"), &got, b"."), b".");
    // The short array syntax too; and a tree without the file has none.
    std::fs::write(&generated, "<?php return [__DIR__ . '/x'];").unwrap();
    let got = composer_include_paths(&files, b".");
    assert_eq!(got[0].1, composer.join("x").as_os_str().as_bytes());
    assert!(composer_include_paths(&files[..1], b".").is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
