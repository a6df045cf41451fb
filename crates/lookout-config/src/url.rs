//! URLs and `host:port` addresses in the config: checked here so that a typo is an error with file:line and key,
//! never a silent surprise at probe time (`http://127.0.0.1:80800/` used to probe port 80, because `http::Uri`
//! accepts any digits as a port and answers "no port" for one it cannot read as u16), and shown redacted in every
//! message (`http://admin:***@host/`), because credentials written into a URL are sent as `Authorization: Basic`
//! and must not reach logs or terminals.

use std::ops::Range;

use lookout_core::url::{check_host, parse_port, redact, split_authority};

use crate::At;
use crate::error::ConfigError;

/// How a URL may be shown in a message.
#[derive(Clone, Copy)]
pub(crate) enum Shown {
    /// With its credentials redacted.
    Redacted,
    /// Not at all: it came from the environment and is a secret as a whole.
    Never,
    /// Not at all: the URL itself is the credential (a Slack URL carries its token in the path).
    Token,
}

/// An `http://` or `https://` URL with a valid host and, if written, a port from 1 to 65535.
pub(crate) fn http_url(
    text: &str,
    shown: Shown,
    key: &str,
    span: Range<usize>,
    section: &str,
    at: &At<'_>,
) -> Result<http::Uri, ConfigError> {
    let what = match shown {
        Shown::Redacted => format!("{key} = {:?} in {section}", redact(text)),
        Shown::Never => format!("{key} (from the environment) in {section}"),
        Shown::Token => format!("{key} (not shown: it carries a token) in {section}"),
    };
    let fail = |why: String| at(span.clone(), format!("{what}: {why}"));
    let url: http::Uri =
        text.parse().map_err(|e| fail(format!("not a valid URL ({e}); write e.g. \"http://127.0.0.1:8080/\"")))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        return Err(fail("must start with http:// or https://".into()));
    }
    let Some(authority) = url.authority() else { return Err(fail("has no host".into())) };
    let parts = split_authority(authority.as_str());
    check_host(parts.host).map_err(&fail)?;
    parse_port(parts.port).map_err(&fail)?;
    Ok(url)
}

/// A `host:port` (IPv6 as `[::1]:443`) with a valid host and a port from 1 to 65535.
pub(crate) fn host_port(
    text: &str,
    key: &str,
    span: Range<usize>,
    section: &str,
    at: &At<'_>,
) -> Result<(), ConfigError> {
    let fail = |why: String| {
        at(span.clone(), format!("{key} = {:?} in {section}: {why}; write e.g. \"127.0.0.1:5432\"", redact(text)))
    };
    let parts = split_authority(text);
    if parts.userinfo.is_some() || text.contains('/') {
        return Err(fail("is not host:port".into()));
    }
    check_host(parts.host).map_err(&fail)?;
    match parse_port(parts.port) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(fail("has no port".into())),
        Err(e) => Err(fail(e)),
    }
}
