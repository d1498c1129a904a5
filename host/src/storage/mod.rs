//! Where drowl's data lives, behind small traits.
//!
//! The runtime and the job executors only see these traits; which backend sits behind
//! them is chosen once, at start-up, by [`open`] from a [`StorageConfig`] (drowl's
//! environment variables, [`StorageConfig::from_env`]). Each trait is chosen on its own,
//! so `DATABASE_URL` alone gives PostgreSQL with payload files in the data directory:
//!
//! | trait            | embedded (default)        | production                  |
//! |------------------|---------------------------|-----------------------------|
//! | [`EventStore`]   | SQLite in the data dir    | PostgreSQL (`DATABASE_URL`) |
//! | [`KvStore`]      | SQLite in the data dir    | PostgreSQL                  |
//! | [`JobStore`]     | SQLite in the data dir    | PostgreSQL                  |
//! | [`WebhookStore`] | SQLite in the data dir    | PostgreSQL                  |
//! | [`ObjectStore`]  | files under the data dir  | S3 (`S3_ENDPOINT`, ...)     |
//! | [`PluginStore`]  | SQLite in the data dir    | PostgreSQL                  |
//!
//! Every write is idempotent: events are keyed by (`source`, `external_id`), object keys
//! are built by the host and deterministic, so a retried or duplicated job stores each
//! fact exactly once. Writes come in batches: one statement per batch, never a round trip
//! per event.
//!
//! The SQL backends keep each query in a `.sql` file of its own next to the backend that
//! runs it (`postgres/queries/`, `sqlite/queries/`); turning records into the rows a batch
//! writes, and result rows back into records, is done once for both in `rows`.

mod common;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod keys;
pub mod local_fs;
pub mod memory;
pub mod plugins;
pub mod postgres;
mod rows;
pub mod s3;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

pub use keys::{KeyError, ObjectKey};
pub use plugins::{PluginComponent, PluginRow, PluginStore};

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
    /// drowl's id: deterministic and time-sortable, derived by the jobs layer from
    /// (`source`, `external_id`, `occurred_at`), so a re-ingested event gets the same id.
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
    /// Only events of these types (`push`, `star`, ...).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Only events with a stored match of this keyword, named by `keywords.id` or by its
    /// term (case-insensitive).
    #[serde(default)]
    pub keyword: Option<String>,
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

/// A stored account, as identity-resolution plugins read it (`directory.find`, and the
/// batches of `resolve`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnownIdentity {
    /// `identities.id`.
    pub id: String,
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
    /// When the row was first stored.
    pub created_at: DateTime<Utc>,
}

/// A place in the order identity resolution reads identities in: by `created_at`, then
/// by `id` among identities stored at the same instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityPosition {
    /// `identities.created_at` of the last identity read.
    pub created_at: DateTime<Utc>,
    /// Its `identities.id`.
    pub id: String,
}

/// A link an identity-resolution plugin proposes between two stored identities.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProposedLink {
    /// One `identities.id` (the pair is ordered when stored).
    pub a: String,
    /// The other.
    pub b: String,
    /// `high`, `medium`, `low` or `suggested`.
    pub confidence: String,
    /// 0.0 to 1.0.
    pub score: f32,
    /// Why, for the person reviewing it.
    pub reason: String,
}

/// What one `resolve` call concluded, checked by the jobs layer and stored at once by
/// [`EventStore::save_resolution`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ResolutionBatch {
    /// The plugin whose index the keys belong to (and `identity_links.plugin_id`).
    pub plugin_id: String,
    /// Per identity of the batch, its lookup keys: they replace the keys the plugin had
    /// for that identity.
    pub index: Vec<(String, Vec<String>)>,
    /// Links to write as `plugin_heuristic`, only for pairs with no link at all.
    pub links: Vec<ProposedLink>,
}

/// `identity_links.link_source` of a link a plugin's heuristics proposed.
pub const LINK_SOURCE_HEURISTIC: &str = "plugin_heuristic";

/// What [`EventStore::link_identities`] did: the pair as stored, and whether the link is new.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkOutcome {
    /// The smaller identity id (`identity_links.identity_id_1`).
    pub identity_id_1: String,
    /// The larger identity id.
    pub identity_id_2: String,
    /// `true` when a new active link row was written, `false` when the pair's active
    /// link was updated in place.
    pub created: bool,
}

