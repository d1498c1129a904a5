//! Job ids, options as Bull stores them, and what can be read back about a job.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job id: Bull's decimal counter or a caller-chosen string.
///
/// Why a newtype: ids are strings on the wire even when numeric (`"12"`), and keeping them
/// opaque avoids accidental arithmetic or re-formatting that would break key names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl JobId {
    /// The id as it appears in keys and events.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        JobId(s)
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        JobId(s.to_owned())
    }
}

/// Backoff between attempts, in Bull's normalized shape `{type, delay, options}`.
///
/// Why a string type: Bull resolves the type at retry time among built-ins (`fixed`,
/// `exponential`) and the worker's custom strategies; drowl's `linear` is one of the latter.
/// A bare number deserializes as `fixed`, as Bull normalizes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "BackoffRepr")]
pub struct Backoff {
    /// `fixed`, `exponential`, `linear`, or a custom strategy registered on the worker.
    #[serde(rename = "type")]
    pub kind: String,
    /// Base delay in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// Free-form options handed to custom strategies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// The shapes Bull accepts for `backoff`: a number (fixed delay) or an object.
#[derive(Deserialize)]
#[serde(untagged)]
enum BackoffRepr {
    Number(u64),
    Object {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        delay: Option<u64>,
        #[serde(default)]
        options: Option<Value>,
    },
}

impl From<BackoffRepr> for Backoff {
    fn from(r: BackoffRepr) -> Self {
        match r {
            BackoffRepr::Number(ms) => Backoff::fixed(ms),
            BackoffRepr::Object {
                kind,
                delay,
                options,
            } => Backoff {
                kind,
                delay,
                options,
            },
        }
    }
}

impl Backoff {
    /// The same delay before every retry.
    #[must_use]
    pub fn fixed(delay_ms: u64) -> Self {
        Self::of("fixed", delay_ms)
    }

    /// `round((2^attemptsMade − 1) · delay)`: d, 3d, 7d, …
    #[must_use]
    pub fn exponential(delay_ms: u64) -> Self {
        Self::of("exponential", delay_ms)
    }

    /// drowl's `delay · attemptsMade`: d, 2d, 3d, …
    #[must_use]
    pub fn linear(delay_ms: u64) -> Self {
        Self::of("linear", delay_ms)
    }

    /// The `type` of drowl's exponential backoff (see [`Backoff::drowl_exponential`]).
    pub const DROWL_EXPONENTIAL: &'static str = "drowl-exponential";

    /// drowl's `delay · 2^(attemptsMade − 1)`: d, 2d, 4d, … (Bull's `exponential` is d,
    /// 3d, 7d). A strategy every [`Worker`](crate::Worker) registers, like `linear`;
    /// Bull's own workers do not know it, so it is meant for worker-side defaults
    /// ([`JobDefaults`](crate::JobDefaults)) rather than for stored options.
    #[must_use]
    pub fn drowl_exponential(delay_ms: u64) -> Self {
        Self::of(Self::DROWL_EXPONENTIAL, delay_ms)
    }

    fn of(kind: &str, delay_ms: u64) -> Self {
        Self {
            kind: kind.to_owned(),
            delay: Some(delay_ms),
            options: None,
        }
    }
}

/// `removeOnComplete` / `removeOnFail`: `true` removes at once, `false` keeps everything,
/// a number keeps that many, `{age, count}` trims by age (seconds) and count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeepJobs {
    /// `true`: remove immediately; `false`: keep all.
    Remove(bool),
    /// Keep at most this many finished jobs.
    Count(i64),
    /// Keep jobs younger than `age` seconds and at most `count` of them.
    AgeCount {
        /// Maximum age in seconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        age: Option<u64>,
        /// Maximum number kept.
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<i64>,
    },
}

impl KeepJobs {
    /// (count, age) as the finish script wants them: count −1 keeps all, 0 keeps nothing.
    pub(crate) fn to_limits(&self) -> (i64, Option<u64>) {
        match self {
            KeepJobs::Remove(true) => (0, None),
            KeepJobs::Remove(false) => (-1, None),
            KeepJobs::Count(n) => (*n, None),
            KeepJobs::AgeCount { age, count } => (count.unwrap_or(-1), *age),
        }
    }
}

