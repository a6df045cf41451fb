//! The one HTTP client of lookout (HTTP/1.1; HTTP/2 by ALPN for probes of HTTPS targets), shared by probes and
//! notifiers.
//!
//! It exists as a crate of its own so that one code path owns timeouts and TLS for everything lookout sends
//! over the network — a probe of a monitored site and a notification to a channel alike — without the
//! notification channels (effects) depending on the probes (a source). Every phase (DNS, connect, TLS, first
//! byte, total) is timed separately, and every failure comes back classified in an
//! [`Observation`](lookout_core::Observation), never as an opaque error.

mod client;
pub mod net;
pub mod tls;

pub use client::{FetchOptions, HttpRequest, fetch, fetch_with};

/// Default cap on the response body read ([`HttpRequest::get`]); the rest is discarded and `body_truncated` is
/// set.
pub const MAX_BODY: usize = 1024 * 1024;