/// `identity_links.link_source` of a link a person asked for through drowl's API.
pub const USER_MANUAL_LINK_SOURCE: &str = "user_manual";

/// The `identity_links.confidence` values drowl's schema allows.
pub const LINK_CONFIDENCES: [&str; 5] = ["manual", "high", "medium", "low", "suggested"];

/// The days one `daily-metrics` computation covers: `first` to `last` inclusive, each a
/// calendar day at a fixed offset from UTC (`0` for UTC days).
///
/// A fixed offset rather than a named zone keeps a day exactly 24 hours in both SQL
/// dialects (SQLite has no zone database), so one range maps to one half-open interval of
/// instants that the `occurred_at` index can scan.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DayRange {
    /// The first day.
    pub first: NaiveDate,
    /// The last day (included).
    pub last: NaiveDate,
    /// Seconds east of UTC at which days start (`3600` for UTC+01:00).
    pub utc_offset_seconds: i32,
}

impl DayRange {
    /// The instant the first day starts.
    pub fn start_utc(&self) -> DateTime<Utc> {
        self.first.and_time(NaiveTime::MIN).and_utc()
            - chrono::Duration::seconds(i64::from(self.utc_offset_seconds))
    }

    /// The instant the day after the last one starts (excluded).
    pub fn end_utc(&self) -> DateTime<Utc> {
        (self.last + chrono::Days::new(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
            - chrono::Duration::seconds(i64::from(self.utc_offset_seconds))
    }

    /// How many days the range covers.
    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }
}

/// Rows [`EventStore::compute_daily_metrics`] wrote, per table.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DailyMetricsOutcome {
    /// `metrics_daily_events` rows (day, source, event type).
    pub events: u64,
    /// `metrics_daily_keywords` rows (day, keyword).
    pub keywords: u64,
    /// `metrics_daily_people` rows (day).
    pub people: u64,
    /// `metrics_daily_identities` rows (day, platform).
    pub identities: u64,
}

/// One `metrics_daily_events` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyEventMetric {
    /// The day.
    pub day: NaiveDate,
    /// Event source.
    pub source: String,
    /// Event type.
    pub event_type: String,
    /// Events that occurred that day.
    pub event_count: i64,
    /// Distinct actor accounts among them.
    pub actor_count: i64,
}

/// One `metrics_daily_keywords` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyKeywordMetric {
    /// The day (of the matched event).
    pub day: NaiveDate,
    /// The keyword.
    pub keyword_id: String,
    /// Mentions: the sum of the matches' occurrences.
    pub match_count: i64,
    /// Events that mention it.
    pub event_count: i64,
}

/// One `metrics_daily_people` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyPeopleMetric {
    /// The day.
    pub day: NaiveDate,
    /// Distinct people among the day's actors (accounts collapsed through active links).
    pub active_people: i64,
    /// Distinct actor accounts.
    pub active_accounts: i64,
}

/// One `metrics_daily_identities` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyIdentityMetric {
    /// The day.
    pub day: NaiveDate,
    /// The platform.
    pub platform: String,
    /// Identities discovered that day.
    pub new_identities: i64,
}

