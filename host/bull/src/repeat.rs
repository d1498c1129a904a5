//! Repeatable jobs: the next run time, the repeat key and the per-run job id, computed as
//! Bull's `repeatable.js` does so that `getRepeatableJobs()`/`removeRepeatable()` in the
//! real client see the same keys.

use std::str::FromStr;

use chrono::{DateTime, Local, Offset, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::error::QueueError;
use crate::job::{JobOptions, apply_default_opts, value_as_i64};

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
///
/// Why two ways: croner and cron-parser agree except across a DST change for patterns
/// with restricted hours. There cron-parser (Bull's client) runs a time the spring-forward
/// gap skips one hour later on the clock (`30 2 * * *` at 03:30, where croner snaps to
/// 03:00) and a time in the repeated fall-back hour once, the first time (unless it
/// starts inside the second pass); so those
/// patterns are matched on the wall clock and mapped to instants that way. With every
/// hour allowed both step through real time and agree (gap times do not exist, repeated
/// ones run twice).
fn next_in<Tz: TimeZone>(cron: &Cron, tz: &Tz, after_ms: i64) -> Result<Option<i64>, QueueError> {
    let whole = after_ms - after_ms.rem_euclid(1000);
    let Some(start) = tz.timestamp_millis_opt(whole).single() else {
        return Ok(None);
    };
    let every_hour = (0..24).all(|h| cron.pattern.hour_match(h).unwrap_or(false));
    if !every_hour {
        return next_on_wall_clock(cron, tz, &start);
    }
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|e| QueueError::InvalidOptions(format!("cron: {e}")))?;
    // Without a UTC offset change in between, croner's answer is cron-parser's.
    let same_offset =
        next.offset().fix() == start.offset().fix() && next.timestamp_millis() - whole < 86_400_000;
    if same_offset {
        let ms = next.timestamp_millis();
        return Ok(Some(ms - ms.rem_euclid(1000)));
    }
    next_in_real_time(cron, tz, &start)
}

/// [`next_in`] for patterns allowing every hour, across an offset change: the earliest
/// instant after `start` whose wall clock matches, as cron-parser finds it stepping
/// through real time (both passes of a repeated hour run; gap times do not exist).
fn next_in_real_time<Tz: TimeZone>(
    cron: &Cron,
    tz: &Tz,
    start: &DateTime<Tz>,
) -> Result<Option<i64>, QueueError> {
    let after = start.timestamp_millis();
    // From an hour back on the wall clock, so a repeated hour behind `start` is seen.
    let mut cursor = Utc.from_utc_datetime(&(start.naive_local() - chrono::Duration::hours(1)));
    let mut best: Option<i64> = None;
    for _ in 0..=3 * 3600 {
        let wall = cron
            .find_next_occurrence(&cursor, false)
            .map_err(|e| QueueError::InvalidOptions(format!("cron: {e}")))?;
        let naive = wall.naive_utc();
        let instants: Vec<i64> = match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(d) => vec![d.timestamp_millis()],
            chrono::LocalResult::Ambiguous(a, b) => {
                vec![a.timestamp_millis(), b.timestamp_millis()]
            }
            chrono::LocalResult::None => Vec::new(),
        };
        for ms in instants.into_iter().filter(|ms| *ms > after) {
            best = Some(best.map_or(ms, |b| b.min(ms)));
        }
        // A later wall-clock match maps at most an hour earlier than its clock says.
        if let Some(b) = best
            && let Some(b_wall) = tz.timestamp_millis_opt(b).single()
            && naive > b_wall.naive_local() + chrono::Duration::hours(2)
        {
            break;
        }
        cursor = wall;
    }
    Ok(best.map(|ms| ms - ms.rem_euclid(1000)))
}

/// [`next_in`] for patterns with restricted hours: the next wall-clock match (found by
/// croner on a zone-less timeline), as an instant the way cron-parser maps it.
fn next_on_wall_clock<Tz: TimeZone>(
    cron: &Cron,
    tz: &Tz,
    start: &DateTime<Tz>,
) -> Result<Option<i64>, QueueError> {
    let after = start.timestamp_millis();
    let mut cursor = Utc.from_utc_datetime(&start.naive_local());
    // Matches that map to an instant not after `start` are skipped (a bound, not a
    // count: each step moves to a later wall-clock match).
    for _ in 0..=3600 {
        let wall = cron
            .find_next_occurrence(&cursor, false)
            .map_err(|e| QueueError::InvalidOptions(format!("cron: {e}")))?;
        let naive = wall.naive_utc();
        let instant = match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(d) => Some(d),
            // From the first pass the next wall-clock matches are first-pass ones; from
            // inside the second pass, cron-parser carries on there.
            chrono::LocalResult::Ambiguous(first, second) => {
                Some(if first.timestamp_millis() > after {
                    first
                } else {
                    second
                })
            }
            chrono::LocalResult::None => tz
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest(),
        };
        if let Some(ms) = instant.map(|d| d.timestamp_millis())
            && ms > after
        {
            return Ok(Some(ms - ms.rem_euclid(1000)));
        }
        cursor = wall;
    }
    Ok(None)
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

/// A registered schedule, as Bull's `getRepeatableJobs()` reports it (its `_keyToData`
/// reading of the repeat key, plus the next run).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepeatableJob {
    /// The member of `P:repeat`: `name:jobId:endDate:tz:cron` (or `name:jobId:endDate:every`).
    pub key: String,
    /// The job name.
    pub name: String,
    /// The custom id folded into the key, if any.
    pub id: Option<String>,
    /// The end date (epoch ms), if any.
    pub end_date: Option<i64>,
    /// The time zone of a cron schedule.
    pub tz: Option<String>,
    /// The cron expression.
    pub cron: Option<String>,
    /// The interval of an `every` schedule (ms).
    pub every: Option<i64>,
    /// When the next run is due (epoch ms).
    pub next: i64,
}

