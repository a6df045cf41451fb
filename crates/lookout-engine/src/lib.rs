//! The pure decision core: judges observations against conditions and moves alerts through
//! pending → firing → resolved, and gathers firing alerts into incidents. Does no IO and reads time only from the
//! injected [`Clock`].

pub mod condition;
pub mod engine;
pub mod incident;
pub mod log_window;
pub mod matcher;
mod quorum;
pub mod reminder;
pub mod resolution;
pub mod schedule;

pub use condition::{Condition, ConditionError, READINGS, Verdict, judge, judge_while};
pub use engine::{Engine, LogRules, Outcome, RETIRED_REASON, TargetPolicy};
pub use incident::{IncidentBook, IncidentError};
pub use log_window::{MIN_BLIND, WindowChange, WindowEntry};
pub use lookout_core::Clock;
pub use matcher::{Matcher, MatcherError, all_match};
pub use reminder::{Due, Reminders};
