//! `drowl:plugin/directory@0.2.0` served from a [`DirectoryCtx`].

use super::{DirectoryCtx, MAX_FIND, MAX_KEY_BYTES, wit};
use crate::runtime::guarded;
use crate::storage::{KnownIdentity, StorageError};

/// The WIT record of a stored identity.
pub(crate) fn to_wit(i: &KnownIdentity) -> wit::KnownIdentity {
    wit::KnownIdentity {
        id: i.id.clone(),
        platform: i.platform.clone(),
        platform_user_id: i.platform_user_id.clone(),
        platform_username: i.platform_username.clone(),
        display_name: i.display_name.clone(),
        profile_url: i.profile_url.clone(),
        avatar_url: i.avatar_url.clone(),
        metadata_json: match &i.metadata {
            serde_json::Value::Null => None,
            m => Some(m.to_string()),
        },
        created_at: i
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}

impl wit::Host for DirectoryCtx {
    #[tracing::instrument(name = "drowl.directory.find", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn find(
        &mut self,
        key: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<wit::KnownIdentity>, wit::DirectoryError>> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
            return Ok(Err(wit::DirectoryError::InvalidKey(format!(
                "keys must be 1 to {MAX_KEY_BYTES} bytes without NUL"
            ))));
        }
        let Some(store) = self.store.clone() else {
            return Ok(Err(wit::DirectoryError::Unavailable(
                "no identity store is open here (describe runs without one)".into(),
            )));
        };
        let limit = limit.clamp(1, MAX_FIND);
        let plugin = self.tag.plugin.clone();
        let found = guarded(
            "directory.find",
            store.find_indexed_identities(&plugin, &key, limit),
        )
        .await?;
        Ok(match found {
            Ok(identities) => {
                self.show(identities.iter().map(|i| i.id.as_str()));
                Ok(identities.iter().map(to_wit).collect())
            }
            Err(StorageError::Invalid(m)) => Err(wit::DirectoryError::InvalidKey(m)),
            Err(e) => Err(wit::DirectoryError::Unavailable(e.to_string())),
        })
    }
}
