//! Error-log lines (Apache 2.4, nginx, PHP-FPM's log and PHP's own `error_log`) → [`ErrorRecord`]: time, module,
//! level, pid, client, AH code, message, and the file paths the message names — the clue the founding incident's
//! engineers needed strace for. [`entries`] joins lines into whole entries and splits the PHP messages a FastCGI
//! entry carries; [`entries::detect`] recognises the format without being told.

use serde::Serialize;

use crate::time::{parse_apache_error, parse_nginx_error};

pub mod entries;
pub mod php;

pub use entries::{Entries, Entry, detect};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorFormat {
    Apache,
    Nginx,
    /// PHP-FPM's own log (`[global] error_log`): `[30-Nov-2026 12:53:58] WARNING: [pool www] child N said into …`.
    Fpm,
    /// PHP's own `error_log` file: `[30-Nov-2026 12:53:58 UTC] PHP Warning:  …`.
    Php,
    /// Recognised from the log itself: per file from its first lines ([`entries::read`]), per line in [`parse`].
    Auto,
}

impl ErrorFormat {
    /// The names the CLI and the config accept.
    pub const NAMES: &'static str = "auto, apache, nginx, fpm or php";

    pub fn parse_name(s: &str) -> Option<ErrorFormat> {
        match s {
            "apache" => Some(ErrorFormat::Apache),
            "nginx" => Some(ErrorFormat::Nginx),
            "fpm" | "php-fpm" => Some(ErrorFormat::Fpm),
            "php" => Some(ErrorFormat::Php),
            "auto" => Some(ErrorFormat::Auto),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorFormat::Apache => "apache",
            ErrorFormat::Nginx => "nginx",
            ErrorFormat::Fpm => "fpm",
            ErrorFormat::Php => "php",
            ErrorFormat::Auto => "auto",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorRecord<'a> {
    /// Unix milliseconds, UTC (nginx writes local time; it is read as UTC).
    pub time_ms: Option<i64>,
    /// `php`, `core`, `authz_core`, ... (Apache only).
    pub module: &'a str,
    pub level: &'a str,
    pub pid: Option<u32>,
    pub tid: Option<u64>,
    /// Client address without the port.
    pub client: &'a str,
    /// Apache's message code, e.g. `AH00035`.
    pub code: &'a str,
    pub message: &'a str,
    /// Absolute file paths named in the message, in order, without duplicates.
    pub paths: Vec<&'a str>,
}

/// Parses one error-log line; `None` when it is not in the format (counted as malformed by callers). `Auto`
/// tries each format in turn. A multi-line entry parses too (its message keeps the newlines).
pub fn parse(format: ErrorFormat, line: &str) -> Option<ErrorRecord<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    match format {
        ErrorFormat::Apache => parse_apache(line),
        ErrorFormat::Nginx => parse_nginx(line),
        ErrorFormat::Fpm => php::parse_fpm(line),
        ErrorFormat::Php => php::parse_php(line),
        ErrorFormat::Auto => parse_apache(line)
            .or_else(|| parse_nginx(line))
            .or_else(|| php::parse_fpm(line))
            .or_else(|| php::parse_php(line)),
    }
}

fn parse_apache(line: &str) -> Option<ErrorRecord<'_>> {
    let mut rec = ErrorRecord::default();
    let mut rest = line;
    let mut index = 0;
    while let Some(inner_start) = rest.strip_prefix('[') {
        let close = inner_start.find(']')?;
        let group = &inner_start[..close];
        match index {
            0 => rec.time_ms = Some(parse_apache_error(group)?),
            1 => match group.split_once(':') {
                Some((module, level)) => {
                    rec.module = module;
                    rec.level = level;
                }
                None => rec.level = group,
            },
            _ => {
                if let Some(p) = group.strip_prefix("pid ") {
                    let (pid, tid) = p.split_once(":tid ").unwrap_or((p, ""));
                    rec.pid = pid.parse().ok();
                    rec.tid = tid.parse().ok();
                } else if let Some(c) = group.strip_prefix("client ") {
                    rec.client = strip_port(c);
                }
            }
        }
        index += 1;
        rest = inner_start[close + 1..].trim_start_matches(' ');
    }
    if index < 2 {
        return None;
    }
    set_message(&mut rec, rest);
    // With an OS error, Apache's default ErrorLogFormat puts it before the client: `(70007)The timeout specified
    // has expired: [client 127.0.0.1:47886] AH01075: …`. The message keeps the error (it says what went wrong).
    if rest.starts_with('(')
        && let Some((_, after)) = rest.split_once(": [client ")
        && let Some((client, tail)) = after.split_once("] ")
    {
        rec.client = strip_port(client);
        if let Some((code, _)) = tail.split_once(": ")
            && is_ah_code(code)
        {
            rec.code = code;
        }
    }
    Some(rec)
}

