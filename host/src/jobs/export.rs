//! `data_export`: hand stored events to an export plugin in pages.

use serde_json::json;

use super::events::{EVENTS_PER_CALL, filter_from_input, to_wit_event};
use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{JobFailure, JobRequest};
use crate::bindings::export::exports::drowl::plugin::export as wit;
use crate::runtime::Role;
use crate::storage::{EventFilter, Storage};

/// An export job: the selected events handed to an export plugin in pages.
pub(crate) struct Export;

impl PluginJob for Export {
    type Prepared = EventFilter;

    fn role(&self) -> Role {
        Role::Export
    }

    async fn prepare(&self, _: &Storage, job: &JobRequest) -> Result<EventFilter, JobFailure> {
        filter_from_input(&job.input)
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        filter: EventFilter,
    ) -> Result<serde_json::Value, JobFailure> {
        let (storage, plugin, job) = (call.storage, call.plugin, call.job);
        let instance = &mut *call.instance;
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
            if let Some(l) = &r.location {
                super::output::text("location", l, 0, super::output::MAX_URL_BYTES)?;
            }
            locations.extend(r.location);
            if (events.len() as u32) < EVENTS_PER_CALL {
                break;
            }
        }
        Ok(json!({
            "pluginId": plugin.id(),
            "calls": calls,
            "delivered": delivered,
            "locations": locations,
        }))
    }
}
