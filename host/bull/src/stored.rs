//! Job options as a job's hash stores them (`opts`, JSON written by any Bull client), read
//! once into the typed [`JobOptions`] as leniently as Bull reads them.
//!
//! Why lenient: Bull never validates `opts`. A job added by hand, by an older client or by
//! a script may carry `"attempts": "3"`, a numeric `backoff`, or a field of the wrong type,
//! and Bull still runs it, reading what it can. The worker must do the same: a stored
//! option that cannot be read falls back to Bull's default instead of failing the job.
//! Strict parsing stays with `JobOptions`'s `Deserialize`, which checks options a caller
//! hands us before they are stored.
//!
//! The rules, per field (each is what the worker did before it was typed):
//! - counts and durations (`attempts`, `delay`, `priority`, `timeout`, `stackTraceLimit`,
//!   repeat `every`/`limit`/`count`) are numbers or numeric strings, read as `parseInt`
//!   would; negative values are ignored, values too large for the field saturate;
//! - `lifo` counts only as the boolean `true`/`false`;
//! - `jobId` is a string, or any other non-null value as its JSON text;
//! - `backoff` is a number (a `fixed` delay) or an object with a string `type`;
//! - `removeOnComplete`/`removeOnFail` are `true`/`false`, an integer, or `{age, count}`;
//!   anything else keeps every job;
//! - unknown fields (Bull's own `timestamp`, `prevMillis`, `preventParsingData`, …) are
//!   kept in [`JobOptions::extra`].

use std::time::Duration;

use serde_json::{Map, Value};

use crate::job::{Backoff, DateValue, JobOptions, KeepJobs, RepeatOptions, value_as_i64};

/// The `opts` keys that have a typed field in [`JobOptions`]; everything else is `extra`.
const TYPED_FIELDS: &[&str] = &[
    "jobId",
    "delay",
    "priority",
    "lifo",
    "attempts",
    "backoff",
    "timeout",
    "removeOnComplete",
    "removeOnFail",
    "stackTraceLimit",
    "repeat",
];

/// A non-negative count: a number or numeric string; negative or unreadable is `None`.
fn lenient_u64(v: &Value) -> Option<u64> {
    value_as_i64(v).and_then(|n| u64::try_from(n).ok())
}

