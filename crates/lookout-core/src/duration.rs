//! Human durations as written in `lookout.toml` and conditions: `500ms`, `10s`, `2m`, `1h30m`, `3d`.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid duration {input:?}: {reason}; write a number and a unit, e.g. \"500ms\", \"10s\", \"2m\", \"1h30m\", \"3d\""
)]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses `10s`, `500ms`, `2m`, `1h30m`, `3d`, `1.5s`. A bare number is rejected: a unit is always required,
/// because `timeout = 5` meaning seconds or milliseconds is exactly the ambiguity that bites at 3 a.m.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError { input: input.to_string(), reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| err("the number is malformed"))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(err("the unit is missing"));
        }
        let secs_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            "w" => 7.0 * 86400.0,
            _ => return Err(err("unknown unit (use ms, s, m, h, d or w)")),
        };
        rest = &rest[unit_len..];
        let part = number * secs_per_unit;
        if !part.is_finite() || part > 1e12 {
            return Err(err("it is too large"));
        }
        total += Duration::from_secs_f64(part);
    }
    Ok(total)
}

/// Formats a duration compactly for humans: `450ms`, `12s`, `3m20s`, `2h5m`, `3d4h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => {
            if ms < 10_000 && !ms.is_multiple_of(1000) {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{secs}s")
            }
        }
        (0, 0, m) => {
            if secs == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{secs}s")
            }
        }
        (0, h, m) => {
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{m}m")
            }
        }
        (d, h, _) => {
            if h == 0 {
                format!("{d}d")
            } else {
                format!("{d}d{h}h")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h 30 m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10 secs"), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(parse_duration("10").unwrap_err().reason, "the unit is missing");
        assert_eq!(parse_duration("").unwrap_err().reason, "it is empty");
        assert_eq!(parse_duration("10x").unwrap_err().reason, "unknown unit (use ms, s, m, h, d or w)");
        assert_eq!(parse_duration("s").unwrap_err().reason, "expected a number");
        assert_eq!(parse_duration("1..2s").unwrap_err().reason, "the number is malformed");
        assert_eq!(parse_duration("99999999999999999d").unwrap_err().reason, "it is too large");
        let msg = parse_duration("10 parsecs").unwrap_err().to_string();
        assert!(msg.starts_with("invalid duration \"10 parsecs\""), "{msg}");
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_millis(450)), "450ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_secs(200)), "3m20s");
        assert_eq!(format_duration(Duration::from_secs(7500)), "2h5m");
        assert_eq!(format_duration(Duration::from_secs(4 * 86400 + 3600)), "4d1h");
    }
}
