//! `lookout incidents`: list, show, acknowledge, annotate and resolve incidents in the store. Works while
//! `lookout run` runs: every change names the revision it read, and the store refuses it if the incident changed
//! meanwhile (the command then reads it again and retries).
//!
//! Exit codes: 0 done, 1 refused (already acknowledged or resolved), 2 usage error or no such incident.

use std::fmt::Write as _;
use std::path::Path;

use lookout_app::incidents::{self, ChangeError, IncidentView, change};
use lookout_config::Config;
use lookout_core::text::{one_line, truncate};
use lookout_core::{Incident, IncidentStatus, Timestamp, format_duration};
use lookout_store::Store;

pub enum Action {
    List { json: bool, limit: usize },
    Show { id: String, json: bool },
    Ack { id: String, by: String },
    Note { id: String, text: String, by: String },
    Resolve { id: String, note: Option<String>, by: String },
}

/// Who did it when `--by` is not given: `$USER`, else the name of the user running it (cron and systemd leave
/// `$USER` unset), else the uid.
pub fn default_actor() -> String {
    std::env::var("USER").ok().filter(|u| !u.trim().is_empty()).or_else(login).unwrap_or_else(|| "cli".into())
}

fn login() -> Option<String> {
    // The owner of /proc/self is this process's user.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").ok()?);
    Some(lookout_diagnose::hints::user_name(uid).unwrap_or_else(|| format!("uid {uid}")))
}

pub async fn run(config: &Path, action: Action, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    let config = Config::load_without_secrets(config)?;
    let store = lookout_store::open(&config.store).await?;
    let now = Timestamp::now();
    let result: Result<String, ChangeError> = match action {
        Action::List { json, limit } => {
            let incidents = store.incidents(limit).await?;
            Ok(if json {
                format!("{}\n", serde_json::to_string_pretty(&incidents)?)
            } else {
                list_table(&incidents, now)
            })
        }
        Action::Show { id, json } => match incidents::load(&store, &config, &id, now).await? {
            None => Err(ChangeError::NotFound(id)),
            Some(view) if json => Ok(format!("{}\n", serde_json::to_string_pretty(&view)?)),
            Some(view) => Ok(show_text(&view)),
        },
        Action::Ack { id, by } => change(&store, &id, |i| lookout_engine::incident::acknowledge(i, &by, now))
            .await
            .map(|c| format!("Acknowledged {} as {}.\n", c.incident.id, one_line(&by))),
        Action::Note { id, text, by } => change(&store, &id, |i| lookout_engine::incident::note(i, &by, &text, now))
            .await
            .map(|c| format!("Noted on {}.\n", c.incident.id)),
        Action::Resolve { id, note, by } => {
            change(&store, &id, |i| lookout_engine::incident::resolve_by_hand(i, &by, note.as_deref(), now)).await.map(
                |c| {
                    let firing = c.incident.alerts.iter().filter(|a| a.resolved_at.is_none()).count();
                    let mut s = format!("Resolved {} as {}.", c.incident.id, one_line(&by));
                    if firing > 0 {
                        let _ = write!(
                            s,
                            " {firing} alert(s) still fire: a new failure of the group opens a new incident."
                        );
                    }
                    s.push('\n');
                    s
                },
            )
        }
    };
    match result {
        Ok(text) => {
            out.write_all(text.as_bytes())?;
            Ok(0)
        }
        Err(e @ ChangeError::Refused(_)) => {
            eprintln!("refused: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

fn duration_of(i: &Incident, now: Timestamp) -> String {
    format_duration(std::time::Duration::from_secs(i.resolved_at.unwrap_or(now).since(i.first_failure_at).as_secs()))
}

fn list_table(incidents: &[Incident], now: Timestamp) -> String {
    if incidents.is_empty() {
        return "No incidents yet.\n".into();
    }
    let mut s = String::new();
    let _ = writeln!(s, "{:<28} {:<9} {:<21} {:>9}  {:<12} TITLE", "ID", "STATUS", "OPENED (UTC)", "DURATION", "ACK");
    for i in incidents {
        let ack = i.ack.as_ref().map_or("-".to_string(), |a| one_line(&a.by));
        let title = truncate(&one_line(&i.title()), 100);
        let _ = writeln!(
            s,
            "{:<28} {:<9} {:<21} {:>9}  {:<12} {title}",
            i.id,
            i.status.as_str(),
            i.opened_at.to_rfc3339_seconds(),
            duration_of(i, now),
            ack
        );
    }
    s
}

fn show_text(v: &IncidentView) -> String {
    let i = &v.incident;
    let mut s = String::new();
    let state = match (i.status, &i.resolved_by) {
        (IncidentStatus::Open, _) => "OPEN".to_string(),
        (IncidentStatus::Resolved, Some(by)) => format!("RESOLVED by hand by {}", one_line(by)),
        (IncidentStatus::Resolved, None) => "RESOLVED".to_string(),
    };
    let _ = writeln!(s, "Incident {} — {state}", i.id);
    let _ = writeln!(s, "{}", one_line(&i.title()));
    let _ = writeln!(s, "Group:         {}", i.group);
    let _ = writeln!(s, "First failure: {}", i.first_failure_at.to_rfc3339_seconds());
    let _ = writeln!(
        s,
        "Alerted:       {} ({} later)",
        i.opened_at.to_rfc3339_seconds(),
        format_duration(v.impact.time_to_alert())
    );
    if let Some(at) = i.resolved_at {
        let _ =
            writeln!(s, "Resolved:      {} (lasted {})", at.to_rfc3339_seconds(), format_duration(v.impact.duration()));
    }
    if let Some(a) = &i.ack {
        let _ = writeln!(s, "Acknowledged:  by {} at {}", one_line(&a.by), a.at.to_rfc3339_seconds());
    }
    for (a, d) in i.diagnoses() {
        let _ = writeln!(s, "Diagnosis ({}): {}", a.target, one_line(&d.verdict));
    }
    let _ = writeln!(s, "\nImpact:");
    for line in v.impact.lines() {
        let _ = writeln!(s, "  {}", one_line(&line));
    }
    if v.impact.requests.is_empty() && v.impact.probes.is_empty() {
        let _ = writeln!(s, "  nothing measured (no access log or probe results for the incident's window)");
    }
    let _ = writeln!(s, "\nTimeline (UTC):");
    for e in &v.timeline {
        let by = e.by.as_deref().map(|b| format!(" [{}]", one_line(b))).unwrap_or_default();
        let _ = writeln!(s, "  {}  {:<14} {}{by}", e.at.to_rfc3339_seconds(), e.kind.as_str(), one_line(&e.text));
    }
    s
}
