//! `drowl:plugin/objects` served from an [`ObjectsCtx`].

use super::{MAX_OBJECT_BYTES, ObjectsCtx, wit};
use crate::capabilities::quota::Refused;
use crate::runtime::guarded;
use crate::storage::{ObjectKey, StorageError};

fn storage_err(e: StorageError) -> wit::ObjectError {
    match e {
        StorageError::Invalid(m) => wit::ObjectError::InvalidKey(m),
        other => wit::ObjectError::Unavailable(other.to_string()),
    }
}

impl wit::Host for ObjectsCtx {
    #[tracing::instrument(name = "drowl.objects.put", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn put(
        &mut self,
        key: String,
        data: Vec<u8>,
        content_type: String,
    ) -> wasmtime::Result<Result<String, wit::ObjectError>> {
        let key = match ObjectKey::plugin_object(&self.tag.plugin, &key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(wit::ObjectError::InvalidKey(e.to_string()))),
        };
        if data.len() > MAX_OBJECT_BYTES {
            return Ok(Err(wit::ObjectError::TooLarge(MAX_OBJECT_BYTES as u64)));
        }
        let (store, plugin) = (self.store.clone(), self.tag.plugin.clone());
        let admitted = self
            .quota
            .admit(data.len() as u64, || async move {
                match ObjectKey::plugin_objects_prefix(&plugin) {
                    Ok(prefix) => {
                        guarded("objects.prefix-bytes", store.prefix_bytes(&prefix)).await
                    }
                    Err(e) => Ok(Err(StorageError::Invalid(e.to_string()))),
                }
            })
            .await?;
        match admitted {
            Ok(()) => {}
            Err(Refused::Quota(left)) => return Ok(Err(wit::ObjectError::TooLarge(left))),
            Err(Refused::Storage(e)) => return Ok(Err(storage_err(e))),
        }
        let content_type = if content_type.is_empty() || content_type.len() > 255 {
            "application/octet-stream".to_owned()
        } else {
            content_type
        };
        let len = data.len() as u64;
        let objects = self.store.clone();
        match guarded("objects.put", objects.put(&key, data.into(), &content_type)).await? {
            Ok(()) => {
                self.written += 1;
                self.quota.record(len);
                Ok(Ok(key.as_str().to_owned()))
            }
            Err(e) => Ok(Err(storage_err(e))),
        }
    }

    #[tracing::instrument(name = "drowl.objects.get", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::ObjectError>> {
        let key = match ObjectKey::plugin_object(&self.tag.plugin, &key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(wit::ObjectError::InvalidKey(e.to_string()))),
        };
        let objects = self.store.clone();
        Ok(guarded("objects.get", objects.get(&key))
            .await?
            .map(|o| o.map(|b| b.to_vec()))
            .map_err(storage_err))
    }
}
