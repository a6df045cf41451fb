//! What one message says went wrong with which file (or socket, or pool): the messages of PHP, Apache, nginx and
//! PHP-FPM, one at a time, after [`lookout_logs::error_log::entries`] has split them apart.

use std::path::PathBuf;

use lookout_logs::error_log::{self, Entry};
use serde::Serialize;

use super::Cause;

/// What a finding adds beyond cause and path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// PHP refused by `open_basedir`: the directories it allows.
    OpenBasedir { allowed: Vec<String> },
    /// The backend the web server could not reach: `unix:/run/php/php8.2-fpm.sock` or `127.0.0.1:9000`, why
    /// (`connection refused`, `the socket does not exist`), and what serves it (`php8.2-fpm`, when the socket's
    /// name says).
    Backend { address: String, reason: String, service: Option<String>, php: bool },
    /// An FPM pool at its `pm.max_children`.
    Saturation { pool: String, max_children: Option<u32> },
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Classified {
    pub cause: Cause,
    pub path: PathBuf,
    pub needed_by: Option<String>,
    pub detail: Option<Detail>,
}

/// Classifies one message of `entry`.
pub(super) fn classify(message: &str, entry: &Entry) -> Option<Classified> {
    if let Some(c) = backend(message, entry) {
        return Some(c);
    }
    if let Some(c) = saturation(message, entry) {
        return Some(c);
    }
    // The first line says what failed; `Stack trace:` lines after it only repeat where.
    let first = message.lines().next().unwrap_or("");
    let paths = error_log::paths_in(first);
    let needed_by = first
        .rsplit_once(" in /")
        .map(|(_, rest)| format!("/{}", rest.trim().trim_end_matches('.')))
        .map(|s| s.replace(" on line ", ":"));
    let plain = |cause, path: &str, needed_by: Option<String>| {
        let needed_by = needed_by.filter(|n| !n.starts_with(path));
        Some(Classified { cause, path: PathBuf::from(path), needed_by, detail: None })
    };
    if first.contains("PHP Parse error") {
        let script = needed_by.as_deref()?.rsplit_once(':').map_or(needed_by.clone()?, |(p, _)| p.to_string());
        return Some(Classified { cause: Cause::ParseError, path: PathBuf::from(script), needed_by, detail: None });
    }
    if let Some((_, rest)) = first.split_once("open_basedir restriction in effect. File(") {
        let (file, rest) = rest.split_once(") is not within the allowed path(s): (")?;
        let allowed = rest.split_once(')').map_or(rest, |(a, _)| a);
        let allowed = allowed.split(':').filter(|a| !a.is_empty()).map(str::to_string).take(32).collect();
        let needed_by = needed_by.filter(|n| !n.starts_with(file));
        return Some(Classified {
            cause: Cause::Unreadable,
            path: PathBuf::from(file),
            needed_by,
            detail: Some(Detail::OpenBasedir { allowed }),
        });
    }
    let missing = first.contains("No such file or directory")
        || first.contains("Failed opening required")
        || first.contains("File does not exist");
    let denied = first.contains("Permission denied")
        || first.contains("permissions are missing")
        || first.contains("Operation not permitted");
    let cause = match (missing, denied) {
        (_, true) => Cause::Unreadable,
        (true, false) => Cause::Missing,
        _ => return None,
    };
    // The first path is the one that failed; a later `in /x.php` is the script that asked for it.
    plain(cause, paths.first()?, needed_by)
}

/// nginx: `connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to
/// upstream`; Apache: `(111)Connection refused: AH02454: FCGI: attempt to connect to Unix domain socket /x.sock
/// (localhost:8000) failed` (or `AH00957: FCGI: attempt to connect to 127.0.0.1:9000 (…) failed`).
fn backend(message: &str, entry: &Entry) -> Option<Classified> {
    let (address, errno, reason) = if let Some(rest) = message.strip_prefix("connect() to ") {
        if !message.contains("while connecting to upstream") {
            return None;
        }
        let (address, rest) = rest.split_once(" failed (")?;
        let (errno, reason) = rest.split_once(')').map_or(rest, |(e, _)| e).split_once(": ")?;
        (address.to_string(), errno.to_string(), reason.to_string())
    } else if let Some((before, rest)) = message.split_once("FCGI: attempt to connect to ") {
        let rest = rest.strip_suffix(" failed")?;
        let address = match rest.strip_prefix("Unix domain socket ") {
            Some(socket) => format!("unix:{}", socket.split_once(" (").map_or(socket, |(s, _)| s)),
            None => rest.split_once(" (").map_or(rest, |(a, _)| a).to_string(),
        };
        // `(111)Connection refused: AH…`
        let (errno, reason) = before.strip_prefix('(')?.split_once(')')?;
        let reason = reason.split_once(": ").map_or(reason, |(r, _)| r);
        (address, errno.to_string(), reason.to_string())
    } else {
        return None;
    };
    let socket = address.strip_prefix("unix:").map(str::to_string);
    // Where nginx or Apache may not connect, the socket's owner or mode is the cause, not the backend.
    if errno == "13" {
        return Some(Classified {
            cause: Cause::Unreadable,
            path: PathBuf::from(socket.unwrap_or(address)),
            needed_by: None,
            detail: None,
        });
    }
    let reason = match errno.as_str() {
        "111" => "connection refused".to_string(),
        "2" => "the socket does not exist".to_string(),
        _ => reason.to_lowercase(),
    };
    let name = socket.as_deref().and_then(|s| s.rsplit('/').next()).and_then(|n| n.strip_suffix(".sock"));
    let service = name.filter(|n| n.starts_with("php")).map(str::to_string);
    let php = entry.upstream.starts_with("fastcgi://")
        || message.contains("FCGI:")
        || address.contains("php")
        || address.contains("fpm");
    let path = PathBuf::from(socket.unwrap_or_else(|| address.clone()));
    Some(Classified {
        cause: Cause::BackendDown,
        path,
        needed_by: None,
        detail: Some(Detail::Backend { address, reason, service, php }),
    })
}

/// FPM: `[pool www] server reached pm.max_children setting (5), consider raising it` (the pool is the entry's
/// module).
fn saturation(message: &str, entry: &Entry) -> Option<Classified> {
    let (_, rest) = message
        .split_once("server reached pm.max_children setting (")
        .or_else(|| message.split_once("server reached max_children setting ("))?;
    let max_children = rest.split_once(')').and_then(|(n, _)| n.parse().ok());
    let pool = if entry.module.is_empty() { "?".to_string() } else { entry.module.clone() };
    Some(Classified {
        cause: Cause::Saturated,
        path: PathBuf::from(format!("pool {pool}")),
        needed_by: None,
        detail: Some(Detail::Saturation { pool, max_children }),
    })
}
