//! The `lookout` binary's library half: subcommands and runtime wiring. `main.rs` only parses arguments and
//! maps results to exit codes; integration tests reuse the pieces here (e.g. the small HTTP server).

pub mod check;
pub mod demo;
pub mod demo_site;
pub mod diagnose_cmd;
pub mod http_server;
pub mod impact;
pub mod incident_view;
pub mod incidents_cmd;
pub mod log_source;
pub mod logs_cmd;
pub mod metrics;
pub mod postmortem;
pub mod runtime;
pub mod silence_cmd;
pub mod web;
