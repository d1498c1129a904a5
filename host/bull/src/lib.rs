//! A Bull 4.x compatible job queue over Redis: a producer/admin handle ([`Queue`]) and a
//! worker ([`Worker`]) that the real `bull` npm client cannot tell apart from its own.
//!
//! Why this exists: drowl's TypeScript API enqueues jobs with `bull` (4.x), and the Rust host
//! must consume them. The Redis layout, the hash fields, the pub/sub payloads and the script
//! semantics follow Bull 4.12.9+ (see `bull4-protocol.md` in the shared reference); the Lua
//! scripts in [`scripts`](crate) are written from that description, not copied.
//!
//! The crate knows nothing about WASM or drowl storage: a host plugs in a [`JobHandler`] (what
//! to run) and optionally a [`JobObserver`] (to mirror job states elsewhere).
//!
//! Worker duties that Bull's add-only clients rely on are all done here: lock renewal from one
//! ticker (and cancelling the job when the lock is lost), the stalled-job check, promotion of
//! delayed jobs, and scheduling the next run of repeatable jobs.

mod backoff;
mod config;
mod conn;
mod defaults;
mod error;
mod job;
mod keys;
mod queue;
mod repeat;
mod scripts;
mod stored;
mod worker;

pub use backoff::{BackoffContext, BackoffStrategy};
pub use config::{QueueConfig, RateLimit};
pub use defaults::{DefaultsFor, JobDefaults};
pub use error::{HandlerError, QueueError};
pub use job::{
    Backoff, DateValue, JobCounts, JobId, JobOptions, JobRecord, JobState, KeepJobs, RepeatOptions,
};
pub use queue::{Queue, RanNow};
pub use repeat::{RepeatableJob, next_cron_run, repeatable_key};
pub use worker::{
    ActiveJob, CancelReason, FailureInfo, JobHandler, JobInfo, JobObserver, NoopObserver, Worker,
};
