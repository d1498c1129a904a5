//! `analytics` jobs named `daily-metrics`: drowl's API enqueues
//! `{startDate: "2024-01-01", endDate: "2024-01-31"}` (no plugin) to have the daily
//! rollups of those days recomputed. The host does it itself, in set-based SQL through
//! [`EventStore::compute_daily_metrics`](crate::storage::EventStore::compute_daily_metrics):
//! per day, source and event type the events and their distinct actors, active people
//! (accounts collapsed through active identity links), new identities, and keyword
//! mentions. Recomputing a range replaces its rows, so a retried or repeated job gives
//! the same rows.
//!
//! Bad input (a missing or mistyped date, dates out of order, a range longer than the
//! operator allows) fails for good with one line naming the field, since no retry can
//! mend it; a storage outage fails as retryable.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::model::{CompletedJob, FailedJob, JobFailure, JobRequest};
use crate::storage::{DayRange, Storage};

/// The `analytics` job name the host computes.
pub(crate) const DAILY_METRICS: &str = "daily-metrics";

/// How long a range a `daily-metrics` job may ask for, unless the operator says otherwise.
pub const DEFAULT_MAX_DAYS: u32 = 366;

/// What the operator decides about `daily-metrics` jobs (`serve --analytics-max-days`,
/// `--analytics-utc-offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsSettings {
    /// The longest range one job may recompute, in days: one job is one transaction,
    /// and a range of years would hold the rollup tables for long.
    pub max_days: u32,
    /// Seconds east of UTC at which days start (0: UTC days).
    pub utc_offset_seconds: i32,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            max_days: DEFAULT_MAX_DAYS,
            utc_offset_seconds: 0,
        }
    }
}

/// Reads a fixed UTC offset: `Z`, `UTC`, `+09:00`, `-05:30`, `+09`. Named zones are
/// refused: their days are not always 24 hours long, and SQLite has no zone database.
pub fn parse_utc_offset(text: &str) -> Result<i32, String> {
    let refuse = || {
        format!(
            "{text:?} is not a fixed UTC offset; write it like +09:00, -05:30 or Z \
             (named time zones are not supported)"
        )
    };
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(refuse()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(refuse());
    }
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| refuse())?,
        m.parse().map_err(|_| refuse())?,
    );
    if h > 14 || m > 59 || (h == 14 && m > 0) {
        return Err(refuse());
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// An offset in seconds as `+HH:MM`.
fn show_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// One required date field of the input, written `YYYY-MM-DD` as drowl's API sends it.
fn date_field(job: &JobRequest, field: &str) -> Result<NaiveDate, JobFailure> {
    let what = "a date written YYYY-MM-DD";
    match job.input.get(field) {
        None | Some(Value::Null) => Err(JobFailure::InvalidJob(format!(
            "daily-metrics jobs need `input.{field}` ({what})"
        ))),
        Some(Value::String(s)) => {
            // chrono alone would also take `2024-1-1`; drowl writes ISO dates.
            let iso = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
            match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) if iso => Ok(d),
                _ => Err(JobFailure::InvalidJob(format!(
                    "`input.{field}` {s:?} is not {what}"
                ))),
            }
        }
        Some(other) => Err(JobFailure::InvalidJob(format!(
            "`input.{field}` must be a string ({what}), not {other}"
        ))),
    }
}

/// The validated range: both dates, in order, no longer than the operator allows.
pub(crate) fn range(
    job: &JobRequest,
    settings: &AnalyticsSettings,
) -> Result<DayRange, JobFailure> {
    let first = date_field(job, "startDate")?;
    let last = date_field(job, "endDate")?;
    if last < first {
        return Err(JobFailure::InvalidJob(format!(
            "`input.endDate` {last} is before `input.startDate` {first}; the range is inclusive, \
             so a single day has endDate = startDate"
        )));
    }
    let range = DayRange {
        first,
        last,
        utc_offset_seconds: settings.utc_offset_seconds,
    };
    if range.days() > i64::from(settings.max_days) {
        return Err(JobFailure::InvalidJob(format!(
            "`input.startDate`..`input.endDate` ({first}..{last}) spans {} days, more than the \
             {} this daemon allows (--analytics-max-days); split it into several jobs",
            range.days(),
            settings.max_days
        )));
    }
    Ok(range)
}

