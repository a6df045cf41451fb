//! `lookout silence add|list|expire`: silences in the store. Alerts matching every matcher of a silence in force
//! are recorded but not sent; `lookout run` reads silences each time it is about to send, so a silence added
//! from here takes effect at once, even for messages already waiting.
//!
//! Exit codes: 0 done, 1 nothing to expire, 2 usage error.

use std::path::Path;

use anyhow::Context;
use lookout_app::silences::SilenceRequest;
use lookout_config::Config;
use lookout_core::{Timestamp, format_duration};
use lookout_store::{OutboxStore, Store};

use lookout_core::text::one_line;

pub enum Action {
    Add { matchers: Vec<String>, duration: Option<String>, start: Option<String>, comment: String, by: String },
    List { all: bool, json: bool },
    Expire { id: i64 },
}

fn time_arg(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    let secs = lookout_logs::time::parse_user_time(value).with_context(|| {
        format!("{flag} {value:?} is not a time; write e.g. 2026-11-25T14:00 or 2026-11-25T14:00:00Z (UTC)")
    })?;
    Ok(Timestamp::from_millis(secs.saturating_mul(1000)))
}

pub async fn run(config: &Path, action: Action, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let config = Config::load_without_secrets(config)?;
    let store = lookout_store::open(&config.store).await?;
    let now = Timestamp::now();
    match action {
        Action::Add { matchers, duration, start, comment, by } => {
            let starts_at = start.as_deref().map(|s| time_arg("--start", s)).transpose()?.unwrap_or(now);
            let silence = SilenceRequest { matchers, starts_at, duration, comment, by }.validate()?;
            let id = store.add_silence(silence.clone()).await?;
            writeln!(
                out,
                "Silence #{id} ({}) from {} until {} ({}), by {}: {}",
                silence.matchers.join(" "),
                starts_at.to_rfc3339_seconds(),
                silence.ends_at.to_rfc3339_seconds(),
                format_duration(silence.ends_at.since(starts_at)),
                one_line(&silence.created_by),
                one_line(&silence.comment)
            )?;
            Ok(0)
        }
        Action::List { all, json } => {
            let silences = store.silences(all, now).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&silences)?)?;
            } else if silences.is_empty() {
                writeln!(out, "No silences in force.")?;
            } else {
                writeln!(
                    out,
                    "{:<5} {:<9} {:<21} {:<21} {:<12} MATCHERS — COMMENT",
                    "ID", "STATE", "STARTS (UTC)", "ENDS (UTC)", "BY"
                )?;
                for s in &silences {
                    let state = match (s.active(now), s.expired_at.is_some(), s.starts_at > now) {
                        (true, _, _) => "active",
                        (false, true, _) => "expired",
                        (false, false, true) => "pending",
                        _ => "ended",
                    };
                    writeln!(
                        out,
                        "{:<5} {:<9} {:<21} {:<21} {:<12} {} — {}",
                        format!("#{}", s.id),
                        state,
                        s.starts_at.to_rfc3339_seconds(),
                        s.ends_at.to_rfc3339_seconds(),
                        one_line(&s.created_by),
                        one_line(&s.matchers.join(" ")),
                        one_line(&s.comment)
                    )?;
                }
            }
            Ok(0)
        }
        Action::Expire { id } => {
            if store.expire_silence(id, now).await? {
                writeln!(out, "Silence #{id} expired: matching alerts are sent again.")?;
                Ok(0)
            } else {
                eprintln!("no silence #{id} in force; `lookout silence list --all` shows them all");
                Ok(1)
            }
        }
    }
}
