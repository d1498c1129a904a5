//! Errors at the crate boundary and the error type job handlers return.

use std::time::Duration;

/// Everything that can go wrong talking to the queue.
///
/// Why one enum: callers (the host's `serve`, `enqueue` and `jobs` commands) need to tell a
/// configuration mistake from an unreachable Redis from a protocol surprise, and nothing else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Redis could not be reached or rejected a command.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A setting in [`QueueConfig`](crate::QueueConfig) is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Job options cannot be honoured (e.g. an unparsable cron expression).
    #[error("invalid job options: {0}")]
    InvalidOptions(String),
    /// A JSON value could not be encoded or decoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A script or command answered in a shape this crate does not expect.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// A job-level script refused the operation (Bull's negative codes).
    #[error("job {job_id}: {reason} (code {code})")]
    Job {
        /// The job concerned.
        job_id: String,
        /// Bull's code: −1 missing, −2 lock missing, −3 not active, −6 locked by another.
        code: i64,
        /// Human-readable meaning of the code.
        reason: &'static str,
    },
}

impl QueueError {
    /// Map one of Bull's negative script codes to an error.
    pub(crate) fn from_code(job_id: &str, code: i64) -> Self {
        let reason = match code {
            -1 => "job does not exist",
            -2 => "job lock is missing",
            -3 => "job is not in the active list",
            -6 => "job is locked by another worker",
            _ => "unknown script error",
        };
        QueueError::Job {
            job_id: job_id.to_owned(),
            code,
            reason,
        }
    }
}

/// What a handler returns when a job attempt fails.
///
/// Why three variants: Bull decides between retrying (attempts/backoff) and failing for good;
/// a handler sometimes knows better — a rate-limited upstream says when to come back
/// (`RetryAfter`), and a malformed input will never succeed (`Permanent`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// An ordinary failure: retried if attempts remain, with the job's backoff.
    #[error("{message}")]
    Failed {
        /// Becomes Bull's `failedReason` and the `val` of the `failed` event.
        message: String,
        /// Optional machine-readable code for the host's own records.
        code: Option<String>,
        /// Optional structured details for the host's own records.
        details: Option<serde_json::Value>,
    },
    /// A failure that should be retried after exactly `delay` (overrides the backoff), if
    /// attempts remain.
    #[error("{message}")]
    RetryAfter {
        /// Becomes Bull's `failedReason`.
        message: String,
        /// How long to wait before the next attempt.
        delay: Duration,
        /// Optional machine-readable code.
        code: Option<String>,
        /// Optional structured details.
        details: Option<serde_json::Value>,
    },
    /// A failure that must not be retried whatever `attempts` says.
    #[error("{message}")]
    Permanent {
        /// Becomes Bull's `failedReason`.
        message: String,
        /// Optional machine-readable code.
        code: Option<String>,
        /// Optional structured details.
        details: Option<serde_json::Value>,
    },
    /// Not a failure: the job could not start here now (a per-type limit is full). It
    /// goes back to `delayed` for `delay`, without counting an attempt, so any worker
    /// can take it then and this one's slot is free for other work meanwhile (as Bull's
    /// rate limiter does with the jobs it turns away).
    #[error("{message}")]
    Postponed {
        /// Why, for logs and observers (Bull's hash is not changed).
        message: String,
        /// How long the job waits in `delayed`.
        delay: Duration,
    },
}

impl HandlerError {
    /// An ordinary, retryable failure.
    #[must_use]
    pub fn failed(message: impl Into<String>) -> Self {
        HandlerError::Failed {
            message: message.into(),
            code: None,
            details: None,
        }
    }

    /// A failure to retry after `delay` instead of the configured backoff.
    #[must_use]
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        HandlerError::RetryAfter {
            message: message.into(),
            delay,
            code: None,
            details: None,
        }
    }

    /// A failure that ends the job now.
    #[must_use]
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError::Permanent {
            message: message.into(),
            code: None,
            details: None,
        }
    }

    /// Give the job back for `delay` without counting an attempt.
    #[must_use]
    pub fn postponed(message: impl Into<String>, delay: Duration) -> Self {
        HandlerError::Postponed {
            message: message.into(),
            delay,
        }
    }

    /// Attach a machine-readable code (kept for observers; Bull only sees the message).
    #[must_use]
    pub fn with_code(mut self, new: impl Into<String>) -> Self {
        match &mut self {
            HandlerError::Failed { code, .. }
            | HandlerError::RetryAfter { code, .. }
            | HandlerError::Permanent { code, .. } => *code = Some(new.into()),
            HandlerError::Postponed { .. } => {}
        }
        self
    }

    /// Attach structured details (kept for observers; Bull only sees the message).
    #[must_use]
    pub fn with_details(mut self, new: serde_json::Value) -> Self {
        match &mut self {
            HandlerError::Failed { details, .. }
            | HandlerError::RetryAfter { details, .. }
            | HandlerError::Permanent { details, .. } => *details = Some(new),
            HandlerError::Postponed { .. } => {}
        }
        self
    }

    /// The message that becomes `failedReason`.
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            HandlerError::Failed { message, .. }
            | HandlerError::RetryAfter { message, .. }
            | HandlerError::Permanent { message, .. }
            | HandlerError::Postponed { message, .. } => message,
        }
    }

    /// The machine-readable code, if any.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            HandlerError::Failed { code, .. }
            | HandlerError::RetryAfter { code, .. }
            | HandlerError::Permanent { code, .. } => code.as_deref(),
            HandlerError::Postponed { .. } => None,
        }
    }

    /// The structured details, if any.
    #[must_use]
    pub fn details(&self) -> Option<&serde_json::Value> {
        match self {
            HandlerError::Failed { details, .. }
            | HandlerError::RetryAfter { details, .. }
            | HandlerError::Permanent { details, .. } => details.as_ref(),
            HandlerError::Postponed { .. } => None,
        }
    }
}
