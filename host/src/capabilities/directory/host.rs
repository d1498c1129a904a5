//! `drowl:plugin/directory@0.2.0` served from a [`DirectoryCtx`].

use super::{DirectoryCtx, MAX_FIND, MAX_KEY_BYTES, MAX_SHOWN_PER_JOB, wit};
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
        if !self.room_for(limit as usize) {
            return Ok(Err(wit::DirectoryError::InvalidKey(format!(
                "this job has been shown {} identities, the most one job may see \
                 ({MAX_SHOWN_PER_JOB}); look up a few candidates per identity, not the table",
                self.shown.len()
            ))));
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::capabilities::CallTag;
    use crate::storage::memory::MemoryStore;
    use crate::storage::{EventStore, IdentityRecord, ResolutionBatch};

    #[tokio::test]
    async fn find_reads_only_this_plugins_index_and_stops_at_the_jobs_budget() {
        let store = Arc::new(MemoryStore::default());
        store
            .upsert_identities(&[IdentityRecord {
                platform: "github".into(),
                platform_user_id: "1".into(),
                platform_username: Some("octocat".into()),
                display_name: None,
                profile_url: None,
                avatar_url: None,
                metadata: serde_json::json!({}),
            }])
            .await
            .unwrap();
        let id = store.identity_id("github", "1").await.unwrap().unwrap();
        store
            .save_resolution(&ResolutionBatch {
                plugin_id: "identity".into(),
                index: vec![(id.clone(), vec!["username:octocat".into()])],
                links: Vec::new(),
            })
            .await
            .unwrap();
        let events: Arc<dyn EventStore> = store;
        let mut mine = DirectoryCtx::new(CallTag::new("identity", "j1"), Some(events.clone()));
        let found = wit::Host::find(&mut mine, "username:octocat".into(), 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.len(), 1);
        assert!(mine.was_shown(&id), "what find returned may be linked");
        let mut other = DirectoryCtx::new(CallTag::new("other", "j2"), Some(events));
        let none = wit::Host::find(&mut other, "username:octocat".into(), 10)
            .await
            .unwrap()
            .unwrap();
        assert!(none.is_empty(), "another plugin's keys are not this one's");

        mine.show(
            (0..MAX_SHOWN_PER_JOB)
                .map(|n| format!("x{n}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        let spent = wit::Host::find(&mut mine, "username:octocat".into(), 10)
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&spent, wit::DirectoryError::InvalidKey(m) if m.contains("the most one job may see")),
            "{spent:?}"
        );
    }
}
