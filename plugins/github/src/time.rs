//! Timestamps without a clock.
//!
//! The plugin compares GitHub's `created_at` with the host's `since` (both RFC 3339)
//! and turns `x-ratelimit-reset` (epoch seconds) into a delay using the response's own
//! `Date` header, so the component never reads `wasi:clocks`. chrono (without its
//! `clock` feature) parses RFC 3339 and httpdate parses the `Date` header.

use std::time::UNIX_EPOCH;

use chrono::{DateTime, Utc};

/// A point in time with nanosecond precision, ordered chronologically.
pub(crate) type Timestamp = DateTime<Utc>;

/// Parses an RFC 3339 timestamp (`2025-11-20T09:14:03Z`, `2025-11-20T18:14:03.5+09:00`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses an HTTP `Date` header in IMF-fixdate form (`Thu, 20 Nov 2025 09:14:03 GMT`),
/// the only form servers may send (RFC 9110 §5.6.7), into Unix seconds.
///
/// httpdate also reads the obsolete RFC 850 and asctime forms; they are refused as before
/// by length, since an IMF-fixdate is always exactly 29 bytes and they never are.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    const IMF_FIXDATE_LEN: usize = "Sun, 06 Nov 1994 08:49:37 GMT".len();
    let s = s.trim();
    if s.len() != IMF_FIXDATE_LEN {
        return None;
    }
    let at = httpdate::parse_http_date(s).ok()?;
    i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(ts("1970-01-01T00:00:00Z").timestamp(), 0);
        assert_eq!(ts("2025-11-20T09:14:03Z").timestamp(), 1_763_630_043);
        assert_eq!(ts("2000-02-29T12:00:00Z").timestamp(), 951_825_600);
        assert_eq!(ts("1969-12-31T23:59:59Z").timestamp(), -1);
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
