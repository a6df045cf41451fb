//! Finding *why*: the probable root cause of failing requests, with what was probably meant.
//!
//! From the error log ([`error_log`]), explaining missing and unreadable files ([`hints`]), and from a bounded
//! ptrace of the web server's workers ([`trace`]) whose failing syscalls are matched to the failing requests
//! ([`correlate`]); [`live`] drives requests at the server while it is traced.

mod answer;
pub mod correlate;
pub mod error_log;
mod fastcgi;
pub mod hints;
pub mod live;
mod refusal;
mod routine;
pub mod serving;
pub mod trace;

pub use error_log::{Cause, Finding, NOTHING_FOUND, diagnose, diagnose_file, diagnose_tails};
pub use hints::Missing;