/// The rollup rows of a range of days, each table ordered by its key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DailyMetrics {
    /// `metrics_daily_events`.
    pub events: Vec<DailyEventMetric>,
    /// `metrics_daily_keywords`.
    pub keywords: Vec<DailyKeywordMetric>,
    /// `metrics_daily_people`.
    pub people: Vec<DailyPeopleMetric>,
    /// `metrics_daily_identities`.
    pub identities: Vec<DailyIdentityMetric>,
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
    /// Records the links enrichment plugins suggested, as ordered pairs, each only when
    /// the pair has no `identity_links` row at all, active or not: a pair's active link
    /// (a person's or an earlier suggestion) is kept as it is, and a plugin's suggestion
    /// never brings back a link a person removed (see [`Self::link_identities`]).
    /// Accounts seen only through a link get an `identities` row. `inserted` counts links
    /// written, `existing` suggestions skipped.
    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome>;
    /// The id (`identities.id`) of the account (`platform`, `platform_user_id`), if it
    /// has been observed.
    async fn identity_id(&self, platform: &str, platform_user_id: &str) -> Result<Option<String>>;
    /// Links two identities, by `identities.id`, because a person asked for it: the pair
    /// is ordered, `link_source` is `user_manual`, `confidence` is as given (one of
    /// [`LINK_CONFIDENCES`]) with a score derived from it, and `reason` says where the
    /// request came from.
    ///
    /// The pair keeps one active link: an existing active link is updated in place
    /// (`created: false`) rather than doubled. A pair whose link was removed (only
    /// inactive rows) gets a new active row: unlike a plugin's suggestion, which must
    /// never bring back a link a person removed, this request *is* a person asking for
    /// the link again; the removed row stays as history. An id with no `identities` row
    /// is [`StorageError::Invalid`] naming it (retrying cannot make it exist), as is an
    /// identity linked to itself. Repeating the request changes nothing further.
    async fn link_identities(
        &self,
        a: &str,
        b: &str,
        confidence: &str,
        reason: &str,
    ) -> Result<LinkOutcome>;
    /// Up to `limit` identities stored after `after` (all of them from the start when
    /// `None`), in [`IdentityPosition`] order: the batches identity resolution reads.
    async fn identities_after(
        &self,
        after: Option<&IdentityPosition>,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>>;
    /// Up to `limit` identities `plugin_id` indexed under `key` (see
    /// [`Self::save_resolution`]), oldest first: `directory.find`. Another plugin's keys
    /// are never consulted.
    async fn find_indexed_identities(
        &self,
        plugin_id: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>>;
    /// Stores one resolution batch in one transaction: each indexed identity's keys are
    /// replaced by the batch's, and each proposed link is written (ordered pair,
    /// `link_source` [`LINK_SOURCE_HEURISTIC`], `plugin_id`) only when the pair has no
    /// `identity_links` row at all, active or not, so a link a person made, changed or
    /// removed is never overridden or brought back. `inserted` counts links written,
    /// `existing` proposals skipped. Re-running the same batch changes nothing. An id
    /// with no `identities` row is [`StorageError::Invalid`] naming it, and nothing of
    /// the batch is written; so is a link from an identity to itself, a confidence other
    /// than those of [`ProposedLink::confidence`], or a NaN score (other scores are
    /// clamped to 0..=1: a heuristic's score ranks, it is not a checked fact).
    async fn save_resolution(&self, batch: &ResolutionBatch) -> Result<WriteOutcome>;
    /// Records keyword matches; an existing (`event_id`, `keyword_id`) is left untouched.
    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome>;
    /// Returns the active keywords from the `keywords` table.
    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>>;
    /// Creates or updates keywords (used by `drowl-host keywords` and tests).
    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome>;
    /// Recomputes the daily rollups of `range` from drowl's tables, in one transaction:
    /// the range's rows of `metrics_daily_events`, `metrics_daily_keywords`,
    /// `metrics_daily_people` and `metrics_daily_identities` are deleted, then written
    /// again by one set-based statement each, so recomputing gives the same rows and a
    /// failure leaves the previous ones. Days without data get no row.
    ///
    /// An event counts on the day its `occurred_at` falls on, a keyword match on its
    /// event's day, an identity on its `discovered_at` day. People are connected
    /// components of identities over active links; an actor account with no
    /// `identities` row is a person of its own.
    async fn compute_daily_metrics(&self, range: &DayRange) -> Result<DailyMetricsOutcome>;
    /// Reads the rollup rows of the days `first` to `last` (inclusive).
    async fn daily_metrics(&self, first: NaiveDate, last: NaiveDate) -> Result<DailyMetrics>;
    /// Asks the database whether it answers, as cheaply as it can (`SELECT 1`), for the
    /// daemon's `GET /health`: a dead database must turn the worker's health red, not
    /// wait for the first job to find out. Errors say what failed, without secrets.
    async fn ping(&self) -> Result<()>;
    /// Which database this is, without secrets ("PostgreSQL at postgres://u@db/drowl",
    /// "embedded SQLite at /data/drowl.db"), for health messages and logs.
    fn backend(&self) -> String;
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
    /// Bytes stored in `namespace`: the sum of its keys' and values' lengths. The host
    /// asks once per job that writes, to hold a plugin to its quota of stored bytes.
    async fn namespace_bytes(&self, namespace: &str) -> Result<u64>;
}

/// A job's status as drowl's `jobs.status` spells it (strum derives the spelling; a test
/// checks it against the column's check in the migrations).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum JobStatus {
    /// Waiting (also: waiting for a retry).
    Pending,
    /// Taken by a worker.
    Running,
    /// Finished with an output.
    Completed,
    /// Failed for good.
    Failed,
    /// Failed for good because it ran past its timeout.
    Timeout,
}

