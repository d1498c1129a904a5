//! drowl's job format and what a job can end with.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::capabilities::JobReport;
use crate::redact::Redactor;
use crate::runtime::CallError;
use crate::storage::StorageError;

/// drowl's job types, as the API enqueues them.
///
/// The names come from strum and serde with the same `snake_case` rule; a test checks
/// they agree with each other and with the `jobs.type` check in the migrations.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumIter,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobType {
    /// Fetch events with an ingestion plugin.
    EventIngestion,
    /// Link accounts across platforms.
    IdentityResolution,
    /// Find tracked keywords in stored events.
    KeywordExtraction,
    /// Compute metrics.
    Analytics,
    /// Build a report.
    ReportGeneration,
    /// Deliver events elsewhere with an export plugin.
    DataExport,
    /// Housekeeping.
    Cleanup,
    /// Anything else.
    Custom,
}

impl JobType {
    /// The name drowl uses.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses drowl's name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Every name, in drowl's order, for messages that list what is accepted.
    pub fn names() -> String {
        <Self as strum::VariantNames>::VARIANTS.join(", ")
    }
}

/// A job to run, in drowl's format plus what the queue knows about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRequest {
    /// Queue job id.
    pub id: String,
    /// Job type.
    pub job_type: JobType,
    /// Job name.
    pub name: String,
    /// Job input (a JSON object).
    pub input: serde_json::Value,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Attempts the queue will make.
    pub max_attempts: u32,
    /// Where the job stands among the follow-ups of one job the API enqueued.
    pub lineage: Lineage,
}

/// A job's place among the follow-ups descended from one job the API enqueued. The host
/// writes it into each follow-up's queue data (beside `input`, out of the plugin's reach)
/// and caps both the depth and the lineage's total.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lineage {
    /// The id of the job the API enqueued (that job's own id for itself).
    pub root: String,
    /// 0 for the job the API enqueued, 1 for its follow-ups, ...
    pub depth: u32,
}

impl JobRequest {
    /// Parses drowl's `{type, name, input}` JSON, with a message naming what is wrong.
    pub fn from_json(id: &str, text: &str) -> Result<Self, JobFailure> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| JobFailure::InvalidJob(format!("job is not valid JSON: {e}")))?;
        Self::from_value(id, &v)
    }

    /// Parses an already-decoded job.
    pub fn from_value(id: &str, v: &serde_json::Value) -> Result<Self, JobFailure> {
        let obj = v.as_object().ok_or_else(|| {
            JobFailure::InvalidJob("job must be a JSON object {type, name, input}".into())
        })?;
        let ty = obj
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| JobFailure::InvalidJob("job has no string field `type`".into()))?;
        let job_type = JobType::parse(ty).ok_or_else(|| {
            JobFailure::InvalidJob(format!(
                "unknown job type {ty:?}; expected one of {}",
                JobType::names()
            ))
        })?;
        let name = match obj.get("name") {
            None | Some(serde_json::Value::Null) => ty.to_owned(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(JobFailure::InvalidJob(
                    "job field `name` must be a string".into(),
                ));
            }
        };
        let input = match obj.get("input") {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(i @ serde_json::Value::Object(_)) => i.clone(),
            Some(_) => {
                return Err(JobFailure::InvalidJob(
                    "job field `input` must be a JSON object".into(),
                ));
            }
        };
        // Lineage is the host's own bookkeeping; anything unreadable counts as a root job.
        let lineage = obj
            .get("lineage")
            .and_then(|l| serde_json::from_value::<Lineage>(l.clone()).ok())
            .filter(|l| !l.root.is_empty())
            .unwrap_or_else(|| Lineage {
                root: id.to_owned(),
                depth: 0,
            });
        Ok(Self {
            id: id.to_owned(),
            job_type,
            name,
            input,
            attempt: 1,
            max_attempts: 1,
            lineage,
        })
    }

    /// A string field of the input.
    pub fn input_str(&self, key: &str) -> Option<&str> {
        self.input.get(key).and_then(|v| v.as_str())
    }
}

/// How a plugin asked for its failure to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginErrorKind {
    /// Try again with backoff.
    Retryable,
    /// Try again after the given delay.
    RateLimited,
    /// Do not try again.
    Permanent,
    /// The configuration is wrong.
    InvalidConfig,
}

