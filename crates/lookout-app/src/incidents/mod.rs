//! Incidents as people read and change them: the read model (an incident with its whole timeline and measured
//! impact) and the one revision-checked change that the CLI and the web API share.

mod change;
mod view;

pub use change::{ChangeError, ConflictRetry, change};
pub use view::{IncidentView, load, timeline};