impl JobStatus {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One state change of one job, as the `jobs` table records it.
#[derive(Debug, Clone)]
pub struct JobUpdate {
    /// Queue job id.
    pub id: String,
    /// drowl job type (`custom` when the payload had none we know).
    pub job_type: String,
    /// Job name.
    pub name: String,
    /// New status.
    pub status: JobStatus,
    /// drowl priority 0..10.
    pub priority: i32,
    /// The job's input.
    pub input: serde_json::Value,
    /// Output, when completed.
    pub output: Option<serde_json::Value>,
    /// Error message, code and details, when an attempt failed.
    pub error: Option<(String, Option<String>, Option<serde_json::Value>)>,
    /// When the job was added to the queue (Bull's `timestamp`); written with the row,
    /// never changed by later moves.
    pub created_at: Option<DateTime<Utc>>,
    /// When the current attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job finished for good.
    pub completed_at: Option<DateTime<Utc>>,
    /// The job's timeout in ms.
    pub timeout_ms: i32,
    /// Failed attempts so far.
    pub retry_attempt: i32,
    /// Attempts allowed.
    pub retry_max_attempts: i32,
    /// `linear` or `exponential`.
    pub backoff: String,
    /// When the last failed attempt happened.
    pub retry_last_at: Option<DateTime<Utc>>,
    /// The plugin that runs it.
    pub plugin_id: Option<String>,
    /// `input.userId`, when the input carries one.
    pub user_id: Option<String>,
    /// `input.correlationId`, when the input carries one.
    pub correlation_id: Option<String>,
    /// The job that enqueued this one, for follow-ups.
    pub parent_job_id: Option<String>,
    /// `input.tags`, when the input carries a list. `None` leaves a row's tags as they
    /// are (drowl's API may have written them).
    pub tags: Option<Vec<String>>,
}

/// drowl's `jobs` table: a read model of the queue, written as each job moves, so that
/// drowl's API can show jobs without reading Redis.
///
/// Redis stays the source of truth. Writes are upserts keyed by the job id, so a retry, a
/// duplicate delivery or a second worker never produces a second row. A late `running`
/// or `pending` never reopens a final row, except that a worker taking a finished job
/// again (`running` over a final row) starts a new run; a job enqueued after the row's
/// job started is a new job reusing the id, and takes the row over (enqueue time and
/// attempt history included).
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Upserts the rows of `updates`, in order, in one statement: later updates of the
    /// same job win (only the last one per id is written).
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<()>;

    /// Upserts the job's row.
    async fn record(&self, update: &JobUpdate) -> Result<()> {
        self.record_all(std::slice::from_ref(update)).await
    }

    /// Rows left `running` or `pending` whose last change (start, or failed attempt) is
    /// older than `before`, oldest first, at most `limit`. Rows that were never started
    /// by a worker (`started_at` unset, e.g. inserted by drowl's API for a job still in
    /// the queue) are not included: they are not the mirror's to settle.
    async fn unsettled(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>>;

    /// Marks a `running` or `pending` row `failed` with `code` and `message`, when the
    /// queue no longer has the job to say what became of it.
    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<()>;
}

/// A verified webhook delivery, as received: what [`WebhookStore::save_delivery`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The plugin it was posted to (the id the operator installed it as).
    pub plugin_id: String,
    /// The platform's id for the delivery (the spec's delivery-id header).
    pub delivery_id: String,
    /// The kind of delivery (the spec's event header), when the request had it.
    pub event: Option<String>,
    /// Every header of the request, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: bytes::Bytes,
    /// When the host received it.
    pub received_at: DateTime<Utc>,
}

