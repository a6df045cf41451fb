//! lookout's integration tests, one binary (built once): every test talks to real servers on 127.0.0.1 and,
//! where it says so, to the real `lookout` executable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod agents;
mod agents_locations;
mod agents_machines;
mod agents_outage;
mod apache_live;
mod architecture;
mod basic_auth;
mod browser;
mod channels;
mod check_cli;
mod crawl;
mod demo;
mod diagnose_apache_fpm;
mod diagnose_cli;
mod diagnose_fpm;
mod diagnose_fpm_stack;
mod diagnose_php_logs;
mod diagnose_python;
mod dispatch;
mod host_resources;
mod incident_impact;
mod incidents_cli;
mod log_alerts;
mod log_faults;
mod logs_cli;
mod notify;
mod postmortem_cli;
mod preflight;
mod preflight_apps;
mod preflight_config;
mod preflight_formats;
mod probe_kinds;
mod probes;
mod run_daemon;
mod status_pages;
mod store_choice;
mod store_copy;
mod store_faults;
mod store_rollup;
mod version_cli;
mod web_api;
mod web_limits;
