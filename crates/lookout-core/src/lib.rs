//! Lookout's shared vocabulary: what every other crate talks in.
//!
//! Nothing here does IO. Sources produce [`Event`]s, the engine turns them into [`Transition`]s,
//! and the store and notifiers record and deliver those.

pub mod alert;
pub mod clock;
pub mod duration;
pub mod event;
pub mod hash;
pub mod incident;
pub mod key;
pub mod text;
pub mod url;

pub use alert::{AlertState, Phase, Transition, TransitionKind, alert_id};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use duration::{DurationError, format_duration, parse_duration};
pub use event::{
    Event, HttpVersion, LogBatch, LogCount, MinuteLatency, Observation, ProbeError, ProbeErrorKind, ProbeKind, Timings,
    Unreadable, dns_rcode_name,
};
pub use incident::{
    Ack, Cause, Diagnosis, EntryKind, Incident, IncidentAlert, IncidentChange, IncidentStatus, TimelineEntry,
    incident_id, utc_day,
};

/// The `User-Agent` of the requests `lookout diagnose` (and a firing alert's diagnosis) sends while it traces:
/// lookout's own, not a user's, so access logs read for alerts and impact leave them out.
pub const DIAGNOSE_USER_AGENT: &str = concat!("lookout-diagnose/", env!("CARGO_PKG_VERSION"));
