//! Webhook deliveries (contract 0.2.0's `webhooks` export): the job that turns a stored
//! delivery into events, and the names the daemon's endpoint and this job share.
//!
//! The daemon's `POST /webhooks/<plugin id>` (in `http`) verifies a delivery's signature,
//! stores it as received ([`crate::storage::WebhookStore`]) and queues one
//! `event_ingestion` job for it ([`delivery_job`]): input `{pluginId, webhookDelivery}`,
//! a Bull job id derived from the plugin and the delivery id, so the same delivery is
//! never queued twice. That job, routed here by [`is_delivery_job`], reads the delivery
//! back, hands it to the plugin's `handle`, and stores what it returns exactly as an
//! ingestion page is stored ([`super::page`]): checked whole, raw payloads, identities,
//! events, idempotently, so a retried job stores nothing twice.
//!
//! Nothing here knows a platform: the plugin's spec names the headers, the plugin reads
//! the body.

use serde_json::json;

use super::handler::{PluginCall, PluginJob, job_context, plugin_failure};
use super::model::{JobFailure, JobRequest, JobType};
use super::page::{Page, store_page};
use super::registry::ReadyPlugin;
use crate::bindings::webhook::exports::drowl::plugin0_2_0::webhooks::Delivery;
use crate::runtime::Role;
use crate::storage::Storage;

/// The config field holding the key deliveries are signed with. The host reads it; the
/// plugin never does (see [`super::registry::ReadyPlugin::webhook_secret`]).
pub const WEBHOOK_SECRET_KEY: &str = "webhook-secret";

/// The input field naming the stored delivery a job handles.
pub const DELIVERY_INPUT_KEY: &str = "webhookDelivery";

/// The longest delivery id accepted, in bytes (GitHub's are 36-byte UUIDs).
pub const MAX_DELIVERY_ID_BYTES: usize = 200;

/// The longest event header value accepted, in bytes (GitHub's longest event name has 40).
pub const MAX_EVENT_BYTES: usize = 200;

/// A plugin's webhook key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub(crate) String);

impl WebhookSecret {
    /// The key's bytes, for the signature check.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Whether `job` handles a stored webhook delivery (an `event_ingestion` job whose input
/// names one) rather than fetching.
pub fn is_delivery_job(job: &JobRequest) -> bool {
    job.job_type == JobType::EventIngestion && job.input.get(DELIVERY_INPUT_KEY).is_some()
}

/// The Bull job queued for one stored delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    /// Its Bull job id: derived from the plugin and the delivery id, so adding it again
    /// adds nothing (Bull keeps one job per custom id).
    pub id: String,
    /// Its name, `webhook <event>` (`webhook` when the delivery names no event).
    pub name: String,
    /// Its data, drowl's `{type, name, input}`.
    pub data: serde_json::Value,
}

/// The job that handles delivery `delivery_id` of plugin `plugin_id`.
///
/// The id is readable (`webhook:<plugin>:<delivery id>`): plugin ids hold no `:`, so no
/// two (plugin, delivery) pairs share one. Delivery ids are checked by the endpoint
/// before anything is stored (printable ASCII, at most [`MAX_DELIVERY_ID_BYTES`]).
pub fn delivery_job(plugin_id: &str, delivery_id: &str, event: Option<&str>) -> DeliveryJob {
    let name = match event {
        Some(e) => format!("webhook {e}"),
        None => "webhook".to_owned(),
    };
    DeliveryJob {
        id: format!("webhook:{plugin_id}:{delivery_id}"),
        data: json!({
            "type": JobType::EventIngestion.as_str(),
            "name": name,
            "input": { "pluginId": plugin_id, DELIVERY_INPUT_KEY: delivery_id },
        }),
        name,
    }
}

/// An `event_ingestion` job for a stored delivery.
pub(crate) struct HandleDelivery;

impl PluginJob for HandleDelivery {
    /// The delivery id.
    type Prepared = String;

    fn role(&self) -> Role {
        Role::Webhook
    }

    /// A webhook-only plugin or a connector: any plugin that exports `webhooks`.
    fn lacks(&self, plugin: &ReadyPlugin) -> Option<String> {
        (!plugin.loaded.receives_webhooks())
            .then(|| "a plugin that receives webhooks (webhook-plugin or connector-plugin)".into())
    }

    async fn prepare(&self, _: &Storage, job: &JobRequest) -> Result<String, JobFailure> {
        match job.input.get(DELIVERY_INPUT_KEY) {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            other => Err(JobFailure::InvalidJob(format!(
                "input.{DELIVERY_INPUT_KEY} must name a stored delivery (a non-empty string), not {}",
                other.map_or_else(|| "nothing".to_owned(), ToString::to_string)
            ))),
        }
    }

    async fn run(
        &self,
        call: &mut PluginCall<'_>,
        delivery_id: String,
    ) -> Result<serde_json::Value, JobFailure> {
        let plugin = call.plugin;
        let stored = call
            .storage
            .webhooks
            .delivery(plugin.id(), &delivery_id)
            .await?
            .ok_or_else(|| {
                JobFailure::InvalidJob(format!(
                    "webhook delivery `{delivery_id}` of plugin `{}` is not stored; \
                     deliveries are stored by POST /webhooks/{} before their job is queued",
                    plugin.id(),
                    plugin.id()
                ))
            })?;
        let received = stored.delivery;
        let body_bytes = received.body.len() as u64;
        let delivery = Delivery {
            job: job_context(call.job),
            delivery_id: received.delivery_id,
            event: received.event.clone(),
            headers: received.headers,
            body: received.body.to_vec(),
            config: plugin.env.config.values_list(),
        };
        let result = call
            .instance
            .handle_delivery(&delivery)
            .await?
            .map_err(|e| plugin_failure(e, plugin))?;
        let page = Page::of(&result.events, &result.identities);
        call.instance.add_bytes_from_plugin(page.bytes as u64);
        let stored = store_page(call.storage, plugin, call.scope, call.job, page).await?;
        tracing::info!(
            job = %call.job.id, plugin = plugin.id(), delivery = %delivery.delivery_id,
            events = stored.received, inserted = stored.events.inserted, "webhook delivery handled"
        );
        Ok(json!({
            "pluginId": plugin.id(),
            "pluginVersion": plugin.loaded.manifest.version,
            "deliveryId": delivery.delivery_id,
            "event": received.event,
            "bodyBytes": body_bytes,
            "eventsReceived": stored.received,
            "eventsStored": stored.events.inserted,
            "duplicates": stored.events.existing,
            "identities": stored.identities,
            "objectsWritten": stored.objects,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deliverys_job_is_named_by_plugin_and_delivery() {
        let j = delivery_job(
            "github",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            Some("push"),
        );
        assert_eq!(j.id, "webhook:github:72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(j.name, "webhook push");
        assert_eq!(
            j.data,
            json!({"type": "event_ingestion", "name": "webhook push",
                   "input": {"pluginId": "github",
                             "webhookDelivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}})
        );
        assert_eq!(delivery_job("echo", "d", None).name, "webhook");
        let job = JobRequest::from_value(&j.id, &j.data).expect("drowl's job format");
        assert!(is_delivery_job(&job));
        let fetch = JobRequest::from_value(
            "1",
            &json!({"type": "event_ingestion", "input": {"pluginId": "github"}}),
        )
        .expect("job");
        assert!(!is_delivery_job(&fetch));
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let s = WebhookSecret("It's a Secret to Everybody".into());
        assert_eq!(format!("{s:?}"), "WebhookSecret(***)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(WebhookSecret(***))");
    }
}