impl RepeatableJob {
    /// Read a repeat key as Bull's `_keyToData` does (split on `:`; a name or id holding a
    /// `:` reads wrong there too, which is why callers should not use one).
    #[must_use]
    pub fn from_key(key: &str, next: i64) -> Self {
        let parts: Vec<&str> = key.split(':').collect();
        let part = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
        let cron = part(4).map(str::to_owned);
        let every = if cron.is_none() {
            part(3).and_then(|s| s.parse().ok())
        } else {
            None
        };
        Self {
            key: key.to_owned(),
            name: parts.first().copied().unwrap_or_default().to_owned(),
            id: part(1).map(str::to_owned),
            end_date: part(2).and_then(|s| s.parse().ok()).filter(|n| *n != 0),
            tz: if cron.is_some() {
                part(3).map(str::to_owned)
            } else {
                None
            },
            cron,
            every,
            next,
        }
    }

    /// The stem of this schedule's run ids (`repeat:<md5>:`; the run's millis follow).
    #[must_use]
    pub fn run_id_stem(&self) -> String {
        let job_id_part = self
            .id
            .as_deref()
            .map_or_else(|| ":".to_owned(), |id| format!("{id}:"));
        format!(
            "repeat:{}:",
            md5_hex(&format!("{}{job_id_part}{}", self.name, md5_hex(&self.key)))
        )
    }
}

/// The repeat key `queue.add(name, data, opts)` registers for repeatable `opts` (Bull's
/// `getRepeatKey`, with `opts.jobId` folded in as its first add does), so a caller can
/// tell its own schedules among those in `P:repeat` before or after adding them.
pub fn repeatable_key(name: &str, opts: &JobOptions) -> Result<String, QueueError> {
    let map = match serde_json::to_value(opts)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let Some(Value::Object(mut repeat)) = map.get("repeat").cloned() else {
        return Err(QueueError::InvalidOptions(
            "not a repeatable job (no opts.repeat)".to_owned(),
        ));
    };
    if let Some(id) = map.get("jobId").filter(|v| truthy(Some(v))) {
        repeat.insert("jobId".into(), id.clone());
    }
    let job_id_part = match repeat.get("jobId") {
        Some(id) if truthy(Some(id)) => format!("{}:", js_string(id)),
        _ => ":".to_owned(),
    };
    Ok(repeat_key(name, &repeat, &job_id_part))
}

/// The first run of `cron` strictly after `after_ms` (epoch ms), in time zone `tz` (the
/// process's local zone when `None`, as Bull), computed exactly as the worker schedules
/// runs; `None` when the expression never matches again. Errors name a bad expression or
/// an unknown zone.
pub fn next_cron_run(
    cron: &str,
    tz: Option<&str>,
    after_ms: i64,
) -> Result<Option<i64>, QueueError> {
    let mut repeat = Map::new();
    repeat.insert("cron".into(), Value::from(cron));
    if let Some(tz) = tz {
        repeat.insert("tz".into(), Value::from(tz));
    }
    next_millis(after_ms, &repeat)
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
    fn repeatable_key_matches_the_first_add() {
        let opts = JobOptions::new()
            .job_id("daily")
            .repeat(crate::RepeatOptions {
                cron: Some("0 3 * * *".into()),
                tz: Some("Europe/Berlin".into()),
                ..Default::default()
            });
        let key = repeatable_key("ingest", &opts).unwrap();
        let map = obj(serde_json::to_value(&opts).unwrap());
        let run = next_run("ingest", &map, 1_700_000_000_000)
            .unwrap()
            .unwrap();
        assert_eq!(key, run.repeat_key);
        let parsed = RepeatableJob::from_key(&key, run.millis);
        assert_eq!(parsed.name, "ingest");
        assert_eq!(parsed.id.as_deref(), Some("daily"));
        assert_eq!(parsed.tz.as_deref(), Some("Europe/Berlin"));
        assert_eq!(parsed.cron.as_deref(), Some("0 3 * * *"));
        assert_eq!(parsed.every, None);
        // The stem plus the millis is the run's id, as removeRepeatable rebuilds it.
        assert_eq!(
            format!("{}{}", parsed.run_id_stem(), run.millis),
            run.job_id
        );
    }

    #[test]
    fn every_keys_read_like_bull() {
        let parsed = RepeatableJob::from_key("__default__:::1000", 5);
        assert_eq!(parsed.every, Some(1000));
        assert_eq!((parsed.tz, parsed.cron, parsed.id), (None, None, None));
    }

    #[test]
    fn next_cron_run_with_seconds_and_zone() {
        // 2023-11-14T22:13:20Z; every second → the next whole second.
        assert_eq!(
            next_cron_run("* * * * * *", Some("UTC"), 1_700_000_000_500).unwrap(),
            Some(1_700_000_001_000)
        );
        // 09:00 in Tokyo (UTC+9) is 00:00 UTC: 2023-11-15T00:00:00Z.
        assert_eq!(
            next_cron_run("0 9 * * *", Some("Asia/Tokyo"), 1_700_000_000_000).unwrap(),
            Some(1_700_006_400_000)
        );
        assert!(next_cron_run("61 * * * *", Some("UTC"), 0).is_err());
        assert!(next_cron_run("0 * * * *", Some("Mars/Olympus"), 0).is_err());
    }

    #[test]
    fn md5_matches_node() {
        // node -e "console.log(require('crypto').createHash('md5').update('abc').digest('hex'))"
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
