//! An in-memory backend for unit tests of the runtime, capabilities and jobs.
//!
//! It implements every storage trait with the same observable rules as the real backends
//! (idempotent inserts keyed the same way, ordered-pair identity links with one active
//! link per pair and plugin links only for pairs with none at all, a per-plugin identity
//! index, matches only for stored events, byte-ordered key listing, the `jobs` table's
//! conflict rule), so a test written against it means the same thing against SQLite or
//! PostgreSQL. Nothing is persisted; it is not meant for production.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::common::{
    check_identities_exist, check_link_score, check_manual_link, dedup_identities, dedup_keywords,
    metadata_json, ordered_pair, proposed_link, resolution_identities, resolution_index,
    unknown_identity,
};
use super::{
    DailyMetrics, DailyMetricsOutcome, DayRange, EventFilter, EventStore, IdentityLinkRecord,
    IdentityPosition, IdentityRecord, JobStatus, JobStore, JobUpdate, KeywordMatchRecord,
    KeywordRecord, KnownIdentity, KvStore, LINK_SOURCE_HEURISTIC, LinkOutcome, NewDelivery,
    NewEvent, ObjectKey, ObjectStore, ResolutionBatch, Result, SavedDelivery, StorageError,
    StoredDelivery, StoredEvent, USER_MANUAL_LINK_SOURCE, WebhookStore, WriteOutcome,
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
    /// When it was first stored (`identities.created_at`): the same instant for every
    /// identity of one batch, as the SQL backends' one statement per batch gives.
    pub created_at: DateTime<Utc>,
}

impl MemoryIdentity {
    fn known(&self) -> KnownIdentity {
        let r = &self.record;
        KnownIdentity {
            id: self.id.clone(),
            platform: r.platform.clone(),
            platform_user_id: r.platform_user_id.clone(),
            platform_username: r.platform_username.clone(),
            display_name: r.display_name.clone(),
            profile_url: r.profile_url.clone(),
            avatar_url: r.avatar_url.clone(),
            metadata: r.metadata.clone(),
            created_at: self.created_at,
        }
    }

    /// Its place in the order identity resolution reads identities in.
    fn position(&self) -> (DateTime<Utc>, &str) {
        (self.created_at, &self.id)
    }
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
    /// `identity_index` rows: (plugin id, key, identity id).
    identity_index: BTreeSet<(String, String, String)>,
    keywords: BTreeMap<String, (KeywordRecord, bool)>,
    matches: BTreeMap<(String, String), KeywordMatchRecord>,
    kv: BTreeMap<(String, String), Vec<u8>>,
    objects: BTreeMap<ObjectKey, (bytes::Bytes, String)>,
    /// `jobs` rows, as [`JobUpdate`]s whose `created_at` is always set.
    jobs: BTreeMap<String, JobUpdate>,
    /// `webhook_deliveries` rows, by (plugin id, delivery id).
    deliveries: BTreeMap<(String, String), StoredDelivery>,
}

impl State {
    fn identity_id(&mut self, account: &(String, String)) -> String {
        let now = Utc::now();
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
                last_verified_at: now,
                created_at: now,
            })
            .id
            .clone()
    }

    /// The identity whose `identities.id` is `id`.
    fn identity_by_id(&self, id: &str) -> Option<&MemoryIdentity> {
        self.identities.values().find(|i| i.id == id)
    }

    /// Whether the ordered pair has any link row, active or removed.
    fn pair_has_link(&self, one: &str, two: &str) -> bool {
        self.links
            .iter()
            .any(|x| x.identity_id_1 == one && x.identity_id_2 == two)
    }
}

/// `identities` in identity-resolution order (`created_at`, then `id`), at most `limit`.
fn oldest_first<'a>(
    identities: impl Iterator<Item = &'a MemoryIdentity>,
    limit: u32,
) -> Vec<KnownIdentity> {
    let mut found: Vec<&MemoryIdentity> = identities.collect();
    found.sort_by(|a, b| a.position().cmp(&b.position()));
    found
        .into_iter()
        .take(limit as usize)
        .map(MemoryIdentity::known)
        .collect()
}

