//! Timestamps as web servers write them, parsed by position (no allocation, no format strings).

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm); valid for any year.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn month(b: &[u8]) -> Option<u32> {
    Some(match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

fn checked(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// `[25/Nov/2026:14:36:22 +0000]` (with or without brackets) → Unix seconds, UTC.
pub fn parse_clf(s: &[u8]) -> Option<i64> {
    let s = s.strip_prefix(b"[").unwrap_or(s);
    let s = s.strip_suffix(b"]").unwrap_or(s);
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' {
        return None;
    }
    let local = checked(
        num(&s[7..11])?,
        month(&s[3..6])?,
        num(&s[0..2])?,
        num(&s[12..14])?,
        num(&s[15..17])?,
        num(&s[18..20])?,
    )?;
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = i64::from(num(&s[22..24])? * 3600 + num(&s[24..26])? * 60);
    Some(local - sign * offset)
}

/// `Wed Nov 25 14:36:22.477068 2026` (Apache 2.4 error log; fraction optional) → Unix milliseconds, UTC.
pub fn parse_apache_error(s: &str) -> Option<i64> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let mo = month(parts.next()?.as_bytes())?;
    let d = num(parts.next()?.as_bytes())?;
    let clock = parts.next()?;
    let y = num(parts.next()?.as_bytes())?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':');
    let h = num(hms.next()?.as_bytes())?;
    let mi = num(hms.next()?.as_bytes())?;
    let sec = num(hms.next()?.as_bytes())?;
    let ms = if frac.is_empty() {
        0
    } else {
        num(frac.get(..3.min(frac.len()))?.as_bytes())? * 10u32.pow(3 - frac.len().min(3) as u32)
    };
    Some(checked(y, mo, d, h, mi, sec)? * 1000 + i64::from(ms))
}

/// `2026/11/25 14:36:22` (nginx error log, read as UTC) → Unix seconds.
pub fn parse_nginx_error(s: &[u8]) -> Option<i64> {
    if s.len() != 19 || s[4] != b'/' || s[7] != b'/' || s[10] != b' ' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    checked(num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?, num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 25), 20_782);
    }

    #[test]
    fn clf_times() {
        assert_eq!(parse_clf(b"[25/Nov/2026:14:36:22 +0000]"), Some(1_795_617_382));
        assert_eq!(parse_clf(b"25/Nov/2026:15:36:22 +0100"), Some(1_795_617_382));
        assert_eq!(parse_clf(b"[25/Nov/2026:09:06:22 -0530]"), Some(1_795_617_382));
        assert_eq!(parse_clf(b"[25/Foo/2026:14:36:22 +0000]"), None);
        assert_eq!(parse_clf(b"[25/Nov/2026:25:36:22 +0000]"), None);
        assert_eq!(parse_clf(b"[-"), None);
    }

    #[test]
    fn error_log_times() {
        assert_eq!(parse_apache_error("Wed Nov 25 14:36:22.477068 2026"), Some(1_795_617_382_477));
        assert_eq!(parse_apache_error("Wed Nov 25 14:36:22 2026"), Some(1_795_617_382_000));
        assert_eq!(parse_apache_error("Wed Nov 25 14:36:22.4 2026"), Some(1_795_617_382_400));
        assert_eq!(parse_apache_error("garbage"), None);
        assert_eq!(parse_apache_error("Wed Nov 25 14:36:22 999999999"), None, "years past 9999 would overflow");
        assert_eq!(parse_nginx_error(b"2026/11/25 14:36:22"), Some(1_795_617_382));
        assert_eq!(parse_nginx_error(b"2026/13/25 14:36:22"), None);
    }
}

/// A time given on the command line: `2026-11-25`, `2026-11-25T14:36`, `2026-11-25 14:36:22`, with an optional
/// trailing `Z` (always UTC) → Unix seconds.
pub fn parse_user_time(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, clock) = match s.split_once(['T', ' ']) {
        Some((d, c)) => (d, c),
        None => (s, "00:00:00"),
    };
    let mut d = date.split('-');
    let (y, mo, day) = (num(d.next()?.as_bytes())?, num(d.next()?.as_bytes())?, num(d.next()?.as_bytes())?);
    if d.next().is_some() {
        return None;
    }
    let mut c = clock.split(':');
    let h = num(c.next()?.as_bytes())?;
    let mi = num(c.next().unwrap_or("0").as_bytes())?;
    let sec = num(c.next().unwrap_or("0").split('.').next()?.as_bytes())?;
    checked(y, mo, day, h, mi, sec)
}

#[cfg(test)]
mod user_time_tests {
    use super::*;

    #[test]
    fn user_times() {
        assert_eq!(parse_user_time("2026-11-25T14:36:22Z"), Some(1_795_617_382));
        assert_eq!(parse_user_time("2026-11-25 14:36:22"), Some(1_795_617_382));
        assert_eq!(parse_user_time("2026-11-25T14:36"), Some(1_795_617_360));
        assert_eq!(parse_user_time("2026-11-25"), Some(1_795_564_800));
        assert_eq!(parse_user_time("yesterday"), None);
        assert_eq!(parse_user_time("2026-13-01"), None);
    }
}
