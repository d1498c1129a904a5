//! Row shaping shared by the SQL backends: records become the rows a batch statement
//! writes, and result rows become records, here and only here.
//!
//! The PostgreSQL and SQLite backends differ in their SQL and in how a batch reaches it:
//! PostgreSQL binds one array per column ([`column`]) and expands them with `UNNEST`;
//! SQLite binds the whole batch as one JSON array of row objects ([`json_rows`]) and
//! expands it with `json_each`. Either way one batch is one statement, whatever its size.
//! The rows themselves, their order and the rules applied on the way (deduplication,
//! ordered identity pairs, score and metadata checks) are the same for both.
//!
//! The JSON form writes each field as the SQLite column stores it: timestamps as text,
//! JSON columns as their text (a JSON string, so the stored text is exactly what the host
//! serialised), and link scores widened to `f64` as a bound `f32` would be.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::common::{
    check_link_score, dedup_identities, dedup_keywords, metadata_json, ordered_pair, proposed_link,
    resolution_identities, resolution_index, ts_to_text,
};
use super::{
    IdentityLinkRecord, IdentityRecord, JobUpdate, KeywordMatchRecord, KeywordRecord,
    KnownIdentity, LINK_SOURCE_HEURISTIC, NewEvent, ResolutionBatch, Result, StorageError,
    StoredEvent, WriteOutcome,
};

/// One column of `rows`, for a backend that binds a batch column by column.
pub(crate) fn column<'r, T, U>(rows: &'r [T], f: impl Fn(&'r T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// `rows` as one JSON array of objects, for a backend that binds a batch whole.
pub(crate) fn json_rows<T: Serialize>(rows: &[T]) -> Result<String> {
    serde_json::to_string(rows)
        .map_err(|e| StorageError::Invalid(format!("unserialisable rows: {e}")))
}

/// A value as JSON text.
fn json_text(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::Invalid(format!("unserialisable JSON: {e}")))
}

fn sortable_text<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts_to_text(t))
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn widened<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*v))
}

/// What a batch upsert did, from one flag per row: `true` for a row it inserted.
pub(crate) fn outcome_from_flags(flags: &[bool]) -> WriteOutcome {
    let inserted = flags.iter().filter(|f| **f).count() as u64;
    WriteOutcome {
        inserted,
        existing: flags.len() as u64 - inserted,
    }
}

/// What a batch of `total` rows did when `inserted` of them were new.
pub(crate) fn outcome_from_inserted(total: usize, inserted: u64) -> WriteOutcome {
    WriteOutcome {
        inserted,
        existing: total as u64 - inserted,
    }
}

/// What a batch of `total` upserts did when `existing` of their keys were there before.
pub(crate) fn outcome_from_existing(total: usize, existing: i64) -> WriteOutcome {
    let total = total as u64;
    let existing = u64::try_from(existing).unwrap_or(0).min(total);
    WriteOutcome {
        inserted: total - existing,
        existing,
    }
}

/// One `events` row as a batch writes it.
#[derive(Debug, Serialize)]
pub(crate) struct EventRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) source: &'a str,
    pub(crate) external_id: &'a str,
    pub(crate) event_type: &'a str,
    #[serde(serialize_with = "sortable_text")]
    pub(crate) occurred_at: DateTime<Utc>,
    /// The payload as JSON text.
    pub(crate) raw_payload: String,
    pub(crate) storage_key: Option<&'a str>,
    pub(crate) text: Option<&'a str>,
    pub(crate) actor_platform: Option<&'a str>,
    pub(crate) actor_platform_user_id: Option<&'a str>,
    pub(crate) plugin_id: &'a str,
    pub(crate) plugin_version: &'a str,
    pub(crate) correlation_id: Option<&'a str>,
}

/// The rows of an event batch, ordered by (`source`, `external_id`): the same order for
/// every writer, so overlapping batches wait for each other instead of deadlocking.
pub(crate) fn event_rows(events: &[NewEvent]) -> Result<Vec<EventRow<'_>>> {
    let mut sorted: Vec<&NewEvent> = events.iter().collect();
    sorted.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
    sorted
        .into_iter()
        .map(|e| {
            Ok(EventRow {
                id: &e.id,
                source: &e.source,
                external_id: &e.external_id,
                event_type: &e.event_type,
                occurred_at: e.occurred_at,
                raw_payload: json_text(&e.raw_payload)?,
                storage_key: e.storage_key.as_deref(),
                text: e.text.as_deref(),
                actor_platform: e.actor.as_ref().map(|a| a.0.as_str()),
                actor_platform_user_id: e.actor.as_ref().map(|a| a.1.as_str()),
                plugin_id: &e.plugin_id,
                plugin_version: &e.plugin_version,
                correlation_id: e.correlation_id.as_deref(),
            })
        })
        .collect()
}

