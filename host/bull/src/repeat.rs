//! Repeatable jobs: the next run time, the repeat key and the per-run job id, computed as
//! Bull's `repeatable.js` does so that `getRepeatableJobs()`/`removeRepeatable()` in the
//! real client see the same keys.

use std::str::FromStr;

use chrono::{DateTime, Local, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::error::QueueError;
use crate::job::{apply_default_opts, value_as_i64};

/// The next run of a repeatable job, ready for `addJob`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NextRun {
    /// `name:jobId:endDate:tz:cron` (or `…:every`), the member of `P:repeat`.
    pub(crate) repeat_key: String,
    /// `repeat:<md5>:<millis>`.
    pub(crate) job_id: String,
    /// When the run is due (epoch ms), the score in `P:repeat`.
    pub(crate) millis: i64,
    /// The opts stored with the new job.
    pub(crate) opts: Map<String, Value>,
}

/// Lowercase hex MD5, as Node's `crypto.createHash('md5').digest('hex')`.
pub(crate) fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `new Date(v).getTime()` for the shapes JSON can carry.
pub(crate) fn date_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(_) => value_as_i64(v),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp_millis())
            .ok()
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc().timestamp_millis())
            }),
        _ => None,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// `String(v)` for the values a repeat option can hold.
fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Bull's `getRepeatKey(name, repeat, jobId)`.
fn repeat_key(name: &str, repeat: &Map<String, Value>, job_id_part: &str) -> String {
    let end = if truthy(repeat.get("endDate")) {
        repeat
            .get("endDate")
            .and_then(date_ms)
            .map_or_else(|| "NaN:".to_owned(), |ms| format!("{ms}:"))
    } else {
        ":".to_owned()
    };
    let tz = match repeat.get("tz") {
        Some(v) if truthy(Some(v)) => format!("{}:", js_string(v)),
        _ => ":".to_owned(),
    };
    let suffix = match repeat.get("cron") {
        Some(c) if truthy(Some(c)) => format!("{tz}{}", js_string(c)),
        _ => repeat
            .get("every")
            .map_or_else(|| "undefined".to_owned(), js_string),
    };
    format!("{name}:{job_id_part}{end}{suffix}")
}

/// Parse a cron expression the way `cron-parser` reads Bull's patterns: 5 fields, or 6 with
/// seconds first; day-of-month and day-of-week combine with OR (Vixie semantics).
pub(crate) fn parse_cron(expr: &str) -> Result<Cron, QueueError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| QueueError::InvalidOptions(format!("cron {expr:?}: {e}")))
}

/// The first match strictly after `after_ms`, at whole seconds (cron-parser drops the
/// milliseconds of the current date; croner would keep them).
fn next_in<Tz: TimeZone>(cron: &Cron, tz: &Tz, after_ms: i64) -> Result<Option<i64>, QueueError> {
    let whole = after_ms - after_ms.rem_euclid(1000);
    let Some(start) = tz.timestamp_millis_opt(whole).single() else {
        return Ok(None);
    };
    match cron.find_next_occurrence(&start, false) {
        Ok(next) => Ok(Some(
            next.timestamp_millis() - next.timestamp_millis().rem_euclid(1000),
        )),
        Err(e) => Err(QueueError::InvalidOptions(format!("cron: {e}"))),
    }
}

/// Bull's `getNextMillis(millis, repeat)`.
fn next_millis(millis: i64, repeat: &Map<String, Value>) -> Result<Option<i64>, QueueError> {
    let cron = repeat
        .get("cron")
        .filter(|c| truthy(Some(c)))
        .map(js_string);
    let every = repeat
        .get("every")
        .filter(|e| truthy(Some(e)))
        .and_then(value_as_i64);
    if cron.is_some() && every.is_some() {
        return Err(QueueError::InvalidOptions(
            "Both .cron and .every options are defined for this repeatable job".to_owned(),
        ));
    }
    if let Some(every) = every {
        if every <= 0 {
            return Err(QueueError::InvalidOptions(
                "every must be positive".to_owned(),
            ));
        }
        return Ok(Some(millis.div_euclid(every) * every + every));
    }
    let Some(expr) = cron else {
        return Err(QueueError::InvalidOptions(
            "repeat needs cron or every".to_owned(),
        ));
    };
    let parsed = parse_cron(&expr)?;
    let start = repeat.get("startDate").and_then(date_ms);
    let current = match start {
        Some(s) if s > millis => s,
        _ => millis,
    };
    let next = match repeat.get("tz").filter(|t| truthy(Some(t))) {
        Some(tz) => {
            let tz = chrono_tz::Tz::from_str(&js_string(tz))
                .map_err(|e| QueueError::InvalidOptions(format!("tz: {e}")))?;
            next_in(&parsed, &tz, current)?
        }
        None if repeat.get("utc") == Some(&Value::Bool(true)) => next_in(&parsed, &Utc, current)?,
        None => next_in(&parsed, &Local, current)?,
    };
    // cron-parser stops (and Bull schedules nothing) past endDate.
    let end = repeat.get("endDate").and_then(date_ms);
    Ok(next.filter(|n| end.is_none_or(|e| *n <= e)))
}