/// A stored delivery, read back by the job that handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// What was received.
    pub delivery: NewDelivery,
    /// The Bull job queued for it, once queued.
    pub job_id: Option<String>,
}

/// What [`WebhookStore::save_delivery`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedDelivery {
    /// `true` when this call stored it; `false` when (`plugin_id`, `delivery_id`) was
    /// stored already, and was left as it was.
    pub inserted: bool,
    /// The job recorded for the stored row ([`WebhookStore::set_delivery_job`]): `None`
    /// while it has not been queued (just stored, or queueing failed).
    pub job_id: Option<String>,
}

/// Webhook deliveries, stored as received before they are acknowledged.
///
/// A delivery is keyed by (`plugin_id`, `delivery_id`): the same delivery posted again
/// (a platform's retry or redelivery) is stored once, and the row says whether a job was
/// already queued for it, so it is queued once too.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a delivery unless one with its (`plugin_id`, `delivery_id`) is stored
    /// already; either way, says which and what job the stored row records.
    async fn save_delivery(&self, delivery: &NewDelivery) -> Result<SavedDelivery>;
    /// Records the job queued for a stored delivery.
    async fn set_delivery_job(
        &self,
        plugin_id: &str,
        delivery_id: &str,
        job_id: &str,
    ) -> Result<()>;
    /// A stored delivery, if there is one.
    async fn delivery(&self, plugin_id: &str, delivery_id: &str) -> Result<Option<StoredDelivery>>;
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
    /// Bytes stored under a key prefix (such as [`ObjectKey::plugin_objects_prefix`]):
    /// the sum of the sizes of the objects whose keys start with `prefix`. The host asks
    /// once per job that writes, to hold a plugin to its quota of stored bytes.
    async fn prefix_bytes(&self, prefix: &str) -> Result<u64>;
    /// A human-readable location (`s3://bucket/key`, a file path) for logs and job output.
    fn describe(&self, key: &ObjectKey) -> String;
    /// Asks the store whether it is usable, as cheaply as it can (S3 `HeadBucket`, the
    /// directory exists), for the daemon's `GET /health`.
    async fn ping(&self) -> Result<()>;
    /// Which store this is, without secrets ("S3 bucket drowl-events at http://minio:9000",
    /// "embedded files under /data/objects"), for health messages and logs.
    fn backend(&self) -> String;
}

/// The backends one host process uses, shared by every job.
#[derive(Clone)]
pub struct Storage {
    /// Events, identities, keywords and matches.
    pub events: Arc<dyn EventStore>,
    /// Plugin and host key-value state.
    pub kv: Arc<dyn KvStore>,
    /// The `jobs` table the daemon mirrors job states into.
    pub jobs: Arc<dyn JobStore>,
    /// Raw payloads and plugin objects.
    pub objects: Arc<dyn ObjectStore>,
    /// Webhook deliveries as received.
    pub webhooks: Arc<dyn WebhookStore>,
    /// drowl's `plugins` table, the registry `serve` runs plugins from (same database
    /// as `events`; see [`plugins`]).
    pub plugins: Arc<dyn PluginStore>,
}

/// Which backends [`open`] uses: production services where configured, the data directory
/// for the rest.
///
/// Built from drowl's environment variables by [`StorageConfig::from_env`], or field by
/// field (tests, tools). The default is fully embedded.
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    /// PostgreSQL for events, identities, keywords, matches and key-value state
    /// (`DATABASE_URL`). `None`: SQLite at `<data dir>/drowl.db`.
    pub postgres: Option<postgres::PostgresConfig>,
    /// An S3-compatible bucket for raw payloads and plugin objects (`S3_ENDPOINT`,
    /// `S3_BUCKET`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, optional `S3_REGION`). `None`: files
    /// under `<data dir>/objects`.
    pub s3: Option<s3::S3Config>,
    /// Apply pending PostgreSQL migrations while opening (the daemon's `--migrate`).
    /// Default `false`: a missing or outdated schema is then a start-up error that says
    /// to run `drowl-host migrate`, because changing a schema shared with drowl's API
    /// should be a deliberate step, not a side effect of starting a worker.
    pub migrate_on_start: bool,
}

