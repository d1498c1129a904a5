//! The enrichment role: derive keyword matches, identities and links from stored events.

#[doc(hidden)]
pub mod world {
    crate::role_world!(
        "drowl:plugin/enrichment-plugin@0.1.0",
        "__drowl_export_enrichment_world",
        "::drowl_plugin_sdk::enrichment::world"
    );
}

pub use world::exports::drowl::plugin0_1_0::enrichment::{
    EnrichRequest, EnrichResult, IdentityLink, Keyword, KeywordMatch, LinkConfidence, MatchStrategy,
};

use crate::{JobError, Manifest};

/// An enricher: implement this and invoke [`crate::enrichment_plugin!`].
pub trait Enrichment {
    /// The plugin's manifest. Called at load time: keep it pure.
    fn manifest() -> Manifest;

    /// Enriches one batch of stored events. The host calls it once per batch and stores
    /// what it returns idempotently, so a retried job produces no duplicates.
    fn enrich(req: EnrichRequest) -> Result<EnrichResult, JobError>;
}

impl EnrichRequest {
    /// The value of a non-secret config field as passed with the request.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        crate::config::value_in(&self.config, key)
    }
}

/// Exports `$plugin` (a type implementing [`Enrichment`]) as the component's
/// `enrichment-plugin` world. Invoke it once, at the root of the plugin crate.
#[macro_export]
macro_rules! enrichment_plugin {
    ($plugin:ty) => {
        // Exports exist only in the component; native builds (unit tests of the
        // plugin's logic) must not define `cabi_*` symbols the native linker rejects.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlEnrichmentExport;

            impl $crate::enrichment::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlEnrichmentExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::enrichment::Enrichment>::manifest()
                }
            }

            impl $crate::enrichment::world::exports::drowl::plugin0_1_0::enrichment::Guest
                for __DrowlEnrichmentExport
            {
                fn enrich(
                    req: $crate::enrichment::EnrichRequest,
                ) -> ::core::result::Result<$crate::enrichment::EnrichResult, $crate::JobError> {
                    <$plugin as $crate::enrichment::Enrichment>::enrich(req)
                }
            }

            $crate::enrichment::world::__drowl_export_enrichment_world!(__DrowlEnrichmentExport with_types_in $crate::enrichment::world);
        };
    };
}
