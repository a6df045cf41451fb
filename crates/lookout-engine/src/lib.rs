//! The pure decision core: judges observations against conditions and moves alerts through
//! pending → firing → resolved. Does no IO and reads time only from the injected [`Clock`].

pub mod condition;
pub mod engine;

pub use condition::{Condition, ConditionError, Verdict, judge};
pub use engine::{Engine, LogRules, Outcome, RETIRED_REASON, TargetPolicy};
pub use lookout_core::Clock;
