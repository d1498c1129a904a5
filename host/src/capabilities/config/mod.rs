//! The `config` interface, and checking operator-supplied values against the manifest.
//!
//! Values are checked once, when a plugin is configured ([`ResolvedConfig::resolve`]):
//! an unknown key, a missing required field or a value of the wrong type is refused
//! before any job runs, with a message naming the key. Secrets are kept apart from other
//! values: they never appear in `ingest-request.config`, in job output or in logs.

mod host;
mod resolve;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

pub use resolve::{ConfigError, ResolvedConfig};

use super::CallTag;
use crate::bindings::host_api::drowl::plugin::config as wit;

/// The `config` interface's state for one job: the plugin's resolved configuration.
#[derive(Debug)]
pub struct ConfigCtx {
    pub(crate) tag: CallTag,
    config: Arc<ResolvedConfig>,
}

impl ConfigCtx {
    /// A context answering from `config`.
    pub fn new(tag: CallTag, config: Arc<ResolvedConfig>) -> Self {
        Self { tag, config }
    }
}

/// Gives the `config` host functions their context inside a store's data.
pub trait ConfigView: Send {
    /// This store's `config` context.
    fn config(&mut self) -> &mut ConfigCtx;
}

struct ConfigImports;

impl HasData for ConfigImports {
    type Data<'a> = &'a mut ConfigCtx;
}

/// Adds `drowl:plugin/config` to `linker`, served from each store's [`ConfigCtx`].
pub fn add_to_linker<T: ConfigView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, ConfigImports>(linker, T::config)
}