/// Validates the range and recomputes its rollups. The output names the range and the
/// rows written per table.
pub(crate) async fn run(
    storage: &Storage,
    settings: &AnalyticsSettings,
    job: &JobRequest,
) -> Result<CompletedJob, FailedJob> {
    let range = range(job, settings)?;
    let written = storage
        .events
        .compute_daily_metrics(&range)
        .await
        .map_err(JobFailure::from)?;
    Ok(CompletedJob {
        output: json!({
            "startDate": range.first.to_string(),
            "endDate": range.last.to_string(),
            "days": range.days(),
            "utcOffset": show_offset(range.utc_offset_seconds),
            "rows": {
                "metrics_daily_events": written.events,
                "metrics_daily_keywords": written.keywords,
                "metrics_daily_people": written.people,
                "metrics_daily_identities": written.identities,
            },
        }),
        report: None,
        continuation: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(input: Value) -> JobRequest {
        JobRequest::from_value(
            "1",
            &json!({"type": "analytics", "name": "daily-metrics", "input": input}),
        )
        .expect("job")
    }

    fn refused(input: Value, settings: &AnalyticsSettings) -> String {
        match range(&job(input), settings) {
            Err(JobFailure::InvalidJob(m)) => m,
            other => panic!("expected an invalid job, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_range_is_inclusive_and_bounded_in_utc() {
        let r = range(
            &job(json!({"startDate": "2024-01-01", "endDate": "2024-01-31"})),
            &AnalyticsSettings::default(),
        )
        .unwrap();
        assert_eq!(r.days(), 31);
        assert_eq!(r.start_utc().to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(r.end_utc().to_rfc3339(), "2024-02-01T00:00:00+00:00");
        let tokyo = AnalyticsSettings {
            utc_offset_seconds: 9 * 3600,
            ..AnalyticsSettings::default()
        };
        let r = range(
            &job(json!({"startDate": "2024-01-01", "endDate": "2024-01-01"})),
            &tokyo,
        )
        .unwrap();
        assert_eq!(r.start_utc().to_rfc3339(), "2023-12-31T15:00:00+00:00");
        assert_eq!(r.end_utc().to_rfc3339(), "2024-01-01T15:00:00+00:00");
    }

    #[test]
    fn bad_input_names_the_field() {
        let s = AnalyticsSettings::default();
        let cases = [
            (json!({"endDate": "2024-01-31"}), "input.startDate"),
            (json!({"startDate": "2024-01-01"}), "input.endDate"),
            (
                json!({"startDate": 20240101, "endDate": "2024-01-31"}),
                "input.startDate",
            ),
            (
                json!({"startDate": "2024-01-01", "endDate": "2024-02-30"}),
                "input.endDate",
            ),
            (
                json!({"startDate": "2024-1-1", "endDate": "2024-01-31"}),
                "input.startDate",
            ),
            (
                json!({"startDate": "2024-01-31", "endDate": "2024-01-01"}),
                "input.endDate",
            ),
            (
                json!({"startDate": "2023-01-01", "endDate": "2024-01-31"}),
                "--analytics-max-days",
            ),
        ];
        for (input, field) in cases {
            let m = refused(input.clone(), &s);
            assert!(m.contains(field), "{input}: {m}");
            assert!(!m.contains('\n'), "{m}");
        }
        let short = AnalyticsSettings { max_days: 7, ..s };
        assert!(
            range(
                &job(json!({"startDate": "2024-01-01", "endDate": "2024-01-07"})),
                &short
            )
            .is_ok()
        );
        assert!(
            refused(
                json!({"startDate": "2024-01-01", "endDate": "2024-01-08"}),
                &short
            )
            .contains("8 days")
        );
    }

    #[test]
    fn offsets_are_fixed_and_named_zones_refused() {
        assert_eq!(parse_utc_offset("Z"), Ok(0));
        assert_eq!(parse_utc_offset("UTC"), Ok(0));
        assert_eq!(parse_utc_offset("+00:00"), Ok(0));
        assert_eq!(parse_utc_offset("+09:00"), Ok(32_400));
        assert_eq!(parse_utc_offset("-05:30"), Ok(-19_800));
        assert_eq!(parse_utc_offset("+09"), Ok(32_400));
        for bad in ["Asia/Tokyo", "9", "+9:00", "+15:00", "+09:60", ""] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
        assert_eq!(show_offset(-19_800), "-05:30");
        assert_eq!(show_offset(0), "+00:00");
    }
}
