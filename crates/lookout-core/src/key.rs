//! Idempotency keys: the one spelling of the keys receivers dedupe on, and that the outbox and the store find an
//! alert's messages by. `lookout/{alert}/{firing|resolved}` for a transition, `lookout/{alert}/firing/{n}` for the
//! `n`-th reminder, `lookout/group/{group}/{hash}` for a delivery of several messages.

use crate::TransitionKind;

const ROOT: &str = "lookout/";

/// The key of one transition of one alert.
pub fn transition(alert_id: &str, kind: TransitionKind) -> String {
    format!("{ROOT}{alert_id}/{kind}")
}

/// The key of the `n`-th reminder of a firing alert.
pub fn reminder(alert_id: &str, n: u32) -> String {
    format!("{}/{n}", firing(alert_id))
}

/// The firing message's key, and the prefix of its reminders' keys.
pub fn firing(alert_id: &str) -> String {
    transition(alert_id, TransitionKind::Firing)
}

/// The prefix every key of one alert starts with.
pub fn alert_prefix(alert_id: &str) -> String {
    format!("{ROOT}{alert_id}/")
}

/// The key of a delivery that carries several messages of one group (`hash` names its members).
pub fn group(group: &str, hash: u64) -> String {
    format!("{ROOT}group/{group}/{hash:016x}")
}

/// The alert a transition's or reminder's key belongs to; `None` for other keys (a group delivery's).
pub fn alert_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(ROOT)?;
    if let Some((_, hash)) = rest.strip_prefix("group/").and_then(|g| g.rsplit_once('/'))
        && hash.len() == 16
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let rest = match rest.rsplit_once('/') {
        Some((head, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => head,
        _ => rest,
    };
    let alert = rest.strip_suffix("/firing").or_else(|| rest.strip_suffix("/resolved"))?;
    (!alert.is_empty()).then_some(alert)
}

/// What a message key is, for people: `firing`, `resolved` or `reminder 2`.
pub fn describe(key: &str) -> String {
    let mut parts = key.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(n), Some("firing")) if n.parse::<u32>().is_ok() => format!("reminder {n}"),
        (Some(kind), _) => kind.to_string(),
        (None, _) => "alert".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_once_and_read_back() {
        assert_eq!(transition("site@5", TransitionKind::Firing), "lookout/site@5/firing");
        assert_eq!(transition("site@5", TransitionKind::Resolved), "lookout/site@5/resolved");
        assert_eq!(reminder("site@5", 2), "lookout/site@5/firing/2");
        assert!(reminder("site@5", 2).starts_with(&firing("site@5")));
        assert!(firing("site@5").starts_with(&alert_prefix("site@5")));
        assert!(!firing("site@50").starts_with(&alert_prefix("site@5")), "one alert's prefix is not another's");
        assert_eq!(group("shop", 255), "lookout/group/shop/00000000000000ff");
        assert_eq!(describe("lookout/site@5/firing"), "firing");
        assert_eq!(describe("lookout/site@5/resolved"), "resolved");
        assert_eq!(describe("lookout/site@5/firing/2"), "reminder 2");
        for key in [firing("a/b@5"), transition("a/b@5", TransitionKind::Resolved), reminder("a/b@5", 12)] {
            assert_eq!(alert_of(&key), Some("a/b@5"), "{key}");
        }
        assert_eq!(alert_of(&group("shop", 1)), None);
        assert_eq!(alert_of(&group("firing", 1)), None);
        assert_eq!(alert_of("lookout-store@1"), None);
        assert_eq!(alert_of("lookout//firing"), None);
    }
}
