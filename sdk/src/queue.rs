//! Follow-up jobs and progress reporting.

use crate::bindings::drowl::plugin0_1_0::queue as wit;

pub use wit::{NewJob, QueueError};

/// Enqueues a follow-up job (enqueued only if the current job completes).
pub fn enqueue(
    job_type: &str,
    name: &str,
    input: &serde_json::Value,
) -> Result<String, QueueError> {
    wit::enqueue(&NewJob {
        job_type: job_type.to_owned(),
        name: name.to_owned(),
        input: input.to_string(),
        delay_ms: None,
        priority: None,
    })
}

/// Enqueues a fully specified follow-up job.
pub fn enqueue_job(job: &NewJob) -> Result<String, QueueError> {
    wit::enqueue(job)
}

/// Reports progress, 0 to 100.
pub fn progress(percent: u8) {
    wit::progress(percent.min(100));
}

/// A one-line description of a queue error.
pub fn describe_error(e: &QueueError) -> String {
    match e {
        QueueError::Invalid(m) => format!("invalid follow-up job: {m}"),
        QueueError::LimitReached(n) => format!("follow-up job limit of {n} reached"),
        QueueError::Unavailable(m) => format!("queue unavailable: {m}"),
    }
}
