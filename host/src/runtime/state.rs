//! What a [`wasmtime::Store`] holds for one plugin job.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Budget, Limiter};
use super::stderr::TailPipe;
use crate::capabilities::{JobScope, PluginEnv};

/// Bytes of the plugin's stderr kept: the last ones, where a panic message lands.
pub const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// Most random bytes one `wasi:random` call may ask for. The host allocates the answer
/// before copying it into the guest, and wasmtime-wasi's default (64 MiB per call) would
/// let a plugin make the host allocate that much on every call. Seeding a hash map or a
/// PRNG needs a few dozen bytes.
pub const MAX_RANDOM_BYTES_PER_CALL: u64 = 1 << 20;

/// The data of a store: WASI context with nothing granted, limits, and the plugin's
/// environment and job scope that host functions read.
pub struct PluginState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) stderr: TailPipe,
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
    /// (its tail, bounded) so a panic message can be reported, and at most
    /// `budget.max_resource_handles` WASI resources alive at once.
    pub fn new(env: Arc<PluginEnv>, job: JobScope, budget: &Budget) -> Self {
        let stderr = TailPipe::new(STDERR_CAPTURE_BYTES);
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder
            .stderr(stderr.clone())
            .max_random_size(MAX_RANDOM_BYTES_PER_CALL)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        let mut table = ResourceTable::new();
        table.set_max_capacity(budget.max_resource_handles);
        Self {
            wasi: builder.build(),
            table,
            limiter: Limiter::new(budget),
            stderr,
            env,
            job,
        }
    }

    /// The tail of what the plugin wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        // The tail may start in the middle of a character; lossy decoding copes.
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
