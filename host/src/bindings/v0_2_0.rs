//! The host side of `drowl:plugin@0.2.0`, generated from `wit/v0.2.0`: the `directory`
//! import, the `resolution` role (`identity-plugin`) and the `webhooks` export
//! (`webhook-plugin`; `connector-plugin` components export the same interface) and the
//! `schedules` export (`scheduled-plugin`, and `connector-plugin` too). Everything 0.2.0 reuses from 0.1.0 is mapped
//! onto [`super::v0_1_0`] with `with`, so both versions share one set of host types and
//! one implementation of every shared import.

/// The `identity-plugin` world: resolution plugins.
pub mod identity {
    wasmtime::component::bindgen!({
        world: "identity-plugin",
        path: "../wit/v0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "drowl:plugin/types@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::types,
            "drowl:plugin/log@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::log,
            "drowl:plugin/config@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::config,
            "drowl:plugin/kv@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::kv,
            "drowl:plugin/objects@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::objects,
            "drowl:plugin/http@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::http,
            "drowl:plugin/queue@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::queue,
        },
    });
}

/// The `webhook-plugin` world, for its `webhooks` export (which `connector-plugin`
/// components export too: the host loads that interface on its own from either).
pub mod webhook {
    wasmtime::component::bindgen!({
        world: "webhook-plugin",
        path: "../wit/v0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "drowl:plugin/types@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::types,
            "drowl:plugin/log@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::log,
            "drowl:plugin/config@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::config,
            "drowl:plugin/kv@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::kv,
            "drowl:plugin/objects@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::objects,
            "drowl:plugin/http@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::http,
            "drowl:plugin/queue@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::queue,
        },
    });
}

/// The `scheduled-plugin` world, for its `schedules` export (which `connector-plugin`
/// components export too).
pub mod scheduled {
    wasmtime::component::bindgen!({
        world: "scheduled-plugin",
        path: "../wit/v0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "drowl:plugin/types@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::types,
            "drowl:plugin/log@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::log,
            "drowl:plugin/config@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::config,
            "drowl:plugin/kv@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::kv,
            "drowl:plugin/objects@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::objects,
            "drowl:plugin/http@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::http,
            "drowl:plugin/queue@0.1.0": crate::bindings::v0_1_0::host_api::drowl::plugin::queue,
        },
    });
}
