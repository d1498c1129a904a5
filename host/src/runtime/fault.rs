//! Host faults: the host itself failing while it serves a plugin's call.
//!
//! A host function runs backend code (storage, the network) on the plugin's behalf. If
//! that code panics, the panic must end only the calling job, reported as the host's
//! fault, never unwind into whatever awaits the job.

/// The host itself failed while serving a plugin's call: a storage or network backend
/// panicked. The calling job ends as a trap whose message says it was drowl-host's fault.
#[derive(Debug, thiserror::Error)]
#[error(
    "drowl-host failed in {call} (a host bug, not the plugin's; retrying the job may work): {message}"
)]
pub struct HostFault {
    /// The import being served, e.g. `kv.get`.
    pub call: &'static str,
    /// The panic message.
    pub message: String,
}

/// Runs the backend part of a host function so that a panic in it ends only the calling
/// job. Without this the panic unwinds through wasmtime into whatever awaits the job and
/// takes that task (in the daemon, a worker slot and the job's lock renewal) down with it.
/// Asserting unwind safety is sound because a trapped job's store is dropped, never used
/// again.
pub async fn guarded<F: std::future::Future>(
    call: &'static str,
    f: F,
) -> wasmtime::Result<F::Output> {
    use futures::FutureExt as _;
    std::panic::AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .map_err(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".to_owned());
            wasmtime::Error::new(HostFault { call, message })
        })
}