/// `AH01075`: Apache's message codes.
fn is_ah_code(code: &str) -> bool {
    code.len() == 7 && code.starts_with("AH") && code[2..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_nginx(line: &str) -> Option<ErrorRecord<'_>> {
    let mut rec =
        ErrorRecord { time_ms: Some(parse_nginx_error(line.get(..19)?.as_bytes())? * 1000), ..Default::default() };
    let rest = line.get(19..)?.trim_start();
    let rest = rest.strip_prefix('[')?;
    let close = rest.find(']')?;
    rec.level = &rest[..close];
    let rest = rest[close + 1..].trim_start();
    let (ids, rest) = rest.split_once(": ")?;
    let (pid, tid) = ids.split_once('#').unwrap_or((ids, ""));
    rec.pid = pid.parse().ok();
    rec.tid = tid.parse().ok();
    // "*5 " is the connection number.
    let rest = match rest.strip_prefix('*') {
        Some(r) => r.split_once(' ').map_or(r, |(_, m)| m),
        None => rest,
    };
    // The last `, client: `: the context nginx appends comes last, and a PHP message before it may say anything.
    let (message, context) = rest.rsplit_once(", client: ").unwrap_or((rest, ""));
    rec.client = context.split(',').next().unwrap_or("").trim();
    set_message(&mut rec, message);
    Some(rec)
}

fn set_message<'a>(rec: &mut ErrorRecord<'a>, message: &'a str) {
    let message = message.trim();
    if let Some((code, _)) = message.split_once(": ")
        && is_ah_code(code)
    {
        rec.code = code;
    }
    rec.message = message;
    rec.paths = paths_in(message);
}

fn strip_port(addr: &str) -> &str {
    // 127.0.0.1:42820 → 127.0.0.1; [::1]:42820 or ::1:42820 → ::1 (Apache writes IPv6 without brackets).
    let addr = addr.trim();
    if let Some(inner) = addr.strip_prefix('[') {
        return inner.split(']').next().unwrap_or(inner);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() => host,
        _ => addr,
    }
}

/// Linux's longest path: no path a message names is longer.
const PATH_MAX: usize = 4096;

