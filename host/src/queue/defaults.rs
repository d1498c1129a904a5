//! drowl's job defaults: what the daemon applies when a job sets no `attempts`, `backoff`
//! or `timeout` (as drowl's API enqueues them: `queue.add({type, name, input})`), per job
//! type, with the operator's `--job-defaults` overrides.
//!
//! drowl's are 3 attempts, exponential backoff 1 s, 2 s, 4 s (drowl's doubling, not Bull's
//! d, 3d, 7d) and a 5-minute timeout, for every type. A job's own options always win;
//! which options count as "set" is drowl-bull's rule ([`drowl_bull::JobDefaults`]): Bull's
//! client stores `attempts: 1` when none was passed, so one attempt with neither
//! `backoff` nor `timeout` reads as unset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use drowl_bull::{Backoff, DefaultsFor, JobDefaults};
use serde_json::Value;
use strum::IntoEnumIterator as _;

use crate::jobs::JobType;

/// drowl's attempts per job.
pub const DROWL_ATTEMPTS: u32 = 3;
/// drowl's first retry delay; each next one doubles it.
pub const DROWL_BACKOFF_MS: u64 = 1_000;
/// drowl's job timeout (the `jobs.timeout_ms` column's default).
pub const DROWL_TIMEOUT_MS: u64 = 300_000;
/// The longest timeout a type may default to: `jobs.timeout_ms` is a 32-bit integer.
const MAX_TIMEOUT_MS: u64 = i32::MAX as u64;

/// drowl's defaults, the same for every type.
pub fn drowl_defaults() -> JobDefaults {
    JobDefaults {
        attempts: DROWL_ATTEMPTS,
        backoff: Some(Backoff::drowl_exponential(DROWL_BACKOFF_MS)),
        timeout: Some(Duration::from_millis(DROWL_TIMEOUT_MS)),
    }
}

/// Why a `--job-defaults` value was refused; each message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobDefaultsError {
    /// No `TYPE:` in front.
    #[error(
        "must look like TYPE:SETTING=VALUE,..., e.g. event_ingestion:attempts=5,backoff=exponential:2000,timeout=600000"
    )]
    Shape,
    /// A type drowl does not have.
    #[error("unknown job type {0:?}; TYPE is one of {types}", types = JobType::names())]
    UnknownType(String),
    /// Settings without `=` or with an unknown name.
    #[error(
        "unknown setting {0:?}; settings are attempts=N, backoff=exponential:MS or linear:MS, timeout=MS"
    )]
    UnknownSetting(String),
    /// `attempts` not a whole number of at least 1.
    #[error("attempts must be a whole number of at least 1, got {0:?}")]
    Attempts(String),
    /// `backoff` not one of drowl's strategies with a delay.
    #[error(
        "backoff must be exponential:MS (drowl's MS, 2·MS, 4·MS) or linear:MS (MS, 2·MS, 3·MS), got {0:?}"
    )]
    Backoff(String),
    /// `timeout` not a number of milliseconds the `jobs` table can hold.
    #[error("timeout must be milliseconds from 1 to {MAX_TIMEOUT_MS}, got {0:?}")]
    Timeout(String),
}

/// One `--job-defaults TYPE:SETTING=VALUE,...`: the settings given replace drowl's for
/// that type, the others stay drowl's.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefaultsOverride {
    /// The type it applies to.
    pub job_type: JobType,
    /// `attempts=N`.
    pub attempts: Option<u32>,
    /// `backoff=exponential:MS` or `backoff=linear:MS`.
    pub backoff: Option<Backoff>,
    /// `timeout=MS`.
    pub timeout: Option<Duration>,
}

impl JobDefaultsOverride {
    /// An override of `job_type` that replaces nothing yet.
    pub fn new(job_type: JobType) -> Self {
        Self {
            job_type,
            attempts: None,
            backoff: None,
            timeout: None,
        }
    }

    /// Sets one setting, `attempts`, `backoff` or `timeout`, from its text (the flag's
    /// `SETTING=VALUE`, or a key of the settings file's `[job_defaults.<type>]`).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), JobDefaultsError> {
        let value = value.trim();
        match key.trim() {
            "attempts" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| JobDefaultsError::Attempts(value.to_owned()))?;
                self.attempts = Some(n);
            }
            "backoff" => {
                let bad = || JobDefaultsError::Backoff(value.to_owned());
                let (kind, ms) = value.split_once(':').ok_or_else(bad)?;
                let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
                self.backoff = Some(match kind.trim() {
                    "exponential" => Backoff::drowl_exponential(ms),
                    "linear" => Backoff::linear(ms),
                    _ => return Err(bad()),
                });
            }
            "timeout" => {
                let ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                    .ok_or_else(|| JobDefaultsError::Timeout(value.to_owned()))?;
                self.timeout = Some(Duration::from_millis(ms));
            }
            _ => return Err(JobDefaultsError::UnknownSetting(format!("{key}={value}"))),
        }
        Ok(())
    }
}

impl std::str::FromStr for JobDefaultsOverride {
    type Err = JobDefaultsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ty, settings) = s.split_once(':').ok_or(JobDefaultsError::Shape)?;
        let job_type = JobType::parse(ty.trim())
            .ok_or_else(|| JobDefaultsError::UnknownType(ty.trim().to_owned()))?;
        let mut out = Self::new(job_type);
        for setting in settings.split(',').map(str::trim) {
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| JobDefaultsError::UnknownSetting(setting.to_owned()))?;
            out.set(key, value).map_err(|e| match e {
                // Quoted as the operator wrote it.
                JobDefaultsError::UnknownSetting(_) => {
                    JobDefaultsError::UnknownSetting(setting.to_owned())
                }
                e => e,
            })?;
        }
        Ok(out)
    }
}

