//! The `kv` interface: a key-value store private to each plugin.
//!
//! The namespace is the plugin's id, fixed when the context is built from the plugin's
//! environment, never taken from the guest, so one plugin cannot read or overwrite
//! another's state.

mod host;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::CallTag;
use super::quota::WriteQuota;
use crate::bindings::host_api::drowl::plugin::kv as wit;
use crate::storage::KvStore;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Most keys returned by one `list-keys` call.
pub const MAX_LIST: u32 = 1_000;
/// Largest value the `kv` import accepts, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The `kv` interface's state for one job.
pub struct KvCtx {
    pub(crate) tag: CallTag,
    store: Arc<dyn KvStore>,
    namespace: Arc<str>,
    /// This job's write budget (per job, and the plugin's stored bytes).
    pub(crate) quota: WriteQuota,
}

impl std::fmt::Debug for KvCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCtx")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl KvCtx {
    /// A context over `store`, confined to `namespace`, writing at most `max_bytes` of
    /// keys and values in this job.
    pub fn new(
        tag: CallTag,
        store: Arc<dyn KvStore>,
        namespace: impl Into<Arc<str>>,
        max_bytes: u64,
    ) -> Self {
        Self {
            tag,
            store,
            namespace: namespace.into(),
            quota: WriteQuota::new(max_bytes),
        }
    }

    /// Also holds the plugin to `max_bytes` of keys and values stored in its namespace
    /// (see `WriteQuota` for how concurrent jobs count).
    #[must_use]
    pub fn with_plugin_quota(mut self, max_bytes: u64) -> Self {
        self.quota.set_per_plugin(max_bytes);
        self
    }
}

/// Gives the `kv` host functions their context inside a store's data.
pub trait KvView: Send {
    /// This store's `kv` context.
    fn kv(&mut self) -> &mut KvCtx;
}

struct KvImports;

impl HasData for KvImports {
    type Data<'a> = &'a mut KvCtx;
}

/// Adds `drowl:plugin/kv` to `linker`, served from each store's [`KvCtx`].
pub fn add_to_linker<T: KvView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, KvImports>(linker, T::kv)
}