/// Absolute paths a message names: quoted ('/x', "/x"), in parentheses (`require_once(/x)`), after ` in `
/// (PHP's `in /x.php on line 2`, `in /x.php:2`) and after `File does not exist: `.
pub fn paths_in<'a>(message: &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    let bytes = message.as_bytes();
    let add = |start: usize, end: usize, out: &mut Vec<&'a str>| {
        if let Some(p) = message.get(start..end) {
            let p = p.trim_end_matches(['.', ',', ';']);
            if p.len() > 1 && p.starts_with('/') && !p.contains(char::is_whitespace) && !out.contains(&p) {
                out.push(p);
            }
        }
    };
    // The closing quote or parenthesis is looked for within PATH_MAX only, so a huge line full of `(/` stays linear.
    let closing = |from: usize, c: u8| {
        let window = bytes.get(from..(from + PATH_MAX).min(bytes.len()))?;
        window.iter().position(|&b| b == c)
    };
    for (i, &b) in bytes.iter().enumerate() {
        let next_is_slash = bytes.get(i + 1) == Some(&b'/');
        match b {
            b'\'' | b'"' if next_is_slash => {
                if let Some(len) = closing(i + 1, b) {
                    add(i + 1, i + 1 + len, &mut out);
                }
            }
            b'(' if next_is_slash => {
                if let Some(len) = closing(i + 1, b')') {
                    add(i + 1, i + 1 + len, &mut out);
                }
            }
            _ => {}
        }
    }
    for marker in [" in /", "File does not exist: /", "script '/"] {
        let mut from = 0;
        while let Some(pos) = message[from..].find(marker) {
            let start = from + pos + marker.len() - 1;
            let end = message[start..]
                .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                .map_or(message.len(), |e| start + e);
            // `in /x.php:2` → drop the line number.
            let path = &message[start..end];
            let path_end = match path.rsplit_once(':') {
                Some((p, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => start + p.len(),
                _ => end,
            };
            add(start, path_end, &mut out);
            from = end.max(from + pos + 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_php_fatal_error() {
        let line = "[Wed Nov 25 14:36:22.477068 2026] [php:error] [pid 10643:tid 10643] [client 127.0.0.1:42820] PHP Fatal error:  Uncaught Error: Failed opening required '/var/www/html/inc/settings.phpp' (include_path='.:/usr/share/php') in /var/www/html/index.php:3";
        insta::assert_debug_snapshot!(parse(ErrorFormat::Apache, line));
    }

    #[test]
    fn apache_php_warning_names_both_files() {
        let line = "[Wed Nov 25 14:36:22.477000 2026] [php:warn] [pid 10643] [client 127.0.0.1:42820] PHP Warning:  require_once(/var/www/html/inc/settings.phpp): Failed to open stream: No such file or directory in /var/www/html/index.php on line 3";
        let r = parse(ErrorFormat::Apache, line).unwrap();
        assert_eq!(r.paths, vec!["/var/www/html/inc/settings.phpp", "/var/www/html/index.php"]);
        assert_eq!((r.pid, r.tid), (Some(10643), None));
        assert_eq!(r.level, "warn");
    }

    #[test]
    fn apache_core_codes_and_ipv6_clients() {
        let line = "[Wed Nov 25 14:36:22.1 2026] [core:error] [pid 7:tid 140000] [client ::1:5555] AH00035: access to /index.php denied (filesystem path '/srv/www/index.php') because search permissions are missing on a component of the path";
        let r = parse(ErrorFormat::Apache, line).unwrap();
        assert_eq!(r.code, "AH00035");
        assert_eq!(r.client, "::1");
        assert_eq!(r.module, "core");
        assert_eq!(r.paths, vec!["/srv/www/index.php"]);
        let startup = "[Wed Nov 25 14:36:22.000001 2026] [mpm_prefork:notice] [pid 1] AH00163: Apache/2.4.62 (Debian) configured -- resuming normal operations";
        let r = parse(ErrorFormat::Apache, startup).unwrap();
        assert_eq!((r.code, r.client, r.paths.len()), ("AH00163", "", 0));
    }

    #[test]
    fn apache_os_errors_come_before_the_client() {
        let line = "[Mon Nov 30 21:22:14.776088 2026] [proxy_fcgi:error] [pid 13662:tid 13717] (70007)The timeout specified has expired: [client 127.0.0.1:47886] AH01075: Error dispatching request to : (polling)";
        let r = parse(ErrorFormat::Apache, line).unwrap();
        assert_eq!((r.client, r.code, r.module), ("127.0.0.1", "AH01075", "proxy_fcgi"));
        assert_eq!(
            r.message,
            "(70007)The timeout specified has expired: [client 127.0.0.1:47886] AH01075: Error dispatching request to : (polling)"
        );
        let no_client = "[Mon Nov 30 21:21:15.110553 2026] [proxy:error] [pid 13660:tid 13715] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /x.sock (localhost:8000) failed";
        let r = parse(ErrorFormat::Apache, no_client).unwrap();
        assert_eq!((r.client, r.code), ("", ""));
    }

    #[test]
    fn nginx_open_failed() {
        let line = r#"2026/11/25 14:36:22 [error] 1234#1234: *5 open() "/var/www/html/favicon.ico" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /favicon.ico HTTP/1.1", host: "localhost""#;
        insta::assert_debug_snapshot!(parse(ErrorFormat::Nginx, line));
    }

    #[test]
    fn not_error_log_lines() {
        assert_eq!(parse(ErrorFormat::Apache, "hello"), None);
        assert_eq!(parse(ErrorFormat::Apache, "[not a time] [x] y"), None);
        assert_eq!(parse(ErrorFormat::Nginx, "2026/11/25"), None);
        assert_eq!(parse(ErrorFormat::Nginx, "[Wed Nov 25 14:36:22 2026] [php:error] x"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(line in ".{0,200}") {
                let _ = parse(ErrorFormat::Apache, &line);
                let _ = parse(ErrorFormat::Nginx, &line);
                let _ = paths_in(&line);
            }
        }
    }
}
