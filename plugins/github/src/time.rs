//! Timestamps without a date library or a clock.
//!
//! The plugin compares GitHub's `created_at` with the host's `since` (both RFC 3339)
//! and turns `x-ratelimit-reset` (epoch seconds) into a delay using the response's own
//! `Date` header. Doing this by hand keeps the component free of `wasi:clocks` and of a
//! date crate for the three formats it needs.

/// A point in time with nanosecond precision, ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    secs: i64,
    nanos: u32,
}

#[cfg(test)]
impl Timestamp {
    /// Seconds since the Unix epoch (negative before 1970).
    pub(crate) fn unix_seconds(self) -> i64 {
        self.secs
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), so no calendar tables are needed.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Parses exactly `n` ASCII digits at the start of `s`.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

fn expect(s: &str, c: char) -> Option<&str> {
    s.strip_prefix(c)
}

/// Builds a timestamp from calendar fields, validating each range.
fn from_fields(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second; it sorts with the second before it, which is all we need.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        days * 86_400
            + i64::from(hour) * 3_600
            + i64::from(minute) * 60
            + i64::from(second.min(59)),
    )
}

/// Parses an RFC 3339 timestamp (`2025-11-20T09:14:03Z`, `2025-11-20T18:14:03.5+09:00`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let (year, rest) = digits(s, 4)?;
    let (month, rest) = digits(expect(rest, '-')?, 2)?;
    let (day, rest) = digits(expect(rest, '-')?, 2)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (hour, rest) = digits(rest, 2)?;
    let (minute, rest) = digits(expect(rest, ':')?, 2)?;
    let (second, mut rest) = digits(expect(rest, ':')?, 2)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        // Keep nanosecond precision; further digits cannot change the order we need.
        for (i, b) in frac.bytes().take(len).enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(b - b'0');
            }
        }
        nanos *= 10u32.pow(9u32.saturating_sub(u32::try_from(len).unwrap_or(9)));
        rest = &frac[len..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, r) = digits(&rest[1..], 2)?;
            let (om, r) = digits(expect(r, ':')?, 2)?;
            if !r.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            sign * (i64::from(oh) * 3_600 + i64::from(om) * 60)
        }
    };
    let local = from_fields(i64::from(year), month, day, hour, minute, second)?;
    Some(Timestamp {
        secs: local - offset_secs,
        nanos,
    })
}

/// Parses an HTTP `Date` header in IMF-fixdate form (`Thu, 20 Nov 2025 09:14:03 GMT`),
/// the only form servers may send (RFC 9110 §5.6.7), into Unix seconds.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let (_weekday, rest) = s.trim().split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    let (hour, r) = digits(time, 2)?;
    let (minute, r) = digits(expect(r, ':')?, 2)?;
    let (second, r) = digits(expect(r, ':')?, 2)?;
    if !r.is_empty() {
        return None;
    }
    from_fields(year, month, day, hour, minute, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(ts("1970-01-01T00:00:00Z").unix_seconds(), 0);
        assert_eq!(ts("2025-11-20T09:14:03Z").unix_seconds(), 1_763_630_043);
        assert_eq!(ts("2000-02-29T12:00:00Z").unix_seconds(), 951_825_600);
        assert_eq!(ts("1969-12-31T23:59:59Z").unix_seconds(), -1);
    }

    #[test]
    fn offsets_and_fractions_compare_chronologically() {
        assert_eq!(ts("2025-11-20T18:14:03+09:00"), ts("2025-11-20T09:14:03Z"));
        assert_eq!(ts("2025-11-20T04:14:03-05:00"), ts("2025-11-20T09:14:03z"));
        assert!(ts("2025-11-20T09:14:03.5Z") > ts("2025-11-20T09:14:03Z"));
        assert!(ts("2025-11-20T09:14:03.000000001Z") > ts("2025-11-20T09:14:03Z"));
        assert_eq!(
            ts("2025-11-20 09:14:03.250Z"),
            ts("2025-11-20T09:14:03.25Z")
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2025-11-20",
            "2025-11-20T09:14:03",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-11-20T24:00:00Z",
            "2025-11-20T09:14:03.Z",
            "2025-11-20T09:14:03+0900",
            "2025-11-20T09:14:03Zjunk",
            "２０２５-11-20T09:14:03Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Thu, 20 Nov 2025 09:14:03 GMT"),
            Some(1_763_630_043)
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    }
}
