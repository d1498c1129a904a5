//! The embedded backend: one SQLite file in the data directory.
//!
//! `drowl-host` must work with nothing but a data directory (for `run-plugin`, demos and
//! small installations), so events, identities, keywords, matches, plugin state and the
//! `jobs` table live in a single SQLite database whose schema mirrors the PostgreSQL one
//! (same table and column names, see `host/migrations-sqlite/`; a test holds the two to
//! the same tables and columns).
//!
//! SQLite allows one writer at a time. Rather than let several connections race for the
//! write lock (and hit `SQLITE_BUSY` when a deferred transaction upgrades), writes go through
//! a pool of exactly one connection, and reads use a separate read-only pool: with WAL,
//! readers never block the writer nor the other way round. That is also why the `jobs`
//! table is written by this same store rather than by a second one on the same file.
//!
//! Each statement lives in a file of its own under `queries/`. A batch is one statement
//! in one transaction, never a round trip per row: the rows (shaped by the shared `rows`
//! module) are bound as one JSON array and expanded with `json_each`, which also keeps a
//! batch clear of SQLite's bound-variable limit whatever its size.

mod errors;
mod jobs;
mod plugins;
mod webhooks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use self::errors::db_err;
use super::common::{
    check_identities_exist, check_manual_link, daily_metrics_from_rows, prefix_upper_bound,
    ts_to_text,
};
use super::rows::{
    IdentityIdRow, KeywordRecordRow, KnownIdentityRow, LinkRow, StoredEventRow, event_rows,
    identity_rows, json_rows, keyword_rows, link_accounts, link_rows, match_rows,
    outcome_from_existing, outcome_from_inserted, resolution_rows,
};
use super::{
    DailyMetrics, DailyMetricsOutcome, DayRange, EventFilter, EventStore, IdentityLinkRecord,
    IdentityPosition, IdentityRecord, KeywordMatchRecord, KeywordRecord, KnownIdentity, KvStore,
    LinkOutcome, NewEvent, ResolutionBatch, Result, StorageError, StoredEvent,
    USER_MANUAL_LINK_SOURCE, WriteOutcome,
};

