//! The `log` interface: plugin log lines into the job record and the host's log stream.
//!
//! Each line is redacted (see [`super::redact`]), attributed to the plugin and job, and
//! counted; past the job's line budget lines are dropped (and counted) so a plugin that
//! floods its log slows nothing but itself.

use crate::runtime::PluginState;
use crate::runtime::bindings::host_api::drowl::plugin::log as wit;

use super::LogLine;

/// Most structured fields kept per line.
const MAX_FIELDS: usize = 32;

impl wit::Host for PluginState {
    async fn log(
        &mut self,
        level: wit::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.job.usage.log_lines = self.job.usage.log_lines.saturating_add(1);
        if self.job.logs.len() >= self.job.max_log_lines as usize {
            return Ok(());
        }
        let redactor = &self.env.redactor;
        let message = redactor.clean(&message);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| (redactor.clean(&k), redactor.clean(&v)))
            .collect();
        let plugin = self.env.plugin_id.as_str();
        let job = self.job.job_id.as_str();
        let level_name = match level {
            wit::Level::Trace => {
                tracing::trace!(target: "drowl::plugin", plugin, job, ?fields, "{message}");
                "trace"
            }
            wit::Level::Debug => {
                tracing::debug!(target: "drowl::plugin", plugin, job, ?fields, "{message}");
                "debug"
            }
            wit::Level::Info => {
                tracing::info!(target: "drowl::plugin", plugin, job, ?fields, "{message}");
                "info"
            }
            wit::Level::Warn => {
                tracing::warn!(target: "drowl::plugin", plugin, job, ?fields, "{message}");
                "warn"
            }
            wit::Level::Error => {
                tracing::error!(target: "drowl::plugin", plugin, job, ?fields, "{message}");
                "error"
            }
        };
        self.job.logs.push(LogLine {
            level: level_name,
            message,
            fields,
        });
        Ok(())
    }
}
