//! The webhook role (contract `drowl:plugin@0.2.0`): turn what a platform pushes into
//! events.
//!
//! The host serves `POST /webhooks/<plugin id>`, checks each delivery's signature the way
//! [`Webhook::spec`] says (with the secret from the plugin's `webhook-secret` config
//! field, which the plugin never sees), stores it as received, answers 202, and hands it
//! to [`Webhook::handle`] in a queued job. A connector that also fetches (the `ingestion`
//! feature too) exports both with [`crate::connector_plugin!`]; a plugin that only
//! receives uses [`crate::webhook_plugin!`].

#[cfg(not(feature = "ingestion"))]
#[doc(hidden)]
pub mod world {
    crate::role_world!(
        "webhook-plugin",
        "__drowl_export_webhook_world",
        "::drowl_plugin_sdk::webhook::world"
    );
}

// A connector's webhook types come from its connector world (see `ingestion::world`).
#[cfg(feature = "ingestion")]
#[doc(hidden)]
pub use crate::ingestion::world;

pub use world::exports::drowl::plugin0_2_0::webhooks::{
    Delivery, DeliveryResult, HmacHeader, Verification, WebhookSpec,
};

use crate::JobError;

/// A webhook receiver: implement this and invoke [`crate::connector_plugin!`] (with
/// [`crate::ingestion::Ingestion`]) or [`crate::webhook_plugin!`].
pub trait Webhook {
    /// How deliveries are verified and identified. Called at load time: keep it pure.
    fn spec() -> WebhookSpec;

    /// Turns one verified delivery into events. Return no events for a kind of delivery
    /// the plugin does not handle (it stays stored as received), `JobError::permanent`
    /// for a malformed one.
    fn handle(delivery: Delivery) -> Result<DeliveryResult, JobError>;
}

impl WebhookSpec {
    /// GitHub's deliveries: `X-Hub-Signature-256`, `X-GitHub-Delivery`, `X-GitHub-Event`.
    pub fn github() -> Self {
        Self {
            verification: Verification::GithubSignature,
            delivery_id_header: "x-github-delivery".into(),
            event_header: Some("x-github-event".into()),
        }
    }
}

impl Delivery {
    /// The value of header `name` (case-insensitive), if the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, failing the job permanently when it is not: a malformed
    /// delivery will not improve on retry.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            JobError::permanent(format!(
                "delivery {} is not the JSON expected: {e}",
                self.delivery_id
            ))
        })
    }

    /// The value of a non-secret config field as passed with the delivery.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        crate::config::value_in(&self.config, key)
    }
}

/// Exports `$plugin` (a type implementing [`crate::ingestion::Ingestion`], [`Webhook`]
/// and [`crate::schedules::Schedules`] — `impl Schedules for T {}` suggests none) as the
/// component's `connector-plugin` world. Needs the `ingestion` and
/// `webhook` features. Invoke it once, at the root of the plugin crate.
#[cfg(feature = "ingestion")]
#[macro_export]
macro_rules! connector_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlConnectorExport;

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlConnectorExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::ingestion::Ingestion>::manifest()
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::ingestion::Guest
                for __DrowlConnectorExport
            {
                fn ingest(
                    req: $crate::ingestion::IngestRequest,
                ) -> ::core::result::Result<$crate::ingestion::IngestBatch, $crate::JobError> {
                    <$plugin as $crate::ingestion::Ingestion>::ingest(req)
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_2_0::schedules::Guest
                for __DrowlConnectorExport
            {
                fn defaults() -> ::std::vec::Vec<$crate::schedules::DefaultSchedule> {
                    <$plugin as $crate::schedules::Schedules>::default_schedules()
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_2_0::webhooks::Guest
                for __DrowlConnectorExport
            {
                fn spec() -> $crate::webhook::WebhookSpec {
                    <$plugin as $crate::webhook::Webhook>::spec()
                }

                fn handle(
                    delivery: $crate::webhook::Delivery,
                ) -> ::core::result::Result<$crate::webhook::DeliveryResult, $crate::JobError> {
                    <$plugin as $crate::webhook::Webhook>::handle(delivery)
                }
            }

            $crate::ingestion::world::__drowl_export_ingestion_world!(__DrowlConnectorExport with_types_in $crate::ingestion::world);
        };
    };
}

/// Exports `$plugin` (a type implementing [`Webhook`] and giving its manifest through
/// [`WebhookManifest`]) as the component's `webhook-plugin` world. Invoke it once, at the
/// root of the plugin crate.
#[macro_export]
macro_rules! webhook_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlWebhookExport;

            impl $crate::webhook::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlWebhookExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::webhook::WebhookManifest>::manifest()
                }
            }

            impl $crate::webhook::world::exports::drowl::plugin0_2_0::webhooks::Guest
                for __DrowlWebhookExport
            {
                fn spec() -> $crate::webhook::WebhookSpec {
                    <$plugin as $crate::webhook::Webhook>::spec()
                }

                fn handle(
                    delivery: $crate::webhook::Delivery,
                ) -> ::core::result::Result<$crate::webhook::DeliveryResult, $crate::JobError> {
                    <$plugin as $crate::webhook::Webhook>::handle(delivery)
                }
            }

            $crate::webhook::world::__drowl_export_webhook_world!(__DrowlWebhookExport with_types_in $crate::webhook::world);
        };
    };
}

/// The manifest of a webhook-only plugin (a connector gives it through `Ingestion`).
pub trait WebhookManifest {
    /// The plugin's manifest (declare [`crate::Capability::Webhook`]). Called at load
    /// time: keep it pure.
    fn manifest() -> crate::Manifest;
}
