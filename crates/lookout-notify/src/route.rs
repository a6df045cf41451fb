//! Which channels get an alert, how long its group gathers and how often it is repeated: the `[[route]]`s in
//! order, first match wins unless it says `continue`; an alert no route takes goes to every channel.

use std::time::Duration;

use lookout_config::Route;
use lookout_config::policy_defaults::DEFAULT_REPEAT_INTERVAL;
use lookout_engine::all_match;

use crate::Notification;

/// One channel an alert goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub channel: String,
    /// `None`: the route sets none; the group's default applies.
    pub group_wait: Option<Duration>,
    pub repeat_interval: Duration,
}

pub fn destinations(n: &Notification, routes: &[Route], channels: &[String]) -> Vec<Destination> {
    let labels = crate::policy::labels(n);
    let mut out: Vec<Destination> = Vec::new();
    let mut matched = false;
    for r in routes {
        if !all_match(&r.matchers, &labels) {
            continue;
        }
        matched = true;
        for c in &r.channels {
            if !out.iter().any(|d| &d.channel == c) {
                out.push(Destination {
                    channel: c.clone(),
                    group_wait: r.group_wait,
                    repeat_interval: r.repeat_interval,
                });
            }
        }
        if !r.continue_matching {
            break;
        }
    }
    if !matched {
        out = channels
            .iter()
            .map(|c| Destination { channel: c.clone(), group_wait: None, repeat_interval: DEFAULT_REPEAT_INTERVAL })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_engine::Matcher;

    fn route(matchers: &[&str], channels: &[&str], cont: bool) -> Route {
        Route {
            matchers: matchers.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            channels: channels.iter().map(|c| c.to_string()).collect(),
            group_wait: Some(Duration::from_secs(30)),
            repeat_interval: Duration::from_secs(3600),
            continue_matching: cont,
        }
    }

    fn alert(target: &str, severity: &str) -> Notification {
        serde_json::from_value(serde_json::json!({
            "version": 1, "idempotency_key": "k", "alert_id": "a", "target": target, "state": "firing",
            "at": "2026-11-25T14:00:00.000Z", "since": null, "duration_seconds": null, "summary": "s",
            "reasons": [], "diagnosis": null, "last_result": null, "group": "shop", "severity": severity
        }))
        .unwrap()
    }

    #[test]
    fn first_match_wins_unless_it_continues_and_nothing_is_routed_nowhere() {
        let all = ["pager".to_string(), "chat".to_string(), "mail".to_string()];
        let routes = vec![
            route(&["severity=critical"], &["pager"], true),
            route(&["group=shop"], &["chat"], false),
            route(&[], &["mail"], false),
        ];
        let names =
            |n: &Notification| destinations(n, &routes, &all).into_iter().map(|d| d.channel).collect::<Vec<_>>();
        assert_eq!(names(&alert("web", "critical")), ["pager", "chat"], "continue goes on to the next match");
        assert_eq!(names(&alert("web", "warning")), ["chat"], "the first match stops");
        let mut other = alert("db", "info");
        other.group = "data".into();
        assert_eq!(names(&other), ["mail"], "the catch-all");
        assert_eq!(names(&other), ["mail"]);
        let only_pager = vec![route(&["severity=critical"], &["pager"], false)];
        let unrouted = destinations(&alert("web", "info"), &only_pager, &all);
        assert_eq!(unrouted.len(), 3, "no route takes it: every channel, never none");
        assert_eq!(unrouted[0].group_wait, None, "the group's default");
        let d = &destinations(&alert("web", "critical"), &only_pager, &all)[0];
        assert_eq!((d.group_wait, d.repeat_interval), (Some(Duration::from_secs(30)), Duration::from_secs(3600)));
    }
}
