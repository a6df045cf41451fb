//! The two PHP-side error logs, one physical line at a time:
//!
//! - PHP-FPM's own log (`[global] error_log`): `[30-Nov-2026 12:53:58] WARNING: [pool www] child 19216 said into
//!   stderr: "NOTICE: PHP message: PHP Warning:  …"` — one line per line a worker wrote to stderr — and the
//!   master's own notices (`server reached pm.max_children setting (5), consider raising it`).
//! - PHP's own `error_log` file: `[30-Nov-2026 12:53:58 UTC] PHP Fatal error:  Uncaught Error: …`, followed by
//!   `Stack trace:` lines without a time (those are joined by [`super::entries`]).

use super::{ErrorRecord, paths_in};
use crate::time::parse_clf;

/// `30-Nov-2026 12:53:58` (as FPM and PHP write it) → Unix milliseconds, read as UTC (PHP writes its own time
/// zone's name after it; FPM writes local time).
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[2] != b'-' || b[6] != b'-' || b[11] != b' ' {
        return None;
    }
    // Reuse the access-log parser: `30/Nov/2026:12:53:58 +0000` has the same fields at the same places.
    let mut clf = [0u8; 26];
    clf[..20].copy_from_slice(b);
    clf[2] = b'/';
    clf[6] = b'/';
    clf[11] = b':';
    clf[20..].copy_from_slice(b" +0000");
    parse_clf(&clf).map(|s| s * 1000)
}

/// What a worker wrote, from an FPM line `[pool www] child 19216 said into stderr: "…"`: pool, child pid and the
/// text between the quotes; `continues` when FPM cut the line (it ends in `...` without the closing quote) and
/// its next line of the same child goes on with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildOutput<'a> {
    pub pool: &'a str,
    pub child: u32,
    pub text: &'a str,
    pub continues: bool,
}

/// `[pool www] child 19216 said into stderr: "…"` (or stdout) → [`ChildOutput`].
pub fn child_output(message: &str) -> Option<ChildOutput<'_>> {
    let rest = message.strip_prefix("[pool ")?;
    let (pool, rest) = rest.split_once("] child ")?;
    let (child, rest) = rest.split_once(" said into ")?;
    let child: u32 = child.parse().ok()?;
    let rest = rest.strip_prefix("stderr: \"").or_else(|| rest.strip_prefix("stdout: \""))?;
    // FPM adds `, pipe is closed` after the quote when the worker closed its end.
    let rest = rest.strip_suffix(", pipe is closed").unwrap_or(rest);
    let (text, continues) = match rest.strip_suffix('"') {
        Some(t) => (t, false),
        None => (rest.strip_suffix("...").unwrap_or(rest), true),
    };
    Some(ChildOutput { pool, child, text, continues })
}

/// One line of FPM's log: `[30-Nov-2026 12:53:58] LEVEL: message`. The record's `module` is the pool, `pid` the
/// child that wrote, and `message` what it wrote (or the master's message, without the `[pool …]` prefix).
pub(super) fn parse_fpm(line: &str) -> Option<ErrorRecord<'_>> {
    let rest = line.strip_prefix('[')?;
    let time = rest.get(..20)?;
    let rest = rest.get(20..)?.strip_prefix("] ")?;
    let time_ms = Some(parse_time(time)?);
    let (level, message) = rest.split_once(": ")?;
    if level.is_empty() || !level.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut rec = ErrorRecord { time_ms, level, ..Default::default() };
    let message = message.trim();
    if let Some(out) = child_output(message) {
        rec.module = out.pool;
        rec.pid = Some(out.child);
        rec.message = out.text;
    } else if let Some((pool, m)) = message.strip_prefix("[pool ").and_then(|r| r.split_once("] ")) {
        rec.module = pool;
        rec.message = m;
    } else {
        rec.message = message;
    }
    rec.paths = paths_in(rec.message);
    Some(rec)
}