/// As [`lenient_u64`], saturating at `u32::MAX`.
fn lenient_u32(v: &Value) -> Option<u32> {
    lenient_u64(v).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// A string, or any other non-null value as its JSON text (what addJob stores as the id).
fn lenient_id(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn lenient_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn lenient_date(v: &Value) -> Option<DateValue> {
    match v {
        Value::Number(_) => value_as_i64(v).map(DateValue::Millis),
        Value::String(s) => Some(DateValue::Text(s.clone())),
        _ => None,
    }
}

/// Bull's `backoffs.normalize`: a number is `{type: fixed, delay}`; an object needs a
/// string `type`.
fn lenient_backoff(v: &Value) -> Option<Backoff> {
    match v {
        Value::Number(_) => value_as_i64(v).map(|n| Backoff {
            kind: "fixed".to_owned(),
            delay: u64::try_from(n).ok(),
            options: None,
        }),
        Value::Object(obj) => Some(Backoff {
            kind: obj.get("type")?.as_str()?.to_owned(),
            delay: obj.get("delay").and_then(lenient_u64),
            options: obj.get("options").cloned(),
        }),
        _ => None,
    }
}

fn lenient_keep(v: &Value) -> Option<KeepJobs> {
    serde_json::from_value(v.clone()).ok()
}

/// `opts.repeat`: any object (its unreadable fields left unset); not an object is `None`.
fn lenient_repeat(v: &Value) -> Option<RepeatOptions> {
    let r = v.as_object()?;
    Some(RepeatOptions {
        cron: r.get("cron").and_then(lenient_str),
        tz: r.get("tz").and_then(lenient_str),
        start_date: r.get("startDate").and_then(lenient_date),
        end_date: r.get("endDate").and_then(lenient_date),
        limit: r.get("limit").and_then(lenient_u64),
        every: r.get("every").and_then(lenient_u64),
        count: r.get("count").and_then(lenient_u64),
        key: r.get("key").and_then(lenient_str),
        job_id: r.get("jobId").and_then(lenient_id),
    })
}

/// (count, age) as the finish script wants them: count −1 keeps all, 0 keeps nothing.
fn keep_limits(keep: Option<&KeepJobs>) -> (i64, Option<u64>) {
    keep.map_or((-1, None), KeepJobs::to_limits)
}

impl JobOptions {
    /// Read a job's stored `opts` (see the module doc for the rules). Not an object: all
    /// defaults.
    pub(crate) fn from_stored(opts: &Value) -> Self {
        opts.as_object()
            .map(Self::from_stored_map)
            .unwrap_or_default()
    }

    /// [`JobOptions::from_stored`] for an `opts` object.
    pub(crate) fn from_stored_map(opts: &Map<String, Value>) -> Self {
        let mut extra = opts.clone();
        for key in TYPED_FIELDS {
            extra.remove(*key);
        }
        Self {
            job_id: opts.get("jobId").and_then(lenient_id),
            delay: opts.get("delay").and_then(lenient_u64),
            priority: opts.get("priority").and_then(lenient_u64),
            lifo: opts.get("lifo").and_then(Value::as_bool),
            attempts: opts.get("attempts").and_then(lenient_u32),
            backoff: opts.get("backoff").and_then(lenient_backoff),
            timeout: opts.get("timeout").and_then(lenient_u64),
            remove_on_complete: opts.get("removeOnComplete").and_then(lenient_keep),
            remove_on_fail: opts.get("removeOnFail").and_then(lenient_keep),
            stack_trace_limit: opts.get("stackTraceLimit").and_then(lenient_u32),
            repeat: opts.get("repeat").and_then(lenient_repeat),
            extra,
        }
    }

    /// Total attempts allowed: `attempts`, at least 1 (Bull's default).
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.attempts.unwrap_or(1).max(1)
    }

    /// How long one attempt may run, when `timeout` is set (0 means no limit).
    #[must_use]
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout.filter(|t| *t > 0).map(Duration::from_millis)
    }

    /// Whether the job goes to the pop end of the wait list.
    pub(crate) fn is_lifo(&self) -> bool {
        self.lifo == Some(true)
    }

    /// How many stack trace entries to keep, when limited.
    pub(crate) fn stack_limit(&self) -> Option<usize> {
        self.stack_trace_limit
            .filter(|l| *l > 0)
            .and_then(|l| usize::try_from(l).ok())
    }

    /// (count, age) of `removeOnComplete` for the finish script.
    pub(crate) fn keep_completed(&self) -> (i64, Option<u64>) {
        keep_limits(self.remove_on_complete.as_ref())
    }

    /// (count, age) of `removeOnFail` for the finish script.
    pub(crate) fn keep_failed(&self) -> (i64, Option<u64>) {
        keep_limits(self.remove_on_fail.as_ref())
    }

    /// Bull's `timestamp` option: when the job was added (epoch ms), if recorded.
    pub(crate) fn stored_timestamp(&self) -> Option<i64> {
        self.extra.get("timestamp").and_then(value_as_i64)
    }

    /// Bull's `preventParsingData`: `data` is handed over as the raw string.
    pub(crate) fn prevent_parsing_data(&self) -> bool {
        self.extra.get("preventParsingData") == Some(&Value::Bool(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> JobOptions {
        JobOptions::from_stored(&v)
    }

    #[test]
    fn attempts_as_number_or_numeric_string() {
        assert_eq!(read(json!({"attempts": 3})).attempts, Some(3));
        assert_eq!(read(json!({"attempts": "3"})).attempts, Some(3));
        assert_eq!(read(json!({"attempts": " 4 "})).attempts, Some(4));
        assert_eq!(read(json!({"attempts": 2.7})).attempts, Some(2));
        assert_eq!(read(json!({"attempts": "many"})).max_attempts(), 1);
        assert_eq!(read(json!({"attempts": -2})).max_attempts(), 1);
        assert_eq!(read(json!({"attempts": 0})).max_attempts(), 1);
        assert_eq!(read(json!({})).max_attempts(), 1);
        assert_eq!(
            read(json!({"attempts": 5_000_000_000_i64})).attempts,
            Some(u32::MAX)
        );
    }

    #[test]
    fn backoff_as_number_or_object() {
        assert_eq!(
            read(json!({"backoff": 250})).backoff,
            Some(Backoff::fixed(250))
        );
        assert_eq!(
            read(json!({"backoff": {"type": "exponential", "delay": 100}})).backoff,
            Some(Backoff::exponential(100))
        );
        assert_eq!(
            read(json!({"backoff": {"type": "linear", "delay": "100"}})).backoff,
            Some(Backoff::linear(100))
        );
        let custom = read(json!({"backoff": {"type": "jitter", "options": {"max": 5}}}));
        assert_eq!(
            custom.backoff,
            Some(Backoff {
                kind: "jitter".to_owned(),
                delay: None,
                options: Some(json!({"max": 5})),
            })
        );
        // A negative number is still a fixed backoff, with no delay.
        assert_eq!(
            read(json!({"backoff": -5}))
                .backoff
                .map(|b| (b.kind, b.delay)),
            Some(("fixed".to_owned(), None))
        );
        // Bull normalizes only real numbers; without a string type there is no strategy.
        assert_eq!(read(json!({"backoff": "250"})).backoff, None);
        assert_eq!(read(json!({"backoff": {"delay": 100}})).backoff, None);
        assert_eq!(read(json!({"backoff": {"type": 1}})).backoff, None);
        assert_eq!(read(json!({"backoff": false})).backoff, None);
    }

    #[test]
    fn remove_on_complete_as_bool_number_or_object() {
        let keep = |v: Value| read(json!({"removeOnComplete": v})).keep_completed();
        assert_eq!(keep(json!(true)), (0, None));
        assert_eq!(keep(json!(false)), (-1, None));
        assert_eq!(keep(json!(10)), (10, None));
        assert_eq!(keep(json!(0)), (0, None));
        assert_eq!(keep(json!({"age": 3600, "count": 5})), (5, Some(3600)));
        assert_eq!(keep(json!({"age": 3600})), (-1, Some(3600)));
        assert_eq!(keep(json!({"count": 7, "other": 1})), (7, None));
        // Anything else keeps every job.
        assert_eq!(keep(json!("5")), (-1, None));
        assert_eq!(keep(json!(2.5)), (-1, None));
        assert_eq!(keep(Value::Null), (-1, None));
        assert_eq!(read(json!({})).keep_completed(), (-1, None));
        assert_eq!(
            read(json!({"removeOnFail": {"count": 2}})).keep_failed(),
            (2, None)
        );
    }

    #[test]
    fn wrong_typed_fields_are_ignored_not_fatal() {
        let o = read(json!({
            "attempts": "3",
            "lifo": "yes",
            "timeout": {"ms": 5},
            "stackTraceLimit": [1],
            "priority": -1,
            "delay": "soon",
            "repeat": "daily",
        }));
        assert_eq!(o.attempts, Some(3));
        assert_eq!(o.lifo, None);
        assert!(!o.is_lifo());
        assert_eq!(o.attempt_timeout(), None);
        assert_eq!(o.stack_limit(), None);
        assert_eq!(o.priority, None);
        assert_eq!(o.delay, None);
        assert_eq!(o.repeat, None);
        assert!(o.extra.is_empty());
    }

    #[test]
    fn durations_and_limits() {
        let o = read(json!({"timeout": "1500", "stackTraceLimit": 3, "lifo": true}));
        assert_eq!(o.attempt_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(o.stack_limit(), Some(3));
        assert!(o.is_lifo());
        assert_eq!(read(json!({"timeout": 0})).attempt_timeout(), None);
        assert_eq!(read(json!({"stackTraceLimit": 0})).stack_limit(), None);
    }

    #[test]
    fn unknown_fields_are_kept_in_extra() {
        let o = read(json!({
            "attempts": 2,
            "timestamp": 1_700_000_000_000_i64,
            "preventParsingData": true,
            "prevMillis": 5,
            "custom": {"a": 1},
        }));
        assert_eq!(o.stored_timestamp(), Some(1_700_000_000_000));
        assert!(o.prevent_parsing_data());
        assert_eq!(o.extra.get("custom"), Some(&json!({"a": 1})));
        assert_eq!(o.extra.get("prevMillis"), Some(&json!(5)));
        assert!(!o.extra.contains_key("attempts"));
        assert!(!read(json!({"preventParsingData": "true"})).prevent_parsing_data());
    }

    #[test]
    fn job_id_and_repeat() {
        assert_eq!(read(json!({"jobId": "a"})).job_id.as_deref(), Some("a"));
        assert_eq!(read(json!({"jobId": 12})).job_id.as_deref(), Some("12"));
        assert_eq!(read(json!({"jobId": null})).job_id, None);
        let o = read(json!({"repeat": {"every": "1000", "cron": 5, "endDate": "2030-01-01"}}));
        let r = o.repeat.expect("an object is a repeat");
        assert_eq!(r.every, Some(1000));
        assert_eq!(r.cron, None);
        assert_eq!(r.end_date, Some(DateValue::Text("2030-01-01".to_owned())));
    }

    #[test]
    fn not_an_object_is_all_defaults() {
        assert_eq!(read(json!("garbage")), JobOptions::default());
        assert_eq!(read(Value::Null), JobOptions::default());
    }
}
