//! An in-memory backend for unit tests of the runtime, capabilities and jobs.
//!
//! It implements all three storage traits with the same observable rules as the real
//! backends (idempotent inserts keyed the same way, ordered-pair identity links with one
//! active link per pair, matches only for stored events, byte-ordered key listing), so a
//! test written against it means the same thing against SQLite or PostgreSQL. Nothing is
//! persisted; it is not meant for production.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::common::{
    check_link_score, dedup_identities, dedup_keywords, metadata_json, ordered_pair,
};
use super::{
    EventFilter, EventStore, IdentityLinkRecord, IdentityRecord, KeywordMatchRecord, KeywordRecord,
    KvStore, NewEvent, ObjectKey, ObjectStore, Result, StorageError, StoredEvent, WriteOutcome,
};

/// An identity row, as the tables hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryIdentity {
    /// Host-assigned id.
    pub id: String,
    /// The observation, merged over time.
    pub record: IdentityRecord,
    /// When it was last observed.
    pub last_verified_at: DateTime<Utc>,
}

/// An identity-link row, with its ordered pair of identity ids.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLink {
    /// The smaller identity id.
    pub identity_id_1: String,
    /// The larger identity id.
    pub identity_id_2: String,
    /// The suggestion as recorded.
    pub record: IdentityLinkRecord,
    /// Whether this is the pair's active link.
    pub is_active: bool,
}

#[derive(Debug, Default)]
struct State {
    events: BTreeMap<String, NewEvent>,
    event_keys: HashSet<(String, String)>,
    identities: HashMap<(String, String), MemoryIdentity>,
    links: Vec<MemoryLink>,
    keywords: BTreeMap<String, (KeywordRecord, bool)>,
    matches: BTreeMap<(String, String), KeywordMatchRecord>,
    kv: BTreeMap<(String, String), Vec<u8>>,
    objects: BTreeMap<ObjectKey, (bytes::Bytes, String)>,
}

impl State {
    fn identity_id(&mut self, account: &(String, String)) -> String {
        self.identities
            .entry(account.clone())
            .or_insert_with(|| MemoryIdentity {
                id: uuid::Uuid::new_v4().to_string(),
                record: IdentityRecord {
                    platform: account.0.clone(),
                    platform_user_id: account.1.clone(),
                    platform_username: None,
                    display_name: None,
                    profile_url: None,
                    avatar_url: None,
                    metadata: serde_json::json!({}),
                },
                last_verified_at: Utc::now(),
            })
            .id
            .clone()
    }
}

