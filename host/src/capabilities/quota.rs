//! Write quotas shared by the storage interfaces (`kv`, `objects`): bytes one job may
//! write, and bytes one plugin may keep stored across its jobs.

use std::future::Future;

use crate::storage::StorageError;

/// Why a write was not admitted.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Over a quota; the bytes still left under it.
    Quota(u64),
    /// The plugin's stored bytes could not be read.
    Storage(StorageError),
}

/// One job's write budget for one storage interface.
///
/// The per-plugin quota counts what the plugin had stored when the job first wrote
/// (asked once per job, never per write) plus this job's writes. Jobs of one plugin
/// running at once each see what was stored when they started, so together they may
/// exceed it by at most their number times the per-job quota; replacing a key or object
/// counts its new bytes without crediting the old ones, which errs on the side of
/// refusing.
#[derive(Debug)]
pub(crate) struct WriteQuota {
    per_job: u64,
    /// Bytes this job wrote.
    pub(crate) written: u64,
    /// Set once a write was refused for the job's quota.
    pub(crate) job_hit: bool,
    per_plugin: u64,
    stored: Option<u64>,
    /// Set once a write was refused for the plugin's quota.
    pub(crate) plugin_hit: bool,
}

impl WriteQuota {
    /// A budget of `per_job` bytes for one job and no per-plugin limit.
    pub(crate) fn new(per_job: u64) -> Self {
        Self {
            per_job,
            written: 0,
            job_hit: false,
            per_plugin: u64::MAX,
            stored: None,
            plugin_hit: false,
        }
    }

    /// Also holds the plugin to `per_plugin` bytes stored.
    pub(crate) fn set_per_plugin(&mut self, per_plugin: u64) {
        self.per_plugin = per_plugin;
    }

    /// Whether `size` more bytes may be written; `stored` reads the plugin's stored bytes
    /// (called at most once per job, and only when a per-plugin quota is set).
    pub(crate) async fn admit<F>(
        &mut self,
        size: u64,
        stored: impl FnOnce() -> F,
    ) -> wasmtime::Result<Result<(), Refused>>
    where
        F: Future<Output = wasmtime::Result<Result<u64, StorageError>>>,
    {
        if self.written.saturating_add(size) > self.per_job {
            self.job_hit = true;
            return Ok(Err(Refused::Quota(
                self.per_job.saturating_sub(self.written),
            )));
        }
        if self.per_plugin == u64::MAX {
            return Ok(Ok(()));
        }
        let base = match self.stored {
            Some(base) => base,
            None => match stored().await? {
                Ok(base) => *self.stored.insert(base),
                Err(e) => return Ok(Err(Refused::Storage(e))),
            },
        };
        let used = base.saturating_add(self.written);
        if used.saturating_add(size) > self.per_plugin {
            self.plugin_hit = true;
            return Ok(Err(Refused::Quota(self.per_plugin.saturating_sub(used))));
        }
        Ok(Ok(()))
    }

    /// Counts `size` bytes written.
    pub(crate) fn record(&mut self, size: u64) {
        self.written = self.written.saturating_add(size);
    }
}
