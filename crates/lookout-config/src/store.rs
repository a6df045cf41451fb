//! `[store]`: where lookout keeps its record. A file path is the zero-setup default (SQLite); `url` or `url_env`
//! name a backend by URL, so the store is chosen at start-up and every command opens the same one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::raw::RawStore;
use crate::{At, EnvLookup};

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// How long failing probe results (with the success after each run of them) and the 5-minute aggregates are
    /// kept; the hourly aggregates are kept this long or [`HOURLY_RETENTION_MIN`], whichever is longer.
    pub retention: Duration,
    /// How long every probe result is kept raw (`raw_retention`, default 24 h); older ones are rolled up.
    pub raw_retention: Duration,
}

/// The hourly aggregates outlive `retention` to this at least: the status page shows 90 days of uptime.
pub const HOURLY_RETENTION_MIN: Duration = Duration::from_secs(90 * 86400);

/// Which store, and where. `lookout_store::open` turns it into a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// The embedded default: one SQLite database file (relative paths are relative to the config file).
    Sqlite { path: PathBuf },
    /// A PostgreSQL server shared by several agents: a libpq-style URL (`postgresql://user@host:port/db?…`),
    /// parsed in full by the store when it connects. It may carry a password: print it with `Display` only.
    Postgres { url: String },
}

impl StoreConfig {
    /// The SQLite default next to the config file: `lookout.sqlite`.
    pub fn sqlite(path: PathBuf) -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::Sqlite { path },
            retention: DEFAULT_RETENTION,
            raw_retention: DEFAULT_RAW_RETENTION,
        }
    }
}

impl std::fmt::Display for StoreBackend {
    /// For logs and messages: never prints a credential (a future URL's password stays out).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
            StoreBackend::Postgres { url } => f.write_str(&redact_url(url)),
        }
    }
}

const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86400);
/// Two days raw: yesterday's and today's charts, impacts and postmortems read every result; the arithmetic behind
/// it is in ARCHITECTURE.md, "Storage budget".
/// A day: what "yesterday at this time" needs raw; older checks are answered from the 5-minute aggregates (and
/// every failure stays raw for `retention`), and a day keeps 90 days at 10,000 targets under 5 GB.
const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(86400);

pub(crate) fn validate(
    raw: RawStore,
    base_dir: &Path,
    env: EnvLookup<'_>,
    at: &At<'_>,
) -> Result<StoreConfig, ConfigError> {
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    let backend = match (&raw.path, &raw.url, &raw.url_env) {
        (None, None, None) => StoreBackend::Sqlite { path: resolve(PathBuf::from("lookout.sqlite")) },
        (Some(p), None, None) => {
            if p.get_ref().trim().is_empty() {
                return Err(at(
                    p.span(),
                    "path in [store] is empty: name the SQLite file, e.g. \"lookout.sqlite\"".into(),
                ));
            }
            StoreBackend::Sqlite { path: resolve(PathBuf::from(p.get_ref())) }
        }
        (None, Some(u), None) => from_url(u.get_ref(), "url", &resolve).map_err(|m| at(u.span(), m))?,
        (None, None, Some(var)) => {
            let value = env(var.get_ref()).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                at(
                    var.span(),
                    format!(
                        "environment variable {:?} named by url_env in [store] is not set; export the store's URL (e.g. sqlite:/var/lib/lookout/lookout.sqlite) before starting lookout",
                        var.get_ref()
                    ),
                )
            })?;
            let what = format!("the URL in ${}", var.get_ref());
            from_url(value.trim(), &what, &resolve).map_err(|m| at(var.span(), m))?
        }
        _ => {
            let span =
                [&raw.url_env, &raw.url, &raw.path].into_iter().flatten().map(|s| s.span()).max_by_key(|s| s.start);
            return Err(at(
                span.unwrap_or(0..0),
                "[store] sets more than one of path, url and url_env: keep one".into(),
            ));
        }
    };
    let retention = raw.retention.map_or(DEFAULT_RETENTION, |d| d.0);
    let raw_retention = match &raw.raw_retention {
        None => DEFAULT_RAW_RETENTION.min(retention),
        Some(d) if d.get_ref().0 < Duration::from_secs(3600) => {
            return Err(at(
                d.span(),
                "raw_retention in [store] is shorter than 1h: raw results are rolled up by the hour; write e.g. \"48h\""
                    .into(),
            ));
        }
        Some(d) if d.get_ref().0 > retention => {
            return Err(at(
                d.span(),
                format!(
                    "raw_retention in [store] is longer than retention ({}): every result would be deleted before it \
                     could be rolled up; make raw_retention at most retention",
                    lookout_core::format_duration(retention)
                ),
            ));
        }
        Some(d) => d.get_ref().0,
    };
    Ok(StoreConfig { backend, retention, raw_retention })
}

/// `sqlite:PATH`, `sqlite://PATH` (relative) or `sqlite:///ABSOLUTE`. The URL is never echoed: it may carry a
/// password.
fn from_url(url: &str, what: &str, resolve: &dyn Fn(PathBuf) -> PathBuf) -> Result<StoreBackend, String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => {
            let rest = &url["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.contains('?') {
                return Err(format!(
                    "{what} in [store] names no SQLite file: write e.g. sqlite:lookout.sqlite or sqlite:///var/lib/lookout/lookout.sqlite (no query options)"
                ));
            }
            Ok(StoreBackend::Sqlite { path: resolve(PathBuf::from(path)) })
        }
        Some("postgres" | "postgresql") => {
            let rest = url.split_once("://").map(|(_, r)| r);
            if rest.is_none_or(|r| {
                r.split(['/', '?'])
                    .next()
                    .is_none_or(|authority| authority.rsplit('@').next().is_none_or(str::is_empty))
            }) {
                return Err(format!(
                    "{what} in [store] names no PostgreSQL server: write e.g. postgresql://lookout@db.example:5432/lookout (the password in PGPASSWORD or url_env)"
                ));
            }
            Ok(StoreBackend::Postgres { url: url.to_string() })
        }
        _ => Err(format!(
            "{what} in [store] is not a store URL: write sqlite:PATH (or path = \"lookout.sqlite\") or postgresql://USER@HOST/DB"
        )),
    }
}

/// A store URL fit for logs: the password (in the authority or a `password=` option) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(n) => rest.split_at(n),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let options: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", options.join("&"))
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() { format!("{authority}{tail}") } else { format!("{scheme}://{authority}{tail}") }
}
