//! The `lookout` binary's library half: each command's arguments and printing, the composition root of
//! `lookout run` (`runtime`) and the demo. The domain lives in the library crates (`lookout-app` and below);
//! `main.rs` only parses arguments and maps results to exit codes; integration tests reuse the pieces here.

pub mod agents_cmd;
pub use lookout_app::check_output as check;
pub mod crawl_cmd;
pub mod demo;
pub mod demo_site;
pub mod diagnose_cmd;
pub mod http_server;
pub mod incidents_cmd;
pub mod logs_cmd;
pub mod man_pages;
pub mod postmortem_cmd;
pub mod preflight_cmd;
pub mod runtime;
pub mod silence_cmd;
pub mod store_cmd;
