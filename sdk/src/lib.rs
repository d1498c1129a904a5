//! # drowl-plugin-sdk
//!
//! Write drowl plugins in Rust. A plugin is a WebAssembly component that drowl-host
//! runs in a sandbox: it can only reach what the host's imports offer (logging, its
//! configuration, its own key-value store and objects, outbound HTTP to the origins it
//! declared and the operator granted, and follow-up jobs).
//!
//! # Overview
//!
//! 1. Enable the role of your plugin as a feature: `ingestion`, `enrichment`, `export`,
//!    `identity` or `webhook` (a connector that fetches and receives enables `ingestion`
//!    and `webhook`, and exports with [`connector_plugin!`]; one that suggests schedules
//!    for itself enables `ingestion` and `schedules`, and exports with
//!    [`scheduled_plugin!`]).
//! 2. Implement the role's trait ([`ingestion::Ingestion`], [`enrichment::Enrichment`],
//!    [`export::Export`] or [`identity::Identity`]).
//! 3. Invoke the role's macro once ([`ingestion_plugin!`], [`enrichment_plugin!`],
//!    [`export_plugin!`], [`identity_plugin!`]).
//! 4. `cargo build --release --target wasm32-wasip2`: the `.wasm` in
//!    `target/wasm32-wasip2/release/` is a component drowl-host loads as it is.
//!
//! # Example
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! drowl-plugin-sdk = { version = "0.2", features = ["ingestion"] }
//! ```
//!
//! ```ignore
//! use drowl_plugin_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Ingestion for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::builder("hello", "Hello", env!("CARGO_PKG_VERSION"))
//!             .description("Emits one event per run")
//!             .capability(Capability::EventIngestion)
//!             .source("webhook")
//!             .config(ConfigField::string("greeting", "Greeting").default_value("hi"))
//!             .build()
//!     }
//!
//!     fn ingest(req: IngestRequest) -> Result<IngestBatch, JobError> {
//!         let greeting = config::get("greeting").unwrap_or_default();
//!         log::info(&format!("saying {greeting}"));
//!         let event = Event::builder(&req.job.job_id, "webhook", "greeting", "2024-01-01T00:00:00Z")
//!             .text(&greeting)
//!             .payload_json(&serde_json::json!({ "greeting": greeting }))
//!             .build();
//!         Ok(IngestBatch::last_page(vec![event]))
//!     }
//! }
//!
//! drowl_plugin_sdk::ingestion_plugin!(Hello);
//! ```
//!
//! # Compatibility
//!
//! The SDK builds against the newest contract, `drowl:plugin@0.2.0`. 0.2.0 only *adds* to
//! 0.1.0 (the identity role and its `directory` import); every interface 0.1.0 released
//! keeps its `@0.1.0` name. So an ingestion, enrichment or export plugin built with this
//! SDK still needs only `drowl:plugin@0.1.0` and runs on any drowl-host, while an identity
//! plugin needs a host that runs 0.2.0. `drowl-host plugin check` prints the contract a
//! component needs.
//!
//! | SDK   | builds against       | role                          | component needs      | drowl-host |
//! |-------|----------------------|-------------------------------|----------------------|------------|
//! | 0.1.x | `drowl:plugin@0.1.0` | ingestion, enrichment, export | `drowl:plugin@0.1.0` | ≥ 0.1.0    |
//! | 0.2.x | `drowl:plugin@0.2.0` | ingestion, enrichment, export | `drowl:plugin@0.1.0` | ≥ 0.1.0    |
//! | 0.2.x | `drowl:plugin@0.2.0` | identity                      | `drowl:plugin@0.2.0` | ≥ 0.2.0    |

extern crate self as drowl_plugin_sdk;

mod builders;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod objects;
pub mod queue;

#[cfg(feature = "enrichment")]
pub mod enrichment;
#[cfg(feature = "export")]
pub mod export;
#[cfg(feature = "identity")]
pub mod identity;
#[cfg(feature = "ingestion")]
pub mod ingestion;
#[cfg(all(feature = "ingestion", any(feature = "schedules", feature = "webhook")))]
pub mod schedules;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use builders::{ConfigFieldBuilder, EventBuilder, ManifestBuilder};

