//! What a [`wasmtime::Store`] holds for one plugin job.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Budget, Limiter};
use crate::capabilities::{JobScope, PluginEnv};

/// Bytes of the plugin's stderr kept (panic messages land there).
pub const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// The data of a store: WASI context with nothing granted, limits, and the plugin's
/// environment and job scope that host functions read.
pub struct PluginState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stderr: MemoryOutputPipe,
    /// What the plugin may reach.
    pub env: Arc<PluginEnv>,
    /// This job's counters, logs and follow-ups.
    pub job: JobScope,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("env", &self.env)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl PluginState {
    /// A fresh state: no files, no environment variables, no arguments, no sockets (every
    /// address denied, name lookup denied), stdin empty, stdout discarded, stderr captured
    /// (bounded) so a panic message can be reported.
    pub fn new(env: Arc<PluginEnv>, job: JobScope, budget: &Budget) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: Limiter::new(budget),
            stderr,
            env,
            job,
        }
    }

    /// The tail of what the plugin wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let tail: String = text
            .chars()
            .rev()
            .take(1000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        self.env.redactor.clean(&tail)
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl crate::runtime::bindings::types::Host for PluginState {}