/// Why a job failed. Each variant has an error code for the `jobs` table and a retry
/// decision for the queue.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    /// The job itself is malformed.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The plugin it names is not installed, or is of the wrong kind.
    #[error("{0}")]
    PluginNotFound(String),
    /// The plugin's configuration is wrong.
    #[error("invalid plugin config: {0}")]
    InvalidConfig(String),
    /// The plugin returned an error.
    #[error("plugin error ({kind:?}): {message}")]
    Plugin {
        /// Its kind.
        kind: PluginErrorKind,
        /// Its message (redacted).
        message: String,
        /// When to retry, if the plugin said.
        retry_after: Option<Duration>,
    },
    /// The plugin trapped, ran out of time or memory, or overflowed a limit.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The plugin returned data that breaks the contract.
    #[error("invalid plugin output: {0}")]
    InvalidOutput(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No handler for this job type.
    #[error("{0}")]
    Unsupported(String),
}

impl JobFailure {
    /// A host record (a resume point, export progress, a manifest) that cannot be
    /// serialised for storage: a storage failure, since the data is the host's own.
    pub(crate) fn unstorable(e: impl std::fmt::Display) -> Self {
        Self::Storage(StorageError::Invalid(e.to_string()))
    }

    /// Error code for the `jobs` table and `run-plugin` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJob(_) => "invalid-job",
            Self::PluginNotFound(_) => "plugin-not-found",
            Self::InvalidConfig(_) => "invalid-config",
            Self::Plugin {
                kind: PluginErrorKind::Retryable,
                ..
            } => "plugin-retryable",
            Self::Plugin {
                kind: PluginErrorKind::RateLimited,
                ..
            } => "rate-limited",
            Self::Plugin {
                kind: PluginErrorKind::Permanent,
                ..
            } => "plugin-permanent",
            Self::Plugin {
                kind: PluginErrorKind::InvalidConfig,
                ..
            } => "invalid-config",
            Self::Call(c) => c.category(),
            Self::InvalidOutput(_) => "invalid-output",
            Self::Storage(StorageError::Unavailable(_)) => "storage-unavailable",
            Self::Storage(_) => "storage",
            Self::Unsupported(_) => "unsupported",
        }
    }

    /// This failure with `secrets` masked in its message, its code and retry decision
    /// unchanged: the message reaches `run-plugin`'s output, Bull's `failedReason` and
    /// the `jobs` table, and may quote what a plugin returned.
    #[must_use]
    pub fn redact(self, secrets: &Redactor) -> Self {
        if secrets.is_empty() {
            return self;
        }
        let m = |s: String| secrets.mask(&s).into_owned();
        match self {
            Self::InvalidJob(s) => Self::InvalidJob(m(s)),
            Self::PluginNotFound(s) => Self::PluginNotFound(m(s)),
            Self::InvalidConfig(s) => Self::InvalidConfig(m(s)),
            Self::Plugin {
                kind,
                message,
                retry_after,
            } => Self::Plugin {
                kind,
                message: m(message),
                retry_after,
            },
            Self::Call(CallError::Trap(s)) => Self::Call(CallError::Trap(m(s))),
            Self::Call(CallError::OutputLimit(s)) => Self::Call(CallError::OutputLimit(m(s))),
            Self::Call(other) => Self::Call(other),
            Self::InvalidOutput(s) => Self::InvalidOutput(m(s)),
            Self::Storage(StorageError::Unavailable(s)) => {
                Self::Storage(StorageError::Unavailable(m(s)))
            }
            Self::Storage(StorageError::Invalid(s)) => Self::Storage(StorageError::Invalid(m(s))),
            Self::Storage(StorageError::Config(s)) => Self::Storage(StorageError::Config(m(s))),
            Self::Unsupported(s) => Self::Unsupported(m(s)),
        }
    }

    /// Whether another attempt can help, and after how long if the job knows.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Plugin {
                kind: PluginErrorKind::Retryable | PluginErrorKind::RateLimited,
                retry_after,
                ..
            } => Retry::Yes(*retry_after),
            Self::Call(CallError::Timeout(_)) => Retry::Yes(None),
            Self::Storage(StorageError::Unavailable(_)) => Retry::Yes(None),
            _ => Retry::No,
        }
    }
}

