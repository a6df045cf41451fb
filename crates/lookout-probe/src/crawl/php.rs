//! PHP errors printed into a page: what `display_errors = On` shows, with `html_errors` on (Apache's mod_php,
//! PHP-FPM: `<br />\n<b>Warning</b>:  … in <b>/path</b> on line <b>3</b><br />`) or off (`\nWarning: … in /path
//! on line 3\n`).
//!
//! Why so strict a shape: the crawl is a deploy gate, and a page that merely *talks* about a "Fatal error:" (a
//! blog post, a PHP tutorial) must not fail it. PHP always starts its message on a line of its own and always
//! ends it with where it happened — ` in FILE on line N`, or ` in FILE:N` for an uncaught exception — so a match
//! needs the label at the start of a line (tags removed) and the location on the same line.

/// The first PHP error in `body`: its line, tags removed and entities decoded, as the server sent it (control
/// characters included: the printer escapes them) (e.g. `Fatal error: Uncaught
/// Error: Failed opening required 'x.php' (include_path='.:/usr/share/php') in /srv/www/a.php:3`).
pub fn first_error(body: &str) -> Option<String> {
    // Cheap rejection first: most pages contain none of the labels.
    if !LABELS.iter().any(|l| body.contains(l.trim_end_matches(':'))) {
        return None;
    }
    body.lines().find_map(|line| {
        let text = super::links::decode_entities(&strip_tags(line));
        let text = text.trim();
        let rest = text.strip_prefix("PHP ").unwrap_or(text);
        let label = LABELS.iter().find(|l| rest.starts_with(*l))?;
        let message = &rest[label.len()..];
        let fatal = *label != "Warning:";
        (has_line_location(message) || (fatal && has_colon_location(message)))
            .then(|| lookout_core::text::truncate(text, 300))
    })
}

/// What PHP prints before the message of an error that breaks a page; `Recoverable fatal error` before `Fatal
/// error`'s shorter prefix would not matter (they differ at the first letter).
const LABELS: [&str; 4] = ["Fatal error:", "Parse error:", "Recoverable fatal error:", "Warning:"];

/// `… in FILE on line N` (digits to the end of the line, or before `<`/space: tags are already removed).
fn has_line_location(message: &str) -> bool {
    message.match_indices(" on line ").any(|(at, m)| {
        message[..at].contains(" in ")
            && message[at + m.len()..].trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())
    })
}

/// `… in FILE:N` ending the line, as an uncaught exception's first line does.
fn has_colon_location(message: &str) -> bool {
    let Some((before, line)) = message.trim_end().rsplit_once(':') else { return false };
    !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && before.contains(" in ")
}

/// The line without its HTML tags (`<b>`, `<br />`, anything between `<` and `>`).
fn strip_tags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::first_error;

    // What PHP 8.2 prints (`php -d display_errors=1 -d html_errors=1|0`, byte for byte), for an include of a
    // missing file, a require of one, a parse error and an uncaught exception.
    const INCLUDE_HTML: &str = "<p>before</p><br />\n<b>Warning</b>:  include(missing_file.php): Failed to open stream: No such file or directory in <b>/tmp/phps/w.php</b> on line <b>1</b><br />\n<br />\n<b>Warning</b>:  include(): Failed opening 'missing_file.php' for inclusion (include_path='.:/usr/share/php') in <b>/tmp/phps/w.php</b> on line <b>1</b><br />\nafter";
    const INCLUDE_TEXT: &str = "<p>before</p>\nWarning: include(missing_file.php): Failed to open stream: No such file or directory in /tmp/phps/w.php on line 1\n\nWarning: include(): Failed opening 'missing_file.php' for inclusion (include_path='.:/usr/share/php') in /tmp/phps/w.php on line 1\nafter";
    const REQUIRE_HTML: &str = "<p>before</p><br />\n<b>Fatal error</b>:  Uncaught Error: Failed opening required 'missing_file.php' (include_path='.:/usr/share/php') in /tmp/phps/r.php:1\nStack trace:\n#0 {main}\n  thrown in <b>/tmp/phps/r.php</b> on line <b>1</b><br />\n";
    const PARSE_HTML: &str = "<br />\n<b>Parse error</b>:  syntax error, unexpected token &quot;echo&quot;, expecting &quot;,&quot; or &quot;;&quot; in <b>/tmp/phps/p.php</b> on line <b>2</b><br />\n";
    const PARSE_TEXT: &str = "\nParse error: syntax error, unexpected token \"echo\", expecting \",\" or \";\" in /tmp/phps/p.php on line 2\n";
    const UNCAUGHT_TEXT: &str = "\nFatal error: Uncaught RuntimeException: boom in /tmp/phps/u.php:1\nStack trace:\n#0 {main}\n  thrown in /tmp/phps/u.php on line 1\n";

    #[test]
    fn finds_what_php_prints_with_and_without_html_errors() {
        let cases = [
            (
                INCLUDE_HTML,
                "Warning:  include(missing_file.php): Failed to open stream: No such file or directory in /tmp/phps/w.php on line 1",
            ),
            (
                INCLUDE_TEXT,
                "Warning: include(missing_file.php): Failed to open stream: No such file or directory in /tmp/phps/w.php on line 1",
            ),
            (
                REQUIRE_HTML,
                "Fatal error:  Uncaught Error: Failed opening required 'missing_file.php' (include_path='.:/usr/share/php') in /tmp/phps/r.php:1",
            ),
            (
                PARSE_HTML,
                "Parse error:  syntax error, unexpected token \"echo\", expecting \",\" or \";\" in /tmp/phps/p.php on line 2",
            ),
            (
                PARSE_TEXT,
                "Parse error: syntax error, unexpected token \"echo\", expecting \",\" or \";\" in /tmp/phps/p.php on line 2",
            ),
            (UNCAUGHT_TEXT, "Fatal error: Uncaught RuntimeException: boom in /tmp/phps/u.php:1"),
            (
                "PHP Fatal error:  Allowed memory size exhausted in /srv/a.php on line 9",
                "PHP Fatal error:  Allowed memory size exhausted in /srv/a.php on line 9",
            ),
            (
                "<br />\r\n<b>Recoverable fatal error</b>:  Object could not be converted in <b>C:\\www\\x.php</b> on line <b>4</b><br />",
                "Recoverable fatal error:  Object could not be converted in C:\\www\\x.php on line 4",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(first_error(body).as_deref(), Some(want), "{body}");
        }
    }

    #[test]
    fn pages_that_only_talk_about_errors_pass() {
        for body in [
            "<h1>Healthy</h1><p>All good.</p>",
            "<p>How to fix \"Fatal error: Allowed memory size\" in WordPress</p>",
            "<pre>Fatal error: see below</pre>",
            "Warning: the road ahead is closed",
            "<p>Warning: stock is low in Berlin</p>",
            "Warning: a path in /srv/x.php:3",
            "<li>Parse error: in the docs on line</li>",
            "<p>It said Fatal error: x in /a.php on line 3</p>",
            "<script>console.error('Uncaught TypeError: x')</script>",
        ] {
            assert_eq!(first_error(body), None, "{body}");
        }
    }
}
