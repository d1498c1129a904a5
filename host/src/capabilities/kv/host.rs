//! `drowl:plugin/kv` served from a [`KvCtx`].

use super::{KvCtx, MAX_KEY_BYTES, MAX_LIST, MAX_VALUE_BYTES, wit};
use crate::capabilities::quota::Refused;
use crate::runtime::guarded;
use crate::storage::StorageError;

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

impl wit::Host for KvCtx {
    #[tracing::instrument(name = "drowl.kv.get", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let kv = self.store.clone();
        Ok(guarded("kv.get", kv.get(&self.namespace, &key))
            .await?
            .map_err(storage_err))
    }

    #[tracing::instrument(name = "drowl.kv.set", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(wit::KvError::TooLarge(MAX_VALUE_BYTES as u64)));
        }
        let size = (key.len() + value.len()) as u64;
        let (store, namespace) = (self.store.clone(), self.namespace.clone());
        let admitted = self
            .quota
            .admit(size, || async move {
                guarded("kv.namespace-bytes", store.namespace_bytes(&namespace)).await
            })
            .await?;
        match admitted {
            Ok(()) => {}
            Err(Refused::Quota(left)) => return Ok(Err(wit::KvError::TooLarge(left))),
            Err(Refused::Storage(e)) => return Ok(Err(storage_err(e))),
        }
        let kv = self.store.clone();
        let stored = guarded("kv.set", kv.set(&self.namespace, &key, &value))
            .await?
            .map_err(storage_err);
        if stored.is_ok() {
            self.quota.record(size);
        }
        Ok(stored)
    }

    #[tracing::instrument(name = "drowl.kv.delete", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), wit::KvError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let kv = self.store.clone();
        Ok(guarded("kv.delete", kv.delete(&self.namespace, &key))
            .await?
            .map_err(storage_err))
    }

    #[tracing::instrument(name = "drowl.kv.list-keys", level = "debug", skip_all, fields(plugin = %self.tag.plugin, job = %self.tag.job))]
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
        let kv = self.store.clone();
        Ok(guarded(
            "kv.list-keys",
            kv.list_keys(&self.namespace, &prefix, limit.min(MAX_LIST)),
        )
        .await?
        .map_err(storage_err))
    }
}

#[cfg(test)]
mod tests {
    //! The `kv` host functions called directly on a [`KvCtx`]: no engine, no store.

    use std::sync::Arc;

    use super::wit::{Host as _, KvError};
    use super::*;
    use crate::capabilities::CallTag;
    use crate::storage::KvStore;
    use crate::storage::memory::MemoryStore;

    fn ctx(store: &Arc<MemoryStore>, plugin: &str) -> KvCtx {
        KvCtx::new(CallTag::new(plugin, "job-1"), store.clone(), plugin, 64)
    }

    #[tokio::test]
    async fn values_stay_in_the_plugins_namespace() {
        let store = Arc::new(MemoryStore::default());
        let mut a = ctx(&store, "alpha");
        let mut b = ctx(&store, "beta");
        a.set("k".into(), b"v".to_vec()).await.unwrap().unwrap();
        assert_eq!(
            a.get("k".into()).await.unwrap().unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(b.get("k".into()).await.unwrap().unwrap(), None);
        assert_eq!(store.get("alpha", "k").await.unwrap(), Some(b"v".to_vec()));
    }

    #[tokio::test]
    async fn bad_keys_and_big_values_are_refused_before_the_backend() {
        let store = Arc::new(MemoryStore::default());
        let mut kv = ctx(&store, "alpha");
        let nul = kv.set("a\0b".into(), vec![1]).await.unwrap();
        assert!(matches!(nul, Err(KvError::InvalidKey(_))), "{nul:?}");
        let big = kv
            .set("k".into(), vec![0; MAX_VALUE_BYTES + 1])
            .await
            .unwrap();
        assert!(matches!(big, Err(KvError::TooLarge(_))), "{big:?}");
        assert!(store.list_keys("alpha", "", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_job_writes_at_most_its_quota() {
        let store = Arc::new(MemoryStore::default());
        let mut kv = ctx(&store, "alpha");
        kv.set("a".into(), vec![0; 40]).await.unwrap().unwrap();
        let over = kv.set("b".into(), vec![0; 40]).await.unwrap();
        assert!(matches!(over, Err(KvError::TooLarge(23))), "{over:?}");
        assert!(kv.quota.job_hit);
        kv.set("c".into(), vec![0; 20]).await.unwrap().unwrap();
        assert_eq!(kv.quota.written, 62);
    }

    #[tokio::test]
    async fn a_plugin_keeps_at_most_its_quota_across_jobs() {
        let store = Arc::new(MemoryStore::default());
        store.set("alpha", "old", &[0; 30]).await.unwrap();
        store.set("beta", "other", &[0; 500]).await.unwrap();
        let mut kv = ctx(&store, "alpha").with_plugin_quota(60);
        // 33 stored: 20 + 1 fits, 10 + 1 more does not.
        kv.set("a".into(), vec![0; 20]).await.unwrap().unwrap();
        let over = kv.set("b".into(), vec![0; 10]).await.unwrap();
        assert!(matches!(over, Err(KvError::TooLarge(6))), "{over:?}");
        assert!(kv.quota.plugin_hit && !kv.quota.job_hit);
        kv.set("c".into(), vec![0; 5]).await.unwrap().unwrap();
        assert_eq!(store.namespace_bytes("alpha").await.unwrap(), 60);
        // The next job starts from what is stored: nothing left.
        let mut next = ctx(&store, "alpha").with_plugin_quota(60);
        let full = next.set("d".into(), vec![]).await.unwrap();
        assert!(matches!(full, Err(KvError::TooLarge(0))), "{full:?}");
        assert!(next.quota.plugin_hit);
    }
}