/// The queries this backend runs, one file each in `queries/`.
mod sql {
    pub(super) const INSERT_EVENTS: &str = include_str!("queries/insert_events.sql");
    pub(super) const LIST_EVENTS: &str = include_str!("queries/list_events.sql");
    pub(super) const LIST_EVENTS_BY_IDS: &str = include_str!("queries/list_events_by_ids.sql");
    pub(super) const COUNT_IDENTITIES: &str = include_str!("queries/count_identities.sql");
    pub(super) const UPSERT_IDENTITIES: &str = include_str!("queries/upsert_identities.sql");
    pub(super) const INSERT_LINK_IDENTITIES: &str =
        include_str!("queries/insert_link_identities.sql");
    pub(super) const SELECT_IDENTITY_IDS: &str = include_str!("queries/select_identity_ids.sql");
    pub(super) const INSERT_IDENTITY_LINKS: &str =
        include_str!("queries/insert_identity_links.sql");
    pub(super) const EXISTING_IDENTITY_IDS: &str =
        include_str!("queries/existing_identity_ids.sql");
    pub(super) const COUNT_ACTIVE_LINK: &str = include_str!("queries/count_active_link.sql");
    pub(super) const LINK_IDENTITIES: &str = include_str!("queries/link_identities.sql");
    pub(super) const IDENTITIES_AFTER: &str = include_str!("queries/identities_after.sql");
    pub(super) const FIND_INDEXED_IDENTITIES: &str =
        include_str!("queries/find_indexed_identities.sql");
    pub(super) const DELETE_IDENTITY_KEYS: &str = include_str!("queries/delete_identity_keys.sql");
    pub(super) const INSERT_IDENTITY_KEYS: &str = include_str!("queries/insert_identity_keys.sql");
    pub(super) const INSERT_KEYWORD_MATCHES: &str =
        include_str!("queries/insert_keyword_matches.sql");
    pub(super) const ACTIVE_KEYWORDS: &str = include_str!("queries/active_keywords.sql");
    pub(super) const COUNT_KEYWORDS: &str = include_str!("queries/count_keywords.sql");
    pub(super) const UPSERT_KEYWORDS: &str = include_str!("queries/upsert_keywords.sql");
    pub(super) const KV_GET: &str = include_str!("queries/kv_get.sql");
    pub(super) const KV_SET: &str = include_str!("queries/kv_set.sql");
    pub(super) const KV_DELETE: &str = include_str!("queries/kv_delete.sql");
    pub(super) const KV_LIST_KEYS: &str = include_str!("queries/kv_list_keys.sql");
    pub(super) const KV_LIST_KEYS_FROM: &str = include_str!("queries/kv_list_keys_from.sql");
    pub(super) const KV_NAMESPACE_BYTES: &str = include_str!("queries/kv_namespace_bytes.sql");
    pub(super) const JOBS_UPSERT: &str = include_str!("queries/jobs_upsert.sql");
    pub(super) const JOBS_UNSETTLED: &str = include_str!("queries/jobs_unsettled.sql");
    pub(super) const JOBS_MARK_LOST: &str = include_str!("queries/jobs_mark_lost.sql");
    /// Per rollup table: the statement deleting a range's rows, then the one computing them.
    pub(super) const METRICS_RECOMPUTE: [(&str, &str); 4] = [
        (
            include_str!("queries/metrics_delete_events.sql"),
            include_str!("queries/metrics_insert_events.sql"),
        ),
        (
            include_str!("queries/metrics_delete_keywords.sql"),
            include_str!("queries/metrics_insert_keywords.sql"),
        ),
        (
            include_str!("queries/metrics_delete_people.sql"),
            include_str!("queries/metrics_insert_people.sql"),
        ),
        (
            include_str!("queries/metrics_delete_identities.sql"),
            include_str!("queries/metrics_insert_identities.sql"),
        ),
    ];
    pub(super) const METRICS_READ_EVENTS: &str = include_str!("queries/metrics_read_events.sql");
    pub(super) const METRICS_READ_KEYWORDS: &str =
        include_str!("queries/metrics_read_keywords.sql");
    pub(super) const METRICS_READ_PEOPLE: &str = include_str!("queries/metrics_read_people.sql");
    pub(super) const METRICS_READ_IDENTITIES: &str =
        include_str!("queries/metrics_read_identities.sql");
    pub(super) const PING: &str = include_str!("queries/ping.sql");
    pub(super) const WEBHOOK_INSERT_DELIVERY: &str =
        include_str!("queries/webhook_insert_delivery.sql");
    pub(super) const WEBHOOK_DELIVERY_JOB: &str = include_str!("queries/webhook_delivery_job.sql");
    pub(super) const WEBHOOK_SET_DELIVERY_JOB: &str =
        include_str!("queries/webhook_set_delivery_job.sql");
    pub(super) const WEBHOOK_DELIVERY: &str = include_str!("queries/webhook_delivery.sql");
}

/// The embedded schema, compiled into the binary so a fresh data directory needs no files.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations-sqlite");

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A row with a fresh id: SQLite has no `gen_random_uuid()` column default, so the host
/// makes the ids PostgreSQL would.
#[derive(Serialize)]
struct WithId<T> {
    id: String,
    #[serde(flatten)]
    row: T,
}

/// `rows` as one JSON array of row objects, each with a fresh id.
fn json_rows_with_ids<T: Serialize>(rows: impl IntoIterator<Item = T>) -> Result<String> {
    let rows: Vec<WithId<T>> = rows
        .into_iter()
        .map(|row| WithId {
            id: uuid::Uuid::new_v4().to_string(),
            row,
        })
        .collect();
    json_rows(&rows)
}

/// Now, in the stored text form.
fn now_text() -> String {
    ts_to_text(&Utc::now())
}

