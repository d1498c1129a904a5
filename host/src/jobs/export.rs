//! `data_export`: hand stored events to an export plugin in pages.

use serde_json::json;

use super::enrich::{filter_from_input, to_wit_event};
use super::{
    CompletedJob, FailedJob, JobFailure, JobRequest, ReadyPlugin, job_context, plugin_failure,
};
use crate::capabilities::ProgressSink;
use crate::runtime::Runtime;
use crate::runtime::bindings::export::exports::drowl::plugin::export as wit;
use crate::storage::Storage;

/// Events per `deliver` call.
pub const EVENTS_PER_CALL: u32 = 500;

/// Runs an export job.
pub async fn run(
    runtime: &Runtime,
    storage: &Storage,
    plugin: &ReadyPlugin,
    job: &JobRequest,
    progress: Option<ProgressSink>,
) -> Result<CompletedJob, FailedJob> {
    let filter = filter_from_input(&job.input)?;
    let mut instance = super::start(runtime, plugin, job, progress).await?;
    let result = async {
        let (mut after, mut delivered, mut calls, mut locations) =
            (None::<String>, 0u64, 0u32, Vec::new());
        loop {
            let events = storage
                .events
                .list_events(&filter, after.as_deref(), EVENTS_PER_CALL)
                .await?;
            let Some(last) = events.last() else { break };
            after = Some(last.id.clone());
            let req = wit::ExportRequest {
                job: job_context(job),
                events: events.iter().map(to_wit_event).collect(),
                config: plugin.env.config.values_list(),
            };
            let r = instance
                .deliver(&req)
                .await?
                .map_err(|e| plugin_failure(e, plugin))?;
            calls += 1;
            delivered += u64::from(r.delivered);
            locations.extend(r.location);
            if (events.len() as u32) < EVENTS_PER_CALL {
                break;
            }
        }
        Ok::<_, JobFailure>(json!({
            "pluginId": plugin.id(),
            "calls": calls,
            "delivered": delivered,
            "locations": locations,
        }))
    }
    .await;
    super::conclude(instance, result)
}
