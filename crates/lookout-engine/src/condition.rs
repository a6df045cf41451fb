//! The condition language: a small, Gatus-compatible way to say what "healthy" means.
//!
//! ```text
//! [STATUS] == 200                         [RESPONSE_TIME] < 500
//! [BODY] not contains "Fatal error"       [BODY].data.items[0].state == "up"
//! [STATUS] == any(200, 204)               len([BODY].items) > 0
//! [HEADER].Content-Type contains "json"   [CERTIFICATE_EXPIRATION] > 72h
//! [BODY] matches "^ok$"                   [CONNECTED] == true
//! [BODY] == pat(*ready*)                  has([BODY].errors) == false
//! ```
//!
//! A condition is parsed once (at config load, where a parse error points at the offending text) and then
//! evaluated against every observation. Evaluation never fails: a value that cannot be obtained (no status
//! because the connection was refused, a JSON path that is not there) makes the condition false, and the
//! description says what was seen.

use std::fmt;

use lookout_core::{Observation, parse_duration};
use regex::Regex;
use serde::Serialize;
use thiserror::Error;

const OPERATORS_HELP: &str = "==, !=, <, <=, >, >=, contains, not contains, matches";
const PLACEHOLDERS: &[&str] = &[
    "[STATUS]",
    "[RESPONSE_TIME]",
    "[BODY]",
    "[CONNECTED]",
    "[CERTIFICATE_EXPIRATION]",
    "[HEADER]",
    "[REQUESTS]",
    "[5XX]",
    "[5XX_RATIO]",
    "[ERROR_LOG]",
    "[CLIENTS_AFFECTED]",
    "[LATENCY_P50]",
    "[LATENCY_P95]",
    "[LATENCY_P99]",
];
const FUNCTIONS: &[&str] = &["len", "has", "any", "pat"];

/// A condition that did not parse, with the part of it that is wrong.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ConditionError {
    pub message: String,
    /// Byte offset into the condition where the problem starts.
    pub start: usize,
    /// Length in bytes of the offending part (at least 1).
    pub len: usize,
}

impl ConditionError {
    fn new(message: impl Into<String>, start: usize, len: usize) -> Self {
        ConditionError { message: message.into(), start, len: len.max(1) }
    }

    /// The condition with a caret line under the offending part, for terminal output.
    pub fn pointer(&self, source: &str) -> String {
        let col = source.get(..self.start).map_or(0, |s| s.chars().count());
        let width =
            source.get(self.start..(self.start + self.len).min(source.len())).map_or(1, |s| s.chars().count().max(1));
        format!("    {source}\n    {}{}", " ".repeat(col), "^".repeat(width))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Matches,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::NotContains => "not contains",
            Op::Matches => "matches",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

/// A step in a JSON path: `.name` or `[index]`.
#[derive(Clone, Debug, PartialEq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A value taken from the observation.
#[derive(Clone, Debug, PartialEq)]
pub enum Placeholder {
    Status,
    /// Total probe time in milliseconds.
    ResponseTime,
    /// The body, or a JSON path into it.
    Body(Vec<PathSeg>),
    Connected,
    /// Time left until the certificate's `notAfter`, in milliseconds.
    CertificateExpiration,
    Header(String),
    /// Requests in the log window.
    Requests,
    /// 5xx responses in the log window.
    Errors5xx,
    /// 5xx / requests in the log window (missing below the source's `min_requests`).
    Ratio5xx,
    /// Error-log messages of the window, one per line.
    ErrorLog,
    /// Distinct clients that got a 5xx in the window.
    ClientsAffected,
    /// A percentile (50, 95 or 99) of request durations in the window, in milliseconds.
    LatencyPercentile(u8),
}

impl Placeholder {
    /// Whether this placeholder reads a log window (`[[log]]`) rather than a probe result (`[[target]]`).
    pub fn is_log(&self) -> bool {
        matches!(
            self,
            Placeholder::Requests
                | Placeholder::Errors5xx
                | Placeholder::Ratio5xx
                | Placeholder::ErrorLog
                | Placeholder::ClientsAffected
                | Placeholder::LatencyPercentile(_)
        )
    }
}

/// What log conditions are evaluated against: the sliding window of a `[[log]]` source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogView {
    pub requests: u64,
    pub errors_5xx: u64,
    /// Below this many requests, `[5XX_RATIO]` has no value (too few to judge).
    pub min_requests: u64,
    pub error_log: String,
    pub clients_affected: u64,
    /// p50, p95, p99 of request durations in ms, when the log format has them.
    pub latency_ms: Option<[f64; 3]>,
}

/// What a condition is evaluated against.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Probe(&'a Observation),
    Log(&'a LogView),
}

/// A literal written in the condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(f64),
    /// Milliseconds (written as `500ms`, `72h`, ...).
    Duration(f64),
    Bool(bool),
    Str(String),
}

