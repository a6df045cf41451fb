//! Maintenance windows in a time zone: one-off (`start` to `end`, wall-clock times in the zone) or recurring (a
//! cron expression — minute hour day-of-month month day-of-week — for the starts, and a duration). Pure: the
//! zone is loaded once, at configuration time, and `active(now)` only computes.
//!
//! Daylight-saving time: a recurring start is a wall-clock time, and the duration is elapsed time. A start that
//! does not exist on the day clocks spring forward is skipped that day; one that happens twice when they fall
//! back opens the window twice (so it lasts an hour longer). One-off times that fall in a gap or a fold resolve
//! the way RFC 5545 does (jiff's "compatible": later for a gap, earlier for a fold).

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use lookout_core::Timestamp;

/// Longest recurring window: checking one is a walk back over its minutes.
pub const MAX_RECURRING: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub enum Schedule {
    Once { start: Timestamp, end: Timestamp },
    Recurring { cron: Cron, duration: Duration, tz: TimeZone },
}

impl Schedule {
    /// A one-off window between two wall-clock times (`2026-11-28T02:00`) in `tz`.
    pub fn once(start: &str, end: &str, tz: &TimeZone) -> Result<Schedule, String> {
        let at = |s: &str| -> Result<Timestamp, String> {
            let civil: DateTime =
                s.parse().map_err(|e| format!("{s:?} is not a date and time like 2026-11-28T02:00: {e}"))?;
            let zoned = civil.to_zoned(tz.clone()).map_err(|e| format!("{s:?}: {e}"))?;
            Ok(Timestamp::from_millis(zoned.timestamp().as_millisecond()))
        };
        let (start, end) = (at(start)?, at(end)?);
        if end <= start {
            return Err("the window ends before it starts".into());
        }
        Ok(Schedule::Once { start, end })
    }

    pub fn active(&self, now: Timestamp) -> bool {
        match self {
            Schedule::Once { start, end } => *start <= now && now < *end,
            Schedule::Recurring { cron, duration, tz } => {
                let minute_ms = 60_000;
                let newest = now.as_millis().div_euclid(minute_ms) * minute_ms;
                let oldest = now.as_millis() - duration.as_millis().min(MAX_RECURRING.as_millis()) as i64;
                let mut start = newest;
                while start > oldest {
                    if let Ok(ts) = jiff::Timestamp::from_millisecond(start)
                        && cron.matches(&ts.to_zoned(tz.clone()).datetime())
                    {
                        return true;
                    }
                    start -= minute_ms;
                }
                false
            }
        }
    }
}

/// A five-field cron expression: `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`; months and
/// weekdays also by name (JAN, SUN). When both day fields are restricted, either may match (as in cron).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields.as_slice() else {
            return Err(format!(
                "{text:?} is not a cron expression: write five fields, minute hour day-of-month month day-of-week, e.g. \"0 2 * * SUN\""
            ));
        };
        let minutes = field(m, 0, 59, &[], "minute")?;
        let hours = field(h, 0, 23, &[], "hour")? as u32;
        let days = field(dom, 1, 31, &[], "day of month")? as u32;
        let months = field(mon, 1, 12, &MONTHS, "month")? as u16;
        let mut weekdays = field(dow, 0, 7, &WEEKDAYS, "day of week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted: *dom != "*",
            weekdays_restricted: *dow != "*",
        })
    }

    pub fn matches(&self, t: &DateTime) -> bool {
        let bit = |mask: u64, v: i64| (0..64).contains(&v) && mask & (1 << v) != 0;
        let day = bit(u64::from(self.days), i64::from(t.day()));
        let weekday = bit(u64::from(self.weekdays), i64::from(t.weekday().to_sunday_zero_offset()));
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        };
        bit(self.minutes, i64::from(t.minute()))
            && bit(u64::from(self.hours), i64::from(t.hour()))
            && bit(u64::from(self.months), i64::from(t.month()))
            && day_ok
    }
}

