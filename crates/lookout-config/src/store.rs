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
    /// How long probe results are kept.
    pub retention: Duration,
}

/// Which store, and where. `lookout_store::open` turns it into a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// The embedded default: one SQLite database file (relative paths are relative to the config file).
    Sqlite { path: PathBuf },
}

impl StoreConfig {
    /// The SQLite default next to the config file: `lookout.sqlite`.
    pub fn sqlite(path: PathBuf) -> StoreConfig {
        StoreConfig { backend: StoreBackend::Sqlite { path }, retention: DEFAULT_RETENTION }
    }
}

impl std::fmt::Display for StoreBackend {
    /// For logs and messages: never prints a credential (a future URL's password stays out).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreBackend::Sqlite { path } => write!(f, "sqlite:{}", path.display()),
        }
    }
}

const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86400);

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
    Ok(StoreConfig { backend, retention: raw.retention.map_or(DEFAULT_RETENTION, |d| d.0) })
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
        Some("postgres" | "postgresql") => Err(format!(
            "{what} in [store] is a PostgreSQL URL, and this build of lookout stores only in SQLite; use path = \"lookout.sqlite\""
        )),
        _ => Err(format!("{what} in [store] is not a store URL: write sqlite:PATH (or path = \"lookout.sqlite\")")),
    }
}
