//! lookout's application layer: the use cases, composed from the domain crates below it. Everything here works
//! through the `Store` trait; the binary (the composition root) opens the store `[store]` names and hands it in.
//!
//! ```text
//! pipeline: probe loops + log sources ──Event──► engine ──► record (store) ──► outbox ──► channels
//!                                                   └──► diagnosis (trace, error log) on firing
//!                                        Activity ──► demo narration, live pages
//! incidents: the read model (incident + timeline + impact) and the one revision-checked change (CLI and web)
//! postmortem: drafts from an incident or from logs alone
//! ```

pub mod activity;
pub mod check;
pub mod check_output;
pub mod checks;
pub mod cluster;
pub mod crawl;
pub mod health;
pub mod holding;
pub mod host;
pub mod impact;
pub mod incidents;
pub mod init;
pub mod log_source;
pub mod metrics;
pub mod pause;
pub mod pipeline;
pub mod postmortem;
pub mod reload;
pub mod server_curves;
pub mod silences;

pub use activity::Activity;