/// A date in repeat options: epoch milliseconds or an ISO-8601 string (what
/// `JSON.stringify(new Date())` produces).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DateValue {
    /// Epoch milliseconds.
    Millis(i64),
    /// A date string such as `2026-01-01T00:00:00.000Z`.
    Text(String),
}

/// `opts.repeat`: cron or every, with limits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepeatOptions {
    /// 5-field (or 6-field with seconds) cron expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone for `cron`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Do not run before this date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<DateValue>,
    /// Do not run after this date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateValue>,
    /// Run at most this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Run every this many milliseconds (aligned to multiples of it, as Bull does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Runs so far (maintained by the scheduler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The repeat key (maintained by the scheduler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Custom id folded into the repeat key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// What `queue.add(name, data, opts)` accepts, serialized exactly as Bull stores `opts`.
///
/// Why a struct and not raw JSON: it documents what the worker honours and gives builder
/// methods; [`JobOptions::extra`] keeps anything else a caller wants stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOptions {
    /// Custom id; adding a job whose id exists is a silent no-op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Milliseconds to wait before the job becomes ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// 1 is the highest priority; 0/absent means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u64>,
    /// Push to the pop end (last in, first out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifo: Option<bool>,
    /// Total attempts (Bull default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Fail an attempt that runs longer than this many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// What to keep of completed jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_on_complete: Option<KeepJobs>,
    /// What to keep of failed jobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_on_fail: Option<KeepJobs>,
    /// Keep at most this many stack trace entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_trace_limit: Option<u32>,
    /// Make the job repeatable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatOptions>,
    /// Any other option, stored as-is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl JobOptions {
    /// Options with nothing set (Bull's defaults apply).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Use a custom job id (deduplicates adds).
    #[must_use]
    pub fn job_id(mut self, id: impl Into<String>) -> Self {
        self.job_id = Some(id.into());
        self
    }

    /// Delay the job by this many milliseconds.
    #[must_use]
    pub fn delay(mut self, ms: u64) -> Self {
        self.delay = Some(ms);
        self
    }

    /// Set the priority (1 = highest).
    #[must_use]
    pub fn priority(mut self, p: u64) -> Self {
        self.priority = Some(p);
        self
    }

    /// Last in, first out.
    #[must_use]
    pub fn lifo(mut self, lifo: bool) -> Self {
        self.lifo = Some(lifo);
        self
    }

    /// Allow this many attempts in total.
    #[must_use]
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Some(n);
        self
    }

    /// Wait between attempts.
    #[must_use]
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = Some(b);
        self
    }

    /// Fail an attempt after this many milliseconds.
    #[must_use]
    pub fn timeout(mut self, ms: u64) -> Self {
        self.timeout = Some(ms);
        self
    }

    /// What to keep once completed.
    #[must_use]
    pub fn remove_on_complete(mut self, k: KeepJobs) -> Self {
        self.remove_on_complete = Some(k);
        self
    }

    /// What to keep once failed.
    #[must_use]
    pub fn remove_on_fail(mut self, k: KeepJobs) -> Self {
        self.remove_on_fail = Some(k);
        self
    }

    /// Repeat the job.
    #[must_use]
    pub fn repeat(mut self, r: RepeatOptions) -> Self {
        self.repeat = Some(r);
        self
    }
}

/// Sizes of the queue's lists and sets, as `getJobCounts()` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// LLEN wait.
    pub waiting: u64,
    /// LLEN active.
    pub active: u64,
    /// ZCARD completed.
    pub completed: u64,
    /// ZCARD failed.
    pub failed: u64,
    /// ZCARD delayed.
    pub delayed: u64,
    /// LLEN paused.
    pub paused: u64,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In the wait list.
    Waiting,
    /// In the paused list.
    Paused,
    /// Being processed.
    Active,
    /// Waiting for its delay (or backoff) to pass.
    Delayed,
    /// Finished successfully.
    Completed,
    /// Failed for good.
    Failed,
    /// The hash exists but the job is in no list or set (e.g. between two moves).
    Unknown,
}

