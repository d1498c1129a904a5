//! Schedules a connector suggests for itself (contract `drowl:plugin@0.2.0`).
//!
//! Nothing runs on its own: the operator enables a suggestion by name in the daemon's
//! schedules (`{"name": "github-hourly", "plugin": "github", "default": "hourly"}`),
//! optionally overriding its cron, zone or options, and the host registers it as a Bull
//! repeatable job. Enable the `schedules` feature (with `ingestion`) and export with
//! [`crate::scheduled_plugin!`]; a connector that also receives webhooks (`webhook`
//! feature) implements [`Schedules`] for [`crate::connector_plugin!`].

pub use crate::ingestion::world::exports::drowl::plugin0_2_0::schedules::DefaultSchedule;

/// The schedules a plugin suggests. The provided method suggests none.
pub trait Schedules {
    /// Read once at load time, like the manifest: keep it pure.
    fn default_schedules() -> Vec<DefaultSchedule> {
        Vec::new()
    }
}

impl DefaultSchedule {
    /// A suggestion named `name` running a `job_type` job named `job_name` with `input`
    /// (the host adds `pluginId`) on `cron`, in UTC.
    pub fn new(
        name: &str,
        cron: &str,
        job_type: &str,
        job_name: &str,
        input: &serde_json::Value,
    ) -> Self {
        Self {
            name: name.to_owned(),
            description: String::new(),
            cron: cron.to_owned(),
            tz: None,
            job_type: job_type.to_owned(),
            job_name: job_name.to_owned(),
            input: input.to_string(),
        }
    }

    /// What it does, for the operator choosing which to enable.
    #[must_use]
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.to_owned();
        self
    }

    /// The IANA zone of its cron.
    #[must_use]
    pub fn tz(mut self, tz: &str) -> Self {
        self.tz = Some(tz.to_owned());
        self
    }
}

/// Exports `$plugin` (a type implementing [`crate::ingestion::Ingestion`] and
/// [`Schedules`]) as the component's `scheduled-plugin` world. Needs the `ingestion` and
/// `schedules` features. Invoke it once, at the root of the plugin crate.
#[cfg(not(all(target_arch = "wasm32", feature = "webhook")))]
#[macro_export]
macro_rules! scheduled_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlScheduledExport;

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlScheduledExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::ingestion::Ingestion>::manifest()
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_1_0::ingestion::Guest
                for __DrowlScheduledExport
            {
                fn ingest(
                    req: $crate::ingestion::IngestRequest,
                ) -> ::core::result::Result<$crate::ingestion::IngestBatch, $crate::JobError> {
                    <$plugin as $crate::ingestion::Ingestion>::ingest(req)
                }
            }

            impl $crate::ingestion::world::exports::drowl::plugin0_2_0::schedules::Guest
                for __DrowlScheduledExport
            {
                fn defaults() -> ::std::vec::Vec<$crate::schedules::DefaultSchedule> {
                    <$plugin as $crate::schedules::Schedules>::default_schedules()
                }
            }

            $crate::ingestion::world::__drowl_export_ingestion_world!(__DrowlScheduledExport with_types_in $crate::ingestion::world);
        };
    };
}

/// With the `webhook` feature the world is the connector's: use
/// [`crate::connector_plugin!`].
#[cfg(all(target_arch = "wasm32", feature = "webhook"))]
#[macro_export]
macro_rules! scheduled_plugin {
    ($plugin:ty) => {
        ::core::compile_error!(
            "drowl-plugin-sdk's `webhook` feature is on: export the plugin with connector_plugin! (it implements Ingestion, Webhook and Schedules)"
        );
    };
}
