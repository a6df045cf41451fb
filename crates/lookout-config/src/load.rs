//! Reading `lookout.toml`: loading and parsing the file, then validating it as a whole — every section in turn,
//! names unique per table, and the references between sections.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{self, ConfigError};
use crate::log_source::validate_log;
use crate::raw::RawConfig;
use crate::target::validate_target;
use crate::web::web_config;
use crate::{At, Config, EnvLookup, agent, notify, policy, store};

impl Config {
    /// Reads and validates a config file, resolving environment variables from the process.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        Config::parse(&text, path, &|k| std::env::var(k).ok())
    }

    /// Reads a config for commands that read the store and never send (`incidents`, `postmortem`): secrets named
    /// by `url_env` need not be set, and no notifier may be built from the result. The store's `url_env` is read
    /// for real: these commands need the store.
    pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        parse(&text, path, &|_| Some("http://secret.invalid/".into()), &|k| std::env::var(k).ok())
    }

    /// Parses and validates config text; `path` is used for messages and for resolving relative paths.
    pub fn parse(text: &str, path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        parse(text, path, env, env)
    }
}

/// `env` resolves secrets (channels, tokens); `store_env` the store's `url_env`, which every command needs.
fn parse(text: &str, path: &Path, env: EnvLookup<'_>, store_env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| error::from_toml(&e, text, path))?;
    validate(raw, text, path, env, store_env)
}

fn validate(
    raw: RawConfig,
    text: &str,
    path: &Path,
    env: EnvLookup<'_>,
    store_env: EnvLookup<'_>,
) -> Result<Config, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String| ConfigError::at(path, text, span.start, message);
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();

    let store = store::validate(raw.store.unwrap_or_default(), &base_dir, store_env, &at)?;
    let agent = agent::validate(raw.agent.unwrap_or_default(), store_env, &at)?;

    let mut names = HashSet::new();
    let mut targets = Vec::new();
    let mut depends_spans = Vec::new();
    let target_metrics = raw.web.as_ref().and_then(|w| w.target_metrics).unwrap_or(true);
    for t in raw.target {
        check_name(&t.name, "target", &mut names, &at)?;
        let section = format!("[[target]] {:?}", t.name.get_ref());
        depends_spans.push(t.depends_on.as_ref().map_or(t.name.span(), |d| d.span()));
        let own_metrics = t.metrics;
        let mut target = validate_target(t, &section, &base_dir, &at)?;
        target.metrics = own_metrics.unwrap_or(target_metrics);
        targets.push(target);
    }

    // Status pages are targets of their own kind: one namespace with them.
    for s in raw.status {
        check_name(&s.name, "status", &mut names, &at)?;
        let span = s.depends_on.as_ref().map_or(s.name.span(), |d| d.span());
        let (own_metrics, name_span) = (s.metrics, s.name.span());
        let base = s.name.get_ref().clone();
        for mut target in crate::status::validate_status(s, &at)? {
            // A default level's name (`web-critical`) is taken like any other.
            if target.name != base && (!valid_name(&target.name) || !names.insert(target.name.clone())) {
                return Err(at(
                    name_span.clone(),
                    format!(
                        "[[status]] {base:?} alerts as {:?} too (a default level), a name another section has or too long: rename one",
                        target.name
                    ),
                ));
            }
            target.metrics = own_metrics.unwrap_or(target_metrics);
            depends_spans.push(span.clone());
            targets.push(target);
        }
    }

    for p in raw.process {
        check_name(&p.name, "process", &mut names, &at)?;
        depends_spans.push(p.name.span());
        targets.push(crate::host::validate_process(p, &at)?);
    }
    let host = match raw.host {
        Some(h) => crate::host::validate_host(h, &at)?,
        None => crate::HostConfig::default(),
    };

    let mut logs = Vec::new();
    for l in raw.log {
        check_name(&l.name, "log", &mut names, &at)?;
        let span = l.name.span();
        for level in validate_log(l, &base_dir, &at)? {
            if level.follows.is_some() && !names.insert(level.name.clone()) {
                let why =
                    "names must be unique (a [[log]]'s warning level is NAME-warning; set warn_when = [] to have none)";
                return Err(at(span, format!("duplicate log name {:?}: {why}", level.name)));
            }
            logs.push(level);
        }
    }

    let mut notify = Vec::new();
    let mut notify_names = HashSet::new();
    for n in raw.notify {
        check_name(&n.name, "notify", &mut notify_names, &at)?;
        notify.push(notify::validate(n, env, &base_dir, &at)?);
    }

    let routes = raw.route.into_iter().map(|r| policy::route(r, &notify, &at)).collect::<Result<Vec<_>, _>>()?;
    let mut maintenance = Vec::new();
    let mut window_names = HashSet::new();
    for m in raw.maintenance {
        check_name(&m.name, "maintenance", &mut window_names, &at)?;
        maintenance.push(policy::maintenance(m, &at)?);
    }
    policy::check_dependencies(&targets, &depends_spans, &logs, &at)?;

    let web = web_config(raw.web.unwrap_or_default(), env, store_env, &at)?;
    Ok(Config {
        source: path.to_path_buf(),
        store,
        agent,
        web,
        targets,
        host,
        notify,
        logs,
        routes,
        maintenance,
        processes: Vec::new(),
    })
}

/// Names are identifiers in messages, keys and URLs (`/api/v1/targets/NAME/results`): restricted characters,
/// unique per table kind.
fn check_name(
    name: &toml::Spanned<String>,
    table: &str,
    seen: &mut HashSet<String>,
    at: &At<'_>,
) -> Result<(), ConfigError> {
    let n = name.get_ref();
    if !valid_name(n) {
        return Err(at(
            name.span(),
            format!("invalid name {n:?} in [[{table}]]: use letters, digits, '-', '_' or '.' (at most 64)"),
        ));
    }
    if !seen.insert(n.clone()) {
        return Err(at(name.span(), format!("duplicate {table} name {n:?}: names must be unique")));
    }
    Ok(())
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