/// A retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retry, optionally no sooner than this.
    Yes(Option<Duration>),
    /// Fail now; attempts left are not spent.
    No,
}

/// A job that failed, with what the plugin used before it did.
#[derive(Debug)]
pub struct FailedJob {
    /// Why.
    pub failure: JobFailure,
    /// Usage and logs, when a plugin ran (boxed: failures travel through every layer
    /// and should stay small).
    pub report: Option<Box<JobReport>>,
}

impl From<JobFailure> for FailedJob {
    /// A failure before any plugin ran, so there is no report.
    fn from(failure: JobFailure) -> Self {
        Self {
            failure,
            report: None,
        }
    }
}

/// A job that completed.
#[derive(Debug, Clone, Serialize)]
pub struct CompletedJob {
    /// The job's output (the `jobs.output` column and Bull's return value).
    pub output: serde_json::Value,
    /// Usage, logs and follow-ups, when a plugin ran.
    pub report: Option<JobReport>,
    /// The input of the job that continues this one (same type and name), when it
    /// stopped at its call budget with work left. The queue enqueues it in the same
    /// lineage, so a job over millions of events is many short jobs, none near its
    /// deadline, each resuming where the last stopped.
    pub continuation: Option<serde_json::Value>,
}

/// The key under which a job type's output hands [`CompletedJob::continuation`] to the
/// executor, which moves it out of the output.
pub(crate) const CONTINUATION_KEY: &str = "continueWith";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_names_agree_with_serde_and_the_jobs_table() {
        let migration = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../migrations/0001_drowl_tables.sql"
        ));
        let names: Vec<&str> = <JobType as strum::IntoEnumIterator>::iter()
            .map(JobType::as_str)
            .collect();
        assert_eq!(
            names,
            [
                "event_ingestion",
                "identity_resolution",
                "keyword_extraction",
                "analytics",
                "report_generation",
                "data_export",
                "cleanup",
                "custom"
            ]
        );
        assert_eq!(JobType::names(), names.join(", "));
        for t in <JobType as strum::IntoEnumIterator>::iter() {
            let name = t.as_str();
            assert_eq!(JobType::parse(name), Some(t));
            assert_eq!(t.to_string(), name);
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(name));
            assert_eq!(
                serde_json::from_value::<JobType>(serde_json::json!(name)).unwrap(),
                t
            );
            assert!(migration.contains(&format!("'{name}'")), "{name}");
        }
        assert_eq!(JobType::parse("Event_Ingestion"), None);
        assert_eq!(JobType::parse(""), None);
    }

    #[test]
    fn redacting_a_failure_masks_its_message_and_keeps_its_code() {
        let r = Redactor::new(["ghp_s3cretT0ken"]);
        for f in [
            JobFailure::InvalidOutput("events[0].source \"ghp_s3cretT0ken\" is bad".into()),
            JobFailure::Call(CallError::Trap("panicked: ghp_s3cretT0ken".into())),
            JobFailure::Storage(StorageError::Unavailable("ghp_s3cretT0ken".into())),
        ] {
            let code = f.code();
            let retry = f.retry();
            let f = f.redact(&r);
            assert_eq!((f.code(), f.retry()), (code, retry));
            let text = f.to_string();
            assert!(
                text.contains("[REDACTED]") && !text.contains("s3cret"),
                "{text}"
            );
        }
    }

    #[test]
    fn drowl_jobs_parse_and_bad_ones_say_why() {
        let j = JobRequest::from_json(
            "1",
            r#"{"type":"event_ingestion","name":"github-events","input":{"pluginId":"github"}}"#,
        )
        .unwrap();
        assert_eq!(j.job_type, JobType::EventIngestion);
        assert_eq!(j.input_str("pluginId"), Some("github"));
        for (text, needle) in [
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"name":"x"}"#, "no string field `type`"),
            (r#"{"type":"eat"}"#, "unknown job type \"eat\""),
            (
                r#"{"type":"custom","input":[1]}"#,
                "`input` must be a JSON object",
            ),
        ] {
            let e = JobRequest::from_json("1", text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