/// Bull's `nextRepeatableJob` minus the Redis writes: given the opts of the job just added
/// or activated, compute the next run, or `None` when the limit, end date or schedule is
/// exhausted. `now_ms` is the current time.
///
/// Why on the raw map and not on [`JobOptions`](crate::JobOptions): the result is the next
/// run's `opts`, stored again with only the repeat bookkeeping changed, so every field (also
/// ones this crate does not know) is carried over as Bull would carry it.
pub(crate) fn next_run(
    name: &str,
    opts: &Map<String, Value>,
    now_ms: i64,
) -> Result<Option<NextRun>, QueueError> {
    let mut opts = opts.clone();
    let Some(Value::Object(mut repeat)) = opts.get("repeat").cloned() else {
        return Ok(None);
    };
    let prev_millis = opts.get("prevMillis").and_then(value_as_i64).unwrap_or(0);
    if prev_millis == 0
        && truthy(opts.get("jobId"))
        && let Some(id) = opts.get("jobId")
    {
        repeat.insert("jobId".into(), id.clone());
    }
    let count = repeat
        .get("count")
        .filter(|c| truthy(Some(c)))
        .and_then(value_as_i64);
    let current_count = count.map_or(1, |c| c + 1);
    if let Some(limit) = repeat.get("limit").filter(|l| !l.is_null())
        && value_as_i64(limit).is_some_and(|l| current_count > l)
    {
        return Ok(None);
    }
    if let Some(end) = repeat.get("endDate").filter(|e| !e.is_null())
        && date_ms(end).is_some_and(|e| now_ms > e)
    {
        return Ok(None);
    }
    let base = prev_millis.max(now_ms);
    let Some(millis) = next_millis(base, &repeat)? else {
        return Ok(None);
    };
    let job_id_part = match repeat.get("jobId") {
        Some(id) if truthy(Some(id)) => format!("{}:", js_string(id)),
        _ => ":".to_owned(),
    };
    let key = repeat_key(name, &repeat, &job_id_part);
    let job_id = format!(
        "repeat:{}:{millis}",
        md5_hex(&format!("{name}{job_id_part}{}", md5_hex(&key)))
    );
    repeat.insert("count".into(), Value::from(current_count));
    repeat.insert("key".into(), Value::from(key.clone()));
    opts.insert("repeat".into(), Value::Object(repeat));
    opts.insert("jobId".into(), Value::from(job_id.clone()));
    opts.insert("delay".into(), Value::from((millis - now_ms).max(0)));
    opts.insert("timestamp".into(), Value::from(now_ms));
    opts.insert("prevMillis".into(), Value::from(millis));
    apply_default_opts(&mut opts, now_ms);
    Ok(Some(NextRun {
        repeat_key: key,
        job_id,
        millis,
        opts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_keys_and_ids_match_bull() {
        // Bull: key "__default__:::1000"; id "repeat:" + md5(name + ":" + md5(key)) + ":" + next.
        let opts = obj(json!({"repeat": {"every": 1000}}));
        let run = next_run("__default__", &opts, 1_700_000_000_500)
            .unwrap()
            .unwrap();
        assert_eq!(run.repeat_key, "__default__:::1000");
        assert_eq!(run.millis, 1_700_000_001_000);
        let expected = format!(
            "repeat:{}:1700000001000",
            md5_hex(&format!("__default__:{}", md5_hex("__default__:::1000")))
        );
        assert_eq!(run.job_id, expected);
        assert_eq!(run.opts["repeat"]["count"], json!(1));
        assert_eq!(run.opts["delay"], json!(500));
        assert_eq!(run.opts["prevMillis"], json!(1_700_000_001_000_i64));
    }

    #[test]
    fn cron_key_with_tz_and_custom_id() {
        let opts =
            obj(json!({"jobId": "daily", "repeat": {"cron": "0 3 * * *", "tz": "Europe/Berlin"}}));
        let run = next_run("ingest", &opts, 1_700_000_000_000)
            .unwrap()
            .unwrap();
        assert_eq!(run.repeat_key, "ingest:daily::Europe/Berlin:0 3 * * *");
        assert_eq!(run.opts["repeat"]["jobId"], json!("daily"));
        // 2023-11-15 03:00 Berlin (CET, UTC+1) = 02:00 UTC.
        assert_eq!(run.millis, 1_700_013_600_000);
    }

    #[test]
    fn limit_stops() {
        let opts =
            obj(json!({"prevMillis": 5000, "repeat": {"every": 1000, "limit": 2, "count": 2}}));
        assert!(next_run("n", &opts, 5000).unwrap().is_none());
    }

    #[test]
    fn md5_matches_node() {
        // node -e "console.log(require('crypto').createHash('md5').update('abc').digest('hex'))"
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
