//! Where drowl's data lives, behind small traits.
//!
//! The runtime and the job executors only see these traits; which backend sits behind
//! them is chosen once, from configuration ([`crate::config::StorageConfig`]):
//!
//! | trait           | embedded (default)        | production                 |
//! |-----------------|---------------------------|----------------------------|
//! | [`EventStore`]  | SQLite in the data dir    | PostgreSQL (`DATABASE_URL`) |
//! | [`KvStore`]     | SQLite in the data dir    | PostgreSQL                 |
//! | [`ObjectStore`] | files under the data dir  | S3 (`S3_ENDPOINT`, ...)    |
//!
//! Every write is idempotent: events are keyed by (`source`, `external_id`), object keys
//! are built by the host and deterministic, so a retried or duplicated job stores each
//! fact exactly once. Writes come in batches: one statement per batch, never a round trip
//! per event.

mod common;
pub mod keys;
pub mod local_fs;
pub mod memory;
pub mod postgres;
pub mod s3;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod tests_common;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use keys::{KeyError, ObjectKey};

/// Why a storage operation failed.
///
/// `Unavailable` means the backend could not be reached or failed mid-operation: the job
/// is failed as retryable and a retry is safe because every write is idempotent.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend is unreachable or failed; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The data was rejected (constraint, size, encoding); retrying will not help.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The backend is misconfigured (bad URL, missing bucket, failed migration).
    #[error("storage configuration: {0}")]
    Config(String),
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// An event ready to be written: validated, with its drowl id and payload location.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewEvent {
    /// drowl's id: deterministic and time-sortable (see [`crate::jobs::ids`]).
    pub id: String,
    /// Event source (`github`, ...), one the plugin's manifest declares.
    pub source: String,
    /// The platform's id for the event, unique within `source`.
    pub external_id: String,
    /// What happened (`push`, `star`, ...).
    pub event_type: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The raw payload as received, parsed as JSON.
    pub raw_payload: serde_json::Value,
    /// Where the raw payload lives in object storage.
    pub storage_key: Option<String>,
    /// The human-written text of the event, for enrichment.
    pub text: Option<String>,
    /// Actor platform and platform user id, when known.
    pub actor: Option<(String, String)>,
    /// The plugin that ingested it.
    pub plugin_id: String,
    /// That plugin's version.
    pub plugin_version: String,
    /// The job that ingested it.
    pub correlation_id: Option<String>,
}

/// An event as stored, read back for enrichment or export.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredEvent {
    /// drowl's id.
    pub id: String,
    /// Event source.
    pub source: String,
    /// The platform's id.
    pub external_id: String,
    /// What happened.
    pub event_type: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Raw payload as received.
    pub raw_payload: serde_json::Value,
    /// Where the raw payload lives in object storage.
    pub storage_key: Option<String>,
    /// Event text, when the ingesting plugin extracted one.
    pub text: Option<String>,
    /// Actor platform and platform user id.
    pub actor: Option<(String, String)>,
    /// The plugin that ingested it.
    pub plugin_id: String,
}

/// Which stored events an enrichment or export job reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EventFilter {
    /// Exactly these ids (other fields are ignored when set).
    pub ids: Option<Vec<String>>,
    /// Only this source.
    pub source: Option<String>,
    /// Only events ingested by this plugin.
    pub plugin_id: Option<String>,
    /// Only events that occurred at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only events that occurred before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// An account observed on a platform, to be upserted by (`platform`, `platform_user_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdentityRecord {
    /// Platform name.
    pub platform: String,
    /// The platform's stable account id.
    pub platform_user_id: String,
    /// Handle.
    pub platform_username: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Profile URL.
    pub profile_url: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Extra facts, a JSON object.
    pub metadata: serde_json::Value,
}

/// A suggested link between two observed accounts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdentityLinkRecord {
    /// One account, by (platform, platform user id).
    pub a: (String, String),
    /// The other account.
    pub b: (String, String),
    /// `manual`, `high`, `medium`, `low` or `suggested`.
    pub confidence: String,
    /// `plugin_heuristic`, `ml_inference`, ...
    pub link_source: String,
    /// 0.0 to 1.0.
    pub confidence_score: f32,
    /// Why the plugin thinks so.
    pub reason: String,
    /// The plugin that suggested it.
    pub plugin_id: String,
}

