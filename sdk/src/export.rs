//! The export role: deliver stored events somewhere outside drowl.

#[doc(hidden)]
pub mod world {
    // The glue macros are exported from the crate only for wasm32, where each plugin
    // is built on its own. Native builds (unit tests) may enable several roles at
    // once, and their `describe` glue macros would clash at the crate root.
    #[cfg(target_arch = "wasm32")]
    wit_bindgen::generate!({
        world: "export-plugin",
        path: "wit",
        runtime_path: "::drowl_plugin_sdk::__private::wit_bindgen::rt",
        with: {
            "drowl:plugin/types@0.1.0": crate::bindings::drowl::plugin::types,
            "drowl:plugin/log@0.1.0": crate::bindings::drowl::plugin::log,
            "drowl:plugin/config@0.1.0": crate::bindings::drowl::plugin::config,
            "drowl:plugin/kv@0.1.0": crate::bindings::drowl::plugin::kv,
            "drowl:plugin/objects@0.1.0": crate::bindings::drowl::plugin::objects,
            "drowl:plugin/http@0.1.0": crate::bindings::drowl::plugin::http,
            "drowl:plugin/queue@0.1.0": crate::bindings::drowl::plugin::queue,
        },
        pub_export_macro: true,
        export_macro_name: "__drowl_export_export_world",
        default_bindings_module: "::drowl_plugin_sdk::export::world",
    });
    #[cfg(not(target_arch = "wasm32"))]
    wit_bindgen::generate!({
        world: "export-plugin",
        path: "wit",
        runtime_path: "::drowl_plugin_sdk::__private::wit_bindgen::rt",
        with: {
            "drowl:plugin/types@0.1.0": crate::bindings::drowl::plugin::types,
            "drowl:plugin/log@0.1.0": crate::bindings::drowl::plugin::log,
            "drowl:plugin/config@0.1.0": crate::bindings::drowl::plugin::config,
            "drowl:plugin/kv@0.1.0": crate::bindings::drowl::plugin::kv,
            "drowl:plugin/objects@0.1.0": crate::bindings::drowl::plugin::objects,
            "drowl:plugin/http@0.1.0": crate::bindings::drowl::plugin::http,
            "drowl:plugin/queue@0.1.0": crate::bindings::drowl::plugin::queue,
        },
        pub_export_macro: false,
        export_macro_name: "__drowl_export_export_world",
        default_bindings_module: "::drowl_plugin_sdk::export::world",
    });
}

pub use world::exports::drowl::plugin::export::{ExportRequest, ExportResult};

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

            impl $crate::export::world::exports::drowl::plugin::plugin::Guest for __DrowlExportExport {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::export::Export>::manifest()
                }
            }

            impl $crate::export::world::exports::drowl::plugin::export::Guest for __DrowlExportExport {
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