impl JobState {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "waiting" => JobState::Waiting,
            "paused" => JobState::Paused,
            "active" => JobState::Active,
            "delayed" => JobState::Delayed,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            _ => JobState::Unknown,
        }
    }
}

/// A job read back from Redis: its state and decoded hash fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// The id.
    pub id: JobId,
    /// Where the job is now.
    pub state: JobState,
    /// Job name (`__default__` when added without one).
    pub name: String,
    /// Decoded `data` (a string when it is not JSON).
    pub data: Value,
    /// Decoded `opts`.
    pub opts: Value,
    /// Decoded `progress` (0 when never reported).
    pub progress: Value,
    /// Decoded `returnvalue`, once completed.
    pub returnvalue: Option<Value>,
    /// Failed attempts so far (completion does not count).
    pub attempts_made: u32,
    /// Message of the last failure.
    pub failed_reason: Option<String>,
    /// Stack trace entries of failures.
    pub stacktrace: Vec<String>,
    /// When the job was added (epoch ms).
    pub timestamp: Option<i64>,
    /// Delay given at add time (ms).
    pub delay: Option<i64>,
    /// Priority given at add time.
    pub priority: Option<i64>,
    /// When the last attempt started (epoch ms).
    pub processed_on: Option<i64>,
    /// When the job finished (epoch ms).
    pub finished_on: Option<i64>,
    /// How often the stalled check recovered it.
    pub stalled_counter: Option<i64>,
    /// Every raw hash field, for anything not decoded above.
    pub raw: HashMap<String, String>,
}

impl JobRecord {
    pub(crate) fn from_hash(id: &str, state: JobState, raw: HashMap<String, String>) -> Self {
        let json = |k: &str| raw.get(k).map(|s| parse_json_lenient(s));
        let int = |k: &str| raw.get(k).and_then(|s| s.parse::<i64>().ok());
        Self {
            id: JobId::from(id),
            state,
            name: raw
                .get("name")
                .cloned()
                .unwrap_or_else(|| "__default__".to_owned()),
            data: json("data").unwrap_or(Value::Null),
            opts: json("opts").unwrap_or(Value::Null),
            progress: json("progress").unwrap_or(Value::from(0)),
            returnvalue: json("returnvalue"),
            attempts_made: raw
                .get("attemptsMade")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            failed_reason: raw.get("failedReason").cloned(),
            stacktrace: raw
                .get("stacktrace")
                .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
                .unwrap_or_default(),
            timestamp: int("timestamp"),
            delay: int("delay"),
            priority: int("priority"),
            processed_on: int("processedOn"),
            finished_on: int("finishedOn"),
            stalled_counter: int("stalledCounter"),
            raw,
        }
    }
}

/// JSON when it parses, the raw string otherwise (Bull's `preventParsingData` jobs store
/// plain strings).
pub(crate) fn parse_json_lenient(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// Bull's `setDefaultOpts`: attempts (default 1), delay (default 0), timestamp, and a
/// numeric backoff normalized to `{type: "fixed", delay}`.
///
/// Why on the raw map and not on [`JobOptions`]: this rewrites the JSON that is about to be
/// stored, and every other field must be stored exactly as given. Reading stored options
/// goes through `JobOptions::from_stored`.
pub(crate) fn apply_default_opts(opts: &mut serde_json::Map<String, Value>, now_ms: i64) {
    let attempts = opts.get("attempts").and_then(value_as_i64).unwrap_or(1);
    opts.insert("attempts".into(), Value::from(attempts));
    let delay = opts.get("delay").and_then(value_as_i64).unwrap_or(0);
    opts.insert("delay".into(), Value::from(delay));
    if !opts.contains_key("timestamp") {
        opts.insert("timestamp".into(), Value::from(now_ms));
    }
    if let Some(b) = opts.get("backoff").cloned() {
        if let Some(n) = value_as_i64(&b) {
            opts.insert(
                "backoff".into(),
                serde_json::json!({"type": "fixed", "delay": n}),
            );
        } else if b.is_null() || b == Value::Bool(false) {
            opts.remove("backoff");
        }
    }
}

/// A JSON number (or numeric string, as `parseInt` would read it) as an integer.
pub(crate) fn value_as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}