/// An `events` row as read back (`external_id` is nullable in a table drowl's API created
/// before the host added the column).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredEventRow {
    id: String,
    source: String,
    external_id: Option<String>,
    event_type: String,
    occurred_at: DateTime<Utc>,
    #[sqlx(json)]
    raw_payload: Value,
    storage_key: Option<String>,
    text: Option<String>,
    actor_platform: Option<String>,
    actor_platform_user_id: Option<String>,
    plugin_id: String,
}

impl From<StoredEventRow> for StoredEvent {
    fn from(r: StoredEventRow) -> Self {
        Self {
            id: r.id,
            source: r.source,
            external_id: r.external_id.unwrap_or_default(),
            event_type: r.event_type,
            occurred_at: r.occurred_at,
            raw_payload: r.raw_payload,
            storage_key: r.storage_key,
            text: r.text,
            actor: r.actor_platform.zip(r.actor_platform_user_id),
            plugin_id: r.plugin_id,
        }
    }
}

/// One `identities` row as an upsert writes it.
#[derive(Debug, Serialize)]
pub(crate) struct IdentityRow<'a> {
    pub(crate) platform: &'a str,
    pub(crate) platform_user_id: &'a str,
    pub(crate) platform_username: Option<&'a str>,
    pub(crate) display_name: Option<&'a str>,
    pub(crate) profile_url: Option<&'a str>,
    pub(crate) avatar_url: Option<&'a str>,
    /// A JSON object, as text.
    pub(crate) metadata: String,
}

/// The rows of an identity batch: the last observation of each account (a statement may
/// not upsert a row twice), ordered by (`platform`, `platform_user_id`).
pub(crate) fn identity_rows(identities: &[IdentityRecord]) -> Result<Vec<IdentityRow<'_>>> {
    let mut recs = dedup_identities(identities);
    recs.sort_by(|a, b| {
        (&a.platform, &a.platform_user_id).cmp(&(&b.platform, &b.platform_user_id))
    });
    recs.into_iter()
        .map(|r| {
            Ok(IdentityRow {
                platform: &r.platform,
                platform_user_id: &r.platform_user_id,
                platform_username: r.platform_username.as_deref(),
                display_name: r.display_name.as_deref(),
                profile_url: r.profile_url.as_deref(),
                avatar_url: r.avatar_url.as_deref(),
                metadata: metadata_json(&r.metadata)?,
            })
        })
        .collect()
}

/// An account by (`platform`, `platform_user_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct AccountRow<'a> {
    pub(crate) platform: &'a str,
    pub(crate) platform_user_id: &'a str,
}

/// The accounts a batch of links names, each once, in order; fails if a link's score is
/// out of range, before anything is written.
pub(crate) fn link_accounts(links: &[IdentityLinkRecord]) -> Result<Vec<AccountRow<'_>>> {
    for l in links {
        check_link_score(l.confidence_score)?;
    }
    fn account(a: &(String, String)) -> AccountRow<'_> {
        AccountRow {
            platform: &a.0,
            platform_user_id: &a.1,
        }
    }
    let mut accounts: Vec<AccountRow<'_>> = links
        .iter()
        .flat_map(|l| [account(&l.a), account(&l.b)])
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    Ok(accounts)
}

/// An identity's id by its account, as read back to resolve links.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct IdentityIdRow {
    pub(crate) id: String,
    platform: String,
    platform_user_id: String,
}

/// One `identity_links` row.
#[derive(Debug, Serialize)]
pub(crate) struct LinkRow<'a> {
    pub(crate) identity_id_1: String,
    pub(crate) identity_id_2: String,
    pub(crate) confidence: &'a str,
    pub(crate) link_source: &'a str,
    #[serde(serialize_with = "widened")]
    pub(crate) confidence_score: f32,
    pub(crate) reason: &'a str,
    pub(crate) plugin_id: &'a str,
}