/// A tracked keyword, as read from the `keywords` table or a job's input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeywordRecord {
    /// Keyword id.
    pub id: String,
    /// The term.
    pub term: String,
    /// `product`, `technology`, ...
    pub category: String,
    /// `exact`, `word_boundary`, `substring` or `regex`.
    pub match_strategy: String,
    /// Pattern for the `regex` strategy.
    pub regex_pattern: Option<String>,
    /// Alternative spellings.
    pub synonyms: Vec<String>,
}

/// A keyword found in an event; unique per (`event_id`, `keyword_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeywordMatchRecord {
    /// The event.
    pub event_id: String,
    /// The keyword.
    pub keyword_id: String,
    /// The text as found.
    pub matched_text: String,
    /// Offset of the first occurrence, in characters.
    pub position: i64,
    /// Number of occurrences.
    pub occurrences: i64,
    /// The plugin that found it.
    pub plugin_id: String,
}

/// What an idempotent batch write did.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows that did not exist before.
    pub inserted: u64,
    /// Rows that already existed and were left untouched.
    pub existing: u64,
}

/// Events and the facts derived from them.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Inserts events in one batch; events whose (`source`, `external_id`) already exist
    /// are left untouched. Safe to call concurrently with the same batch.
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome>;
    /// Reads up to `limit` events matching `filter`, ordered by id, after `after_id`.
    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Upserts observed accounts; a re-observation refreshes names and `last_verified_at`.
    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome>;
    /// Records suggested links, keeping drowl's ordered-pair and one-active-link rules.
    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome>;
    /// Records keyword matches; an existing (`event_id`, `keyword_id`) is left untouched.
    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome>;
    /// Returns the active keywords from the `keywords` table.
    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>>;
    /// Creates or updates keywords (used by `drowl-host keywords` and tests).
    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome>;
}

/// A namespaced key-value store: plugin state and host bookkeeping (cursors).
///
/// The namespace is always chosen by the host, never by plugin code.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Reads one value.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Writes one value, replacing any previous one.
    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()>;
    /// Deletes one key; deleting a missing key succeeds.
    async fn delete(&self, namespace: &str, key: &str) -> Result<()>;
    /// Lists keys starting with `prefix`, in byte order, at most `limit`.
    async fn list_keys(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<String>>;
}

/// Object storage for raw payloads and plugin objects.
///
/// Keys are [`ObjectKey`]s, which only the host can build, so nothing a plugin sends can
/// address a path outside its own prefix.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes an object; writing the same key again replaces it (retries rewrite the
    /// same bytes under the same key).
    async fn put(&self, key: &ObjectKey, data: bytes::Bytes, content_type: &str) -> Result<()>;
    /// Reads an object, if it exists.
    async fn get(&self, key: &ObjectKey) -> Result<Option<bytes::Bytes>>;
    /// A human-readable location (`s3://bucket/key`, a file path) for logs and job output.
    fn describe(&self, key: &ObjectKey) -> String;
}

/// The backends one host process uses, shared by every job.
#[derive(Clone)]
pub struct Storage {
    /// Events, identities, keywords and matches.
    pub events: Arc<dyn EventStore>,
    /// Plugin and host key-value state.
    pub kv: Arc<dyn KvStore>,
    /// Raw payloads and plugin objects.
    pub objects: Arc<dyn ObjectStore>,
}

/// Opens the embedded backends under `data_dir`: SQLite at `data_dir/drowl.db` (events,
/// identities, keywords, matches, plugin state) and objects under `data_dir/objects`.
///
/// This is what `drowl-host` uses when no `DATABASE_URL`/`S3_ENDPOINT` is configured, so a
/// data directory is all a single-machine installation needs.
pub async fn open_embedded(data_dir: &Path) -> Result<Storage> {
    let db = Arc::new(sqlite::SqliteStore::open(&data_dir.join("drowl.db")).await?);
    let objects = Arc::new(local_fs::LocalFsStore::open(&data_dir.join("objects"))?);
    Ok(Storage {
        events: db.clone(),
        kv: db,
        objects,
    })
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}
