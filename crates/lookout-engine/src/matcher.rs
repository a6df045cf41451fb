//! Label matchers, as Alertmanager writes them: `severity="critical"`, `group=~"shop|api"`, `team!=web`,
//! `target!~"canary-.*"`. Routes, silences and maintenance windows select alerts with them; an alert is
//! selected when every matcher of the list matches. Regexes are anchored (the whole value must match), and a
//! label an alert does not have has the empty value.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    NotEq,
    Re,
    NotRe,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::NotEq => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct MatcherError(pub String);

impl Matcher {
    /// Parses `name OP value`; the value may be double-quoted (with `\"` and `\\` escapes).
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let t = text.trim();
        let ops = [("=~", MatchOp::Re), ("!~", MatchOp::NotRe), ("!=", MatchOp::NotEq), ("=", MatchOp::Eq)];
        let found = t
            .char_indices()
            .find_map(|(i, _)| ops.iter().find(|(s, _)| t[i..].starts_with(s)).map(|(s, op)| (i, s.len(), *op)));
        let Some((at, len, op)) = found else {
            return Err(MatcherError(format!(
                "matcher {text:?} has no operator: write name=value, name!=value, name=~regex or name!~regex"
            )));
        };
        let name = t[..at].trim();
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(MatcherError(format!("matcher {text:?}: {name:?} is not a label name")));
        }
        let raw = t[at + len..].trim();
        let value = unquote(raw).ok_or_else(|| MatcherError(format!("matcher {text:?}: unterminated quote")))?;
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| MatcherError(format!("matcher {text:?}: invalid regex: {e}")))?,
            ),
            _ => None,
        };
        Ok(Matcher { name: name.to_string(), op, value, regex })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::NotEq, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::NotRe, Some(r)) => !r.is_match(v),
            _ => false,
        }
    }
}

/// Whether every matcher matches (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

fn unquote(raw: &str) -> Option<String> {
    let Some(inner) = raw.strip_prefix('"') else { return Some(raw.to_string()) };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn operators_quotes_and_anchoring() {
        let l = labels(&[("target", "web-1"), ("severity", "critical"), ("team", "shop floor")]);
        for (text, expected) in [
            ("severity=critical", true),
            ("severity=\"critical\"", true),
            ("severity!=critical", false),
            ("target=~\"web-.*\"", true),
            ("target=~web", false),
            ("target!~\"db|cache\"", true),
            ("team=\"shop floor\"", true),
            ("missing=\"\"", true),
            ("missing!=\"\"", false),
        ] {
            assert_eq!(Matcher::parse(text).unwrap().matches(&l), expected, "{text}");
        }
        assert_eq!(Matcher::parse(" team = \"a\\\"b\" ").unwrap().value, "a\"b");
        assert_eq!(Matcher::parse("group=~\"shop|api\"").unwrap().to_string(), "group=~\"shop|api\"");
    }

    #[test]
    fn bad_matchers_say_why() {
        assert_eq!(
            Matcher::parse("severity").unwrap_err().0,
            "matcher \"severity\" has no operator: write name=value, name!=value, name=~regex or name!~regex"
        );
        assert_eq!(Matcher::parse("1x=a").unwrap_err().0, "matcher \"1x=a\": \"1x\" is not a label name");
        assert!(Matcher::parse("t=~\"(\"").unwrap_err().0.starts_with("matcher \"t=~\\\"(\\\"\": invalid regex"));
        assert_eq!(Matcher::parse("t=\"open").unwrap_err().0, "matcher \"t=\\\"open\": unterminated quote");
    }
}
