//! Config errors that point at a file and line and say what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "{}: cannot read config: {message}; pass the right file with --config, write one for this machine's web servers with `lookout init`, or start one from lookout.example.toml (the source tree's top: every option, its default and what it does)",
        path.display()
    )]
    Io { path: PathBuf, message: String },
    /// The file is wrong at a place.
    #[error("{}", Located { path, line: *line, message })]
    At { path: PathBuf, line: usize, message: String },
    /// An environment variable that overrides the file is wrong.
    #[error("{message}")]
    Env { message: String },
}

struct Located<'a> {
    path: &'a Path,
    line: usize,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl ConfigError {
    pub(crate) fn at(path: &Path, text: &str, offset: usize, message: String) -> ConfigError {
        ConfigError::At { path: path.to_path_buf(), line: line_of(text, offset), message }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::At { line, .. } => Some(*line),
            ConfigError::Io { .. } | ConfigError::Env { .. } => None,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// Turns a TOML/serde error into a located message with the section and key spelled out.
pub(crate) fn from_toml(e: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start);
    let section = section_at(text, offset);
    let key = key_at(text, offset);
    let raw = e.message().trim().to_string();
    let message = if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = allowed
            .iter()
            .map(|a| (strsim::damerau_levenshtein(field, a), *a))
            .filter(|(d, a)| *d <= 2.max(a.len() / 3))
            .min_by_key(|(d, _)| *d)
            .map(|(_, a)| format!(" (did you mean {a:?}?)"))
            .unwrap_or_else(|| {
                if allowed.is_empty() { String::new() } else { format!("; known keys: {}", allowed.join(", ")) }
            });
        format!("unknown key {field:?} in {section}{hint}")
    } else if let Some(rest) = raw.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        format!("missing key {field:?} in {section}: add {field} = ...")
    } else if let Some(key) = key {
        format!("invalid value for {key:?} in {section}: {raw}")
    } else {
        raw
    };
    ConfigError::at(path, text, offset, message)
}

/// Describes the table that contains `offset`: `[[target]] "site"`, `[[target]] #2`, `[store]`, or
/// `the top level`.
fn section_at(text: &str, offset: usize) -> String {
    // Include the line at `offset` itself: serde points missing-key errors at the table header.
    let line_end = text[offset.min(text.len())..].find('\n').map_or(text.len(), |i| offset + i);
    let before = &text[..line_end];
    let mut header: Option<(&str, usize)> = None;
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut pos = 0;
    for line in before.split_inclusive('\n') {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let c = counts.entry(name.trim()).or_insert(0);
            *c += 1;
            header = Some((name.trim(), pos));
        } else if t.starts_with('[') {
            let name = t.trim_start_matches('[').split(']').next().unwrap_or("");
            header = Some((name.trim(), usize::MAX));
        }
        pos += line.len();
    }
    match header {
        None => "the top level".to_string(),
        Some((name, usize::MAX)) => format!("[{name}]"),
        Some((name, start)) => {
            let body_end = text[start..]
                .split_inclusive('\n')
                .skip(1)
                .take_while(|l| !l.trim_start().starts_with('['))
                .map(str::len)
                .sum::<usize>();
            let first = text[start..].find('\n').map_or(text.len(), |i| start + i + 1);
            let body = &text[first.min(text.len())..(first + body_end).min(text.len())];
            match table_name(body) {
                Some(n) => format!("[[{name}]] {n:?}"),
                None => format!("[[{name}]] #{}", counts.get(name).copied().unwrap_or(1)),
            }
        }
    }
}

fn table_name(body: &str) -> Option<String> {
    body.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        if k.trim() != "name" {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"')?;
        Some(v.split('"').next()?.to_string())
    })
}

/// The key on the line at `offset`, when that line is `key = value`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[') && !k.contains(' ')).then(|| k.to_string())
}
