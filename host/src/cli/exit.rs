//! Exit codes, one per kind of failure, so scripts can tell them apart.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 2 | bad invocation or input: usage error, missing file, malformed job JSON, bad config |
//! | 3 | the file is not a loadable drowl plugin |
//! | 4 | the plugin returned an error (`job-error`) or invalid output |
//! | 5 | the plugin trapped (panic, stack overflow, output or resource limit, fuel) |
//! | 6 | the plugin ran past its deadline |
//! | 7 | the plugin hit its memory limit |
//! | 8 | storage failed |
//! | 9 | the job type or plugin is not supported here |
//! | 70 | internal error |

use crate::jobs::JobFailure;
use crate::runtime::CallError;

/// Success.
pub const OK: u8 = 0;
/// Bad invocation or input.
pub const USAGE: u8 = 2;
/// Not a loadable plugin.
pub const INVALID_PLUGIN: u8 = 3;
/// The plugin reported an error.
pub const PLUGIN_ERROR: u8 = 4;
/// The plugin trapped.
pub const TRAP: u8 = 5;
/// Deadline exceeded.
pub const TIMEOUT: u8 = 6;
/// Memory limit hit.
pub const MEMORY: u8 = 7;
/// Storage failed.
pub const STORAGE: u8 = 8;
/// Not supported.
pub const UNSUPPORTED: u8 = 9;
/// Internal error.
pub const INTERNAL: u8 = 70;

/// The exit code for a failed job.
pub fn for_failure(f: &JobFailure) -> u8 {
    match f {
        JobFailure::InvalidJob(_) | JobFailure::InvalidConfig(_) => USAGE,
        JobFailure::PluginNotFound(_) | JobFailure::Unsupported(_) => UNSUPPORTED,
        JobFailure::Plugin { .. } | JobFailure::InvalidOutput(_) => PLUGIN_ERROR,
        JobFailure::Call(CallError::Timeout(_)) => TIMEOUT,
        JobFailure::Call(CallError::MemoryLimit(_)) => MEMORY,
        JobFailure::Call(_) => TRAP,
        JobFailure::Storage(_) => STORAGE,
    }
}