/// Every storage trait in memory, behind one mutex. For tests only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// The `plugins` table, apart: it shares nothing with the other tables.
    plugins: std::sync::Arc<super::plugins::memory::MemoryPluginStore>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A [`super::Storage`] whose backends are all this one store, for tests that want
    /// to inspect what a job wrote.
    pub fn storage(self: &std::sync::Arc<Self>) -> super::Storage {
        super::Storage {
            events: self.clone(),
            kv: self.clone(),
            jobs: self.clone(),
            objects: self.clone(),
            webhooks: self.clone(),
            plugins: self.plugins.clone(),
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

    /// Marks the pair's links inactive, as a person removing a link in drowl's UI does
    /// (test set-up).
    pub fn deactivate_links(&self, identity_id_1: &str, identity_id_2: &str) {
        if let Ok(mut s) = self.lock() {
            for l in s
                .links
                .iter_mut()
                .filter(|l| l.identity_id_1 == identity_id_1 && l.identity_id_2 == identity_id_2)
            {
                l.is_active = false;
            }
        }
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

    /// All `jobs` rows (test inspection), ordered by id; `created_at` is always set.
    pub fn jobs(&self) -> Vec<JobUpdate> {
        self.lock()
            .map(|s| s.jobs.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn is_final(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Completed | JobStatus::Failed | JobStatus::Timeout
    )
}

/// The `jobs` upsert of the SQL backends (`jobs_upsert.sql`), on one row: `None` when the
/// row stays as it is.
fn merge_job(old: &JobUpdate, new: &JobUpdate, created_at: DateTime<Utc>) -> Option<JobUpdate> {
    if is_final(old.status) && !(is_final(new.status) || new.status == JobStatus::Running) {
        return None;
    }
    let was_final = is_final(old.status);
    // A job enqueued after the row's job started is a new job reusing the id.
    let reused = old.started_at.is_some_and(|s| created_at > s);
    Some(JobUpdate {
        id: old.id.clone(),
        job_type: new.job_type.clone(),
        name: new.name.clone(),
        status: new.status,
        priority: new.priority,
        input: new.input.clone(),
        output: if matches!(new.status, JobStatus::Running | JobStatus::Pending) {
            None
        } else {
            new.output.clone().or_else(|| old.output.clone())
        },
        error: new.error.clone(),
        created_at: if reused {
            Some(created_at)
        } else {
            old.created_at
        },
        started_at: new.started_at.or(old.started_at),
        completed_at: new.completed_at,
        timeout_ms: new.timeout_ms,
        retry_attempt: if was_final || reused || new.retry_attempt > old.retry_attempt {
            new.retry_attempt
        } else {
            old.retry_attempt
        },
        retry_max_attempts: new.retry_max_attempts,
        backoff: new.backoff.clone(),
        retry_last_at: if was_final || reused {
            new.retry_last_at
        } else {
            new.retry_last_at.or(old.retry_last_at)
        },
        plugin_id: new.plugin_id.clone().or_else(|| old.plugin_id.clone()),
        user_id: new.user_id.clone().or_else(|| old.user_id.clone()),
        correlation_id: new
            .correlation_id
            .clone()
            .or_else(|| old.correlation_id.clone()),
        parent_job_id: new
            .parent_job_id
            .clone()
            .or_else(|| old.parent_job_id.clone()),
        tags: match &new.tags {
            Some(t) if !t.is_empty() => Some(t.clone()),
            _ => old.tags.clone(),
        },
    })
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

fn matches_filter(s: &State, e: &NewEvent, f: &EventFilter) -> bool {
    if let Some(ids) = &f.ids {
        return ids.contains(&e.id);
    }
    f.source.as_ref().is_none_or(|s| *s == e.source)
        && f.plugin_id.as_ref().is_none_or(|p| *p == e.plugin_id)
        && f.since.is_none_or(|t| e.occurred_at >= t)
        && f.until.is_none_or(|t| e.occurred_at < t)
        && f.event_types
            .as_ref()
            .is_none_or(|types| types.contains(&e.event_type))
        && f.keyword.as_ref().is_none_or(|want| {
            s.matches.keys().any(|(event, keyword)| {
                event == &e.id
                    && s.keywords.get(keyword).is_some_and(|(k, _)| {
                        k.id == *want || k.term.to_lowercase() == want.to_lowercase()
                    })
            })
        })
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
            .filter(|e| matches_filter(&s, e, filter))
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
                            created_at: now,
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
            // Any row, active or removed: a suggestion never brings back a removed link.
            if s.pair_has_link(&one, &two) {
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

    async fn identity_id(&self, platform: &str, platform_user_id: &str) -> Result<Option<String>> {
        Ok(self
            .lock()?
            .identities
            .get(&(platform.to_owned(), platform_user_id.to_owned()))
            .map(|i| i.id.clone()))
    }

    async fn link_identities(
        &self,
        a: &str,
        b: &str,
        confidence: &str,
        reason: &str,
    ) -> Result<LinkOutcome> {
        let (one, two, score) = check_manual_link(a, b, confidence)?;
        let mut s = self.lock()?;
        let account = |id: &str| {
            s.identities
                .iter()
                .find(|(_, i)| i.id == id)
                .map(|(k, _)| k.clone())
                .ok_or_else(|| unknown_identity(id))
        };
        let (acc_a, acc_b) = (account(a)?, account(b)?);
        let (acc_one, acc_two) = if one == a {
            (acc_a, acc_b)
        } else {
            (acc_b, acc_a)
        };
        let active = s
            .links
            .iter_mut()
            .find(|x| x.is_active && x.identity_id_1 == one && x.identity_id_2 == two);
        let created = match active {
            Some(link) => {
                link.record.confidence = confidence.to_owned();
                link.record.link_source = USER_MANUAL_LINK_SOURCE.to_owned();
                link.record.confidence_score = score;
                link.record.reason = reason.to_owned();
                false
            }
            None => {
                s.links.push(MemoryLink {
                    identity_id_1: one.to_owned(),
                    identity_id_2: two.to_owned(),
                    record: IdentityLinkRecord {
                        a: acc_one,
                        b: acc_two,
                        confidence: confidence.to_owned(),
                        link_source: USER_MANUAL_LINK_SOURCE.to_owned(),
                        confidence_score: score,
                        reason: reason.to_owned(),
                        plugin_id: String::new(),
                    },
                    is_active: true,
                });
                true
            }
        };
        Ok(LinkOutcome {
            identity_id_1: one.to_owned(),
            identity_id_2: two.to_owned(),
            created,
        })
    }

    async fn identities_after(
        &self,
        after: Option<&IdentityPosition>,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>> {
        let s = self.lock()?;
        let after = after.map(|p| (p.created_at, p.id.as_str()));
        Ok(oldest_first(
            s.identities
                .values()
                .filter(|i| after.is_none_or(|a| i.position() > a)),
            limit,
        ))
    }

    async fn find_indexed_identities(
        &self,
        plugin_id: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>> {
        let s = self.lock()?;
        let from = (plugin_id.to_owned(), key.to_owned(), String::new());
        let indexed = s
            .identity_index
            .range(from..)
            .take_while(|(p, k, _)| p == plugin_id && k == key)
            .filter_map(|(_, _, id)| s.identity_by_id(id));
        Ok(oldest_first(indexed, limit))
    }

    async fn save_resolution(&self, batch: &ResolutionBatch) -> Result<WriteOutcome> {
        // Check everything before writing anything, as the SQL backends' transaction does.
        let links = batch
            .links
            .iter()
            .map(|l| proposed_link(l).map(|pair| (l, pair)))
            .collect::<Result<Vec<_>>>()?;
        let (indexed, keys) = resolution_index(batch);
        let mut s = self.lock()?;
        check_identities_exist(&resolution_identities(batch), |id| {
            s.identity_by_id(id).is_some()
        })?;
        let plugin = &batch.plugin_id;
        s.identity_index
            .retain(|(p, _, id)| !(p == plugin && indexed.contains(&id.as_str())));
        for (id, key) in keys {
            s.identity_index
                .insert((plugin.clone(), key.to_owned(), id.to_owned()));
        }
        let mut out = WriteOutcome::default();
        for (l, (one, two, score)) in links {
            if s.pair_has_link(one, two) {
                out.existing += 1;
                continue;
            }
            let account = |id: &str| {
                s.identity_by_id(id)
                    .map(|i| (i.record.platform.clone(), i.record.platform_user_id.clone()))
                    .unwrap_or_default()
            };
            let record = IdentityLinkRecord {
                a: account(one),
                b: account(two),
                confidence: l.confidence.clone(),
                link_source: LINK_SOURCE_HEURISTIC.to_owned(),
                confidence_score: score,
                reason: l.reason.clone(),
                plugin_id: plugin.clone(),
            };
            s.links.push(MemoryLink {
                identity_id_1: one.to_owned(),
                identity_id_2: two.to_owned(),
                record,
                is_active: true,
            });
            out.inserted += 1;
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

    /// The rollups are SQL over drowl's tables (see the SQLite and PostgreSQL stores);
    /// this test store keeps no metrics tables and refuses rather than answer emptily.
    async fn compute_daily_metrics(&self, _range: &DayRange) -> Result<DailyMetricsOutcome> {
        Err(no_metrics())
    }

    async fn daily_metrics(&self, _first: NaiveDate, _last: NaiveDate) -> Result<DailyMetrics> {
        Err(no_metrics())
    }

    /// Usable as long as its lock is (a panic while holding it poisons it).
    async fn ping(&self) -> Result<()> {
        self.lock().map(|_| ())
    }

    fn backend(&self) -> String {
        "in-memory store".to_owned()
    }
}

/// Why the in-memory store has no daily metrics.
fn no_metrics() -> StorageError {
    StorageError::Config(
        "the in-memory store keeps no daily metrics; use SQLite or PostgreSQL".into(),
    )
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

    async fn namespace_bytes(&self, namespace: &str) -> Result<u64> {
        let s = self.lock()?;
        Ok(s.kv
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|((_, k), v)| (k.len() + v.len()) as u64)
            .sum())
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

    async fn prefix_bytes(&self, prefix: &str) -> Result<u64> {
        Ok(self
            .lock()?
            .objects
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(prefix))
            .map(|(_, (d, _))| d.len() as u64)
            .sum())
    }

    fn describe(&self, key: &ObjectKey) -> String {
        format!("memory://{key}")
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(|_| ())
    }

    fn backend(&self) -> String {
        "in-memory store".to_owned()
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<()> {
        let mut state = self.lock()?;
        for new in updates {
            let created_at = new.created_at.unwrap_or_else(Utc::now);
            let row = match state.jobs.get(&new.id) {
                None => Some(JobUpdate {
                    created_at: Some(created_at),
                    ..new.clone()
                }),
                Some(old) => merge_job(old, new, created_at),
            };
            if let Some(row) = row {
                state.jobs.insert(new.id.clone(), row);
            }
        }
        Ok(())
    }

    async fn unsettled(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
        let state = self.lock()?;
        let mut rows: Vec<(DateTime<Utc>, &str)> = state
            .jobs
            .values()
            .filter(|j| matches!(j.status, JobStatus::Running | JobStatus::Pending))
            .filter_map(|j| {
                let started = j.started_at?;
                Some((j.retry_last_at.unwrap_or(started), j.id.as_str()))
            })
            .filter(|(changed, _)| *changed < before)
            .collect();
        rows.sort();
        Ok(rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|(_, id)| id.to_owned())
            .collect())
    }

    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<()> {
        let mut state = self.lock()?;
        if let Some(j) = state.jobs.get_mut(id)
            && matches!(j.status, JobStatus::Running | JobStatus::Pending)
        {
            j.status = JobStatus::Failed;
            // As in SQL: message and code replaced, details kept.
            let details = j.error.take().and_then(|e| e.2);
            j.error = Some((message.to_owned(), Some(code.to_owned()), details));
            j.completed_at = Some(Utc::now());
        }
        Ok(())
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn save_delivery(&self, d: &NewDelivery) -> Result<SavedDelivery> {
        let mut state = self.lock()?;
        let key = (d.plugin_id.clone(), d.delivery_id.clone());
        if let Some(stored) = state.deliveries.get(&key) {
            return Ok(SavedDelivery {
                inserted: false,
                job_id: stored.job_id.clone(),
            });
        }
        state.deliveries.insert(
            key,
            StoredDelivery {
                delivery: d.clone(),
                job_id: None,
            },
        );
        Ok(SavedDelivery {
            inserted: true,
            job_id: None,
        })
    }

    async fn set_delivery_job(
        &self,
        plugin_id: &str,
        delivery_id: &str,
        job_id: &str,
    ) -> Result<()> {
        let mut state = self.lock()?;
        if let Some(d) = state
            .deliveries
            .get_mut(&(plugin_id.to_owned(), delivery_id.to_owned()))
        {
            d.job_id = Some(job_id.to_owned());
        }
        Ok(())
    }

    async fn delivery(&self, plugin_id: &str, delivery_id: &str) -> Result<Option<StoredDelivery>> {
        Ok(self
            .lock()?
            .deliveries
            .get(&(plugin_id.to_owned(), delivery_id.to_owned()))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance as tc;

    #[async_trait]
    impl tc::ReadJobs for MemoryStore {
        async fn row(&self, id: &str) -> Option<tc::JobRow> {
            let j = self.lock().ok()?.jobs.get(id).cloned()?;
            Some(tc::JobRow {
                status: j.status.as_str().to_owned(),
                name: j.name,
                who: j.input["who"].clone(),
                output: j.output,
                retry_attempt: i64::from(j.retry_attempt),
                created_ms: j.created_at.map_or(0, |t| t.timestamp_millis()),
            })
        }
        async fn meta(&self, id: &str) -> Option<tc::JobMeta> {
            let j = self.lock().ok()?.jobs.get(id).cloned()?;
            Some(tc::JobMeta {
                priority: i64::from(j.priority),
                timeout_ms: i64::from(j.timeout_ms),
                retry_max_attempts: i64::from(j.retry_max_attempts),
                backoff: j.backoff,
                user_id: j.user_id,
                correlation_id: j.correlation_id,
                parent_job_id: j.parent_job_id,
                tags: j.tags.unwrap_or_default(),
            })
        }
        async fn count(&self) -> i64 {
            self.lock().map_or(0, |s| s.jobs.len() as i64)
        }
    }

    #[async_trait]
    impl tc::ReadLinks for MemoryStore {
        async fn links_between(&self, a: &str, b: &str) -> Vec<tc::StoredLink> {
            let mut rows: Vec<tc::StoredLink> = self
                .links()
                .into_iter()
                .filter(|l| {
                    (l.identity_id_1 == a && l.identity_id_2 == b)
                        || (l.identity_id_1 == b && l.identity_id_2 == a)
                })
                .map(|l| tc::StoredLink {
                    identity_id_1: l.identity_id_1,
                    identity_id_2: l.identity_id_2,
                    confidence: l.record.confidence,
                    link_source: l.record.link_source,
                    confidence_score: l.record.confidence_score,
                    // A person's link has no plugin (stored as "").
                    plugin_id: Some(l.record.plugin_id).filter(|p| !p.is_empty()),
                    is_active: l.is_active,
                })
                .collect();
            rows.sort_by_key(|r| r.is_active);
            rows
        }
        async fn remove_links(&self, a: &str, b: &str) {
            self.deactivate_links(a, b);
            self.deactivate_links(b, a);
        }
    }

    #[tokio::test]
    async fn memory_identity_resolution_follows_the_shared_rules() {
        let store = MemoryStore::new();
        tc::resolution_links_follow_the_rules(&store, &store).await;
        tc::suggested_links_never_revive_removed_ones(&store, &store).await;
    }

    #[tokio::test]
    async fn memory_jobs_follow_the_shared_rules() {
        let store = MemoryStore::new();
        tc::job_rows_follow_the_rules(&store, &store).await;
        tc::job_rows_record_what_was_applied(&store, &store).await;
    }

    /// A person asking again for a link they removed gets an active link again; the
    /// removed one stays as it was.
    #[tokio::test]
    async fn a_removed_link_asked_for_again_is_active_again() {
        let store = MemoryStore::new();
        let [a, b, _] = tc::three_identities(&store).await;
        let first = store
            .link_identities(&a, &b, "high", "asked")
            .await
            .unwrap();
        store.deactivate_links(&first.identity_id_1, &first.identity_id_2);
        let again = store
            .link_identities(&b, &a, "medium", "asked again")
            .await
            .unwrap();
        assert!(again.created);
        let links = store.links();
        assert_eq!(links.len(), 2);
        assert_eq!(
            links.iter().map(|l| l.is_active).collect::<Vec<_>>(),
            [false, true]
        );
        let active = &links[1].record;
        assert_eq!(
            (
                active.confidence.as_str(),
                active.link_source.as_str(),
                active.confidence_score
            ),
            ("medium", "user_manual", 0.7)
        );
        assert_eq!(links[0].record.confidence, "high");
    }

    #[tokio::test]
    async fn memory_store_follows_the_shared_rules() {
        let store = std::sync::Arc::new(MemoryStore::new());
        tc::run_all(store.clone(), store.clone()).await;
        tc::webhook_deliveries_are_stored_once(store.clone()).await;
        tc::object_store_answers_ping(&*store).await;
        tc::object_prefix_bytes(&*store).await;
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