impl StorageConfig {
    /// Reads `DATABASE_URL`, `S3_ENDPOINT`, `S3_BUCKET`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`
    /// and `S3_REGION`. Unset (or empty) variables leave that part embedded;
    /// `migrate_on_start` is `false` (see [`Self::with_migrate_on_start`]).
    ///
    /// This never fails, so that every storage problem surfaces in one place, [`open`],
    /// at start-up: a partial S3 configuration (say `S3_ENDPOINT` without `S3_BUCKET`) is
    /// kept as given and refused there, naming the missing variables, rather than
    /// silently falling back to local files.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Self::from_env`] over any variable lookup (tests use a map, never the process
    /// environment, which other tests share).
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let postgres = var(postgres::DATABASE_URL_VAR)
            .filter(|u| !u.trim().is_empty())
            .map(postgres::PostgresConfig::new);
        Self {
            postgres,
            s3: s3::S3Config::from_vars(&var),
            migrate_on_start: false,
        }
    }

    /// Sets [`Self::migrate_on_start`] (the daemon's `--migrate` flag).
    #[must_use]
    pub fn with_migrate_on_start(mut self, migrate: bool) -> Self {
        self.migrate_on_start = migrate;
        self
    }

    /// The PostgreSQL URL, when events live in PostgreSQL (for host modules that open
    /// their own pool on the same database).
    pub fn database_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|pg| pg.url.as_str())
    }

    /// One line saying where each kind of data goes, without secrets, for start-up logs.
    pub fn describe(&self, data_dir: &Path) -> String {
        let db = match &self.postgres {
            Some(pg) => format!("PostgreSQL {}", pg.redacted_url()),
            None => format!("SQLite {}", data_dir.join("drowl.db").display()),
        };
        let objects = match &self.s3 {
            Some(s3) => format!("S3 bucket {} at {}", s3.bucket, s3.endpoint),
            None => format!("files under {}", data_dir.join("objects").display()),
        };
        format!("events and key-value state: {db}; objects: {objects}")
    }
}

/// Opens the backends `config` names, and the embedded ones under `data_dir` for the rest.
///
/// Every configured service is contacted before this returns, so a wrong or unreachable
/// one fails start-up with a message naming the variable to fix ([`StorageError::Config`]
/// for a wrong URL, credentials, bucket or schema; [`StorageError::Unavailable`] for a
/// server that does not answer) instead of failing the first job. With PostgreSQL, the
/// schema is migrated when `config.migrate_on_start` is set and checked otherwise. The
/// same PostgreSQL store backs both `events` and `kv`, so plugin state and ingestion
/// cursors live in `plugin_kv` next to the events they describe.
///
/// `jobs` is the same database. In PostgreSQL it has a small pool of its own, connected on
/// first use (commands that never mirror jobs never connect it), so mirror writes and job
/// writes never wait for each other's connections. In SQLite it is the very same store:
/// SQLite allows one writer, and a second store on the same file is a second writer, which
/// SQLite then fails with `database is locked` (SQLITE_BUSY, without waiting for the busy
/// timeout) whenever both write at once: at concurrency 2, 3 of 20 no-op jobs failed as
/// `storage-unavailable` when the daemon opened the mirror's store separately.
pub async fn open(config: &StorageConfig, data_dir: &Path) -> Result<Storage> {
    // Settings that are wrong without asking any server are reported first.
    if let Some(cfg) = &config.s3 {
        cfg.check()?;
    }
    type Stores = (
        Arc<dyn EventStore>,
        Arc<dyn KvStore>,
        Arc<dyn JobStore>,
        Arc<dyn WebhookStore>,
        Arc<dyn PluginStore>,
    );
    let (events, kv, jobs, webhooks, plugins): Stores = match &config.postgres {
        Some(pg) => {
            let db = Arc::new(postgres::PostgresStore::connect_with(pg).await?);
            if config.migrate_on_start {
                db.migrate().await?;
            } else {
                db.check_schema().await?;
            }
            let jobs = Arc::new(postgres::PostgresJobStore::connect_lazy(pg)?);
            (db.clone(), db.clone(), jobs, db.clone(), db)
        }
        None => {
            let db = Arc::new(sqlite::SqliteStore::open(&data_dir.join("drowl.db")).await?);
            (db.clone(), db.clone(), db.clone(), db.clone(), db)
        }
    };
    let objects: Arc<dyn ObjectStore> = match &config.s3 {
        Some(cfg) => Arc::new(s3::S3Store::connect(cfg).await?),
        None => Arc::new(local_fs::LocalFsStore::open(&data_dir.join("objects"))?),
    };
    tracing::info!(storage = %config.describe(data_dir), "storage opened");
    Ok(Storage {
        events,
        kv,
        jobs,
        objects,
        webhooks,
        plugins,
    })
}

