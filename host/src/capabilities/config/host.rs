//! `drowl:plugin/config` served from a [`ConfigCtx`].

use super::{ConfigCtx, wit};

impl wit::Host for ConfigCtx {
    #[tracing::instrument(name = "drowl.config.get", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.values.get(&key).cloned())
    }

    #[tracing::instrument(name = "drowl.config.secret", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn secret(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.secrets.get(&key).cloned())
    }
}
