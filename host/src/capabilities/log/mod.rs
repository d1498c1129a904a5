//! The `log` interface: plugin log lines into the job record and the host's log stream.
//!
//! Each line is redacted, attributed to the plugin and job, and counted; past the job's
//! line budget lines are dropped (and counted) so a plugin that floods its log slows
//! nothing but itself.

mod host;

use std::sync::Arc;

use serde::Serialize;
use wasmtime::component::{HasData, Linker};

use super::CallTag;
use crate::bindings::host_api::drowl::plugin::log as wit;
use crate::redact::Redactor;

/// Most structured fields kept per line.
pub const MAX_FIELDS: usize = 32;

/// One line a plugin logged, kept with the job's result.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// `trace` to `error`.
    pub level: &'static str,
    /// The message, secrets redacted and control characters removed.
    pub message: String,
    /// Structured fields, redacted the same way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}

/// The `log` interface's state for one job.
#[derive(Debug)]
pub struct LogCtx {
    pub(crate) tag: CallTag,
    redactor: Arc<Redactor>,
    max_lines: u32,
    /// Lines kept (at most `max_lines`).
    pub(crate) lines: Vec<LogLine>,
    /// Lines written, kept or dropped.
    pub(crate) written: u32,
    max_bytes: usize,
    /// Bytes of messages and fields kept.
    bytes: usize,
    /// Lines dropped past the line or byte budget.
    pub(crate) dropped: u32,
    /// Which budget dropped lines: `log-lines` and/or `log-bytes`.
    pub(crate) violations: Vec<&'static str>,
}

impl LogCtx {
    /// A context that keeps at most `max_lines` lines and `max_bytes` bytes of messages
    /// and fields, redacted by `redactor`.
    pub fn new(tag: CallTag, redactor: Arc<Redactor>, max_lines: u32, max_bytes: usize) -> Self {
        Self {
            tag,
            redactor,
            max_lines,
            lines: Vec::new(),
            written: 0,
            max_bytes,
            bytes: 0,
            dropped: 0,
            violations: Vec::new(),
        }
    }

    /// Counts a dropped line against the budget named `kind`.
    fn drop_line(&mut self, kind: &'static str) {
        self.dropped = self.dropped.saturating_add(1);
        if !self.violations.contains(&kind) {
            self.violations.push(kind);
        }
    }

    /// The lines kept so far.
    pub fn lines(&self) -> &[LogLine] {
        &self.lines
    }
}

/// Gives the `log` host functions their context inside a store's data.
pub trait LogView: Send {
    /// This store's `log` context.
    fn log(&mut self) -> &mut LogCtx;
}

struct LogImports;

impl HasData for LogImports {
    type Data<'a> = &'a mut LogCtx;
}

/// Adds `drowl:plugin/log` to `linker`, served from each store's [`LogCtx`].
pub fn add_to_linker<T: LogView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, LogImports>(linker, T::log)
}