/// The rows of a link batch, given the ids of the accounts it names: each link as
/// drowl's ordered pair (`identity_id_1 < identity_id_2`), the batch ordered by pair.
pub(crate) fn link_rows<'a>(
    links: &'a [IdentityLinkRecord],
    ids: Vec<IdentityIdRow>,
) -> Result<Vec<LinkRow<'a>>> {
    let ids: HashMap<(String, String), String> = ids
        .into_iter()
        .map(|r| ((r.platform, r.platform_user_id), r.id))
        .collect();
    let lookup = |acc: &(String, String)| {
        ids.get(acc).ok_or_else(|| {
            StorageError::Unavailable(format!("identity {}:{} vanished mid-write", acc.0, acc.1))
        })
    };
    let mut rows = Vec::with_capacity(links.len());
    for l in links {
        let (one, two) = ordered_pair(lookup(&l.a)?, lookup(&l.b)?)?;
        rows.push(LinkRow {
            identity_id_1: one.to_owned(),
            identity_id_2: two.to_owned(),
            confidence: &l.confidence,
            link_source: &l.link_source,
            confidence_score: l.confidence_score,
            reason: &l.reason,
            plugin_id: &l.plugin_id,
        });
    }
    rows.sort_by(|x, y| {
        (&x.identity_id_1, &x.identity_id_2).cmp(&(&y.identity_id_1, &y.identity_id_2))
    });
    Ok(rows)
}

/// An `identities` row as identity resolution reads it; both backends return `metadata`
/// as a JSON object (SQLite as its text).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KnownIdentityRow {
    id: String,
    platform: String,
    platform_user_id: String,
    platform_username: Option<String>,
    display_name: Option<String>,
    profile_url: Option<String>,
    avatar_url: Option<String>,
    #[sqlx(json)]
    metadata: Value,
    created_at: DateTime<Utc>,
}

impl From<KnownIdentityRow> for KnownIdentity {
    fn from(r: KnownIdentityRow) -> Self {
        Self {
            id: r.id,
            platform: r.platform,
            platform_user_id: r.platform_user_id,
            platform_username: r.platform_username,
            display_name: r.display_name,
            profile_url: r.profile_url,
            avatar_url: r.avatar_url,
            metadata: r.metadata,
            created_at: r.created_at,
        }
    }
}

/// One `identity_index` row of a resolution batch (its `plugin_id` is the batch's).
#[derive(Debug, Serialize)]
pub(crate) struct IndexKeyRow<'a> {
    pub(crate) identity_id: &'a str,
    pub(crate) index_key: &'a str,
}

/// What one resolution batch writes, checked whole before anything is.
#[derive(Debug)]
pub(crate) struct ResolutionRows<'a> {
    /// Every identity id the batch names, once: all must exist.
    pub(crate) named: Vec<&'a str>,
    /// The identities whose keys are replaced, once each.
    pub(crate) indexed: Vec<&'a str>,
    /// Their new keys, each (identity, key) once.
    pub(crate) keys: Vec<IndexKeyRow<'a>>,
    /// The proposed links as `identity_links` rows (`plugin_heuristic`), ordered by pair.
    pub(crate) links: Vec<LinkRow<'a>>,
}

/// The rows of a resolution batch (`EventStore::save_resolution`):
/// fails on a self-link, an unknown confidence or a NaN score before anything is written.
pub(crate) fn resolution_rows(batch: &ResolutionBatch) -> Result<ResolutionRows<'_>> {
    let mut links = Vec::with_capacity(batch.links.len());
    for l in &batch.links {
        let (one, two, score) = proposed_link(l)?;
        links.push(LinkRow {
            identity_id_1: one.to_owned(),
            identity_id_2: two.to_owned(),
            confidence: &l.confidence,
            link_source: LINK_SOURCE_HEURISTIC,
            confidence_score: score,
            reason: &l.reason,
            plugin_id: &batch.plugin_id,
        });
    }
    links.sort_by(|x, y| {
        (&x.identity_id_1, &x.identity_id_2).cmp(&(&y.identity_id_1, &y.identity_id_2))
    });
    let (indexed, keys) = resolution_index(batch);
    Ok(ResolutionRows {
        named: resolution_identities(batch),
        indexed,
        keys: keys
            .into_iter()
            .map(|(identity_id, index_key)| IndexKeyRow {
                identity_id,
                index_key,
            })
            .collect(),
        links,
    })
}

/// The rows of a keyword-match batch (the records themselves), ordered by
/// (`event_id`, `keyword_id`).
pub(crate) fn match_rows(matches: &[KeywordMatchRecord]) -> Vec<&KeywordMatchRecord> {
    let mut rows: Vec<&KeywordMatchRecord> = matches.iter().collect();
    rows.sort_by(|a, b| (&a.event_id, &a.keyword_id).cmp(&(&b.event_id, &b.keyword_id)));
    rows
}

/// One `keywords` row as an upsert writes it.
#[derive(Debug, Serialize)]
pub(crate) struct KeywordRow<'a> {
    pub(crate) id: &'a str,
    pub(crate) term: &'a str,
    pub(crate) category: &'a str,
    pub(crate) match_strategy: &'a str,
    pub(crate) regex_pattern: Option<&'a str>,
    /// The synonyms as a JSON array, as text: lists of different lengths fit no 2-D array.
    pub(crate) synonyms: String,
}

