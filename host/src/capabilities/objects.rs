//! The `objects` interface: object storage under the plugin's own prefix.
//!
//! The guest supplies a relative key; [`ObjectKey::plugin_object`] validates it and
//! places it under `plugins/<plugin-id>/objects/`, so traversal (`../`), absolute paths,
//! NUL and over-long keys are refused before any backend sees them.

use crate::runtime::PluginState;
use crate::runtime::bindings::host_api::drowl::plugin::objects as wit;
use crate::storage::{ObjectKey, StorageError};

fn storage_err(e: StorageError) -> wit::ObjectError {
    match e {
        StorageError::Invalid(m) => wit::ObjectError::InvalidKey(m),
        other => wit::ObjectError::Unavailable(other.to_string()),
    }
}

impl wit::Host for PluginState {
    async fn put(
        &mut self,
        key: String,
        data: Vec<u8>,
        content_type: String,
    ) -> wasmtime::Result<Result<String, wit::ObjectError>> {
        let key = match ObjectKey::plugin_object(&self.env.plugin_id, &key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(wit::ObjectError::InvalidKey(e.to_string()))),
        };
        if data.len() > super::MAX_OBJECT_BYTES {
            return Ok(Err(wit::ObjectError::TooLarge(
                super::MAX_OBJECT_BYTES as u64,
            )));
        }
        let content_type = if content_type.is_empty() || content_type.len() > 255 {
            "application/octet-stream".to_owned()
        } else {
            content_type
        };
        let len = data.len() as u64;
        let objects = self.env.objects.clone();
        match super::guarded("objects.put", objects.put(&key, data.into(), &content_type)).await? {
            Ok(()) => {
                self.job.usage.objects_written += 1;
                self.job.usage.object_bytes_written += len;
                Ok(Ok(key.as_str().to_owned()))
            }
            Err(e) => Ok(Err(storage_err(e))),
        }
    }

    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::ObjectError>> {
        let key = match ObjectKey::plugin_object(&self.env.plugin_id, &key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(wit::ObjectError::InvalidKey(e.to_string()))),
        };
        let objects = self.env.objects.clone();
        Ok(super::guarded("objects.get", objects.get(&key))
            .await?
            .map(|o| o.map(|b| b.to_vec()))
            .map_err(storage_err))
    }
}
