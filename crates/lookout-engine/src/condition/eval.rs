//! Evaluating a parsed [`Condition`] against a probe's observation or a log window, describing the values seen.

use lookout_core::Observation;

use super::parse::find_operator;
use super::{Condition, Literal, LogView, Op, Operand, PathSeg, Placeholder};

/// What a condition is evaluated against.
#[derive(Clone, Copy)]
pub(super) enum Subject<'a> {
    Probe(&'a Observation),
    Log(&'a LogView),
}

/// A value obtained while evaluating.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Num(f64),
    Str(String),
    Bool(bool),
    /// A fraction shown as a percentage.
    Ratio(f64),
    /// Milliseconds shown as a duration.
    Millis(f64),
    Null,
    /// A JSON array or object (kept as JSON for `len` and display).
    Json(serde_json::Value),
    /// Could not be obtained; `why` says what was missing.
    Missing(&'static str),
}

impl Value {
    fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Missing("number out of range"), Value::Num),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            other => Value::Json(other.clone()),
        }
    }

    fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) | Value::Ratio(n) | Value::Millis(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_text(&self) -> String {
        match self {
            Value::Num(n) => format_number(*n),
            Value::Ratio(r) => format!("{:.1}%", r * 100.0),
            Value::Millis(ms) => lookout_core::format_duration(std::time::Duration::from_millis(ms.max(0.0) as u64)),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            Value::Json(j) => j.to_string(),
            Value::Missing(why) => format!("<{why}>"),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// Parses the body as JSON at most once per observation.
#[derive(Default)]
pub(super) struct JsonCache(Option<Option<serde_json::Value>>);

impl JsonCache {
    fn get(&mut self, body: &str) -> Option<&serde_json::Value> {
        self.0.get_or_insert_with(|| serde_json::from_str(body).ok()).as_ref()
    }
}

impl Condition {
    /// Evaluates against one observation: `(passed, description)`, where the description shows the value seen,
    /// e.g. `[STATUS] (500) == 200`.
    pub fn evaluate(&self, obs: &Observation) -> (bool, String) {
        self.evaluate_with(obs, &mut JsonCache::default())
    }

    /// Evaluates against a log window: `(holds, description)`.
    pub fn evaluate_log(&self, view: &LogView) -> (bool, String) {
        self.evaluate_subject(Subject::Log(view), &mut JsonCache::default())
    }

    fn evaluate_with(&self, obs: &Observation, json: &mut JsonCache) -> (bool, String) {
        self.evaluate_subject(Subject::Probe(obs), json)
    }

    pub(super) fn evaluate_subject(&self, subject: Subject<'_>, json: &mut JsonCache) -> (bool, String) {
        let lhs = resolve(&self.lhs, subject, json);
        let rhs = resolve(&self.rhs, subject, json);
        let ok = self.compare(&lhs, &rhs);
        (ok, self.describe(&lhs, &rhs))
    }

    fn compare(&self, lhs: &Value, rhs: &Value) -> bool {
        if matches!(lhs, Value::Missing(_)) || matches!(rhs, Value::Missing(_)) {
            return false;
        }
        match self.op {
            Op::Eq => self.equals(lhs, rhs),
            Op::Ne => !self.equals(lhs, rhs),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => match (lhs.as_num(), rhs.as_num()) {
                (Some(a), Some(b)) => match self.op {
                    Op::Lt => a < b,
                    Op::Le => a <= b,
                    Op::Gt => a > b,
                    _ => a >= b,
                },
                _ => false,
            },
            Op::Contains => lhs.as_text().contains(&rhs.as_text()),
            Op::NotContains => !lhs.as_text().contains(&rhs.as_text()),
            Op::Matches => self.regex.as_ref().is_some_and(|r| r.is_match(&lhs.as_text())),
        }
    }

    fn equals(&self, lhs: &Value, rhs: &Value) -> bool {
        match &self.rhs {
            Operand::Any(options) => options.iter().any(|o| values_equal(lhs, &literal_value(o))),
            Operand::Pattern(p) => glob_match(p, &lhs.as_text()),
            _ => values_equal(lhs, rhs),
        }
    }

    fn describe(&self, lhs: &Value, rhs: &Value) -> String {
        let show = |operand: &Operand, v: &Value| -> Option<String> {
            operand.placeholder().map(|_| lookout_core::text::truncate(&lookout_core::text::one_line(&v.as_text()), 61))
        };
        let (lhs_src, rhs_src) = self.sides_source();
        // A text of many lines (the window's error-log messages) is shown from the line that matched, not from
        // its first line: "[ERROR_LOG] (PHP Fatal error: …) matches …", not the PHP Warning logged before it.
        let lhs = match (lhs, self.op) {
            (Value::Str(text), Op::Matches | Op::Contains) if text.contains('\n') => {
                let at = match self.op {
                    Op::Matches => self.regex.as_ref().and_then(|r| r.find(text)).map(|m| m.start()),
                    _ => text.find(rhs.as_text().as_str()),
                };
                let start = at.map_or(0, |at| text[..at].rfind('\n').map_or(0, |n| n + 1));
                &Value::Str(text[start..].to_string())
            }
            _ => lhs,
        };
        let l = match show(&self.lhs, lhs) {
            Some(v) => format!("{lhs_src} ({v})"),
            None => lhs_src.to_string(),
        };
        let r = match show(&self.rhs, rhs) {
            Some(v) => format!("{rhs_src} ({v})"),
            None => rhs_src.to_string(),
        };
        format!("{l} {} {r}", self.op.as_str())
    }

    pub(super) fn sides_source(&self) -> (&str, &str) {
        match find_operator(&self.source) {
            Ok((_, start, len)) => (self.source[..start].trim(), self.source[start + len..].trim()),
            Err(_) => (self.source.as_str(), ""),
        }
    }
}

fn literal_value(l: &Literal) -> Value {
    match l {
        Literal::Number(n) | Literal::Duration(n) => Value::Num(*n),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Str(s) => Value::Str(s.clone()),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Missing(_), _) | (_, Value::Missing(_)) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => match (a.as_num(), b.as_num()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_text() == b.as_text(),
        },
    }
}

/// Glob with `*` only, as Gatus's `pat(...)`.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

fn resolve(operand: &Operand, subject: Subject<'_>, json: &mut JsonCache) -> Value {
    match operand {
        Operand::Placeholder(p) => placeholder_value(p, subject, json),
        Operand::Len(p) => match placeholder_value(p, subject, json) {
            Value::Str(s) => Value::Num(s.chars().count() as f64),
            Value::Json(serde_json::Value::Array(a)) => Value::Num(a.len() as f64),
            Value::Json(serde_json::Value::Object(o)) => Value::Num(o.len() as f64),
            Value::Num(n) => Value::Num(format_number(n).len() as f64),
            Value::Missing(why) => Value::Missing(why),
            _ => Value::Missing("no length"),
        },
        Operand::Has(p) => Value::Bool(!matches!(placeholder_value(p, subject, json), Value::Missing(_))),
        Operand::Literal(l) => literal_value(l),
        // Compared element by element in `equals`.
        Operand::Any(_) | Operand::Pattern(_) => Value::Null,
    }
}

fn placeholder_value(p: &Placeholder, subject: Subject<'_>, json: &mut JsonCache) -> Value {
    let obs = match subject {
        Subject::Log(view) => return log_value(p, view),
        Subject::Probe(obs) => obs,
    };
    match p {
        Placeholder::Requests
        | Placeholder::Errors5xx
        | Placeholder::Ratio5xx
        | Placeholder::ErrorLog
        | Placeholder::ClientsAffected
        | Placeholder::LatencyPercentile(_) => Value::Missing("a log placeholder in a probe condition"),
        Placeholder::Reading(name) => match (obs.reading(name), super::READINGS.iter().find(|(r, _, _)| r == name)) {
            (Some(v), Some((_, super::Unit::Ratio, _))) => Value::Ratio(v),
            (Some(v), Some((_, super::Unit::Duration, _))) => Value::Millis(v),
            (Some(v), _) => Value::Num(v),
            (None, _) => Value::Missing("not read from this source"),
        },
        Placeholder::Status => obs.status.map_or(Value::Missing("no response"), |s| Value::Num(f64::from(s))),
        Placeholder::ResponseTime => Value::Num(obs.timings.total_ms.round()),
        Placeholder::Connected => Value::Bool(obs.connected),
        Placeholder::CertificateExpiration => match obs.cert_not_after {
            Some(t) => Value::Num((t.as_millis() - obs.at.as_millis()) as f64),
            None => Value::Missing("no certificate"),
        },
        Placeholder::DnsRcode => {
            obs.dns_rcode.map_or(Value::Missing("no DNS response"), |r| Value::Str(lookout_core::dns_rcode_name(r)))
        }
        Placeholder::Protocol => {
            obs.protocol.map_or(Value::Missing("no HTTP response"), |p| Value::Str(p.as_str().to_string()))
        }
        Placeholder::Header(name) => {
            obs.header(name).map_or(Value::Missing("no such header"), |v| Value::Str(v.to_string()))
        }
        Placeholder::Body(path) if path.is_empty() => {
            if obs.status.is_none() && !obs.connected {
                Value::Missing("no response")
            } else {
                Value::Str(obs.body.clone())
            }
        }
        Placeholder::Body(path) => {
            let Some(mut node) = json.get(&obs.body) else {
                return Value::Missing("body is not JSON");
            };
            for seg in path {
                let next = match seg {
                    PathSeg::Key(k) => node.get(k.as_str()),
                    PathSeg::Index(i) => node.get(*i),
                };
                match next {
                    Some(n) => node = n,
                    None => return Value::Missing("no such JSON path"),
                }
            }
            Value::from_json(node)
        }
    }
}

fn log_value(p: &Placeholder, view: &LogView) -> Value {
    match p {
        Placeholder::Requests => Value::Num(view.requests as f64),
        Placeholder::Errors5xx => Value::Num(view.errors_5xx as f64),
        Placeholder::Ratio5xx if view.requests == 0 || view.requests < view.min_requests => {
            Value::Missing("too few requests")
        }
        Placeholder::Ratio5xx => Value::Ratio(view.errors_5xx as f64 / view.requests as f64),
        Placeholder::ErrorLog => Value::Str(view.error_log.clone()),
        Placeholder::ClientsAffected => Value::Num(view.clients_affected as f64),
        Placeholder::LatencyPercentile(p) => match view.latency_ms {
            Some([p50, p95, p99]) => Value::Num(match p {
                50 => p50,
                95 => p95,
                _ => p99,
            }),
            None => Value::Missing("no request durations in the log (add %D to the LogFormat)"),
        },
        _ => Value::Missing("a probe placeholder in a log condition"),
    }
}
