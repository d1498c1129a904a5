//! The host side of `drowl:plugin@0.1.0`, generated from `wit/v0.1.0` (frozen).
//!
//! `host_api` holds the imports every world shares (implemented once, in
//! the capabilities layer); each role module reuses them through `with` and only adds
//! its own exports. Every import is async (HTTP and storage are) and trappable, so a host
//! function can end a misbehaving plugin's call with a trap instead of an answer.

/// Imports shared by all worlds.
pub mod host_api {
    wasmtime::component::bindgen!({
        world: "host-api",
        path: "../wit/v0.1.0",
        imports: { default: async | trappable },
    });
}

macro_rules! role_world {
    ($module:ident, $world:literal) => {
        /// Exports of one plugin role.
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../wit/v0.1.0",
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "drowl:plugin/types": super::host_api::drowl::plugin::types,
                    "drowl:plugin/log": super::host_api::drowl::plugin::log,
                    "drowl:plugin/config": super::host_api::drowl::plugin::config,
                    "drowl:plugin/kv": super::host_api::drowl::plugin::kv,
                    "drowl:plugin/objects": super::host_api::drowl::plugin::objects,
                    "drowl:plugin/http": super::host_api::drowl::plugin::http,
                    "drowl:plugin/queue": super::host_api::drowl::plugin::queue,
                },
            });
        }
    };
}

role_world!(ingestion, "ingestion-plugin");
role_world!(enrichment, "enrichment-plugin");
role_world!(export, "export-plugin");
