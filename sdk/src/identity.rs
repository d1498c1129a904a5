//! The identity role (contract `drowl:plugin@0.2.0`): propose which stored accounts
//! belong to the same person.
//!
//! The host hands [`Identity::resolve`] the identities stored since the plugin's last
//! batch, oldest first. The plugin looks candidates up with [`find`] under keys it chose
//! itself, and returns the links it proposes plus the keys to index the batch under, so
//! later batches find these identities in turn. The host writes links only for pairs with
//! no link yet: a link a person made or removed is never overridden.

#[doc(hidden)]
pub mod world {
    crate::role_world!(
        "identity-plugin",
        "__drowl_export_identity_world",
        "::drowl_plugin_sdk::identity::world"
    );
}

pub use world::drowl::plugin0_2_0::directory::{DirectoryError, KnownIdentity};
pub use world::exports::drowl::plugin0_2_0::resolution::{
    IndexEntry, LinkConfidence, ProposedLink, ResolveRequest, ResolveResult,
};

use crate::{JobError, Manifest};

/// An identity resolver: implement this and invoke [`crate::identity_plugin!`].
pub trait Identity {
    /// The plugin's manifest (declare [`crate::Capability::IdentityResolution`]). Called
    /// at load time: keep it pure.
    fn manifest() -> Manifest;

    /// Resolves one batch of identities. The host stores what it returns in one
    /// transaction; a batch may be handed over again after a crash, so return the same
    /// answer for the same data.
    fn resolve(req: ResolveRequest) -> Result<ResolveResult, JobError>;
}

/// The identities this plugin indexed under `key` (at most `limit`, capped by the host
/// at 100), oldest first.
///
/// # Errors
/// [`DirectoryError::InvalidKey`] for an empty, over-long (512 bytes) or NUL key,
/// [`DirectoryError::Unavailable`] when the store failed: fail the job as retryable.
pub fn find(key: &str, limit: u32) -> Result<Vec<KnownIdentity>, DirectoryError> {
    world::drowl::plugin0_2_0::directory::find(key, limit)
}

impl From<DirectoryError> for JobError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::InvalidKey(m) => JobError::permanent(format!("directory key: {m}")),
            DirectoryError::Unavailable(m) => JobError::retryable(format!("directory: {m}")),
        }
    }
}

impl ResolveRequest {
    /// The value of a non-secret config field as passed with the request.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        crate::config::value_in(&self.config, key)
    }
}

/// Exports `$plugin` (a type implementing [`Identity`]) as the component's
/// `identity-plugin` world. Invoke it once, at the root of the plugin crate.
#[macro_export]
macro_rules! identity_plugin {
    ($plugin:ty) => {
        // Exports exist only in the component; native builds (unit tests of the
        // plugin's logic) must not define `cabi_*` symbols the native linker rejects.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __DrowlIdentityExport;

            impl $crate::identity::world::exports::drowl::plugin0_1_0::plugin::Guest
                for __DrowlIdentityExport
            {
                fn describe() -> $crate::Manifest {
                    <$plugin as $crate::identity::Identity>::manifest()
                }
            }

            impl $crate::identity::world::exports::drowl::plugin0_2_0::resolution::Guest
                for __DrowlIdentityExport
            {
                fn resolve(
                    req: $crate::identity::ResolveRequest,
                ) -> ::core::result::Result<$crate::identity::ResolveResult, $crate::JobError> {
                    <$plugin as $crate::identity::Identity>::resolve(req)
                }
            }

            $crate::identity::world::__drowl_export_identity_world!(__DrowlIdentityExport with_types_in $crate::identity::world);
        };
    };
}