#[derive(Clone, Debug)]
enum Operand {
    Placeholder(Placeholder),
    Len(Placeholder),
    Has(Placeholder),
    Literal(Literal),
    Any(Vec<Literal>),
    Pattern(String),
}

impl Operand {
    fn placeholder(&self) -> Option<&Placeholder> {
        match self {
            Operand::Placeholder(p) | Operand::Len(p) | Operand::Has(p) => Some(p),
            _ => None,
        }
    }
}

/// A parsed condition, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    lhs: Operand,
    op: Op,
    rhs: Operand,
    regex: Option<Regex>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A value obtained while evaluating.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Num(f64),
    Str(String),
    Bool(bool),
    /// A fraction shown as a percentage.
    Ratio(f64),
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
            Value::Num(n) | Value::Ratio(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn as_text(&self) -> String {
        match self {
            Value::Num(n) => format_number(*n),
            Value::Ratio(r) => format!("{:.1}%", r * 100.0),
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

/// The result of judging one observation against a target's conditions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub ok: bool,
    /// Failed conditions, each with the value that was seen, e.g. `[STATUS] (500) == 200`.
    pub failed_conditions: Vec<String>,
    /// The probe error, if the probe could not complete.
    pub error: Option<String>,
}

impl Verdict {
    /// One line saying why the observation failed, or `None` if it passed.
    pub fn reason(&self) -> Option<String> {
        if self.ok {
            return None;
        }
        let mut parts: Vec<String> = Vec::new();
        if let Some(e) = &self.error {
            parts.push(e.clone());
        }
        parts.extend(self.failed_conditions.iter().cloned());
        Some(parts.join("; "))
    }

    /// Reasons as a list (error first), for messages.
    pub fn reasons(&self) -> Vec<String> {
        let mut v: Vec<String> = self.error.iter().cloned().collect();
        v.extend(self.failed_conditions.iter().cloned());
        v
    }
}

/// Judges an observation: it passes when every condition holds and the probe completed. A probe error does not
/// fail the observation on its own when a condition looks at `[CONNECTED]` (e.g. `[CONNECTED] == false` to
/// assert a port is closed).
pub fn judge(conditions: &[Condition], obs: &Observation) -> Verdict {
    let mut json = JsonCache::default();
    let failed: Vec<String> = conditions
        .iter()
        .filter_map(|c| {
            let (ok, description) = c.evaluate_subject(Subject::Probe(obs), &mut json);
            (!ok).then_some(description)
        })
        .collect();
    let checks_connectivity = conditions.iter().any(Condition::checks_connectivity);
    let error = obs.error.as_ref().map(ToString::to_string);
    let ok = failed.is_empty() && (error.is_none() || checks_connectivity);
    Verdict { ok, failed_conditions: failed, error }
}

/// Judges a log window against `fire_when` conditions: it fails when any of them holds; the ones that hold are
/// listed (with the values seen) as the reasons.
pub fn judge_log(fire_when: &[Condition], view: &LogView) -> Verdict {
    let mut json = JsonCache::default();
    let firing: Vec<String> = fire_when
        .iter()
        .filter_map(|c| {
            let (holds, description) = c.evaluate_subject(Subject::Log(view), &mut json);
            holds.then_some(description)
        })
        .collect();
    Verdict { ok: firing.is_empty(), failed_conditions: firing, error: None }
}

/// Parses the body as JSON at most once per observation.
#[derive(Default)]
struct JsonCache(Option<Option<serde_json::Value>>);

impl JsonCache {
    fn get(&mut self, body: &str) -> Option<&serde_json::Value> {
        self.0.get_or_insert_with(|| serde_json::from_str(body).ok()).as_ref()
    }
}

impl Condition {
    /// Parses a condition. Errors say what is wrong and where.
    pub fn parse(source: &str) -> Result<Condition, ConditionError> {
        let (op, op_start, op_len) = find_operator(source)?;
        let lhs_src = &source[..op_start];
        let rhs_src = &source[op_start + op_len..];
        if lhs_src.trim().is_empty() {
            return Err(ConditionError::new(
                format!("nothing on the left of {:?}: put a placeholder such as [STATUS] there", op.as_str()),
                op_start,
                op_len,
            ));
        }
        if rhs_src.trim().is_empty() {
            return Err(ConditionError::new(
                format!("nothing on the right of {:?}: put the expected value there", op.as_str()),
                op_start,
                op_len,
            ));
        }
        let lhs = parse_operand(lhs_src, 0)?;
        let rhs = parse_operand(rhs_src, op_start + op_len)?;
        let lhs_at = leading_ws(lhs_src);
        let rhs_at = op_start + op_len + leading_ws(rhs_src);
        let rhs_len = rhs_src.trim().len();

        if lhs.placeholder().is_none() && rhs.placeholder().is_none() {
            return Err(ConditionError::new(
                "neither side is a placeholder: compare something observed, e.g. [STATUS] == 200",
                lhs_at,
                lhs_src.trim().len(),
            ));
        }
        if matches!(lhs, Operand::Any(_) | Operand::Pattern(_)) {
            return Err(ConditionError::new(
                "any(...) and pat(...) go on the right-hand side",
                lhs_at,
                lhs_src.trim().len(),
            ));
        }
        if matches!(rhs, Operand::Any(_) | Operand::Pattern(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return Err(ConditionError::new(
                format!("any(...) and pat(...) only work with == and !=, not {}", op.as_str()),
                op_start,
                op_len,
            ));
        }
        if op.is_ordering() {
            let shown = match &rhs {
                Operand::Literal(Literal::Str(s)) => Some(s.clone()),
                Operand::Literal(Literal::Bool(_)) => Some(rhs_src.trim().to_string()),
                _ => None,
            };
            if let Some(shown) = shown {
                return Err(ConditionError::new(
                    format!("{} compares numbers or durations, but {shown:?} is neither", op.as_str()),
                    rhs_at,
                    rhs_len,
                ));
            }
        }
        if let Operand::Placeholder(Placeholder::CertificateExpiration) = &lhs
            && let Operand::Literal(Literal::Number(_)) = &rhs
        {
            return Err(ConditionError::new(
                "[CERTIFICATE_EXPIRATION] compares with a duration such as 72h or 30d",
                rhs_at,
                rhs_len,
            ));
        }
        let regex = if op == Op::Matches {
            let pattern = match &rhs {
                Operand::Literal(Literal::Str(s)) => s.clone(),
                _ => {
                    return Err(ConditionError::new(
                        "matches needs a quoted regular expression on the right, e.g. matches \"^OK\"",
                        rhs_at,
                        rhs_len,
                    ));
                }
            };
            Some(Regex::new(&pattern).map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("invalid").trim().to_string();
                ConditionError::new(format!("invalid regular expression: {last}"), rhs_at, rhs_len)
            })?)
        } else {
            None
        };
        Ok(Condition { source: source.trim().to_string(), lhs, op, rhs, regex })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether any side reads a log window (`[5XX_RATIO]`, `[ERROR_LOG]`, ...).
    pub fn uses_log_placeholders(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder().is_some_and(Placeholder::is_log))
    }

    /// Whether any side reads a probe result (`[STATUS]`, `[BODY]`, ...).
    pub fn uses_probe_placeholders(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder().is_some_and(|p| !p.is_log()))
    }

    /// Whether this condition looks at `[CONNECTED]`.
    pub fn checks_connectivity(&self) -> bool {
        [&self.lhs, &self.rhs].iter().any(|o| o.placeholder() == Some(&Placeholder::Connected))
    }

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

    fn evaluate_subject(&self, subject: Subject<'_>, json: &mut JsonCache) -> (bool, String) {
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
            operand.placeholder().map(|_| truncate(&v.as_text(), 60))
        };
        let (lhs_src, rhs_src) = self.sides_source();
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

    fn sides_source(&self) -> (&str, &str) {
        match find_operator(&self.source) {
            Ok((_, start, len)) => (self.source[..start].trim(), self.source[start + len..].trim()),
            Err(_) => (self.source.as_str(), ""),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
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
        Placeholder::Status => obs.status.map_or(Value::Missing("no response"), |s| Value::Num(f64::from(s))),
        Placeholder::ResponseTime => Value::Num(obs.timings.total_ms.round()),
        Placeholder::Connected => Value::Bool(obs.connected),
        Placeholder::CertificateExpiration => match obs.cert_not_after {
            Some(t) => Value::Num((t.as_millis() - obs.at.as_millis()) as f64),
            None => Value::Missing("no certificate"),
        },
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

fn leading_ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// Finds the operator at nesting depth 0, outside quotes: `(op, byte start, byte len)`.
fn find_operator(src: &str) -> Result<(Op, usize, usize), ConditionError> {
    let bytes = src.as_bytes();
    let mut depth: i32 = 0;
    let mut in_quote = false;
    let mut quote_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if !src.is_char_boundary(i) {
            i += 1;
            continue;
        }
        if in_quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_quote = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_quote = true;
                quote_start = i;
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            _ if depth == 0 => {
                let rest = &src[i..];
                for (text, op) in [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge)] {
                    if rest.starts_with(text) {
                        return Ok((op, i, 2));
                    }
                }
                if c == b'<' {
                    return Ok((Op::Lt, i, 1));
                }
                if c == b'>' {
                    return Ok((Op::Gt, i, 1));
                }
                let at_word_start = i > 0 && bytes[i - 1].is_ascii_whitespace();
                if at_word_start {
                    for (text, op) in
                        [("not contains", Op::NotContains), ("contains", Op::Contains), ("matches", Op::Matches)]
                    {
                        if let Some(after) = rest.strip_prefix(text)
                            && after.starts_with(|ch: char| ch.is_whitespace())
                        {
                            return Ok((op, i, text.len()));
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    if in_quote {
        return Err(ConditionError::new(
            "unterminated string: add the closing \"",
            quote_start,
            src.len() - quote_start,
        ));
    }
    if depth != 0 {
        return Err(ConditionError::new("unbalanced brackets or parentheses", 0, src.len()));
    }
    Err(ConditionError::new(format!("no operator found: use one of {OPERATORS_HELP}"), 0, src.len()))
}

/// Parses one side of a condition. `base` is the byte offset of `src` within the whole condition.
fn parse_operand(src: &str, base: usize) -> Result<Operand, ConditionError> {
    let at = base + leading_ws(src);
    let s = src.trim();
    if s.starts_with('[') {
        return parse_placeholder(s, at).map(Operand::Placeholder);
    }
    if let Some(open) = s.find('(') {
        let name = &s[..open];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            if !s.ends_with(')') {
                return Err(ConditionError::new(format!("{name}( is not closed: add the )"), at, s.len()));
            }
            let inner = &s[open + 1..s.len() - 1];
            let inner_at = at + open + 1;
            return match name {
                "len" => parse_placeholder(inner.trim(), inner_at + leading_ws(inner)).map(Operand::Len),
                "has" => parse_placeholder(inner.trim(), inner_at + leading_ws(inner)).map(Operand::Has),
                "any" => {
                    let items = split_args(inner)
                        .into_iter()
                        .map(|(off, item)| parse_literal(item.trim(), inner_at + off + leading_ws(item)))
                        .collect::<Result<Vec<_>, _>>()?;
                    if items.is_empty() {
                        return Err(ConditionError::new("any() needs at least one value", at, s.len()));
                    }
                    Ok(Operand::Any(items))
                }
                "pat" => Ok(Operand::Pattern(unquote(inner.trim()))),
                other => {
                    let hint =
                        strsim_hint(other, FUNCTIONS).map(|h| format!(" (did you mean {h}(...)?)")).unwrap_or_default();
                    Err(ConditionError::new(
                        format!("unknown function {other}(...){hint}: use len, has, any or pat"),
                        at,
                        name.len(),
                    ))
                }
            };
        }
    }
    parse_literal(s, at).map(Operand::Literal)
}

fn split_args(inner: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    for (i, c) in inner.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ',' if !in_quote => {
                out.push((start, &inner[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() || !out.is_empty() {
        out.push((start, &inner[start..]));
    }
    out.retain(|(_, s)| !s.trim().is_empty());
    out
}

fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let inner = &s[1..s.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_string()
    }
}

fn parse_literal(s: &str, at: usize) -> Result<Literal, ConditionError> {
    if s.starts_with('"') {
        if s.len() < 2 || !s.ends_with('"') {
            return Err(ConditionError::new("unterminated string: add the closing \"", at, s.len()));
        }
        return Ok(Literal::Str(unquote(s)));
    }
    match s {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        _ => {}
    }
    if let Ok(n) = s.parse::<f64>()
        && n.is_finite()
    {
        return Ok(Literal::Number(n));
    }
    if let Some(p) = s.strip_suffix('%')
        && let Ok(n) = p.trim().parse::<f64>()
    {
        return Ok(Literal::Number(n / 100.0));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return match parse_duration(s) {
            Ok(d) => Ok(Literal::Duration(d.as_secs_f64() * 1000.0)),
            Err(e) => Err(ConditionError::new(
                format!("{s:?} is neither a number nor a duration ({})", e.reason),
                at,
                s.len(),
            )),
        };
    }
    // Gatus accepts bare words as strings: `[BODY].status == UP`.
    Ok(Literal::Str(s.to_string()))
}

fn parse_placeholder(s: &str, at: usize) -> Result<Placeholder, ConditionError> {
    let Some(close) = s.find(']') else {
        return Err(ConditionError::new("placeholder is not closed: add the ]", at, s.len()));
    };
    let name = &s[..=close];
    let rest = &s[close + 1..];
    let rest_at = at + close + 1;
    let simple = |p: Placeholder| {
        if rest.is_empty() {
            Ok(p)
        } else {
            Err(ConditionError::new(format!("{name} takes no path; only [BODY] and [HEADER] do"), rest_at, rest.len()))
        }
    };
    match name {
        "[STATUS]" => simple(Placeholder::Status),
        "[RESPONSE_TIME]" => simple(Placeholder::ResponseTime),
        "[CONNECTED]" => simple(Placeholder::Connected),
        "[CERTIFICATE_EXPIRATION]" => simple(Placeholder::CertificateExpiration),
        "[BODY]" => parse_json_path(rest, rest_at).map(Placeholder::Body),
        "[REQUESTS]" => simple(Placeholder::Requests),
        "[5XX]" => simple(Placeholder::Errors5xx),
        "[5XX_RATIO]" => simple(Placeholder::Ratio5xx),
        "[ERROR_LOG]" => simple(Placeholder::ErrorLog),
        "[CLIENTS_AFFECTED]" => simple(Placeholder::ClientsAffected),
        "[LATENCY_P50]" => simple(Placeholder::LatencyPercentile(50)),
        "[LATENCY_P95]" => simple(Placeholder::LatencyPercentile(95)),
        "[LATENCY_P99]" => simple(Placeholder::LatencyPercentile(99)),
        "[HEADER]" => match rest.strip_prefix('.') {
            Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
                Ok(Placeholder::Header(h.to_string()))
            }
            _ => Err(ConditionError::new("[HEADER] needs a header name, e.g. [HEADER].Content-Type", at, s.len())),
        },
        other => {
            let hint = strsim_hint(other, PLACEHOLDERS).map(|h| format!(" (did you mean {h}?)")).unwrap_or_default();
            Err(ConditionError::new(
                format!("unknown placeholder {other}{hint}; known: {}", PLACEHOLDERS.join(", ")),
                at,
                name.len(),
            ))
        }
    }
}

fn parse_json_path(mut rest: &str, mut at: usize) -> Result<Vec<PathSeg>, ConditionError> {
    let mut path = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(ConditionError::new("empty key in JSON path", at, 1));
            }
            path.push(PathSeg::Key(key.to_string()));
            at += 1 + end;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Err(ConditionError::new("unclosed [ in JSON path", at, rest.len()));
            };
            let idx = r[..end].trim().parse::<usize>().map_err(|_| {
                ConditionError::new("array index must be a non-negative integer, e.g. [0]", at, end + 2)
            })?;
            path.push(PathSeg::Index(idx));
            at += end + 2;
            rest = &r[end + 1..];
        } else {
            return Err(ConditionError::new(
                "expected .key or [index] after [BODY], e.g. [BODY].data.items[0]",
                at,
                rest.len(),
            ));
        }
    }
    Ok(path)
}

fn strsim_hint<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&word.to_ascii_uppercase(), &c.to_ascii_uppercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_core::{ProbeError, ProbeErrorKind, ProbeKind, Timestamp};

    fn obs(status: u16, body: &str) -> Observation {
        let mut o = Observation::new("t", ProbeKind::Http, Timestamp(1_000_000));
        o.connected = true;
        o.status = Some(status);
        o.body = body.to_string();
        o.timings.total_ms = 120.4;
        o.headers.push(("content-type".into(), "application/json; charset=utf-8".into()));
        o
    }

    fn check(cond: &str, o: &Observation) -> (bool, String) {
        Condition::parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}")).evaluate(o)
    }

    fn err(cond: &str) -> String {
        match Condition::parse(cond) {
            Ok(_) => panic!("{cond:?} should not parse"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn status_and_response_time() {
        let o = obs(500, "");
        assert_eq!(check("[STATUS] == 200", &o), (false, "[STATUS] (500) == 200".into()));
        assert!(check("[STATUS] != 200", &o).0);
        assert!(check("[STATUS] >= 500", &o).0);
        assert!(!check("[STATUS] < 500", &o).0);
        assert!(check("[RESPONSE_TIME] < 500", &o).0);
        assert!(check("[RESPONSE_TIME] <= 120", &o).0);
        assert!(check("[RESPONSE_TIME] < 1s", &o).0);
        assert!(!check("[RESPONSE_TIME] > 500ms", &o).0);
        assert!(check("200 < [STATUS]", &o).0, "placeholder may be on the right");
    }

    #[test]
    fn body_contains_catches_php_fatal_error_served_with_200() {
        let o = obs(200, "<b>Fatal error</b>: Uncaught Error: Failed opening required 'inc/settings.phpp'");
        let (ok, desc) = check("[BODY] not contains \"Fatal error\"", &o);
        assert!(!ok);
        assert!(desc.starts_with("[BODY] (<b>Fatal error</b>: Uncaught"), "{desc}");
        assert!(desc.ends_with("not contains \"Fatal error\""), "{desc}");
        assert!(check("[BODY] contains \"Fatal\"", &o).0);
        assert!(check("[BODY] matches \"Failed opening required '[^']+'\"", &o).0);
        assert!(!check("[BODY] matches \"^OK$\"", &o).0);
    }

    #[test]
    fn json_paths_len_has() {
        let o = obs(200, r#"{"status":"UP","data":{"items":[{"id":7},{"id":8}],"n":2.5},"errors":null}"#);
        assert!(check("[BODY].status == UP", &o).0);
        assert!(check("[BODY].status == \"UP\"", &o).0);
        assert!(check("[BODY].data.items[1].id == 8", &o).0);
        assert!(check("[BODY].data.n > 2", &o).0);
        assert!(check("len([BODY].data.items) == 2", &o).0);
        assert!(check("len([BODY].status) == 2", &o).0);
        assert!(check("has([BODY].data) == true", &o).0);
        assert!(check("has([BODY].nope) == false", &o).0);
        assert_eq!(
            check("[BODY].data.items[5].id == 1", &o),
            (false, "[BODY].data.items[5].id (<no such JSON path>) == 1".into())
        );
        let not_json = obs(200, "hello");
        assert_eq!(check("[BODY].a == 1", &not_json), (false, "[BODY].a (<body is not JSON>) == 1".into()));
    }

    #[test]
    fn any_pat_header_connected() {
        let o = obs(204, "service ready");
        assert!(check("[STATUS] == any(200, 204)", &o).0);
        assert!(!check("[STATUS] == any(200, 201)", &o).0);
        assert!(check("[STATUS] != any(500, 502, 503)", &o).0);
        assert!(check("[BODY] == pat(*ready*)", &o).0);
        assert!(check("[BODY] == pat(service*)", &o).0);
        assert!(!check("[BODY] == pat(*down*)", &o).0);
        assert!(check("[HEADER].Content-Type contains \"json\"", &o).0);
        assert!(!check("[HEADER].X-Missing == 1", &o).0);
        assert!(check("[CONNECTED] == true", &o).0);
    }

    #[test]
    fn certificate_expiration_compares_durations() {
        let mut o = obs(200, "");
        o.cert_not_after = Some(Timestamp(1_000_000 + 2 * 86_400_000));
        assert!(!check("[CERTIFICATE_EXPIRATION] > 72h", &o).0);
        assert!(check("[CERTIFICATE_EXPIRATION] > 24h", &o).0);
        let plain = obs(200, "");
        assert_eq!(
            check("[CERTIFICATE_EXPIRATION] > 72h", &plain),
            (false, "[CERTIFICATE_EXPIRATION] (<no certificate>) > 72h".into())
        );
    }

    #[test]
    fn missing_values_fail_every_comparison() {
        let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
        o.error = Some(ProbeError { kind: ProbeErrorKind::Refused, message: "connection refused".into() });
        assert_eq!(check("[STATUS] == 200", &o), (false, "[STATUS] (<no response>) == 200".into()));
        assert!(!check("[STATUS] != 200", &o).0);
        assert!(!check("[BODY] not contains \"x\"", &o).0);
        assert!(check("[CONNECTED] == false", &o).0);
    }

    #[test]
    fn judge_combines_conditions_and_errors() {
        let conds: Vec<Condition> = ["[STATUS] == 200", "[BODY] not contains \"Fatal error\""]
            .iter()
            .map(|c| Condition::parse(c).unwrap())
            .collect();
        let v = judge(&conds, &obs(500, "Fatal error"));
        assert!(!v.ok);
        assert_eq!(v.failed_conditions.len(), 2);
        assert!(judge(&conds, &obs(200, "fine")).ok);

        let mut refused = Observation::new("t", ProbeKind::Tcp, Timestamp(0));
        refused.error = Some(ProbeError { kind: ProbeErrorKind::Refused, message: "connection refused".into() });
        let expect_closed = [Condition::parse("[CONNECTED] == false").unwrap()];
        assert!(judge(&expect_closed, &refused).ok, "a port expected closed passes");
        let v = judge(&[], &refused);
        assert!(!v.ok, "an error alone fails the check");
        assert_eq!(v.reason().as_deref(), Some("refused: connection refused"));
    }

    #[test]
    fn every_parse_error_says_what_to_do() {
        assert_eq!(
            err("[STATUS] 200"),
            "no operator found: use one of ==, !=, <, <=, >, >=, contains, not contains, matches"
        );
        assert_eq!(
            err("[STAUS] == 200"),
            "unknown placeholder [STAUS] (did you mean [STATUS]?); known: [STATUS], [RESPONSE_TIME], [BODY], [CONNECTED], [CERTIFICATE_EXPIRATION], [HEADER], [REQUESTS], [5XX], [5XX_RATIO], [ERROR_LOG], [CLIENTS_AFFECTED], [LATENCY_P50], [LATENCY_P95], [LATENCY_P99]"
        );
        assert_eq!(err("== 200"), "nothing on the left of \"==\": put a placeholder such as [STATUS] there");
        assert_eq!(err("[STATUS] =="), "nothing on the right of \"==\": put the expected value there");
        assert_eq!(err("[BODY] contains \"abc"), "unterminated string: add the closing \"");
        assert_eq!(err("[BODY] matches \"(unclosed\""), "invalid regular expression: error: unclosed group");
        assert_eq!(
            err("[BODY] matches 42"),
            "matches needs a quoted regular expression on the right, e.g. matches \"^OK\""
        );
        assert_eq!(err("[STATUS] < \"abc\""), "< compares numbers or durations, but \"abc\" is neither");
        assert_eq!(err("[STATUS] > true"), "> compares numbers or durations, but \"true\" is neither");
        assert_eq!(
            err("[CERTIFICATE_EXPIRATION] > 72"),
            "[CERTIFICATE_EXPIRATION] compares with a duration such as 72h or 30d"
        );
        assert_eq!(
            err("[RESPONSE_TIME] < 10parsecs"),
            "\"10parsecs\" is neither a number nor a duration (unknown unit (use ms, s, m, h, d or w))"
        );
        assert_eq!(
            err("lenn([BODY]) == 1"),
            "unknown function lenn(...) (did you mean len(...)?): use len, has, any or pat"
        );
        assert_eq!(err("len([BODY] == 1"), "unbalanced brackets or parentheses");
        assert_eq!(
            err("200 == 200"),
            "neither side is a placeholder: compare something observed, e.g. [STATUS] == 200"
        );
        assert_eq!(err("any(1,2) == [STATUS]"), "any(...) and pat(...) go on the right-hand side");
        assert_eq!(err("[STATUS] < any(1,2)"), "any(...) and pat(...) only work with == and !=, not <");
        assert_eq!(err("[STATUS] == any()"), "any() needs at least one value");
        assert_eq!(err("[STATUS].x == 1"), "[STATUS] takes no path; only [BODY] and [HEADER] do");
        assert_eq!(err("[HEADER] == 1"), "[HEADER] needs a header name, e.g. [HEADER].Content-Type");
        assert_eq!(err("[BODY].a[x] == 1"), "array index must be a non-negative integer, e.g. [0]");
        assert_eq!(err("[BODY]x == 1"), "expected .key or [index] after [BODY], e.g. [BODY].data.items[0]");
        assert_eq!(err("[BODY].a. == 1"), "empty key in JSON path");
        assert_eq!(err("[STATUS == 1"), "unbalanced brackets or parentheses");
    }

    #[test]
    fn error_pointer_marks_the_offending_text() {
        let src = "[STAUS] == 200";
        let e = Condition::parse(src).unwrap_err();
        assert_eq!(e.pointer(src), "    [STAUS] == 200\n    ^^^^^^^");
        let src = "[STATUS] == 200 && [BODY] matches \"(\"";
        let e = Condition::parse(src).unwrap_err();
        assert!(e.message.contains("neither a number") || e.message.contains("regular"), "{}", e.message);
    }

    #[test]
    fn log_conditions_fire_when_they_hold() {
        let view = LogView {
            requests: 30,
            errors_5xx: 10,
            min_requests: 10,
            error_log: "PHP Fatal error:  Uncaught Error: Failed opening required '/x/settings.phpp'".into(),
            clients_affected: 3,
            latency_ms: Some([12.0, 480.0, 1900.0]),
        };
        let c = |s: &str| Condition::parse(s).unwrap();
        assert!(c("[LATENCY_P95] > 300").evaluate_log(&view).0);
        assert_eq!(c("[LATENCY_P99] < 1s").evaluate_log(&view), (false, "[LATENCY_P99] (1900) < 1s".into()));
        assert_eq!(
            c("[LATENCY_P50] > 1").evaluate_log(&LogView::default()).1,
            "[LATENCY_P50] (<no request durations in the log (add %D to the LogFormat)>) > 1"
        );
        assert_eq!(c("[5XX_RATIO] > 5%").evaluate_log(&view), (true, "[5XX_RATIO] (33.3%) > 5%".into()));
        assert!(!c("[5XX_RATIO] > 50%").evaluate_log(&view).0);
        assert!(c("[ERROR_LOG] matches \"PHP (Fatal|Parse) error\"").evaluate_log(&view).0);
        assert!(c("[CLIENTS_AFFECTED] >= 3").evaluate_log(&view).0);
        assert!(c("[5XX] == 10").evaluate_log(&view).0);
        let quiet = LogView { requests: 5, errors_5xx: 5, min_requests: 10, ..LogView::default() };
        assert_eq!(
            c("[5XX_RATIO] > 5%").evaluate_log(&quiet),
            (false, "[5XX_RATIO] (<too few requests>) > 5%".into()),
            "below min_requests the ratio does not fire"
        );
        let v = judge_log(&[c("[5XX_RATIO] > 5%"), c("[ERROR_LOG] contains \"Parse error\"")], &view);
        assert!(!v.ok);
        assert_eq!(v.failed_conditions, vec!["[5XX_RATIO] (33.3%) > 5%".to_string()]);
        assert!(judge_log(&[c("[5XX_RATIO] > 50%")], &view).ok);
        assert!(c("[5XX_RATIO] > 1%").uses_log_placeholders() && !c("[5XX_RATIO] > 1%").uses_probe_placeholders());
        assert!(c("[STATUS] == 200").uses_probe_placeholders());
    }

    #[test]
    fn non_ascii_input_is_an_error_not_a_panic() {
        assert!(Condition::parse("é<1").is_err());
        assert!(Condition::parse("[BODY] contains \"ü>ä\"").is_ok());
        assert!(Condition::parse("[BODY]ü == 1").is_err());
    }

    #[test]
    fn operators_inside_quotes_are_text() {
        let o = obs(200, "a == b");
        assert!(check("[BODY] contains \"a == b\"", &o).0);
        assert!(check("[BODY] contains \"==\"", &o).0);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use lookout_core::{ProbeKind, Timestamp};
    use proptest::prelude::*;

    fn any_observation() -> impl Strategy<Value = Observation> {
        (proptest::option::of(0u16..1000), ".{0,64}", any::<bool>(), proptest::option::of(any::<i64>())).prop_map(
            |(status, body, connected, cert)| {
                let mut o = Observation::new("t", ProbeKind::Http, Timestamp(0));
                o.status = status;
                o.body = body;
                o.connected = connected;
                o.cert_not_after = cert.map(Timestamp);
                o
            },
        )
    }

    proptest! {
        /// Parsing never panics, whatever the input; errors point inside the input.
        #[test]
        fn parse_never_panics(src in ".{0,80}") {
            match Condition::parse(&src) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(e.start <= src.len());
                    let _ = e.pointer(&src);
                }
            }
        }

        /// Conditions built from the grammar's pieces parse and evaluate without panicking on any observation.
        #[test]
        fn evaluate_never_panics(
            lhs in prop::sample::select(vec!["[STATUS]", "[BODY]", "[BODY].a[0].b", "len([BODY])", "has([BODY].x)",
                "[RESPONSE_TIME]", "[CONNECTED]", "[CERTIFICATE_EXPIRATION]", "[HEADER].X-Y"]),
            op in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "contains", "not contains", "matches"]),
            rhs in prop::sample::select(vec!["200", "\"x\"", "72h", "true", "any(1, \"a\")", "pat(*a*)", "1%", "\"^a.*\""]),
            obs in any_observation(),
        ) {
            let src = format!("{lhs} {op} {rhs}");
            if let Ok(c) = Condition::parse(&src) {
                let _ = c.evaluate(&obs);
                let _ = judge(std::slice::from_ref(&c), &obs);
            }
        }
    }
}