/// Every storage trait in memory, behind one mutex. For tests only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A [`super::Storage`] whose three backends are this one store, for tests that want
    /// to inspect what a job wrote.
    pub fn storage(self: &std::sync::Arc<Self>) -> super::Storage {
        super::Storage {
            events: self.clone(),
            kv: self.clone(),
            objects: self.clone(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StorageError::Unavailable("memory store poisoned by a panic".into()))
    }

    /// All stored events, ordered by id (test inspection).
    pub fn events(&self) -> Vec<NewEvent> {
        self.lock()
            .map(|s| s.events.values().cloned().collect())
            .unwrap_or_default()
    }

    /// All identities (test inspection), in no particular order.
    pub fn identities(&self) -> Vec<MemoryIdentity> {
        self.lock()
            .map(|s| s.identities.values().cloned().collect())
            .unwrap_or_default()
    }

    /// All identity links (test inspection), in insertion order.
    pub fn links(&self) -> Vec<MemoryLink> {
        self.lock().map(|s| s.links.clone()).unwrap_or_default()
    }

    /// All keyword matches (test inspection), ordered by (event, keyword).
    pub fn keyword_matches(&self) -> Vec<KeywordMatchRecord> {
        self.lock()
            .map(|s| s.matches.values().cloned().collect())
            .unwrap_or_default()
    }

    /// All object keys (test inspection), in order.
    pub fn object_keys(&self) -> Vec<ObjectKey> {
        self.lock()
            .map(|s| s.objects.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn to_stored(e: &NewEvent) -> StoredEvent {
    StoredEvent {
        id: e.id.clone(),
        source: e.source.clone(),
        external_id: e.external_id.clone(),
        event_type: e.event_type.clone(),
        occurred_at: e.occurred_at,
        raw_payload: e.raw_payload.clone(),
        storage_key: e.storage_key.clone(),
        text: e.text.clone(),
        actor: e.actor.clone(),
        plugin_id: e.plugin_id.clone(),
    }
}

fn matches_filter(e: &NewEvent, f: &EventFilter) -> bool {
    if let Some(ids) = &f.ids {
        return ids.contains(&e.id);
    }
    f.source.as_ref().is_none_or(|s| *s == e.source)
        && f.plugin_id.as_ref().is_none_or(|p| *p == e.plugin_id)
        && f.since.is_none_or(|t| e.occurred_at >= t)
        && f.until.is_none_or(|t| e.occurred_at < t)
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome> {
        let mut s = self.lock()?;
        let mut out = WriteOutcome::default();
        for e in events {
            let k = (e.source.clone(), e.external_id.clone());
            if s.events.contains_key(&e.id) || s.event_keys.contains(&k) {
                out.existing += 1;
            } else {
                s.event_keys.insert(k);
                s.events.insert(e.id.clone(), e.clone());
                out.inserted += 1;
            }
        }
        Ok(out)
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let s = self.lock()?;
        let start = match after_id {
            Some(a) => std::ops::Bound::Excluded(a.to_owned()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.events
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, e)| e)
            .filter(|e| matches_filter(e, filter))
            .take(limit as usize)
            .map(to_stored)
            .collect())
    }

    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome> {
        let recs = dedup_identities(identities);
        for r in &recs {
            metadata_json(&r.metadata)?;
        }
        let mut s = self.lock()?;
        let mut out = WriteOutcome::default();
        let now = Utc::now();
        for r in recs {
            let k = (r.platform.clone(), r.platform_user_id.clone());
            match s.identities.get_mut(&k) {
                Some(row) => {
                    out.existing += 1;
                    let old = &mut row.record;
                    for (field, new) in [
                        (&mut old.platform_username, &r.platform_username),
                        (&mut old.display_name, &r.display_name),
                        (&mut old.profile_url, &r.profile_url),
                        (&mut old.avatar_url, &r.avatar_url),
                    ] {
                        if new.is_some() {
                            field.clone_from(new);
                        }
                    }
                    if let (Some(old), Some(new)) =
                        (old.metadata.as_object_mut(), r.metadata.as_object())
                    {
                        old.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    row.last_verified_at = now;
                }
                None => {
                    out.inserted += 1;
                    let mut record = r.clone();
                    if record.metadata.is_null() {
                        record.metadata = serde_json::json!({});
                    }
                    let id = uuid::Uuid::new_v4().to_string();
                    s.identities.insert(
                        k,
                        MemoryIdentity {
                            id,
                            record,
                            last_verified_at: now,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome> {
        for l in links {
            check_link_score(l.confidence_score)?;
        }
        let mut s = self.lock()?;
        // Validate the whole batch before writing, as the SQL backends' transaction would.
        let mut rows = Vec::with_capacity(links.len());
        for l in links {
            let (a, b) = (s.identity_id(&l.a), s.identity_id(&l.b));
            let (one, two) = ordered_pair(&a, &b)?;
            rows.push((l, one.to_owned(), two.to_owned()));
        }
        let mut out = WriteOutcome::default();
        for (l, one, two) in rows {
            let active_exists = s
                .links
                .iter()
                .any(|x| x.is_active && x.identity_id_1 == one && x.identity_id_2 == two);
            if active_exists {
                out.existing += 1;
            } else {
                out.inserted += 1;
                s.links.push(MemoryLink {
                    identity_id_1: one,
                    identity_id_2: two,
                    record: l.clone(),
                    is_active: true,
                });
            }
        }
        Ok(out)
    }

    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome> {
        let mut s = self.lock()?;
        if let Some(m) = matches.iter().find(|m| !s.events.contains_key(&m.event_id)) {
            return Err(StorageError::Invalid(format!(
                "keyword match for unknown event {}",
                m.event_id
            )));
        }
        let mut out = WriteOutcome::default();
        for m in matches {
            match s.matches.entry((m.event_id.clone(), m.keyword_id.clone())) {
                std::collections::btree_map::Entry::Occupied(_) => out.existing += 1,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(m.clone());
                    out.inserted += 1;
                }
            }
        }
        Ok(out)
    }

    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>> {
        let s = self.lock()?;
        let mut v: Vec<KeywordRecord> = s
            .keywords
            .values()
            .filter(|(_, active)| *active)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort_by(|a, b| a.term.cmp(&b.term).then_with(|| a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome> {
        let mut s = self.lock()?;
        let mut out = WriteOutcome::default();
        for k in dedup_keywords(keywords) {
            match s.keywords.get_mut(&k.id) {
                Some((old, _)) => {
                    out.existing += 1;
                    *old = k.clone();
                }
                None => {
                    out.inserted += 1;
                    s.keywords.insert(k.id.clone(), (k.clone(), true));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()?
            .kv
            .get(&(namespace.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        self.lock()?
            .kv
            .insert((namespace.to_owned(), key.to_owned()), value.to_vec());
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        self.lock()?
            .kv
            .remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn list_keys(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let s = self.lock()?;
        Ok(s.kv
            .range((namespace.to_owned(), prefix.to_owned())..)
            .take_while(|((ns, k), _)| ns == namespace && k.starts_with(prefix))
            .take(limit as usize)
            .map(|((_, k), _)| k.clone())
            .collect())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &ObjectKey, data: bytes::Bytes, content_type: &str) -> Result<()> {
        self.lock()?
            .objects
            .insert(key.clone(), (data, content_type.to_owned()));
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>> {
        Ok(self.lock()?.objects.get(key).map(|(d, _)| d.clone()))
    }

    fn describe(&self, key: &ObjectKey) -> String {
        format!("memory://{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests_common as tc;

    #[tokio::test]
    async fn memory_store_follows_the_shared_rules() {
        let store = std::sync::Arc::new(MemoryStore::new());
        tc::run_all(store.clone(), store.clone()).await;
        store
            .put(&tc::key(), bytes::Bytes::from_static(b"x"), "")
            .await
            .unwrap();
        assert_eq!(
            ObjectStore::get(&*store, &tc::key())
                .await
                .unwrap()
                .as_deref(),
            Some(&b"x"[..])
        );
    }
}
