//! The server's readings around an incident: which saturation or resource curves crossed their warning level in
//! its window ("apache-status: WORKER_SATURATION at or above 80 % from 12:03 to 12:09, peak 100.0 % at 12:05"),
//! for the incident page and the postmortem draft; and which targets read something, each once (a warning level and
//! its critical twin read the same page), for them and the server page.

use lookout_config::{Check, Target};
use lookout_core::Timestamp;
use lookout_engine::condition::Unit;
use lookout_store::{ReadingBucket, Store, StoreError};

/// A reading that was notable in a window: its points, and a sentence saying when and how high.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub target: String,
    pub reading: &'static str,
    pub unit: Unit,
    pub points: Vec<ReadingBucket>,
    pub from: Timestamp,
    pub to: Timestamp,
    /// When it first crossed the level: where the sentence goes in a timeline.
    pub crossed: Timestamp,
    pub sentence: String,
}

/// The level at which a reading is worth showing beside an incident.
fn notable_level(reading: &str, unit: Unit) -> Option<f64> {
    match (reading, unit) {
        (_, Unit::Ratio) => Some(0.8),
        ("LISTEN_QUEUE", _) => Some(0.5),
        _ => None,
    }
}

/// The targets that read something (status pages, the host, processes), each once, with the names of every target
/// reading the same (a warning and its critical twin): the first is the one charted.
pub fn charted(targets: &[Target]) -> Vec<(&Target, Vec<&str>)> {
    let mut out: Vec<(&Target, Vec<&str>)> = Vec::new();
    for t in targets.iter().filter(|t| matches!(t.check, Check::Status(_) | Check::Host(_))) {
        // One machine's levels of one check share a chart; two machines' memory are two.
        let key = format!("{:?}{:?}", t.machine, t.check);
        match out.iter_mut().find(|(c, _)| format!("{:?}{:?}", c.machine, c.check) == key) {
            Some((_, names)) => names.push(&t.name),
            None => out.push((t, vec![&t.name])),
        }
    }
    out
}

/// The curves of `targets` that reached their notable level between `from` and `to`, 60 points each.
pub async fn notable<S: Store>(
    store: &S,
    targets: &[Target],
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Curve>, StoreError> {
    let bucket = ((to.0 - from.0) / 60).max(1000);
    let mut out = Vec::new();
    for (target, _) in charted(targets) {
        let readings = store.readings_between(target.name.clone(), from, to, bucket).await?;
        for (reading, unit, _) in lookout_engine::READINGS {
            let Some(level) = notable_level(reading, *unit) else { continue };
            let points: Vec<ReadingBucket> = readings.iter().filter(|b| b.name == *reading).cloned().collect();
            let above: Vec<&ReadingBucket> = points.iter().filter(|b| b.max >= level).collect();
            let (Some(first), Some(last)) = (above.first(), above.last()) else { continue };
            let peak = above.iter().copied().max_by(|a, b| a.max.total_cmp(&b.max)).unwrap_or(first);
            let show = |v: f64| match unit {
                Unit::Ratio => format!("{:.1} %", v * 100.0),
                _ => format!("{v:.0}"),
            };
            let threshold = match unit {
                Unit::Ratio => format!("{:.0} %", level * 100.0),
                _ => "1".to_string(),
            };
            let end = Timestamp(last.start.0 + bucket);
            // A short window is told to the second.
            let time = |t: Timestamp| if bucket < 60_000 { hh_mm_ss(t) } else { hh_mm(t) };
            let sentence = format!(
                "{}: {reading} at or above {threshold} from {} to {} UTC (peak {} at {})",
                target.name,
                time(first.start),
                time(end.min(to)),
                show(peak.max),
                time(peak.start)
            );
            out.push(Curve {
                target: target.name.clone(),
                reading,
                unit: *unit,
                crossed: first.start,
                points,
                from,
                to,
                sentence,
            });
        }
    }
    Ok(out)
}

/// `12:03` (UTC).
pub fn hh_mm(t: Timestamp) -> String {
    let minutes = t.0.div_euclid(60_000).rem_euclid(1440);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `12:03:07` (UTC).
pub fn hh_mm_ss(t: Timestamp) -> String {
    let seconds = t.0.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_store::{Reading, Record};

    #[tokio::test]
    async fn a_saturated_pool_is_said_with_when_and_how_high_and_a_quiet_reading_is_left_out() {
        let store = lookout_store::AnyStore::in_memory().unwrap();
        let config = lookout_config::Config::parse(
            "[[status]]\nname = \"apache\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/server-status\"\n",
            std::path::Path::new("lookout.toml"),
            &|_| None,
        )
        .unwrap();
        // 12:00 to 12:10, a reading every 10 s: saturated from 12:03 to 12:06 (peaking at 12:05), idle workers few.
        let t0 = 1_796_126_400_000; // 2026-12-01T12:00:00Z
        let mut records = Vec::new();
        for i in 0..60 {
            let at = Timestamp(t0 + i * 10_000);
            let saturation = match i {
                18..=35 if i == 30 => 1.0,
                18..=35 => 0.9,
                _ => 0.2,
            };
            let r = |name: &str, value: f64| Reading { target: "apache".into(), at, name: name.into(), value };
            records.push(Record {
                readings: vec![r("WORKER_SATURATION", saturation), r("IDLE_WORKERS", 3.0)],
                ..Record::default()
            });
        }
        store.record_all(records).await.unwrap();
        let curves = notable(&store, &config.targets, Timestamp(t0), Timestamp(t0 + 600_000)).await.unwrap();
        assert_eq!(curves.len(), 1, "{curves:?}");
        assert_eq!(
            curves[0].sentence,
            "apache: WORKER_SATURATION at or above 80 % from 12:03:00 to 12:06:00 UTC (peak 100.0 % at 12:05:00)"
        );
        assert_eq!(curves[0].crossed, Timestamp(t0 + 180_000));
        assert_eq!(charted(&config.targets).len(), 1, "apache and apache-critical read the same page");
    }
}
