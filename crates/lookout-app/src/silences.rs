//! What makes a silence valid, in one place for the CLI and the API: at least one matcher, each of them valid, a
//! comment that says why, and a length above zero (one hour unless told). The surfaces only name their own
//! flags or fields in the error.

use std::time::Duration;

use lookout_core::{Timestamp, parse_duration};
use lookout_engine::{Matcher, MatcherError};
use lookout_store::NewSilence;

/// How long a silence lasts when no length is given.
pub const DEFAULT_LENGTH: Duration = Duration::from_secs(3600);

/// A silence as asked for, before it is checked.
#[derive(Clone, Debug)]
pub struct SilenceRequest {
    pub matchers: Vec<String>,
    pub starts_at: Timestamp,
    /// e.g. "2h"; [`DEFAULT_LENGTH`] when `None`.
    pub duration: Option<String>,
    pub comment: String,
    pub by: String,
}

/// Why a silence was refused; the message says what to give instead (flags and fields have the same names).
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("name what to silence with at least one matcher, e.g. group=shop or target=~\"web-.*\"")]
    NoMatchers,
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    #[error("comment: say why (it is shown wherever the silence holds a message back)")]
    NoComment,
    #[error("duration: {0}")]
    Duration(lookout_core::DurationError),
    #[error("duration: must be more than 0s")]
    ZeroDuration,
}

impl SilenceError {
    /// The request's field at fault, for an API error that names it.
    pub fn field(&self) -> &'static str {
        match self {
            SilenceError::NoMatchers | SilenceError::Matcher(_) => "matchers",
            SilenceError::NoComment => "comment",
            SilenceError::Duration(_) | SilenceError::ZeroDuration => "duration",
        }
    }
}

impl SilenceRequest {
    /// The silence to store, or why not.
    pub fn validate(self) -> Result<NewSilence, SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        for m in &self.matchers {
            Matcher::parse(m)?;
        }
        let comment = self.comment.trim();
        if comment.is_empty() {
            return Err(SilenceError::NoComment);
        }
        let length = match self.duration.as_deref() {
            Some(d) => parse_duration(d).map_err(SilenceError::Duration)?,
            None => DEFAULT_LENGTH,
        };
        if length.is_zero() {
            return Err(SilenceError::ZeroDuration);
        }
        Ok(NewSilence {
            matchers: self.matchers,
            starts_at: self.starts_at,
            ends_at: self.starts_at.plus(length),
            created_by: self.by,
            comment: comment.to_string(),
            pause: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(matchers: &[&str], duration: Option<&str>, comment: &str) -> SilenceRequest {
        SilenceRequest {
            matchers: matchers.iter().map(ToString::to_string).collect(),
            starts_at: Timestamp::from_millis(1_000),
            duration: duration.map(str::to_string),
            comment: comment.into(),
            by: "alice".into(),
        }
    }

    #[test]
    fn a_valid_silence_lasts_its_duration_or_an_hour() {
        let s = request(&["group=shop"], Some("2h"), " deploy ").validate().unwrap();
        assert_eq!(s.ends_at, Timestamp::from_millis(1_000 + 2 * 3_600_000));
        assert_eq!(s.comment, "deploy");
        let default = request(&["group=shop"], None, "deploy").validate().unwrap();
        assert_eq!(default.ends_at, Timestamp::from_millis(1_000 + 3_600_000));
    }

    #[test]
    fn every_refusal_says_what_to_give() {
        let refuse = |r: SilenceRequest| r.validate().unwrap_err();
        assert!(matches!(refuse(request(&[], None, "x")), SilenceError::NoMatchers));
        assert!(matches!(refuse(request(&["group"], None, "x")), SilenceError::Matcher(_)));
        assert!(matches!(refuse(request(&["group=shop"], None, "  ")), SilenceError::NoComment));
        assert!(matches!(refuse(request(&["group=shop"], Some("0s"), "x")), SilenceError::ZeroDuration));
        assert!(matches!(refuse(request(&["group=shop"], Some("soon"), "x")), SilenceError::Duration(_)));
    }
}
