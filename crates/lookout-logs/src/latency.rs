//! Request durations (`%D`/`%T`) per minute of the log's own clock, closed into percentiles once the minute is
//! over: the access log's latency as the server page charts it (`LATENCY_P50/P95/P99` readings of the source).
//!
//! Why per minute of the line's time and not of reading: a backlog read at once still lands in the minutes it
//! happened in. A minute closes [`GRACE`] after it ended (lines are written when a request *ends*, so a slow
//! request of 12:00:59 can appear after one of 12:01:02); a line later than that is counted in the window's
//! alerts but not in its minute's percentiles. Histograms keep memory flat however busy a minute is (2
//! significant digits: a percentile is within 1 % of the exact one).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use lookout_core::MinuteLatency;

/// How long after its end a minute stays open for late lines.
pub const GRACE_SECS: i64 = 10;
/// Minutes open at once at most (a backlog spanning hours closes the oldest at once).
const MAX_OPEN: usize = 8;
/// The longest duration recorded (an hour, in µs); longer ones count as an hour.
const MAX_US: u64 = 3_600_000_000;

/// The open minutes' durations.
#[derive(Debug, Default)]
pub struct PerMinute {
    open: BTreeMap<i64, Histogram<u64>>,
    closed: Vec<MinuteLatency>,
}

impl PerMinute {
    /// Records one request of `minute` (unix seconds of the minute's start) that took `us` µs.
    pub fn record(&mut self, minute: i64, us: u64) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.open.entry(minute) {
            let Ok(h) = Histogram::new_with_bounds(1, MAX_US, 2) else { return };
            e.insert(h);
            while self.open.len() > MAX_OPEN {
                let Some((m, h)) = self.open.pop_first() else { break };
                self.closed.extend(percentiles(m, &h));
            }
        }
        if let Some(h) = self.open.get_mut(&minute) {
            let _ = h.record(us.clamp(1, MAX_US));
        }
    }

    /// The minutes over by `now_sec` (plus [`GRACE_SECS`]), oldest first, with their percentiles; they are
    /// forgotten.
    pub fn close(&mut self, now_sec: i64) -> Vec<MinuteLatency> {
        let mut out = std::mem::take(&mut self.closed);
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() + 60 + GRACE_SECS > now_sec {
                break;
            }
            let (m, h) = entry.remove_entry();
            out.extend(percentiles(m, &h));
        }
        out
    }
}

fn percentiles(minute: i64, h: &Histogram<u64>) -> Option<MinuteLatency> {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    (!h.is_empty()).then(|| MinuteLatency {
        minute,
        requests: h.len(),
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_closes_after_its_grace_with_its_own_percentiles() {
        let mut m = PerMinute::default();
        // 12:00: 1..=100 ms; 12:01: a slow tail.
        for i in 1..=100 {
            m.record(720, i * 1000);
        }
        m.record(780, 2_000_000);
        assert!(m.close(720 + 60 + GRACE_SECS - 1).is_empty(), "still open for late lines");
        m.record(720, 100_000); // late, within the grace
        let closed = m.close(720 + 60 + GRACE_SECS);
        assert_eq!(closed.len(), 1);
        let c = &closed[0];
        assert_eq!((c.minute, c.requests), (720, 101));
        assert!((c.p50_ms - 51.0).abs() <= 1.0 && (c.p95_ms - 96.0).abs() <= 1.0, "{c:?}");
        assert!((c.p99_ms - 100.0).abs() <= 1.0, "{c:?}");
        let next = m.close(780 + 60 + GRACE_SECS);
        assert_eq!(next[0].minute, 780);
        assert!((next[0].p50_ms - 2000.0).abs() <= 20.0, "within 1 %: {next:?}");
        assert!(m.close(i64::MAX / 2).is_empty(), "forgotten once closed");
    }

    #[test]
    fn a_backlog_of_many_minutes_keeps_few_open() {
        let mut m = PerMinute::default();
        for minute in 0..100 {
            m.record(minute * 60, 5_000);
        }
        assert!(m.open.len() <= MAX_OPEN);
        let closed = m.close(100 * 60 + GRACE_SECS);
        assert_eq!(closed.iter().map(|c| c.minute).collect::<Vec<_>>(), (0..100).map(|i| i * 60).collect::<Vec<_>>());
        assert!(closed.iter().all(|c| c.requests == 1 && (c.p50_ms - 5.0).abs() < 0.1));
    }
}
