//! The host side of `drowl:plugin@0.2.0`, generated from `wit/v0.2.0`: the `directory`
//! import, the `resolution` role (`identity-plugin`), the `webhooks` export
//! (`webhook-plugin`; `connector-plugin` components export the same interface) and the
//! `schedules` export (`scheduled-plugin`, and `connector-plugin` too). Everything 0.2.0
//! reuses from 0.1.0 is mapped onto [`super::v0_1_0`] with `with`, so both versions share
//! one set of host types and one implementation of every shared import.

/// Generates one 0.2.0 world, its 0.1.0 interfaces mapped onto the 0.1.0 bindings.
macro_rules! world {
    ($(#[$doc:meta])* $module:ident, $world:literal) => {
        $(#[$doc])*
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
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
    };
}

world!(
    /// The `identity-plugin` world: resolution plugins, and the `directory` import.
    identity,
    "identity-plugin"
);
world!(
    /// The `webhook-plugin` world, for its `webhooks` export (which `connector-plugin`
    /// components export too: the host loads that interface on its own from either).
    webhook,
    "webhook-plugin"
);
world!(
    /// The `scheduled-plugin` world, for its `schedules` export (which `connector-plugin`
    /// components export too).
    scheduled,
    "scheduled-plugin"
);
