//! Parsing a condition's text into a [`Condition`], with errors that point at the offending part.

use lookout_core::parse_duration;
use regex::Regex;

use super::{Condition, ConditionError, Literal, Op, Operand, PathSeg, Placeholder};

const OPERATORS_HELP: &str = "==, !=, <, <=, >, >=, contains, not contains, matches";
const PLACEHOLDERS: &[&str] = &[
    "[STATUS]",
    "[RESPONSE_TIME]",
    "[BODY]",
    "[CONNECTED]",
    "[CERTIFICATE_EXPIRATION]",
    "[DNS_RCODE]",
    "[PROTOCOL]",
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
        Ok(Condition { source: source.trim().to_string(), fires: false, clear: None, lhs, op, rhs, regex })
    }
}

fn leading_ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// Finds the operator at nesting depth 0, outside quotes: `(op, byte start, byte len)`.
pub(super) fn find_operator(src: &str) -> Result<(Op, usize, usize), ConditionError> {
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
            b'=' | b'!' | b'<' | b'>' if depth == 0 => {
                // The whole run of operator characters is the operator: `===` is not `==` followed by "= 200"
                // (which compared with the string "= 200" and always failed).
                let run = src[i..].bytes().take_while(|b| OPERATOR_CHARS.contains(b)).count();
                let text = &src[i..i + run];
                return match text {
                    "==" => Ok((Op::Eq, i, 2)),
                    "!=" => Ok((Op::Ne, i, 2)),
                    "<=" => Ok((Op::Le, i, 2)),
                    ">=" => Ok((Op::Ge, i, 2)),
                    "<" => Ok((Op::Lt, i, 1)),
                    ">" => Ok((Op::Gt, i, 1)),
                    _ => Err(ConditionError::new(unknown_operator(text), i, run)),
                };
            }
            _ if depth == 0 => {
                let rest = &src[i..];
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

const OPERATOR_CHARS: &[u8] = b"=!<>";

/// The message for an operator that is not one: what was probably meant, and the list.
fn unknown_operator(text: &str) -> String {
    let meant = match text {
        "=" | "===" => Some("=="),
        "!==" | "<>" | "=!" => Some("!="),
        "=<" => Some("<="),
        "=>" => Some(">="),
        _ => None,
    };
    let hint = meant.map(|m| format!(" (did you mean {m}?)")).unwrap_or_default();
    format!("unknown operator {text:?}{hint}: use one of {OPERATORS_HELP}")
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
    // An address is a word, not a malformed number: `[BODY] == 127.0.0.1` compares a DNS answer.
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(Literal::Str(s.to_string()));
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
    if let Some(first) = s.bytes().next().filter(|b| OPERATOR_CHARS.contains(b)) {
        return Err(ConditionError::new(
            format!("unexpected {:?}: one operator per condition; quote a value that starts with it", first as char),
            at,
            1,
        ));
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
        "[DNS_RCODE]" => simple(Placeholder::DnsRcode),
        "[PROTOCOL]" => simple(Placeholder::Protocol),
        "[BODY]" => parse_json_path(rest, rest_at).map(Placeholder::Body),
        "[REQUESTS]" => simple(Placeholder::Requests),
        "[5XX]" => simple(Placeholder::Errors5xx),
        "[5XX_RATIO]" => simple(Placeholder::Ratio5xx),
        "[ERROR_LOG]" => simple(Placeholder::ErrorLog),
        "[CLIENTS_AFFECTED]" => simple(Placeholder::ClientsAffected),
        "[LATENCY_P50]" => simple(Placeholder::LatencyPercentile(50)),
        "[LATENCY_P95]" => simple(Placeholder::LatencyPercentile(95)),
        "[LATENCY_P99]" => simple(Placeholder::LatencyPercentile(99)),
        _ if let Some(&(reading, _, _)) =
            super::READINGS.iter().find(|(r, _, _)| name.get(1..name.len() - 1) == Some(*r)) =>
        {
            simple(Placeholder::Reading(reading))
        }
        "[HEADER]" => match rest.strip_prefix('.') {
            Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
                Ok(Placeholder::Header(h.to_string()))
            }
            _ => Err(ConditionError::new("[HEADER] needs a header name, e.g. [HEADER].Content-Type", at, s.len())),
        },
        other => {
            let readings: Vec<String> = super::READINGS.iter().map(|(r, _, _)| format!("[{r}]")).collect();
            let known: Vec<&str> = PLACEHOLDERS.iter().copied().chain(readings.iter().map(String::as_str)).collect();
            let hint = strsim_hint(other, &known).map(|h| format!(" (did you mean {h}?)")).unwrap_or_default();
            Err(ConditionError::new(
                format!(
                    "unknown placeholder {other}{hint}; known: {}, and the readings of status pages and the host \
                     ([BUSY_WORKERS], [FS_USED_RATIO], …: README, \"Server status pages\")",
                    PLACEHOLDERS.join(", ")
                ),
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
