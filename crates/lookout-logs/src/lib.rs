//! The log pipeline: what the web server wrote, read live (tailer) and after the fact (reports).
//!
//! Parsing never fails as a whole: a line that does not fit the format is counted as malformed (with a sample
//! kept) and the pipeline goes on.

pub mod access;
pub mod distinct;
pub mod error_log;
pub mod fast;
pub mod format;
pub mod latency;
pub mod offline;
pub mod report;
pub mod tail;
pub mod time;

pub use access::AccessRecord;
pub use format::{FormatError, LogFormat};
