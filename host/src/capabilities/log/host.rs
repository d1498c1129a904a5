//! `drowl:plugin/log` served from a [`LogCtx`].

use super::{LogCtx, LogLine, MAX_FIELDS, wit};

impl wit::Host for LogCtx {
    #[tracing::instrument(name = "drowl.log.log", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn log(
        &mut self,
        level: wit::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.written = self.written.saturating_add(1);
        if self.lines.len() >= self.max_lines as usize {
            self.drop_line("log-lines");
            return Ok(());
        }
        if self.bytes >= self.max_bytes {
            // Cheap refusal once the budget is spent: a flood costs no redaction work.
            self.drop_line("log-bytes");
            return Ok(());
        }
        let redactor = &self.redactor;
        let message = redactor.clean(&message);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| (redactor.clean(&k), redactor.clean(&v)))
            .collect();
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if self.bytes + size > self.max_bytes {
            // Kept lines stay whole; the budget holds what the job's record and the
            // daemon's memory carry for this job, however the plugin shapes its lines.
            self.bytes = self.max_bytes;
            self.drop_line("log-bytes");
            return Ok(());
        }
        self.bytes += size;
        let plugin = &*self.tag.plugin;
        let job = &*self.tag.job;
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
        self.lines.push(LogLine {
            level: level_name,
            message,
            fields,
        });
        Ok(())
    }
}