/// Events, identities, keywords, matches, plugin key-value state and the `jobs` table in
/// one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies the embedded schema.
    ///
    /// Re-opening an existing database is harmless: applied migrations are skipped, and a
    /// database written by a newer host (unknown migrations) is refused as a
    /// [`StorageError::Config`] rather than silently misread.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StorageError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
            .map_err(|e| {
                StorageError::Config(format!(
                    "cannot open SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        MIGRATOR.run(&writer).await.map_err(|e| {
            StorageError::Config(format!(
                "cannot apply the embedded schema to {}: {e}",
                path.display()
            ))
        })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| {
                StorageError::Config(format!(
                    "cannot open SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        Ok(Self {
            writer,
            reader,
            path: path.to_owned(),
        })
    }

    /// The database file, for logs and `drowl-host` status output.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The write pool (a single connection), for host modules and tests that read or
    /// write tables of their own in the same file (`plugins`).
    pub fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// Closes both pools, checkpointing the WAL; later calls fail as unavailable.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Which of `ids` have an `identities` row, read in `tx`.
async fn existing_identity_ids(
    tx: &mut sqlx::SqliteTransaction<'_>,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>> {
    let existing: Vec<String> = sqlx::query_scalar(sql::EXISTING_IDENTITY_IDS)
        .bind(json_rows(ids)?)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(existing.into_iter().collect())
}

/// Writes plugin-proposed links (`insert_identity_links.sql`: only pairs with no link row
/// at all) in `tx`, `now` their creation time; returns how many were written. Enrichment
/// suggestions and resolution batches share it, so both follow the one rule about links a
/// person made or removed.
async fn insert_links(
    tx: &mut sqlx::SqliteTransaction<'_>,
    rows: Vec<LinkRow<'_>>,
    now: &str,
) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let res = sqlx::query(sql::INSERT_IDENTITY_LINKS)
        .bind(json_rows_with_ids(rows)?)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(res.rows_affected())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome> {
        if events.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let rows = json_rows(&event_rows(events)?)?;
        let res = sqlx::query(sql::INSERT_EVENTS)
            .bind(rows)
            .bind(now_text())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(outcome_from_inserted(events.len(), res.rows_affected()))
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let after = after_id.unwrap_or("");
        let query = match &filter.ids {
            Some(ids) => {
                let ids = serde_json::to_string(ids)
                    .map_err(|e| StorageError::Invalid(format!("event ids: {e}")))?;
                sqlx::query_as::<_, StoredEventRow>(sql::LIST_EVENTS_BY_IDS)
                    .bind(ids)
                    .bind(after)
                    .bind(i64::from(limit))
            }
            None => sqlx::query_as::<_, StoredEventRow>(sql::LIST_EVENTS)
                .bind(filter.source.as_deref())
                .bind(filter.plugin_id.as_deref())
                .bind(filter.since.as_ref().map(ts_to_text))
                .bind(filter.until.as_ref().map(ts_to_text))
                .bind(after)
                .bind(i64::from(limit))
                .bind(
                    filter
                        .event_types
                        .as_ref()
                        .map(|t| serde_json::Value::from(t.clone()).to_string()),
                )
                .bind(filter.keyword.as_deref()),
        };
        let rows = query.fetch_all(&self.reader).await.map_err(db_err)?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome> {
        let rows = identity_rows(identities)?;
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let total = rows.len();
        let rows = json_rows_with_ids(rows)?;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing: i64 = sqlx::query_scalar(sql::COUNT_IDENTITIES)
            .bind(&rows)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(sql::UPSERT_IDENTITIES)
            .bind(&rows)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome_from_existing(total, existing))
    }

    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome> {
        if links.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let accounts = json_rows_with_ids(link_accounts(links)?)?;
        let now = now_text();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        sqlx::query(sql::INSERT_LINK_IDENTITIES)
            .bind(&accounts)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let ids: Vec<IdentityIdRow> = sqlx::query_as(sql::SELECT_IDENTITY_IDS)
            .bind(&accounts)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let rows = link_rows(links, ids)?;
        let inserted = insert_links(&mut tx, rows, &now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome_from_inserted(links.len(), inserted))
    }

    async fn identity_id(&self, platform: &str, platform_user_id: &str) -> Result<Option<String>> {
        let account = serde_json::json!([{
            "platform": platform,
            "platform_user_id": platform_user_id,
        }]);
        let rows: Vec<IdentityIdRow> = sqlx::query_as(sql::SELECT_IDENTITY_IDS)
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().next().map(|r| r.id))
    }

    async fn link_identities(
        &self,
        a: &str,
        b: &str,
        confidence: &str,
        reason: &str,
    ) -> Result<LinkOutcome> {
        let (one, two, score) = check_manual_link(a, b, confidence)?;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = existing_identity_ids(&mut tx, &[a, b]).await?;
        check_identities_exist(&[a, b], |id| existing.contains(id))?;
        let active: i64 = sqlx::query_scalar(sql::COUNT_ACTIVE_LINK)
            .bind(one)
            .bind(two)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(sql::LINK_IDENTITIES)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(one)
            .bind(two)
            .bind(confidence)
            .bind(USER_MANUAL_LINK_SOURCE)
            .bind(f64::from(score))
            .bind(reason)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(LinkOutcome {
            identity_id_1: one.to_owned(),
            identity_id_2: two.to_owned(),
            created: active == 0,
        })
    }

    async fn identities_after(
        &self,
        after: Option<&IdentityPosition>,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>> {
        // '' sorts before every stored timestamp: from the start.
        let (created_at, id) = match after {
            Some(p) => (ts_to_text(&p.created_at), p.id.as_str()),
            None => (String::new(), ""),
        };
        let rows: Vec<KnownIdentityRow> = sqlx::query_as(sql::IDENTITIES_AFTER)
            .bind(created_at)
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(KnownIdentity::from).collect())
    }

    async fn find_indexed_identities(
        &self,
        plugin_id: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<KnownIdentity>> {
        let rows: Vec<KnownIdentityRow> = sqlx::query_as(sql::FIND_INDEXED_IDENTITIES)
            .bind(plugin_id)
            .bind(key)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(KnownIdentity::from).collect())
    }

    async fn save_resolution(&self, batch: &ResolutionBatch) -> Result<WriteOutcome> {
        let rows = resolution_rows(batch)?;
        if rows.named.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let total = rows.links.len();
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = existing_identity_ids(&mut tx, &rows.named).await?;
        // Returning drops the transaction, which rolls it back: nothing was written yet.
        check_identities_exist(&rows.named, |id| existing.contains(id))?;
        if !rows.indexed.is_empty() {
            sqlx::query(sql::DELETE_IDENTITY_KEYS)
                .bind(&batch.plugin_id)
                .bind(json_rows(&rows.indexed)?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if !rows.keys.is_empty() {
            sqlx::query(sql::INSERT_IDENTITY_KEYS)
                .bind(&batch.plugin_id)
                .bind(json_rows(&rows.keys)?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let inserted = insert_links(&mut tx, rows.links, &now_text()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome_from_inserted(total, inserted))
    }

    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome> {
        if matches.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let res = sqlx::query(sql::INSERT_KEYWORD_MATCHES)
            .bind(json_rows(&match_rows(matches))?)
            .bind(now_text())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(outcome_from_inserted(matches.len(), res.rows_affected()))
    }

    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>> {
        let rows: Vec<KeywordRecordRow> = sqlx::query_as(sql::ACTIVE_KEYWORDS)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(KeywordRecord::from).collect())
    }

    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome> {
        let rows = keyword_rows(keywords)?;
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let total = rows.len();
        let rows = json_rows(&rows)?;
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing: i64 = sqlx::query_scalar(sql::COUNT_KEYWORDS)
            .bind(&rows)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(sql::UPSERT_KEYWORDS)
            .bind(&rows)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(outcome_from_existing(total, existing))
    }

    async fn compute_daily_metrics(&self, range: &DayRange) -> Result<DailyMetricsOutcome> {
        let (first, last) = (range.first.to_string(), range.last.to_string());
        let (start, end) = (ts_to_text(&range.start_utc()), ts_to_text(&range.end_utc()));
        // SQLite's date() shifts by a modifier; `+0 seconds` leaves UTC days as they are.
        let offset = format!("{:+} seconds", range.utc_offset_seconds);
        let now = now_text();
        // One writer connection: the transaction alone serialises recomputations.
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut written = [0u64; 4];
        for ((delete, insert), rows) in sql::METRICS_RECOMPUTE.iter().zip(&mut written) {
            sqlx::query(delete)
                .bind(&first)
                .bind(&last)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            *rows = sqlx::query(insert)
                .bind(&start)
                .bind(&end)
                .bind(&offset)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        let [events, keywords, people, identities] = written;
        Ok(DailyMetricsOutcome {
            events,
            keywords,
            people,
            identities,
        })
    }

    async fn daily_metrics(&self, first: NaiveDate, last: NaiveDate) -> Result<DailyMetrics> {
        let (first, last) = (first.to_string(), last.to_string());
        let events = sqlx::query_as(sql::METRICS_READ_EVENTS)
            .bind(&first)
            .bind(&last)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let keywords = sqlx::query_as(sql::METRICS_READ_KEYWORDS)
            .bind(&first)
            .bind(&last)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let people = sqlx::query_as(sql::METRICS_READ_PEOPLE)
            .bind(&first)
            .bind(&last)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        let identities = sqlx::query_as(sql::METRICS_READ_IDENTITIES)
            .bind(&first)
            .bind(&last)
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)?;
        daily_metrics_from_rows(events, keywords, people, identities)
    }

    /// On a reader: the single writer connection may be busy with a long batch, which
    /// must not make the daemon look unhealthy.
    async fn ping(&self) -> Result<()> {
        sqlx::query(sql::PING)
            .execute(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    fn backend(&self) -> String {
        format!("embedded SQLite at {}", self.path.display())
    }
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar(sql::KV_GET)
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)
    }

    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query(sql::KV_SET)
            .bind(namespace)
            .bind(key)
            .bind(value)
            .bind(now_text())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        sqlx::query(sql::KV_DELETE)
            .bind(namespace)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_keys(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let query = match prefix_upper_bound(prefix) {
            Some(upper) => sqlx::query_scalar(sql::KV_LIST_KEYS)
                .bind(namespace)
                .bind(prefix)
                .bind(upper),
            None => sqlx::query_scalar(sql::KV_LIST_KEYS_FROM)
                .bind(namespace)
                .bind(prefix),
        };
        query
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)
    }

    async fn namespace_bytes(&self, namespace: &str) -> Result<u64> {
        let bytes: i64 = sqlx::query_scalar(sql::KV_NAMESPACE_BYTES)
            .bind(namespace)
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::conformance as tc;

    async fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("data/drowl.db"))
            .await
            .unwrap();
        (dir, Arc::new(store))
    }

    #[tokio::test]
    async fn sqlite_store_follows_the_shared_rules() {
        let (_dir, store) = open().await;
        tc::run_all(store.clone(), store.clone()).await;
        tc::webhook_deliveries_are_stored_once(store.clone()).await;
    }

    #[async_trait]
    impl tc::ReadLinks for SqliteStore {
        async fn links_between(&self, a: &str, b: &str) -> Vec<tc::StoredLink> {
            let rows: Vec<(String, String, String, String, f64, Option<String>, bool)> =
                sqlx::query_as(
                    "SELECT identity_id_1, identity_id_2, confidence, link_source, \
                     confidence_score, plugin_id, is_active FROM identity_links \
                     WHERE (identity_id_1, identity_id_2) IN (VALUES (?1, ?2), (?2, ?1)) \
                     ORDER BY is_active, created_at",
                )
                .bind(a)
                .bind(b)
                .fetch_all(self.write_pool())
                .await
                .unwrap();
            rows.into_iter()
                .map(
                    |(one, two, confidence, source, score, plugin, active)| tc::StoredLink {
                        identity_id_1: one,
                        identity_id_2: two,
                        confidence,
                        link_source: source,
                        confidence_score: score as f32,
                        plugin_id: plugin,
                        is_active: active,
                    },
                )
                .collect()
        }
        async fn remove_links(&self, a: &str, b: &str) {
            sqlx::query(
                "UPDATE identity_links SET is_active = 0 \
                 WHERE (identity_id_1, identity_id_2) IN (VALUES (?1, ?2), (?2, ?1))",
            )
            .bind(a)
            .bind(b)
            .execute(self.write_pool())
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn sqlite_identity_resolution_follows_the_shared_rules() {
        let (_dir, store) = open().await;
        tc::resolution_links_follow_the_rules(&*store, &*store).await;
        tc::suggested_links_never_revive_removed_ones(&*store, &*store).await;
    }

    /// Identity resolution's statements run on the indexes 0003 adds, not on table scans.
    #[tokio::test]
    async fn identity_resolution_reads_use_their_indexes() {
        let (_dir, store) = open().await;
        let plan = |sql: &'static str| {
            let store = store.clone();
            async move {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .bind("")
                        .bind("")
                        .bind(10_i64)
                        .fetch_all(&store.reader)
                        .await
                        .unwrap();
                rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
            }
        };
        let batches = plan(sql::IDENTITIES_AFTER).await;
        assert!(
            batches.contains("SEARCH identities USING INDEX identities_created_at_id_idx")
                && !batches.contains("TEMP B-TREE"),
            "{batches}"
        );
        let find = plan(sql::FIND_INDEXED_IDENTITIES).await;
        assert!(find.contains("SEARCH x USING PRIMARY KEY"), "{find}");
    }

    #[tokio::test]
    async fn ping_says_where_the_database_is_and_fails_once_closed() {
        let (_dir, store) = open().await;
        store.ping().await.expect("open store");
        assert_eq!(
            store.backend(),
            format!("embedded SQLite at {}", store.path().display())
        );
        store.close().await;
        assert!(store.ping().await.is_err());
    }

    #[tokio::test]
    async fn sqlite_daily_metrics_are_counted_by_hand() {
        let (_dir, store) = open().await;
        tc::daily_metrics_are_counted_by_hand(&*store).await;
    }

    #[tokio::test]
    async fn reopening_reapplies_nothing_and_keeps_data() {
        let (dir, store) = open().await;
        let t = tc::tag();
        store.insert_events(&tc::batch(&t, 3, 10)).await.unwrap();
        store.set("ns", "k", b"v").await.unwrap();
        store.close().await;
        let again = SqliteStore::open(&dir.path().join("data/drowl.db"))
            .await
            .unwrap();
        assert_eq!(
            again.get("ns", "k").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        let o = again.insert_events(&tc::batch(&t, 3, 10)).await.unwrap();
        assert_eq!(
            o,
            WriteOutcome {
                inserted: 0,
                existing: 3
            }
        );
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(again.write_pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// More rows than statements with one bound variable per value could hold (SQLite's
    /// limit is 32,766 variables, and an event row has 15 columns).
    #[tokio::test]
    async fn batches_past_the_bound_variable_limit_are_written_whole() {
        let (_dir, store) = open().await;
        let t = tc::tag();
        let n = (32_766 / 15) * 2 + 17;
        let b = tc::batch(&t, n, 5);
        assert_eq!(store.insert_events(&b).await.unwrap().inserted, n as u64);
        assert_eq!(store.insert_events(&b).await.unwrap().existing, n as u64);
    }

    #[tokio::test]
    async fn identity_links_store_an_ordered_pair_with_one_active() {
        let (_dir, store) = open().await;
        let link = |a: &str, b: &str| IdentityLinkRecord {
            a: ("github".into(), a.into()),
            b: ("x".into(), b.into()),
            confidence: "high".into(),
            link_source: "plugin_heuristic".into(),
            confidence_score: 0.9,
            reason: "same email".into(),
            plugin_id: "github".into(),
        };
        let o = store
            .insert_identity_links(&[link("u1", "u2")])
            .await
            .unwrap();
        assert_eq!(o.inserted, 1);
        let (one, two): (String, String) =
            sqlx::query_as("SELECT identity_id_1, identity_id_2 FROM identity_links")
                .fetch_one(store.write_pool())
                .await
                .unwrap();
        assert!(one < two);
        // The database itself refuses an unordered pair and a second active link.
        let unordered = sqlx::query(
            "INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, \
             link_source, confidence_score, created_at) VALUES ('x', ?, ?, 'high', 'm', 1, 'now')",
        )
        .bind(&two)
        .bind(&one)
        .execute(store.write_pool())
        .await;
        assert!(unordered.is_err());
        let second_active = sqlx::query(
            "INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, \
             link_source, confidence_score, created_at) VALUES ('y', ?, ?, 'high', 'm', 1, 'now')",
        )
        .bind(&one)
        .bind(&two)
        .execute(store.write_pool())
        .await
        .map_err(db_err);
        assert!(matches!(second_active, Err(StorageError::Invalid(_))));
        // A link a person removed (inactive) is not brought back by a suggestion.
        sqlx::query("UPDATE identity_links SET is_active = 0")
            .execute(store.write_pool())
            .await
            .unwrap();
        assert_eq!(
            store
                .insert_identity_links(&[link("u1", "u2")])
                .await
                .unwrap()
                .existing,
            1
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM identity_links")
            .fetch_one(store.write_pool())
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }

    /// A person's link lands as drowl's API reads it, is updated in place, and a removed
    /// link asked for again is active again, the removed row kept.
    #[tokio::test]
    async fn manual_links_are_written_updated_and_reactivated() {
        let (_dir, store) = open().await;
        let [a, b, _] = tc::three_identities(&*store).await;
        let first = store
            .link_identities(&b, &a, "high", "asked")
            .await
            .unwrap();
        let row = || async {
            sqlx::query_as::<_, (String, String, String, f64, String, i64)>(
                "SELECT identity_id_1, identity_id_2, confidence, confidence_score, \
                 link_source, is_active FROM identity_links ORDER BY is_active, created_at",
            )
            .fetch_all(store.write_pool())
            .await
            .unwrap()
        };
        let rows = row().await;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].0.as_str(), rows[0].1.as_str()),
            (first.identity_id_1.as_str(), first.identity_id_2.as_str())
        );
        assert!(rows[0].0 < rows[0].1);
        assert_eq!(
            (rows[0].2.as_str(), rows[0].4.as_str(), rows[0].5),
            ("high", "user_manual", 1)
        );
        assert!((rows[0].3 - 0.9).abs() < 1e-6);
        assert!(
            !store
                .link_identities(&a, &b, "manual", "asked")
                .await
                .unwrap()
                .created
        );
        let rows = row().await;
        assert_eq!((rows.len(), rows[0].2.as_str()), (1, "manual"));
        sqlx::query("UPDATE identity_links SET is_active = 0")
            .execute(store.write_pool())
            .await
            .unwrap();
        assert!(
            store
                .link_identities(&a, &b, "low", "again")
                .await
                .unwrap()
                .created
        );
        let rows = row().await;
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.iter().map(|r| (r.2.as_str(), r.5)).collect::<Vec<_>>(),
            [("manual", 0), ("low", 1)]
        );
    }

    #[tokio::test]
    async fn identities_refresh_names_and_merge_metadata() {
        let (_dir, store) = open().await;
        let rec = |name: Option<&str>, meta: serde_json::Value| IdentityRecord {
            platform: "github".into(),
            platform_user_id: "42".into(),
            platform_username: name.map(Into::into),
            display_name: None,
            profile_url: None,
            avatar_url: None,
            metadata: meta,
        };
        store
            .upsert_identities(&[rec(Some("old"), serde_json::json!({"a": 1}))])
            .await
            .unwrap();
        store
            .upsert_identities(&[rec(None, serde_json::json!({"b": 2}))])
            .await
            .unwrap();
        store
            .upsert_identities(&[rec(Some("new"), serde_json::Value::Null)])
            .await
            .unwrap();
        let (name, meta): (String, String) =
            sqlx::query_as("SELECT platform_username, metadata FROM identities")
                .fetch_one(store.write_pool())
                .await
                .unwrap();
        assert_eq!(name, "new");
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta, serde_json::json!({"a": 1, "b": 2}));
    }

    #[tokio::test]
    async fn open_embedded_wires_sqlite_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::storage::open_embedded(dir.path()).await.unwrap();
        s.kv.set("ns", "k", b"v").await.unwrap();
        s.objects
            .put(&tc::key(), bytes::Bytes::from_static(b"o"), "")
            .await
            .unwrap();
        assert!(dir.path().join("drowl.db").exists());
        assert!(
            dir.path()
                .join("objects/plugins/github/objects/cache/page-1.json")
                .exists()
        );
    }
}
