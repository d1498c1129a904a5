//! The export role: deliver stored events somewhere outside drowl.

#[doc(hidden)]
pub mod world {
    crate::role_world!(
        "drowl:plugin/export-plugin@0.1.0",
        "__drowl_export_export_world",
        "::drowl_plugin_sdk::export::world"
    );
}

pub use world::exports::drowl::plugin0_1_0::export::{ExportRequest, ExportResult};

use crate::{JobError, Manifest};

/// An exporter: implement this and invoke [`crate::export_plugin!`].
pub trait Export {
    /// The plugin's manifest. Called at load time: keep it pure.
    fn manifest() -> Manifest;

    /// Delivers one batch of events. Use `req.job.idempotency_key` to make delivery
    /// idempotent on the receiving side: a retried job delivers the same batch again.
    fn deliver(req: ExportRequest) -> Result<ExportResult, JobError>;
}

/// Exports `$plugin` (a type implementing [`Export`]) as the component's `export-plugin`
/// world. Invoke it once, at the root of the plugin crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // Exports exist only in the component; native builds (unit tests of the
        // plugin's logic) must not define `cabi_*` symbols the native linker rejects.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlExportExport;

            impl $crate::export::world::exports::drowl::plugin0_1_0::plugin::Guest for __DrowlExportExport {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::export::Export>::manifest()
                }
            }

            impl $crate::export::world::exports::drowl::plugin0_1_0::export::Guest for __DrowlExportExport {
                fn deliver(
                    req: $crate::export::ExportRequest,
                ) -> ::core::result::Result<$crate::export::ExportResult, $crate::JobError> {
                    <$plugin as $crate::export::Export>::deliver(req)
                }
            }

            $crate::export::world::__drowl_export_export_world!(__DrowlExportExport with_types_in $crate::export::world);
        };
    };
}
