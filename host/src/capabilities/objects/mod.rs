//! The `objects` interface: object storage under the plugin's own prefix.
//!
//! The guest supplies a relative key; [`ObjectKey::plugin_object`] validates it and
//! places it under `plugins/<plugin-id>/objects/`, so traversal (`../`), absolute paths,
//! NUL and over-long keys are refused before any backend sees them.
//!
//! [`ObjectKey::plugin_object`]: crate::storage::ObjectKey::plugin_object

mod host;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::CallTag;
use super::quota::WriteQuota;
use crate::bindings::host_api::drowl::plugin::objects as wit;
use crate::storage::ObjectStore;

/// Largest object the `objects` import accepts, in bytes.
pub const MAX_OBJECT_BYTES: usize = 32 << 20;

/// The `objects` interface's state for one job.
pub struct ObjectsCtx {
    pub(crate) tag: CallTag,
    store: Arc<dyn ObjectStore>,
    /// Objects written by this job.
    pub(crate) written: u32,
    /// This job's write budget (per job, and the plugin's stored bytes).
    pub(crate) quota: WriteQuota,
}

impl std::fmt::Debug for ObjectsCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectsCtx")
            .field("plugin", &self.tag.plugin)
            .finish_non_exhaustive()
    }
}

impl ObjectsCtx {
    /// A context over `store`, writing at most `max_bytes` of objects in this job; keys
    /// are placed under the tag's plugin id.
    pub fn new(tag: CallTag, store: Arc<dyn ObjectStore>, max_bytes: u64) -> Self {
        Self {
            tag,
            store,
            written: 0,
            quota: WriteQuota::new(max_bytes),
        }
    }

    /// Also holds the plugin to `max_bytes` of objects under `plugins/<id>/objects/`
    /// (see `WriteQuota` for how concurrent jobs count).
    #[must_use]
    pub fn with_plugin_quota(mut self, max_bytes: u64) -> Self {
        self.quota.set_per_plugin(max_bytes);
        self
    }
}

/// Gives the `objects` host functions their context inside a store's data.
pub trait ObjectsView: Send {
    /// This store's `objects` context.
    fn objects(&mut self) -> &mut ObjectsCtx;
}

struct ObjectsImports;

impl HasData for ObjectsImports {
    type Data<'a> = &'a mut ObjectsCtx;
}

/// Adds `drowl:plugin/objects` to `linker`, served from each store's [`ObjectsCtx`].
pub fn add_to_linker<T: ObjectsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, ObjectsImports>(linker, T::objects)
}