/// Re-exports the generated bindings; not part of the stable API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Generates the bindings of one role world, reusing the shared imports from
/// [`bindings`]. The export glue macros are `#[macro_export]`ed only for wasm32, where
/// each plugin is built on its own: native builds (unit tests) may enable several roles
/// at once, and their `describe` glue macros would clash at the crate root.
macro_rules! role_world {
    ($world:literal, $export_macro:literal, $module:literal) => {
        #[cfg(target_arch = "wasm32")]
        $crate::role_world!(@generate $world, $export_macro, $module, true);
        #[cfg(not(target_arch = "wasm32"))]
        $crate::role_world!(@generate $world, $export_macro, $module, false);
    };
    (@generate $world:literal, $export_macro:literal, $module:literal, $public:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: "wit",
            runtime_path: "::drowl_plugin_sdk::__private::wit_bindgen::rt",
            with: {
                "drowl:plugin/types@0.1.0": crate::bindings::drowl::plugin0_1_0::types,
                "drowl:plugin/log@0.1.0": crate::bindings::drowl::plugin0_1_0::log,
                "drowl:plugin/config@0.1.0": crate::bindings::drowl::plugin0_1_0::config,
                "drowl:plugin/kv@0.1.0": crate::bindings::drowl::plugin0_1_0::kv,
                "drowl:plugin/objects@0.1.0": crate::bindings::drowl::plugin0_1_0::objects,
                "drowl:plugin/http@0.1.0": crate::bindings::drowl::plugin0_1_0::http,
                "drowl:plugin/queue@0.1.0": crate::bindings::drowl::plugin0_1_0::queue,
            },
            pub_export_macro: $public,
            export_macro_name: $export_macro,
            default_bindings_module: $module,
        });
    };
}
pub(crate) use role_world;

/// Bindings for everything the host provides, shared by the role modules.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "drowl:plugin/host-api@0.1.0",
        path: "wit",
        runtime_path: "::drowl_plugin_sdk::__private::wit_bindgen::rt",
        type_section_suffix: "drowl-host-api",
    });
}

pub use bindings::drowl::plugin0_1_0::types::{
    Author, Capability, ConfigField, Event, FieldType, IdentityObservation, JobContext, JobError,
    Manifest, ResourceRequest, RetryInfo, StoredEvent,
};

impl JobError {
    /// A transient failure: the job is retried with its backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable(RetryInfo {
            message: message.into(),
            retry_after_ms: None,
        })
    }

    /// A transient failure that should be retried no sooner than `retry_after_ms`.
    pub fn retry_after(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self::Retryable(RetryInfo {
            message: message.into(),
            retry_after_ms: Some(retry_after_ms),
        })
    }

    /// The platform throttled us; retry after `retry_after_ms`.
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self::RateLimited(RetryInfo {
            message: message.into(),
            retry_after_ms: Some(retry_after_ms),
        })
    }

    /// Retrying cannot help: the job fails at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent(message.into())
    }

    /// The configuration is wrong; say which key to fix.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::InvalidConfig(message.into())
    }
}

impl JobContext {
    /// Parses the job's `input` JSON into `T`, failing the job permanently (with the
    /// serde error) when it does not fit: a malformed input will not improve on retry.
    pub fn input_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.input)
            .map_err(|e| JobError::permanent(format!("job input does not fit: {e}")))
    }
}

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    #[cfg(feature = "enrichment")]
    pub use crate::enrichment::{
        EnrichRequest, EnrichResult, Enrichment, Keyword, KeywordMatch, MatchStrategy,
    };
    #[cfg(feature = "export")]
    pub use crate::export::{Export, ExportRequest, ExportResult};
    #[cfg(feature = "identity")]
    pub use crate::identity::{
        Identity, IndexEntry, KnownIdentity, LinkConfidence, ProposedLink, ResolveRequest,
        ResolveResult,
    };
    #[cfg(feature = "ingestion")]
    pub use crate::ingestion::{IngestBatch, IngestRequest, Ingestion};
    #[cfg(all(feature = "ingestion", any(feature = "schedules", feature = "webhook")))]
    pub use crate::schedules::{DefaultSchedule, Schedules};
    #[cfg(feature = "webhook")]
    pub use crate::webhook::{Delivery, DeliveryResult, Webhook, WebhookManifest, WebhookSpec};
    pub use crate::{
        Author, Capability, ConfigField, Event, FieldType, IdentityObservation, JobContext,
        JobError, Manifest, StoredEvent, config, http, kv, log, objects, queue,
    };
}
