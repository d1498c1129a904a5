//! The `directory` interface (contract 0.2.0): identity-resolution plugins reading the
//! accounts drowl has stored, through an index of lookup keys of their own.
//!
//! The plugin id is fixed when the context is built, never taken from the guest, so a
//! plugin only ever finds identities under the keys *it* indexed. The context also
//! remembers every identity the job was shown (its batches and what `find` returned): a
//! plugin may only propose links between those, so it cannot link ids it guessed.

mod host;

pub(crate) use host::to_wit;

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::CallTag;
use crate::bindings::v0_2_0::identity::drowl::plugin0_2_0::directory as wit;
use crate::storage::EventStore;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Most identities one `find` returns, whatever the plugin asks for.
pub const MAX_FIND: u32 = 100;
/// Most identities one job may be shown (its batches and every `find`'s results): the
/// host remembers each to check the links the plugin proposes, so a plugin looking up
/// keys in a loop must not grow the host without bound. A real job sees its batches
/// (at most `--max-pages` × 200) and a few candidates per identity.
pub const MAX_SHOWN_PER_JOB: usize = 200_000;

/// The `directory` interface's state for one job.
pub struct DirectoryCtx {
    pub(crate) tag: CallTag,
    /// Where identities are read; `None` where no store exists (`describe`).
    store: Option<Arc<dyn EventStore>>,
    /// Every identity id this job was shown, so far.
    pub(crate) shown: HashSet<String>,
}

impl std::fmt::Debug for DirectoryCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCtx")
            .field("plugin", &self.tag.plugin)
            .field("shown", &self.shown.len())
            .finish_non_exhaustive()
    }
}

impl DirectoryCtx {
    /// A context reading from `store` (none: every lookup is `unavailable`) for the plugin
    /// and job of `tag`.
    pub fn new(tag: CallTag, store: Option<Arc<dyn EventStore>>) -> Self {
        Self {
            tag,
            store,
            shown: HashSet::new(),
        }
    }

    /// Records that the job was shown these identities (a batch handed to `resolve`).
    pub fn show<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        self.shown.extend(ids.into_iter().map(str::to_owned));
    }

    /// Whether the job may be shown `more` identities besides those it has seen.
    pub(crate) fn room_for(&self, more: usize) -> bool {
        self.shown.len().saturating_add(more) <= MAX_SHOWN_PER_JOB
    }

    /// Whether the job was shown identity `id`.
    pub fn was_shown(&self, id: &str) -> bool {
        self.shown.contains(id)
    }
}

/// Gives the `directory` host functions their context inside a store's data.
pub trait DirectoryView: Send {
    /// This store's `directory` context.
    fn directory(&mut self) -> &mut DirectoryCtx;
}

struct DirectoryImports;

impl HasData for DirectoryImports {
    type Data<'a> = &'a mut DirectoryCtx;
}

/// Adds `drowl:plugin/directory@0.2.0` to `linker`, served from each store's
/// [`DirectoryCtx`].
pub fn add_to_linker<T: DirectoryView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, DirectoryImports>(linker, T::directory)
}
