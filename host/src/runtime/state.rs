//! What a [`wasmtime::Store`] holds for one plugin job, as far as the runtime is concerned.
//!
//! The runtime owns the sandbox (WASI with nothing granted, the resource table, the
//! memory limiter, the captured stderr); everything the drowl imports need lives one layer
//! up, in the capabilities. The store's data type is therefore generic: anything that
//! holds a [`Sandbox`] and implements [`StoreState`] can run plugins. This keeps the
//! runtime below the capabilities in the module graph, the way wasmtime-wasi's `WasiView`
//! keeps WASI independent of the embedder's store type.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Budget, Limiter};
use super::stderr::TailPipe;

/// Bytes of the plugin's stderr kept: the last ones, where a panic message lands.
pub const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// Most random bytes one `wasi:random` call may ask for. The host allocates the answer
/// before copying it into the guest, and wasmtime-wasi's default (64 MiB per call) would
/// let a plugin make the host allocate that much on every call. Seeding a hash map or a
/// PRNG needs a few dozen bytes.
pub const MAX_RANDOM_BYTES_PER_CALL: u64 = 1 << 20;

/// The runtime's part of a store: WASI context with nothing granted, the resource table,
/// the limiter and the captured stderr.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    stderr: TailPipe,
    /// Bytes the plugin returned to the host across all calls.
    pub(crate) bytes_from_plugin: u64,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A fresh sandbox: no files, no environment variables, no arguments, no sockets
    /// (every address denied, name lookup denied), stdin empty, stdout discarded, stderr
    /// captured (its tail, bounded) so a panic message can be reported, and at most
    /// `budget.max_resource_handles` WASI resources alive at once.
    pub fn new(budget: &Budget) -> Self {
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
            bytes_from_plugin: 0,
        }
    }

    /// The WASI view of this sandbox, for [`WasiView`] implementations.
    pub fn wasi(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }

    /// The tail of what the plugin wrote to stderr, not yet redacted: the last 1,000
    /// characters, trimmed.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        // The tail may start in the middle of a character; lossy decoding copes.
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let skip = text.chars().count().saturating_sub(1000);
        text.chars().skip(skip).collect()
    }
}

/// What the runtime measured about one job, handed to [`StoreState::into_report`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Wall-clock time from instantiation to the end of the job, in milliseconds.
    pub wall_ms: u64,
    /// Time creating the store and instantiating the plugin took, in microseconds.
    pub instantiate_us: u64,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel consumed, when the engine meters fuel.
    pub fuel_consumed: Option<u64>,
    /// Bytes the plugin returned to the host across all calls.
    pub bytes_from_plugin: u64,
}

/// The data of a store the runtime can run plugins in.
///
/// The capabilities layer implements it for its store type; the runtime only needs the
/// sandbox, a way to redact what it reports about the plugin (stderr, host faults), and
/// a way to turn the finished store into the job's report.
pub trait StoreState: WasiView + Send + Sized + 'static {
    /// What a finished job leaves behind (usage, logs, ...).
    type Report;

    /// The runtime's part of the store.
    fn sandbox(&self) -> &Sandbox;

    /// The runtime's part of the store, mutably.
    fn sandbox_mut(&mut self) -> &mut Sandbox;

    /// Removes the plugin's secrets from text the runtime is about to report.
    fn redact(&self, text: &str) -> String;

    /// Ends the job: the report of what it used and produced.
    fn into_report(self, stats: RunStats) -> Self::Report;
}
