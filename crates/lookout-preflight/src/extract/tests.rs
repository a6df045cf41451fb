use super::*;
use crate::token::tokenize;

fn facts(src: &str) -> Facts {
    extract(&tokenize(src.as_bytes()))
}

fn found(src: &str) -> Vec<(Keyword, u32, u32, String, bool, Option<Guard>)> {
    facts(src).includes.into_iter().map(|i| (i.keyword, i.line, i.column, i.written, i.silenced, i.guard)).collect()
}

#[test]
fn every_form_of_include_is_found_with_its_place() {
    let src = "<?php\nrequire_once __DIR__ . '/inc/settings.php';\n  INCLUDE('a.php');\n@include \"b.php\" ?>\n<?php $x = (require 'c.php');\nfoo(include_once 'd.php', 2);";
    let got = found(src);
    assert_eq!(
        got,
        [
            (Keyword::RequireOnce, 2, 1, "__DIR__ . '/inc/settings.php'".into(), false, None),
            (Keyword::Include, 3, 3, "('a.php')".into(), false, None),
            (Keyword::Include, 4, 2, "\"b.php\"".into(), true, None),
            (Keyword::Require, 5, 13, "'c.php'".into(), false, None),
            (Keyword::IncludeOnce, 6, 5, "'d.php'".into(), false, None),
        ]
    );
    // Outer parentheses are not part of the expression.
    assert_eq!(facts("<?php include(('a.php'));").includes[0].expr.len(), 1);
}

#[test]
fn methods_constants_and_text_named_include_are_not_includes() {
    let src = "<?php $o->include('x'); Foo::require('y'); $o?->include('z'); function include_it() {}\n\
               $a = ['include' => 1]; // include 'c.php';\n echo \"require 'd.php'\"; $s = <<<H\ninclude 'e.php';\nH;\n\
               f(include: 1);";
    assert_eq!(found(src), []);
}

#[test]
fn guards_make_an_include_optional() {
    let braced = "<?php if (file_exists(__DIR__ . '/local.php')) { require __DIR__ . '/local.php'; }";
    assert_eq!(found(braced)[0].5, Some(Guard::Tested("file_exists")));
    let single = "<?php if ( is_file( $f ) ) include $f; include $f;";
    let got = found(single);
    // The second one follows a test of the same expression in the same block (rule 2).
    assert_eq!((got[0].5.clone(), got[1].5.clone()), (Some(Guard::Tested("is_file")), Some(Guard::Tested("is_file"))));
    let alternative = "<?php if (is_readable('x.php')): ?>html<?php include 'x.php'; endif; include 'x.php';";
    assert_eq!(found(alternative)[0].5, Some(Guard::Tested("is_readable")));
    let defined = "<?php if (defined('WP_DEBUG') && WP_DEBUG) { require 'debug.php'; }";
    assert_eq!(found(defined)[0].5, Some(Guard::Defined));
    let early_return =
        "<?php function f() { if (!file_exists('c.php')) { return; } require 'C.php'; require 'c.php'; }";
    let got = found(early_return);
    assert_eq!((got[0].5.clone(), got[1].5.clone()), (None, Some(Guard::Tested("file_exists"))));
}

#[test]
fn a_test_of_another_file_or_in_another_block_is_no_guard() {
    let other = "<?php if (file_exists('a.php')) { require 'b.php'; }";
    assert_eq!(found(other)[0].5, None);
    let else_branch = "<?php if (file_exists('a.php')) { } else { require 'a.php'; }";
    assert_eq!(found(else_branch)[0].5, None);
    let after_if = "<?php if (file_exists('a.php')) require 'x.php'; require 'a.php';";
    // The test is in the condition at the top level: rule 2 counts it for the later statement too.
    assert_eq!(found(after_if)[0].5, None);
    assert_eq!(found(after_if)[1].5, Some(Guard::Tested("file_exists")));
    let inner = "<?php { file_exists('a.php'); } require 'a.php';";
    assert_eq!(found(inner)[0].5, None);
}

