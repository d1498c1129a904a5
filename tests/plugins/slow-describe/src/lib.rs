//! A test plugin whose `describe` never returns in useful time: it sleeps for an hour.
//!
//! drowl-host loads plugins by instantiating them and calling `describe`; a component
//! that waits there (no wasm running, so epoch interruption never fires) must fail to
//! load after the describe budget, without holding `plugin check` or a daemon's start.

use drowl_plugin_sdk::ingestion::{IngestBatch, IngestRequest, Ingestion};
use drowl_plugin_sdk::{Capability, JobError, Manifest};

/// The plugin.
pub struct SlowDescribe;

/// How long `describe` sleeps: far past any budget a test would wait for.
pub const DESCRIBE_SLEEP: std::time::Duration = std::time::Duration::from_secs(3600);

impl Ingestion for SlowDescribe {
    fn manifest() -> Manifest {
        std::thread::sleep(DESCRIBE_SLEEP);
        Manifest::builder(
            "slow-describe",
            "Slow describe test plugin",
            env!("CARGO_PKG_VERSION"),
        )
        .description("Sleeps in describe, to test the describe budget")
        .capability(Capability::EventIngestion)
        .source("test")
        .build()
    }

    fn ingest(_: IngestRequest) -> Result<IngestBatch, JobError> {
        Ok(IngestBatch::last_page(vec![]))
    }
}

drowl_plugin_sdk::ingestion_plugin!(SlowDescribe);
