//! The `queue` interface: follow-up jobs and progress.
//!
//! Follow-ups are collected on the job and enqueued only when it completes, so a failed
//! attempt (which will be retried) leaves no orphan jobs behind.

use crate::runtime::PluginState;
use crate::runtime::bindings::host_api::drowl::plugin::queue as wit;

use super::FollowUp;

/// Job types a plugin may enqueue: drowl's own.
pub const JOB_TYPES: &[&str] = &[
    "event_ingestion",
    "identity_resolution",
    "keyword_extraction",
    "analytics",
    "report_generation",
    "data_export",
    "cleanup",
    "custom",
];

/// Largest follow-up input accepted, in bytes.
const MAX_INPUT_BYTES: usize = 64 * 1024;

impl wit::Host for PluginState {
    async fn enqueue(
        &mut self,
        job: wit::NewJob,
    ) -> wasmtime::Result<Result<String, wit::QueueError>> {
        if self.job.follow_ups.len() >= self.job.max_follow_ups as usize {
            return Ok(Err(wit::QueueError::LimitReached(self.job.max_follow_ups)));
        }
        if !JOB_TYPES.contains(&job.job_type.as_str()) {
            return Ok(Err(wit::QueueError::Invalid(format!(
                "unknown job type {:?}; use one of {}",
                job.job_type,
                JOB_TYPES.join(", ")
            ))));
        }
        if job.name.is_empty() || job.name.len() > 200 {
            return Ok(Err(wit::QueueError::Invalid(
                "name must be 1 to 200 bytes".into(),
            )));
        }
        if job.input.len() > MAX_INPUT_BYTES {
            return Ok(Err(wit::QueueError::Invalid(format!(
                "input over {MAX_INPUT_BYTES} bytes"
            ))));
        }
        let input = match serde_json::from_str::<serde_json::Value>(&job.input) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return Ok(Err(wit::QueueError::Invalid(
                    "input must be a JSON object".into(),
                )));
            }
        };
        if job.priority.is_some_and(|p| p > 10) {
            return Ok(Err(wit::QueueError::Invalid(
                "priority must be 0 to 10".into(),
            )));
        }
        let id = format!(
            "{}-followup-{}",
            self.job.job_id,
            self.job.follow_ups.len() + 1
        );
        self.job.follow_ups.push(FollowUp {
            job_type: job.job_type,
            name: job.name,
            input,
            delay_ms: job.delay_ms,
            priority: job.priority,
        });
        Ok(Ok(id))
    }

    async fn progress(&mut self, percent: u8) -> wasmtime::Result<()> {
        let p = percent.min(100);
        if self.job.last_progress != Some(p) {
            self.job.last_progress = Some(p);
            if let Some(sink) = &self.job.progress {
                sink(p);
            }
        }
        Ok(())
    }
}