/// One cron field as a bit mask of allowed values.
fn field(text: &str, lo: u32, hi: u32, names: &[&str], what: &str) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            // Month names count from 1, weekday names from 0.
            return Ok(i as u32 + if lo == 1 { 1 } else { 0 });
        }
        s.parse::<u32>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| format!("{s:?} is not a valid {what} ({lo}-{hi})"))
    };
    let mut mask = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| format!("{s:?} is not a step"))?)
            }
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if a > b {
            return Err(format!("{part:?}: the {what} range runs backwards"));
        }
        let mut v = a;
        while v <= b {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        let ts: jiff::Timestamp = s.parse().unwrap();
        Timestamp::from_millis(ts.as_millisecond())
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn recurring(cron: &str, hours: u64) -> Schedule {
        Schedule::Recurring {
            cron: Cron::parse(cron).unwrap(),
            duration: Duration::from_secs(hours * 3600),
            tz: berlin(),
        }
    }

    #[test]
    fn a_weekly_window_in_a_time_zone() {
        // Sundays 02:00-04:00 Berlin time (CET in November: UTC+1).
        let w = recurring("0 2 * * SUN", 2);
        assert!(!w.active(utc("2026-11-29T00:59:59Z")), "01:59:59 CET");
        assert!(w.active(utc("2026-11-29T01:00:00Z")), "02:00 CET");
        assert!(w.active(utc("2026-11-29T02:59:59Z")), "03:59:59 CET");
        assert!(!w.active(utc("2026-11-29T03:00:00Z")), "04:00 CET");
        assert!(!w.active(utc("2026-11-30T01:30:00Z")), "a Monday");
    }

    #[test]
    fn a_window_spanning_the_autumn_dst_change_lasts_its_duration_in_elapsed_time() {
        // 2026-10-25: at 03:00 CEST clocks go back to 02:00 CET. A window from 01:00 for 3 h starts at 01:00 CEST
        // (23:00 UTC) and ends three real hours later, at 02:00 UTC = 03:00 CET.
        let w = recurring("0 1 * * *", 3);
        assert!(w.active(utc("2026-10-24T23:00:00Z")));
        assert!(w.active(utc("2026-10-25T01:30:00Z")), "02:30 CET, the second 02:30 of the night");
        assert!(w.active(utc("2026-10-25T01:59:00Z")));
        assert!(!w.active(utc("2026-10-25T02:00:00Z")), "03:00 CET: three hours have passed");
        // A start inside the repeated hour happens twice: the window opens at the first and again at the second.
        let twice = recurring("30 2 * * *", 1);
        assert!(twice.active(utc("2026-10-25T00:45:00Z")), "02:45 CEST");
        assert!(twice.active(utc("2026-10-25T01:45:00Z")), "02:45 CET");
        assert!(!twice.active(utc("2026-10-25T02:31:00Z")));
    }

    #[test]
    fn a_start_in_the_spring_gap_is_skipped_that_day() {
        // 2026-03-29: at 02:00 CET clocks jump to 03:00 CEST; 02:30 does not exist.
        let w = recurring("30 2 * * *", 1);
        assert!(w.active(utc("2026-03-28T01:45:00Z")), "the day before: 02:45 CET");
        assert!(!w.active(utc("2026-03-29T00:45:00Z")), "no 02:30 that day (01:45 CET)");
        assert!(!w.active(utc("2026-03-29T01:15:00Z")), "03:15 CEST");
        assert!(w.active(utc("2026-03-30T00:45:00Z")), "the day after: 02:45 CEST");
    }

    #[test]
    fn a_one_off_window_in_wall_clock_time() {
        let w = Schedule::once("2026-11-28T02:00", "2026-11-28T04:00", &berlin()).unwrap();
        assert!(!w.active(utc("2026-11-28T00:59:59Z")));
        assert!(w.active(utc("2026-11-28T01:00:00Z")));
        assert!(!w.active(utc("2026-11-28T03:00:00Z")));
        assert!(Schedule::once("2026-11-28T04:00", "2026-11-28T02:00", &berlin()).is_err());
        assert!(
            Schedule::once("tomorrow", "2026-11-28T02:00", &berlin())
                .unwrap_err()
                .starts_with("\"tomorrow\" is not a date")
        );
    }

    #[test]
    fn cron_fields() {
        let c = Cron::parse("*/15 9-17 * JAN-MAR MON-FRI").unwrap();
        let t = |s: &str| -> DateTime { s.parse().unwrap() };
        assert!(c.matches(&t("2026-02-03T09:45")), "a Tuesday");
        assert!(!c.matches(&t("2026-02-03T09:44")));
        assert!(!c.matches(&t("2026-02-07T10:00")), "a Saturday");
        assert!(!c.matches(&t("2026-04-07T10:00")), "April");
        let either = Cron::parse("0 0 1 * 7").unwrap();
        assert!(either.matches(&t("2026-11-01T00:00")) && either.matches(&t("2026-11-08T00:00")), "1st or Sunday");
        assert!(!either.matches(&t("2026-11-02T00:00")));
        assert_eq!(
            Cron::parse("0 2 * *").unwrap_err(),
            "\"0 2 * *\" is not a cron expression: write five fields, minute hour day-of-month month day-of-week, e.g. \"0 2 * * SUN\""
        );
        assert_eq!(Cron::parse("0 25 * * *").unwrap_err(), "\"25\" is not a valid hour (0-23)");
        assert_eq!(Cron::parse("0 5-2 * * *").unwrap_err(), "\"5-2\": the hour range runs backwards");
    }
}
