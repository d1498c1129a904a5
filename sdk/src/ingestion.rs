//! The ingestion role: fetch events from a platform, one page per call.

#[doc(hidden)]
pub mod world {
    // With `webhook` too, the connector world: 0.1.0's ingestion plus 0.2.0's webhooks
    // and schedules, exported together by `connector_plugin!`; with `schedules` alone,
    // ingestion plus schedules (`scheduled_plugin!`); otherwise 0.1.0's ingestion world,
    // so a plain connector still needs only contract 0.1.0.
    #[cfg(not(any(feature = "webhook", feature = "schedules")))]
    crate::role_world!(
        "drowl:plugin/ingestion-plugin@0.1.0",
        "__drowl_export_ingestion_world",
        "::drowl_plugin_sdk::ingestion::world"
    );
    #[cfg(feature = "webhook")]
    crate::role_world!(
        "connector-plugin",
        "__drowl_export_ingestion_world",
        "::drowl_plugin_sdk::ingestion::world"
    );
    #[cfg(all(feature = "schedules", not(feature = "webhook")))]
    crate::role_world!(
        "scheduled-plugin",
        "__drowl_export_ingestion_world",
        "::drowl_plugin_sdk::ingestion::world"
    );
}

pub use world::exports::drowl::plugin0_1_0::ingestion::{IngestBatch, IngestRequest};

use crate::{Event, JobError, Manifest};

/// A connector: implement this and invoke [`crate::ingestion_plugin!`].
pub trait Ingestion {
    /// The plugin's manifest (see [`Manifest::builder`]). Called at load time, before any
    /// configuration exists: keep it pure.
    fn manifest() -> Manifest;

    /// Fetches one page. Return `has_more: true` with a `next_cursor` to be called again;
    /// the host persists the cursor after storing each page, so the next run (or a retry
    /// after a crash) resumes where this one stopped.
    fn ingest(req: IngestRequest) -> Result<IngestBatch, JobError>;
}

impl IngestBatch {
    /// A page after which there is more to fetch right now.
    pub fn page(events: Vec<Event>, next_cursor: impl Into<String>) -> Self {
        Self {
            events,
            identities: Vec::new(),
            next_cursor: Some(next_cursor.into()),
            has_more: true,
        }
    }

    /// The last page for now. `next_cursor`, if any, is where the next run starts.
    pub fn last_page(events: Vec<Event>) -> Self {
        Self {
            events,
            identities: Vec::new(),
            next_cursor: None,
            has_more: false,
        }
    }

    /// Sets the cursor the next call or run starts from.
    #[must_use]
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.next_cursor = Some(cursor.into());
        self
    }
}

impl IngestRequest {
    /// The value of a non-secret config field as passed with the request.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        crate::config::value_in(&self.config, key)
    }
}

// The worlds follow the features, so a wasm build with `webhook` or `schedules` must use
// the macro that exports them too. Native builds (unit tests; a workspace build unifies
// every plugin's features) expand every export macro to nothing, so they are all defined
// there.

/// With the `webhook` feature a connector also exports `webhooks`: use
/// [`crate::connector_plugin!`] instead.
#[cfg(all(target_arch = "wasm32", feature = "webhook"))]
#[macro_export]
macro_rules! ingestion_plugin {
    ($plugin:ty) => {
        ::core::compile_error!(
            "drowl-plugin-sdk's `webhook` feature is on: export the plugin with connector_plugin! (it implements Ingestion, Webhook and Schedules)"
        );
    };
}

/// With the `schedules` feature a connector also exports `schedules`: use
/// [`crate::scheduled_plugin!`] instead.
#[cfg(all(
    target_arch = "wasm32",
    feature = "schedules",
    not(feature = "webhook")
))]
#[macro_export]
macro_rules! ingestion_plugin {
    ($plugin:ty) => {
        ::core::compile_error!(
            "drowl-plugin-sdk's `schedules` feature is on: export the plugin with scheduled_plugin! (it implements Ingestion and Schedules)"
        );
    };
}

/// Exports `$plugin` (a type implementing [`Ingestion`]) as the component's
/// `ingestion-plugin` world. Invoke it once, at the root of the plugin crate.
#[cfg(not(all(
    target_arch = "wasm32",
    any(feature = "webhook", feature = "schedules")
)))]
#[macro_export]
macro_rules! ingestion_plugin {
    ($plugin:ty) => {
        // Exports exist only in the component; native builds (unit tests of the
        // plugin's logic) must not define `cabi_*` symbols the native linker rejects.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlIngestionExport;

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlIngestionExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::ingestion::Ingestion>::manifest()
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::ingestion::Guest
                for __DrowlIngestionExport
            {
                fn ingest(
                    req: $crate::ingestion::IngestRequest,
                ) -> ::core::result::Result<$crate::ingestion::IngestBatch, $crate::JobError> {
                    <$plugin as $crate::ingestion::Ingestion>::ingest(req)
                }
            }

            $crate::ingestion::world::__drowl_export_ingestion_world!(__DrowlIngestionExport with_types_in $crate::ingestion::world);
        };
    };
}

/// Longest follow-up job name the host accepts, in bytes.
pub const MAX_JOB_NAME_BYTES: usize = 200;

/// Ends a job that names none of the things a plugin tracks (drowl's scheduled
/// `github-events`, a feed job with no `url`) by fanning it out: one `event_ingestion`
/// follow-up per `(name, input)`, each naming its one target as a job from drowl's API
/// would, so each keeps its own cursor and they spread over the daemons; `since`, when
/// the job had one, is passed on. Names are cut to [`MAX_JOB_NAME_BYTES`] on a character
/// boundary. Follow-ups are enqueued only if this job completes, under ids derived from
/// its own, so a retry enqueues none twice. Returns the empty last page the job ends with.
pub fn fan_out(
    jobs: impl IntoIterator<Item = (String, serde_json::Value)>,
    since: Option<&str>,
) -> Result<IngestBatch, JobError> {
    let mut n = 0usize;
    for (mut name, mut input) in jobs {
        if let Some(since) = since {
            input["since"] = serde_json::Value::String(since.to_owned());
        }
        while name.len() > MAX_JOB_NAME_BYTES {
            name.pop();
        }
        crate::queue::enqueue("event_ingestion", &name, &input)
            .map_err(|e| JobError::permanent(crate::queue::describe_error(&e)))?;
        n += 1;
    }
    crate::log::info(&format!("enqueued {n} ingestion jobs, one per target"));
    Ok(IngestBatch::last_page(Vec::new()))
}
