//! The `kv` interface: a key-value store private to each plugin.
//!
//! The namespace is the plugin's id, taken from the store's [`super::PluginEnv`], never
//! from the guest, so one plugin cannot read or overwrite another's state.

use crate::runtime::PluginState;
use crate::runtime::bindings::host_api::drowl::plugin::kv as wit;
use crate::storage::StorageError;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Most keys returned by one `list-keys` call.
pub const MAX_LIST: u32 = 1_000;

fn check_key(key: &str) -> Result<(), wit::KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
        return Err(wit::KvError::InvalidKey(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes without NUL"
        )));
    }
    Ok(())
}

fn storage_err(e: StorageError) -> wit::KvError {
    match e {
        StorageError::Invalid(m) => wit::KvError::InvalidKey(m),
        other => wit::KvError::Unavailable(other.to_string()),
    }
}

impl wit::Host for PluginState {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let kv = self.env.kv.clone();
        Ok(
            super::guarded("kv.get", kv.get(self.env.kv_namespace(), &key))
                .await?
                .map_err(storage_err),
        )
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > super::MAX_KV_VALUE_BYTES {
            return Ok(Err(wit::KvError::TooLarge(
                super::MAX_KV_VALUE_BYTES as u64,
            )));
        }
        let kv = self.env.kv.clone();
        Ok(
            super::guarded("kv.set", kv.set(self.env.kv_namespace(), &key, &value))
                .await?
                .map_err(storage_err),
        )
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let kv = self.env.kv.clone();
        Ok(
            super::guarded("kv.delete", kv.delete(self.env.kv_namespace(), &key))
                .await?
                .map_err(storage_err),
        )
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<String>, wit::KvError>> {
        if prefix.len() > MAX_KEY_BYTES || prefix.contains('\0') {
            return Ok(Err(wit::KvError::InvalidKey(
                "prefix too long or contains NUL".into(),
            )));
        }
        let kv = self.env.kv.clone();
        Ok(super::guarded(
            "kv.list-keys",
            kv.list_keys(self.env.kv_namespace(), &prefix, limit.min(MAX_LIST)),
        )
        .await?
        .map_err(storage_err))
    }
}