/// Opens the embedded backends under `data_dir`: SQLite at `data_dir/drowl.db` (events,
/// identities, keywords, matches, plugin state, jobs) and objects under `data_dir/objects`.
///
/// This is what `drowl-host` uses when no `DATABASE_URL`/`S3_ENDPOINT` is configured, so a
/// data directory is all a single-machine installation needs.
pub async fn open_embedded(data_dir: &Path) -> Result<Storage> {
    open(&StorageConfig::default(), data_dir).await
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod job_status_tests {
    use strum::IntoEnumIterator as _;

    use super::*;

    #[test]
    fn statuses_are_spelled_as_the_jobs_table_expects() {
        let migration = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../migrations/0001_drowl_tables.sql"
        ));
        let names: Vec<&str> = JobStatus::iter().map(JobStatus::as_str).collect();
        assert_eq!(
            names,
            ["pending", "running", "completed", "failed", "timeout"]
        );
        for s in JobStatus::iter() {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
            assert!(
                migration.contains(&format!("'{}'", s.as_str())),
                "{}",
                s.as_str()
            );
        }
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn each_backend_is_chosen_on_its_own() {
        let none = StorageConfig::from_vars(vars(&[]));
        assert!(none.postgres.is_none() && none.s3.is_none() && !none.migrate_on_start);

        let pg_only =
            StorageConfig::from_vars(vars(&[("DATABASE_URL", "postgres://u:pw@db/drowl")]));
        assert!(pg_only.postgres.is_some() && pg_only.s3.is_none());
        let line = pg_only.describe(Path::new("/data"));
        assert!(
            line.contains("PostgreSQL postgres://u:***@db/drowl"),
            "{line}"
        );
        assert!(line.contains("files under /data/objects"), "{line}");
        assert!(!line.contains("pw"), "{line}");

        let s3_only = StorageConfig::from_vars(vars(&[
            ("S3_ENDPOINT", "http://minio:9000"),
            ("S3_BUCKET", "drowl-events"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "sk"),
        ]));
        assert!(s3_only.postgres.is_none());
        let line = s3_only.describe(Path::new("/data"));
        assert!(line.contains("SQLite /data/drowl.db"), "{line}");
        assert!(
            line.contains("S3 bucket drowl-events at http://minio:9000"),
            "{line}"
        );
        assert!(!line.contains("sk"), "{line}");
    }

    /// Refused before any server is contacted (the URLs here lead nowhere).
    #[tokio::test]
    async fn a_partial_s3_configuration_fails_start_up_naming_what_is_missing() {
        let cfg = StorageConfig::from_vars(vars(&[
            ("DATABASE_URL", "postgres://db.invalid/drowl"),
            ("S3_ENDPOINT", "http://minio.invalid:9000"),
            ("S3_ACCESS_KEY", "ak"),
            ("S3_SECRET_KEY", "sk"),
        ]));
        assert_eq!(cfg.database_url(), Some("postgres://db.invalid/drowl"));
        let dir = tempfile::tempdir().unwrap();
        let e = open(&cfg, dir.path()).await.unwrap_err();
        assert!(
            matches!(&e, StorageError::Config(m) if m.contains("but S3_BUCKET is not")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_start_up_naming_database_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            postgres: Some(postgres::PostgresConfig::new(format!(
                "postgres://drowl:pw@127.0.0.1:{port}/drowl"
            ))),
            ..StorageConfig::default()
        };
        let e = open(&cfg, dir.path()).await.unwrap_err();
        assert!(
            matches!(&e, StorageError::Unavailable(m) if m.contains("DATABASE_URL") && !m.contains("pw")),
            "{e}"
        );
    }
}