/// A backoff as `--job-defaults` writes it: `exponential:MS` or `linear:MS` (any other
/// strategy by its Bull `type`).
pub fn backoff_setting(b: &Backoff) -> String {
    let kind = match b.kind.as_str() {
        Backoff::DROWL_EXPONENTIAL => "exponential",
        k => k,
    };
    format!("{kind}:{}", b.delay.unwrap_or(0))
}

/// The defaults of every job type: drowl's, with the operator's overrides.
#[derive(Debug, Clone)]
pub struct TypeDefaults {
    by_type: HashMap<JobType, JobDefaults>,
}

impl Default for TypeDefaults {
    fn default() -> Self {
        Self::drowl()
    }
}

impl TypeDefaults {
    /// drowl's defaults for every type.
    pub fn drowl() -> Self {
        Self {
            by_type: JobType::iter().map(|t| (t, drowl_defaults())).collect(),
        }
    }

    /// These defaults with `overrides` applied in order (a later one for the same type
    /// wins setting by setting).
    #[must_use]
    pub fn with(mut self, overrides: &[JobDefaultsOverride]) -> Self {
        for o in overrides {
            let d = self
                .by_type
                .entry(o.job_type)
                .or_insert_with(drowl_defaults);
            if let Some(a) = o.attempts {
                d.attempts = a;
            }
            if let Some(b) = &o.backoff {
                d.backoff = Some(b.clone());
            }
            if let Some(t) = o.timeout {
                d.timeout = Some(t);
            }
        }
        self
    }

    /// The defaults of `job_type`.
    pub fn of(&self, job_type: JobType) -> JobDefaults {
        self.by_type
            .get(&job_type)
            .cloned()
            .unwrap_or_else(drowl_defaults)
    }

    /// The defaults of a Bull job, by its `data.type`; a job of no type drowl knows gets
    /// the `custom` ones (it fails at once anyway, as an invalid job).
    pub fn for_data(&self, data: &Value) -> JobDefaults {
        let ty = data
            .get("type")
            .and_then(Value::as_str)
            .and_then(JobType::parse)
            .unwrap_or(JobType::Custom);
        self.of(ty)
    }

    /// The worker's per-job picker.
    pub fn picker(self: &Arc<Self>) -> DefaultsFor {
        let this = Arc::clone(self);
        Arc::new(move |data: &Value| Some(this.for_data(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<JobDefaultsOverride, JobDefaultsError> {
        s.parse()
    }

    #[test]
    fn overrides_parse_and_replace_only_what_they_name() {
        let o = parse("event_ingestion:attempts=5, backoff=linear:200,timeout=5000").unwrap();
        assert_eq!(o.job_type, JobType::EventIngestion);
        assert_eq!(o.attempts, Some(5));
        assert_eq!(o.backoff, Some(Backoff::linear(200)));
        assert_eq!(o.timeout, Some(Duration::from_millis(5000)));
        let d = TypeDefaults::drowl().with(&[o, parse("event_ingestion:attempts=2").unwrap()]);
        let ingestion = d.for_data(&json!({"type": "event_ingestion"}));
        assert_eq!(ingestion.attempts, 2);
        assert_eq!(ingestion.backoff, Some(Backoff::linear(200)));
        assert_eq!(ingestion.timeout, Some(Duration::from_millis(5000)));
        // Other types, and jobs of no known type, keep drowl's.
        assert_eq!(d.for_data(&json!({"type": "analytics"})), drowl_defaults());
        assert_eq!(d.for_data(&json!("not a job")), drowl_defaults());
        assert_eq!(
            parse("data_export:backoff=exponential:1500")
                .unwrap()
                .backoff,
            Some(Backoff::drowl_exponential(1500))
        );
    }

    #[test]
    fn drowls_defaults_are_three_attempts_one_second_doubling_five_minutes() {
        let d = drowl_defaults();
        assert_eq!(d.attempts, 3);
        assert_eq!(d.backoff, Some(Backoff::drowl_exponential(1000)));
        assert_eq!(d.timeout, Some(Duration::from_secs(300)));
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        let cases = [
            ("event_ingestion", "must look like TYPE:SETTING=VALUE"),
            ("eat:attempts=3", "unknown job type \"eat\""),
            ("analytics:retries=3", "unknown setting \"retries=3\""),
            ("analytics:attempts", "unknown setting \"attempts\""),
            (
                "analytics:attempts=0",
                "attempts must be a whole number of at least 1, got \"0\"",
            ),
            ("analytics:attempts=many", "attempts must be"),
            (
                "analytics:backoff=fixed:100",
                "backoff must be exponential:MS",
            ),
            ("analytics:backoff=exponential", "backoff must be"),
            ("analytics:backoff=linear:soon", "backoff must be"),
            (
                "analytics:timeout=0",
                "timeout must be milliseconds from 1 to 2147483647, got \"0\"",
            ),
            ("analytics:timeout=3000000000", "timeout must be"),
        ];
        for (value, want) in cases {
            let e = parse(value).expect_err(value).to_string();
            assert!(e.contains(want), "{value}: {e}");
        }
    }
}
