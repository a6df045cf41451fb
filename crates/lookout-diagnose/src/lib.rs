//! Finding *why*: the probable root cause of failing requests, with what was probably meant.
//!
//! Today it reads the error log ([`error_log`]) and explains missing and unreadable files ([`hints`]); the
//! ptrace tracer of the web server's workers (the one place `unsafe` may be allowed) comes next.

pub mod correlate;
pub mod error_log;
pub mod hints;
pub mod trace;

pub use error_log::{Cause, Finding, NOTHING_FOUND, diagnose, diagnose_file, diagnose_tail};
pub use hints::Missing;