/// The rows of a keyword batch: the last version of each id, ordered by id.
pub(crate) fn keyword_rows(keywords: &[KeywordRecord]) -> Result<Vec<KeywordRow<'_>>> {
    let mut recs = dedup_keywords(keywords);
    recs.sort_by(|a, b| a.id.cmp(&b.id));
    recs.into_iter()
        .map(|k| {
            Ok(KeywordRow {
                id: &k.id,
                term: &k.term,
                category: &k.category,
                match_strategy: &k.match_strategy,
                regex_pattern: k.regex_pattern.as_deref(),
                synonyms: serde_json::to_string(&k.synonyms)
                    .map_err(|e| StorageError::Invalid(format!("synonyms: {e}")))?,
            })
        })
        .collect()
}

/// A `keywords` row as read back; both backends return `synonyms` as a JSON array.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeywordRecordRow {
    id: String,
    term: String,
    category: String,
    match_strategy: String,
    regex_pattern: Option<String>,
    #[sqlx(json)]
    synonyms: Vec<String>,
}

impl From<KeywordRecordRow> for KeywordRecord {
    fn from(r: KeywordRecordRow) -> Self {
        Self {
            id: r.id,
            term: r.term,
            category: r.category,
            match_strategy: r.match_strategy,
            regex_pattern: r.regex_pattern,
            synonyms: r.synonyms,
        }
    }
}

/// One `jobs` row as the mirror writes it.
#[derive(Debug, Serialize)]
pub(crate) struct JobRow<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) job_type: &'a str,
    pub(crate) name: &'a str,
    pub(crate) status: &'static str,
    pub(crate) priority: i32,
    /// JSON text.
    pub(crate) input: String,
    /// JSON text.
    pub(crate) output: Option<String>,
    pub(crate) error_message: Option<&'a str>,
    pub(crate) error_code: Option<&'a str>,
    /// JSON text.
    pub(crate) error_details: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub(crate) started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub(crate) completed_at: Option<DateTime<Utc>>,
    pub(crate) timeout_ms: i32,
    pub(crate) retry_attempt: i32,
    pub(crate) retry_max_attempts: i32,
    pub(crate) retry_backoff_strategy: &'a str,
    #[serde(serialize_with = "rfc3339_opt")]
    pub(crate) retry_last_at: Option<DateTime<Utc>>,
    pub(crate) plugin_id: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
    pub(crate) correlation_id: Option<&'a str>,
    pub(crate) parent_job_id: Option<&'a str>,
    /// A JSON array of strings; `None` keeps the row's tags.
    pub(crate) tags: Option<String>,
    /// When the job was enqueued; now, when the queue did not say.
    #[serde(serialize_with = "rfc3339")]
    pub(crate) created_at: DateTime<Utc>,
}

/// The rows of a mirror batch: the last update of each job, in first-seen order. One
/// statement may not touch a row twice, and the last move carries every column the
/// earlier ones set.
pub(crate) fn job_rows(updates: &[JobUpdate]) -> Vec<JobRow<'_>> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut last: Vec<&JobUpdate> = Vec::with_capacity(updates.len());
    for u in updates {
        match at.get(u.id.as_str()) {
            Some(&i) => last[i] = u,
            None => {
                at.insert(&u.id, last.len());
                last.push(u);
            }
        }
    }
    last.into_iter()
        .map(|u| {
            let (message, code, details) = match &u.error {
                Some((m, c, d)) => (Some(m.as_str()), c.as_deref(), d.as_ref()),
                None => (None, None, None),
            };
            JobRow {
                id: &u.id,
                job_type: &u.job_type,
                name: &u.name,
                status: u.status.as_str(),
                priority: u.priority,
                input: u.input.to_string(),
                output: u.output.as_ref().map(Value::to_string),
                error_message: message,
                error_code: code,
                error_details: details.map(Value::to_string),
                started_at: u.started_at,
                completed_at: u.completed_at,
                timeout_ms: u.timeout_ms,
                retry_attempt: u.retry_attempt,
                retry_max_attempts: u.retry_max_attempts,
                retry_backoff_strategy: &u.backoff,
                retry_last_at: u.retry_last_at,
                plugin_id: u.plugin_id.as_deref(),
                user_id: u.user_id.as_deref(),
                correlation_id: u.correlation_id.as_deref(),
                parent_job_id: u.parent_job_id.as_deref(),
                tags: u
                    .tags
                    .as_ref()
                    .map(|t| Value::from(t.as_slice()).to_string()),
                created_at: u.created_at.unwrap_or_else(Utc::now),
            }
        })
        .collect()
}
