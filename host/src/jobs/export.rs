//! `data_export`: hand the selected stored events to an export plugin in pages, resumably,
//! and record what was written in a manifest object.
//!
//! Events are selected by the input's filters (`since`/`until`, `source`, `eventType`/
//! `eventTypes`, `keyword`, `eventIds`, `sourcePluginId`) and handed over in id order.
//! After each page the plugin delivered, the host saves where it is under the job's id, so
//! a job that crashes or fails mid-way resumes on its retry after the last delivered page
//! instead of delivering everything again; memory stays one page whatever the size of the
//! export. A job that has made its `--max-pages` calls with pages left ends there and
//! `serve` enqueues its continuation (the same input plus `exportId`, the first job's id,
//! under which the progress is kept), so no job runs near its deadline however large the
//! export. When the last page is delivered, the host writes a manifest object under the
//! plugin's prefix (`exports/<export id>/manifest.json`) listing every location the plugin
//! reported (object keys, URLs), the filter and the count, so a reader knows the export
//! is complete and what it consists of.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::events::{EVENTS_PER_CALL, filter_from_input, to_wit_event};
use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{CONTINUATION_KEY, JobFailure, JobRequest};
use crate::bindings::export::exports::drowl::plugin::export as wit;
use crate::runtime::Role;
use crate::storage::{EventFilter, ObjectKey, Storage};

/// KV namespace where the host keeps each export job's progress; no plugin id can equal
/// it.
pub const PROGRESS_NAMESPACE: &str = "drowl-host/exports";

/// Where an export job stands, saved after every delivered page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExportProgress {
    /// The id of the last event delivered.
    pub after: Option<String>,
    /// Events delivered so far.
    pub delivered: u64,
    /// Calls made so far.
    pub calls: u32,
    /// Every location the plugin reported, in order.
    pub locations: Vec<String>,
}

/// The input field naming the export a continuation job carries on: the id of the job
/// that started it.
pub const EXPORT_ID_KEY: &str = "exportId";

/// The manifest's key for `job_id`, relative to the plugin's object prefix.
pub fn manifest_key(job_id: &str) -> String {
    let safe: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("exports/{safe}/manifest.json")
}

/// An export job: the selected events handed to an export plugin in pages.
pub(crate) struct Export;

impl PluginJob for Export {
    type Prepared = EventFilter;

    fn role(&self) -> Role {
        Role::Export
    }

    async fn prepare(&self, _: &Storage, job: &JobRequest) -> Result<EventFilter, JobFailure> {
        match job.input.get(EXPORT_ID_KEY) {
            None | Some(serde_json::Value::String(_)) => {}
            Some(v) => {
                return Err(JobFailure::InvalidJob(format!(
                    "input.{EXPORT_ID_KEY} must be the id of the job that started the export, not {v}"
                )));
            }
        }
        filter_from_input(&job.input)
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        filter: EventFilter,
    ) -> Result<serde_json::Value, JobFailure> {
        let (storage, plugin, job) = (call.storage, call.plugin, call.job);
        let instance = &mut *call.instance;
        let kv = &storage.kv;
        let export_id = job
            .input
            .get(EXPORT_ID_KEY)
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&job.id)
            .to_owned();
        let progress_key = format!("{}/{export_id}", plugin.id());
        let mut progress: ExportProgress = match kv.get(PROGRESS_NAMESPACE, &progress_key).await? {
            Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
            None => ExportProgress::default(),
        };
        let resumed_after = progress.after.clone();
        let (mut calls, mut more) = (0u32, false);
        loop {
            if calls >= plugin.budget.max_pages_per_job {
                // Pages are left: a continuation goes on from the saved progress, instead
                // of this job running towards its deadline.
                more = true;
                break;
            }
            let events = storage
                .events
                .list_events(&filter, progress.after.as_deref(), EVENTS_PER_CALL)
                .await?;
            let Some(last) = events.last() else { break };
            let last = last.id.clone();
            let req = wit::ExportRequest {
                job: job_context(job),
                events: events.iter().map(to_wit_event).collect(),
                config: plugin.env.config.values_list(),
            };
            let r = instance
                .deliver(&req)
                .await?
                .map_err(|e| plugin_failure(e, plugin))?;
            if let Some(l) = &r.location {
                super::output::text("location", l, 0, super::output::MAX_URL_BYTES)?;
            }
            calls += 1;
            progress.calls += 1;
            progress.delivered += u64::from(r.delivered);
            progress.locations.extend(r.location);
            progress.after = Some(last);
            // Saved once the page is delivered: a crash after this resumes past it.
            let saved = serde_json::to_vec(&progress).map_err(JobFailure::unstorable)?;
            kv.set(PROGRESS_NAMESPACE, &progress_key, &saved).await?;
            if (events.len() as u32) < EVENTS_PER_CALL {
                break;
            }
        }
        if more {
            let mut next = job.input.clone();
            next[EXPORT_ID_KEY] = json!(export_id);
            let mut out = json!({
                "pluginId": plugin.id(),
                "exportId": export_id,
                "resumedAfter": resumed_after,
                "calls": progress.calls,
                "delivered": progress.delivered,
                "locations": progress.locations.len(),
            });
            out[CONTINUATION_KEY] = next;
            return Ok(out);
        }
        let key = ObjectKey::plugin_object(plugin.id(), &manifest_key(&export_id))
            .map_err(JobFailure::unstorable)?;
        let manifest = json!({
            "exportId": export_id,
            "jobId": job.id,
            "pluginId": plugin.id(),
            "filter": job.input,
            "events": progress.delivered,
            "calls": progress.calls,
            "locations": progress.locations,
            "completedAt": chrono::Utc::now().to_rfc3339(),
        });
        let body = serde_json::to_vec_pretty(&manifest).map_err(JobFailure::unstorable)?;
        storage
            .objects
            .put(&key, body.into(), "application/json")
            .await?;
        Ok(json!({
            "pluginId": plugin.id(),
            "exportId": export_id,
            "resumedAfter": resumed_after,
            "calls": progress.calls,
            "delivered": progress.delivered,
            "locations": progress.locations,
            "manifest": storage.objects.describe(&key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_key_is_a_valid_relative_key_for_any_job_id() {
        for id in ["42", "repeat:abc:1700000000", "a/b/../c", "ジョブ"] {
            let key = manifest_key(id);
            assert!(
                ObjectKey::plugin_object("export", &key).is_ok(),
                "{id} -> {key}"
            );
        }
        assert_eq!(manifest_key("42"), "exports/42/manifest.json");
    }
}
