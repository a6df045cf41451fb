use super::*;

fn kinds(src: &str) -> Vec<(Kind, String)> {
    tokenize(src.as_bytes()).iter().map(|t| (t.kind, String::from_utf8_lossy(t.text).into_owned())).collect()
}

fn idents(src: &str) -> Vec<String> {
    kinds(src).into_iter().filter(|(k, _)| *k == Kind::Ident).map(|(_, t)| t).collect()
}

fn strings(src: &str) -> Vec<Option<String>> {
    tokenize(src.as_bytes())
        .iter()
        .filter(|t| t.kind == Kind::Str)
        .map(|t| t.value().map(|v| String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

#[test]
fn html_outside_tags_is_not_code() {
    let src = "<h1>include 'x.php';</h1><?php require 'a.php'; ?>\ninclude 'y.php'<?= include 'b.php' ?>";
    assert_eq!(idents(src), ["require", "include"]);
    let k = kinds(src);
    assert_eq!(k[0], (Kind::InlineHtml, "<h1>include 'x.php';</h1>".into()));
    assert_eq!(k[1].0, Kind::OpenTag);
    // `<?xml` and a short tag are not PHP here.
    assert_eq!(idents("<?xml version='1.0'?><? include 'x.php'; ?>"), Vec::<String>::new());
    assert_eq!(idents("<?PHP\ninclude 'x';"), ["include"]);
    assert_eq!(idents("<?php"), Vec::<String>::new());
}

#[test]
fn comments_are_skipped_and_a_line_comment_ends_at_a_close_tag() {
    let src = "<?php // include 'a.php';\n# require 'b.php';\n/* require 'c.php'; */ require 'd.php';";
    assert_eq!(idents(src), ["require"]);
    assert_eq!(strings(src), [Some("d.php".into())]);
    // `?>` ends a // comment and PHP mode: what follows is HTML.
    assert_eq!(idents("<?php // x ?> include 'a.php';"), Vec::<String>::new());
    // An attribute is code, not a comment.
    assert_eq!(idents("<?php #[Attr] require 'x.php';"), ["Attr", "require"]);
    // An unterminated comment runs to the end.
    assert_eq!(idents("<?php /* require 'x.php';"), Vec::<String>::new());
}

#[test]
fn strings_have_their_values_and_interpolation_makes_them_unknown() {
    let src = r#"<?php 'it\'s \\ \n' "a\tb\x41\101\u{e9}\$x \q" "$x/y" "{$a}" "${a}" `ls`"#;
    assert_eq!(strings(src), [Some("it's \\ \\n".into()), Some("a\tbAA\u{e9}$x \\q".into()), None, None, None, None]);
    assert_eq!(idents("<?php $s = \"include 'x.php'\"; $t = 'require \"y\"';"), Vec::<String>::new());
    assert_eq!(idents("<?php str_replace(\"<?php include('x') ?>\", '', $s);"), ["str_replace"]);
}

#[test]
fn heredocs_and_nowdocs_are_strings() {
    let src = "<?php\n$a = <<<EOT\n  include 'x.php';\n  EOT;\n$b = <<<'N'\n$not {$var}\nN;\n$c = <<<\"Q\"\nplain\\tq\nQ\nrequire 'z.php';";
    assert_eq!(idents(src), ["require"]);
    assert_eq!(
        strings(src),
        [Some("include 'x.php';".into()), Some("$not {$var}".into()), Some("plain\tq".into()), Some("z.php".into())]
    );
    assert_eq!(strings("<?php <<<E\nhello $name\nE;"), [None]);
    // A closing name that is only a prefix does not close.
    assert_eq!(strings("<?php <<<END\nENDING\nEND;"), [Some("ENDING".into())]);
    // Not a heredoc: `<<<` without a name and newline.
    assert_eq!(kinds("<?php 1 <<< 2").iter().filter(|(k, _)| *k == Kind::Punct).count(), 3);
    // Unterminated: the rest of the file.
    assert_eq!(idents("<?php <<<E\ninclude 'x';"), Vec::<String>::new());
}

#[test]
fn names_variables_numbers_and_operators() {
    let k = kinds("<?php $x->include(); \\Foo\\bar::require; ?->a 1.5 .5 0x1F;");
    assert!(k.contains(&(Kind::Variable, "$x".into())));
    assert!(k.contains(&(Kind::Punct, "->".into())));
    assert!(k.contains(&(Kind::Ident, "\\Foo\\bar".into())));
    assert!(k.contains(&(Kind::Punct, "::".into())));
    assert!(k.contains(&(Kind::Punct, "?->".into())));
    assert!(k.contains(&(Kind::Number, "1.5".into())));
    assert!(k.contains(&(Kind::Number, ".5".into())));
    assert!(k.contains(&(Kind::Number, "0x1F".into())));
}

#[test]
fn lines_and_columns_are_counted_in_characters() {
    let t = tokenize("<?php\n\t$é = 1;\n  require 'x';".as_bytes());
    let req = t.iter().find(|t| t.is_word("require")).unwrap();
    assert_eq!(t.position(req), (3, 3));
    let one = t.iter().find(|t| t.kind == Kind::Number).unwrap();
    // Asked out of order: the cursor starts again from the top.
    assert_eq!(t.position(one), (2, 7));
    assert_eq!(t.position(req), (3, 3));
    // Newline eaten after ?> belongs to the tag; HTML after it starts on the next line.
    let t = tokenize(b"<?php ?>\nhtml");
    assert_eq!((t[2].kind, t[2].text, t.position(&t[2]).0), (Kind::InlineHtml, &b"html"[..], 2));
}

#[test]
fn never_panics_on_any_input() {
    let samples: [&[u8]; 8] = [
        b"<?php require __DIR__ . '/inc/settings.php'; ?>",
        b"<?php $a = <<<EOT\nx $y\n  EOT;\n",
        b"<?php \"\\u{zz\\x\\0\\",
        b"<?php '\\",
        b"<?php <<<'X'\r\nabc\r\nX;",
        b"<?php #[A] // ?> <?= `x` /* ",
        b"<?php \\ $ 1. ?-> \xff\xfe\x80",
        b"<?=",
    ];
    let mut rng = fastrand::Rng::with_seed(16);
    for s in samples {
        for cut in 0..=s.len() {
            let t = tokenize(&s[..cut]);
            assert!(t.iter().all(|tok| {
                let (line, column) = t.position(tok);
                line >= 1 && column >= 1
            }));
        }
    }
    let alphabet = b"<?php =>'\"`\\$#/*{}()[];.:\n\r\t EOTinclude_0x1\xc3\xa9\xff";
    for _ in 0..3000 {
        let len = rng.usize(0..200);
        let mut bytes: Vec<u8> = b"<?php ".to_vec();
        bytes.extend((0..len).map(|_| if rng.bool() { alphabet[rng.usize(0..alphabet.len())] } else { rng.u8(..) }));
        let tokens = tokenize(&bytes);
        let total: usize = tokens.iter().map(|t| t.text.len()).sum();
        assert!(total <= bytes.len());
        // And extraction never panics either.
        let _ = crate::extract::extract(&tokens);
    }
}

/// The fast paths (no escapes, interpolation found before a value is built, positions counted a gap at a time)
/// give what the slow ones give.
#[test]
fn fast_paths_keep_values_and_positions() {
    let src = "<?php\n$a = <<<EOT\n    one\\t$x\n    EOT;\n$b = <<<EOT\n    two\n      \\x41\n    EOT;\n$c = \"\\$y {\\$z} plain\";\n$d = '\\\\a';";
    assert_eq!(strings(src), [None, Some("two\n  A".into()), Some("$y {$z} plain".into()), Some("\\a".into())]);
    let t = tokenize("<?php /* é\n é */ $é = 'ü';  \n\n  foo();".as_bytes());
    let at: Vec<(String, u32, u32)> = t
        .iter()
        .map(|tok| (String::from_utf8_lossy(tok.text).into_owned(), t.position(tok).0, t.position(tok).1))
        .collect();
    assert_eq!(at[1], ("$é".into(), 2, 7));
    assert_eq!(at[3], ("'ü'".into(), 2, 12));
    assert_eq!(at[5], ("foo".into(), 4, 3));
}

/// Values are read from the token when asked: a heredoc's from its own text (its last line is the closing one),
/// an unterminated string or heredoc's as far as the file goes.
#[test]
fn values_are_read_back_from_the_token_alone() {
    assert_eq!(strings("<?php $a = <<<EOT\nEOT;"), [Some(String::new())]);
    assert_eq!(strings("<?php $a = <<<'N'\r\n  a\\n\r\n  b\r\n  N;"), [Some("a\\n\r\nb".into())]);
    assert_eq!(strings("<?php $a = <<<\"Q\"\n\tx\\ty\n\tQ;"), [Some("x\ty".into())]);
    // Unterminated: the rest of the file is the string, and its value is unknown.
    assert_eq!(strings("<?php $a = <<<EOT\nabc\nEOTX"), [None]);
    assert_eq!(strings("<?php $a = <<<EOT\nabc\n"), [None]);
    // An unterminated quoted string runs to the end of the file, escapes and all.
    assert_eq!(strings("<?php $a = 'ab\\'"), [Some("ab'".into())]);
    assert_eq!(strings("<?php $a = \"a\\tb"), [Some("a\tb".into())]);
    // Other tokens have no value.
    let t = tokenize(b"<?php foo('x');");
    assert!(t.iter().filter(|t| t.kind != Kind::Str).all(|t| t.value().is_none()));
}