#[test]
fn constants_and_include_paths_are_collected() {
    let src = "<?php define('ABSPATH', __DIR__ . '/'); define( \"\\\\LIB\" , ABSPATH.'lib/' , true );\n\
               const A = 'a', B = A . 'b';\nclass K { const NOT = 'x'; }\nset_include_path(get_include_path() . PATH_SEPARATOR . '/opt');\n\
               require 'x.php'; ini_set('include_path', '.:/usr/share/php'); require 'y.php'; require 'z.php';";
    let f = facts(src);
    let names: Vec<(&str, u32, usize)> = f.defines.iter().map(|d| (d.name.as_str(), d.line, d.expr.len())).collect();
    assert_eq!(names, [("ABSPATH", 1, 3), ("LIB", 1, 3), ("A", 2, 1), ("B", 2, 3)]);
    assert_eq!(f.include_paths.len(), 2);
    let paths: Vec<Option<usize>> = f.includes.iter().map(|i| i.include_path).collect();
    assert_eq!(paths, [Some(0), Some(1), Some(1)]);
    assert_eq!(facts("<?php require 'a';").includes[0].include_path, None);
}

/// WordPress's `wp-admin/press-this.php` and `wp-includes/deprecated.php` include a plugin's class only where
/// `is_plugin_active(…)` says the plugin is installed: pristine WordPress has no `wp-content/plugins/press-this`.
#[test]
fn an_include_inside_a_plugin_test_is_optional() {
    let press_this = "<?php if ( ! current_user_can( 'edit_posts' ) ) { wp_die(); }
        elseif ( is_plugin_active( $plugin_file ) ) { include WP_PLUGIN_DIR . '/press-this/class-wp-press-this-plugin.php'; }
        else { include WP_PLUGIN_DIR . '/press-this/x.php'; }
        include WP_PLUGIN_DIR . '/press-this/y.php';";
    let got = found(press_this);
    assert_eq!(got[0].5, Some(Guard::Condition("is_plugin_active")));
    // The else branch and what follows the if are not inside the test.
    assert_eq!((got[1].5.clone(), got[2].5.clone()), (None, None));
    let network = "<?php if (IS_MS && is_plugin_active_for_network('a/a.php')) require WP_PLUGIN_DIR . '/a/b.php';";
    assert_eq!(found(network)[0].5, Some(Guard::Condition("is_plugin_active_for_network")));
    // Only a call counts: a function of a similar name or a method defined with that name does not.
    let similar = "<?php if (my_is_plugin_active_check('a')) { require 'a.php'; }";
    assert_eq!(found(similar)[0].5, None);
}

/// PEAR's Mail/smtpmx.php: `if (!include_once 'Net/DNS.php') { return $this->_raiseError('no_resolver'); }` —
/// the code handles a missing file. A `require` there is still fatal, so it stays unguarded.
#[test]
fn an_include_whose_result_is_tested_is_optional() {
    let pear = "<?php function f() { if (!include_once 'Net/DNS.php') { return 1; } include 'after.php'; }";
    let got = found(pear);
    assert_eq!((got[0].5.clone(), got[1].5.clone()), (Some(Guard::ResultTested), None));
    let others = "<?php while ((include 'a.php') === false) {} if (require 'b.php') {} $x = include 'c.php';";
    let got = found(others);
    assert_eq!((got[0].5.clone(), got[1].5.clone(), got[2].5.clone()), (Some(Guard::ResultTested), None, None));
}

#[test]
fn a_string_token_made_from_a_value_reads_back_as_that_value() {
    for value in [&b"/srv/app"[..], b"C:\\dir\\", b"it's", b"\\'", b""] {
        let t = Tok::string(value);
        assert_eq!(t.value().as_deref(), Some(value), "{}", String::from_utf8_lossy(&t.text));
    }
}