/// One line of PHP's own error log: `[30-Nov-2026 12:53:58 UTC] PHP Warning:  message`. The level is what PHP
/// says (`Warning`, `Fatal error`, `Parse error`, …); the message is the whole text after the time.
pub(super) fn parse_php(line: &str) -> Option<ErrorRecord<'_>> {
    let rest = line.strip_prefix('[')?;
    let time = rest.get(..20)?;
    let rest = rest.get(20..)?.strip_prefix(' ')?;
    let time_ms = Some(parse_time(time)?);
    // The time zone's name: `UTC`, `Europe/Berlin`, … — no spaces, no brackets.
    let (zone, message) = rest.split_once("] ")?;
    if zone.is_empty() || zone.len() > 64 || zone.contains([' ', '[']) {
        return None;
    }
    let message = message.trim();
    let level = message
        .strip_prefix("PHP ")
        .and_then(|m| m.split_once(':'))
        .map(|(level, _)| level)
        .filter(|l| l.len() <= 32)
        .unwrap_or("");
    Some(ErrorRecord { time_ms, level, message, paths: paths_in(message), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("25-Nov-2026 14:36:22"), Some(1_795_617_382_000));
        assert_eq!(parse_time("25-Foo-2026 14:36:22"), None);
        assert_eq!(parse_time("25-Nov-2026 14:36"), None);
        assert_eq!(parse_time("2é-Nov-2026 14:36:22"), None);
    }

    #[test]
    fn fpm_child_lines() {
        let line = r#"[30-Nov-2026 12:53:58] WARNING: [pool www] child 19216 said into stderr: "NOTICE: PHP message: PHP Warning:  require_once(/srv/www/inc/x.php): Failed to open stream: No such file or directory in /srv/www/index.php on line 2""#;
        let r = parse_fpm(line).unwrap();
        assert_eq!((r.level, r.module, r.pid), ("WARNING", "www", Some(19216)));
        assert!(r.message.starts_with("NOTICE: PHP message: PHP Warning:  require_once("), "{}", r.message);
        assert!(r.message.ends_with("on line 2"));
        assert_eq!(r.paths, ["/srv/www/inc/x.php", "/srv/www/index.php"]);
        let cut = child_output(r#"[pool www] child 7 said into stderr: "NOTICE: PHP message: aaaa..."#).unwrap();
        assert_eq!((cut.text, cut.continues), ("NOTICE: PHP message: aaaa", true));
        let master = parse_fpm(
            "[30-Nov-2026 12:53:58] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it",
        )
        .unwrap();
        assert_eq!((master.module, master.pid), ("www", None));
        assert_eq!(master.message, "server reached pm.max_children setting (5), consider raising it");
        assert_eq!(parse_fpm("[30-Nov-2026 21:20:52] NOTICE: fpm is running, pid 13484").unwrap().level, "NOTICE");
        assert_eq!(parse_fpm("[30-Nov-2026 21:20:52 UTC] PHP Warning:  x"), None, "PHP's log, not FPM's");
    }

    #[test]
    fn php_lines() {
        let line = "[30-Nov-2026 21:21:02 UTC] PHP Fatal error:  Uncaught Error: Failed opening required '/tmp/h15/d/www/inc/Settings.php' (include_path='.:/usr/share/php') in /tmp/h15/d/www/index.php:1";
        let r = parse_php(line).unwrap();
        assert_eq!(r.level, "Fatal error");
        assert_eq!(r.time_ms, Some(1_796_073_662_000));
        assert_eq!(r.paths, ["/tmp/h15/d/www/inc/Settings.php", "/tmp/h15/d/www/index.php"]);
        let berlin = parse_php("[30-Nov-2026 21:21:02 Europe/Berlin] PHP Warning:  x").unwrap();
        assert_eq!(berlin.level, "Warning");
        assert_eq!(parse_php("[30-Nov-2026 21:20:52] NOTICE: fpm is running"), None, "FPM's log, not PHP's");
        assert_eq!(parse_php("Stack trace:"), None);
    }
}
