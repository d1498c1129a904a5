//! The `http` interface: outbound HTTP for plugins, limited to the origins the plugin
//! declared and the operator granted, with the host resolving names and refusing
//! private and special addresses.
//!
//! - `host`: the WIT glue, converting between the WIT records and [`egress`].
//! - [`egress`]: the engine behind `http.send` (checks, pinned connections, limits, records).
//! - [`policy`]: origins, the effective allow-list and limits.
//! - [`ip`]: which addresses may be connected to.

pub mod egress;
mod host;
pub mod ip;
pub mod policy;

use std::time::Instant;

use wasmtime::component::{HasData, Linker};

use super::CallTag;
use crate::bindings::host_api::drowl::plugin::http as wit;
use egress::{EgressClient, EgressJob};

/// The `http` interface's state for one job: the plugin's egress client and this job's
/// side of it (request budget, records), and the job's deadline, which caps every
/// request's timeout.
#[derive(Debug)]
pub struct HttpCtx {
    pub(crate) tag: CallTag,
    client: EgressClient,
    pub(crate) job: EgressJob,
    deadline: Instant,
}

impl HttpCtx {
    /// A context sending through `client` for the job `tag` names, until `deadline`.
    pub fn new(tag: CallTag, client: EgressClient, deadline: Instant) -> Self {
        let job = client.new_job(&*tag.job);
        Self {
            tag,
            client,
            job,
            deadline,
        }
    }
}

/// Gives the `http` host functions their context inside a store's data.
pub trait HttpView: Send {
    /// This store's `http` context.
    fn http(&mut self) -> &mut HttpCtx;
}

struct HttpImports;

impl HasData for HttpImports {
    type Data<'a> = &'a mut HttpCtx;
}

/// Adds `drowl:plugin/http` to `linker`, served from each store's [`HttpCtx`].
pub fn add_to_linker<T: HttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HttpImports>(linker, T::http)
}
