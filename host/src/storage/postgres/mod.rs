//! The production event and key-value store: PostgreSQL, shared with drowl's API and UI.
//!
//! The schema lives in the repository's top-level `migrations/` (drowl's tables plus the
//! host's additions) and is applied by [`PostgresStore::migrate`]. Each statement lives in
//! a file of its own under `queries/`. Every batch is one statement: arrays are bound per
//! column (shaped by the shared `rows` module) and expanded with `UNNEST`, so a page of 1,000
//! events costs one round trip, and `ON CONFLICT DO NOTHING` on (`source`, `external_id`)
//! makes re-runs and concurrent duplicates harmless (PostgreSQL's speculative insertion is
//! safe under concurrency). Rows are sorted by their conflict key before insertion so two
//! overlapping batches lock rows in the same order and cannot deadlock each other.
//!
//! [`InsertMode::Copy`] is the alternative measured by `examples/bench_ingest.rs`: `COPY`
//! into a per-connection temporary table, then one `INSERT ... SELECT ... ON CONFLICT`.
//!
//! The `jobs` table is written through [`PostgresJobStore`], on a pool of its own.
//!
//! Errors are classified for the job layer: connection trouble is
//! [`StorageError::Unavailable`] (the job is retried, which is safe), bad data is
//! [`StorageError::Invalid`], and a wrong URL, credentials or missing schema is
//! [`StorageError::Config`].

mod errors;
mod jobs;
mod migrations;
mod plugins;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use self::errors::{connect_err, pg_err};
pub use self::jobs::PostgresJobStore;
pub use self::migrations::MigrationInfo;
use super::common::{
    check_identities_exist, check_manual_link, daily_metrics_from_rows, prefix_upper_bound,
    unknown_identity,
};
use super::rows::{
    EventRow, IdentityIdRow, KeywordRecordRow, KnownIdentityRow, LinkRow, StoredEventRow, column,
    event_rows, identity_rows, keyword_rows, link_accounts, link_rows, match_rows,
    outcome_from_flags, outcome_from_inserted, resolution_rows,
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
    pub(super) const CREATE_EVENTS_STAGE: &str = include_str!("queries/create_events_stage.sql");
    pub(super) const COPY_EVENTS_STAGE: &str = include_str!("queries/copy_events_stage.sql");
    pub(super) const INSERT_EVENTS_FROM_STAGE: &str =
        include_str!("queries/insert_events_from_stage.sql");
    pub(super) const LIST_EVENTS: &str = include_str!("queries/list_events.sql");
    pub(super) const LIST_EVENTS_BY_IDS: &str = include_str!("queries/list_events_by_ids.sql");
    pub(super) const UPSERT_IDENTITIES: &str = include_str!("queries/upsert_identities.sql");
    pub(super) const INSERT_LINK_IDENTITIES: &str =
        include_str!("queries/insert_link_identities.sql");
    pub(super) const SELECT_IDENTITY_IDS: &str = include_str!("queries/select_identity_ids.sql");
    pub(super) const INSERT_IDENTITY_LINKS: &str =
        include_str!("queries/insert_identity_links.sql");
    pub(super) const EXISTING_IDENTITY_IDS: &str =
        include_str!("queries/existing_identity_ids.sql");
    pub(super) const LINK_IDENTITIES: &str = include_str!("queries/link_identities.sql");
    pub(super) const IDENTITIES_AFTER: &str = include_str!("queries/identities_after.sql");
    pub(super) const FIND_INDEXED_IDENTITIES: &str =
        include_str!("queries/find_indexed_identities.sql");
    pub(super) const DELETE_IDENTITY_KEYS: &str = include_str!("queries/delete_identity_keys.sql");
    pub(super) const INSERT_IDENTITY_KEYS: &str = include_str!("queries/insert_identity_keys.sql");
    pub(super) const INSERT_KEYWORD_MATCHES: &str =
        include_str!("queries/insert_keyword_matches.sql");
    pub(super) const ACTIVE_KEYWORDS: &str = include_str!("queries/active_keywords.sql");
    pub(super) const UPSERT_KEYWORDS: &str = include_str!("queries/upsert_keywords.sql");
    pub(super) const KV_GET: &str = include_str!("queries/kv_get.sql");
    pub(super) const KV_SET: &str = include_str!("queries/kv_set.sql");
    pub(super) const KV_DELETE: &str = include_str!("queries/kv_delete.sql");
    pub(super) const KV_LIST_KEYS: &str = include_str!("queries/kv_list_keys.sql");
    pub(super) const KV_LIST_KEYS_FROM: &str = include_str!("queries/kv_list_keys_from.sql");
    pub(super) const KV_NAMESPACE_BYTES: &str = include_str!("queries/kv_namespace_bytes.sql");
    pub(super) const MIGRATIONS_TABLE_EXISTS: &str =
        include_str!("queries/migrations_table_exists.sql");
    pub(super) const APPLIED_MIGRATIONS: &str = include_str!("queries/applied_migrations.sql");
    pub(super) const JOBS_UPSERT: &str = include_str!("queries/jobs_upsert.sql");
    pub(super) const JOBS_UNSETTLED: &str = include_str!("queries/jobs_unsettled.sql");
    pub(super) const JOBS_MARK_LOST: &str = include_str!("queries/jobs_mark_lost.sql");
    pub(super) const METRICS_LOCK: &str = include_str!("queries/metrics_lock.sql");
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

/// How long [`EventStore::ping`] waits for a pooled connection before it opens one of
/// its own.
const PING_POOL_WAIT: Duration = Duration::from_millis(500);

/// The environment variable operators set, named in every connection error.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// How a batch of events reaches the `events` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InsertMode {
    /// One `INSERT ... SELECT FROM UNNEST($1::text[], ...)` per batch (the default: one
    /// round trip, no temporary table).
    #[default]
    Unnest,
    /// `COPY` into a temporary table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    Copy,
}

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A `postgres://` URL (drowl's `DATABASE_URL`).
    pub url: String,
    /// Pool size; each running job holds at most one connection at a time.
    pub max_connections: u32,
    /// How long the first connection may take before start-up fails.
    pub connect_timeout: Duration,
    /// How long a query waits for a pooled connection (or a reconnect) before failing as
    /// unavailable. Keep it below Bull's lock duration (30 s) so a job fails and is retried
    /// rather than losing its lock while waiting.
    pub acquire_timeout: Duration,
    /// How event batches are written.
    pub insert_mode: InsertMode,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show only where it points.
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("insert_mode", &self.insert_mode)
            .finish()
    }
}

impl PostgresConfig {
    /// Defaults suited to one daemon on a small machine, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            insert_mode: InsertMode::Unnest,
        }
    }

    /// Reads `DATABASE_URL`; `None` when it is unset or empty (use the embedded store).
    pub fn from_env() -> Option<Self> {
        std::env::var(DATABASE_URL_VAR)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .map(Self::new)
    }

    /// The URL with its password masked, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `postgres://user@host:port/db`, without the password, for messages and logs.
fn redact_url(url: &str) -> String {
    crate::redact::redact_url(url, "<unparseable URL>")
}

/// Events, identities, keywords, matches and plugin state in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    insert_mode: InsertMode,
    /// `DATABASE_URL` without its password, named in schema errors.
    shown_url: String,
}

impl PostgresStore {
    /// Connects with defaults ([`PostgresConfig::new`]).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(&PostgresConfig::new(url)).await
    }

    /// Checks that PostgreSQL is reachable and accepts the credentials, then builds the pool.
    ///
    /// One direct connection is made first so that start-up fails fast (within
    /// `connect_timeout`) with a message naming `DATABASE_URL` and saying what is wrong:
    /// unreachable and refused are [`StorageError::Unavailable`]; a bad URL, bad credentials
    /// or a missing database are [`StorageError::Config`].
    pub async fn connect_with(cfg: &PostgresConfig) -> Result<Self> {
        let shown = redact_url(&cfg.url);
        if !(cfg.url.starts_with("postgres://") || cfg.url.starts_with("postgresql://")) {
            return Err(StorageError::Config(format!(
                "{DATABASE_URL_VAR} ({shown}) must be a postgres:// or postgresql:// URL"
            )));
        }
        let opts = PgConnectOptions::from_str(&cfg.url).map_err(|e| {
            StorageError::Config(format!(
                "{DATABASE_URL_VAR} ({shown}) is not a valid PostgreSQL URL: {e}"
            ))
        })?;
        match tokio::time::timeout(cfg.connect_timeout, PgConnection::connect_with(&opts)).await {
            Err(_) => {
                return Err(StorageError::Unavailable(format!(
                    "PostgreSQL at {DATABASE_URL_VAR} ({shown}) did not answer within {:?}",
                    cfg.connect_timeout
                )));
            }
            Ok(Err(e)) => return Err(connect_err(e, &shown)),
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(cfg.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            // A connection that died with a server restart is detected and replaced
            // before use, so a restored server is picked up without a daemon restart.
            .test_before_acquire(true)
            .connect_lazy_with(opts);
        Ok(Self {
            pool,
            insert_mode: cfg.insert_mode,
            shown_url: shown,
        })
    }

    /// The pool, for host modules and tests that read or write tables of their own here
    /// (`plugins`, analytics rollups).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_events_unnest(&self, rows: &[EventRow<'_>]) -> Result<u64> {
        let res = sqlx::query(sql::INSERT_EVENTS)
            .bind(column(rows, |r| r.id))
            .bind(column(rows, |r| r.source))
            .bind(column(rows, |r| r.external_id))
            .bind(column(rows, |r| r.event_type))
            .bind(column(rows, |r| r.occurred_at))
            .bind(column(rows, |r| r.raw_payload.as_str()))
            .bind(column(rows, |r| r.storage_key))
            .bind(column(rows, |r| r.text))
            .bind(column(rows, |r| r.actor_platform))
            .bind(column(rows, |r| r.actor_platform_user_id))
            .bind(column(rows, |r| r.plugin_id))
            .bind(column(rows, |r| r.plugin_version))
            .bind(column(rows, |r| r.correlation_id))
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(res.rows_affected())
    }

    async fn insert_events_copy(&self, rows: &[EventRow<'_>]) -> Result<u64> {
        let mut data = Vec::with_capacity(rows.iter().map(|r| r.raw_payload.len() + 200).sum());
        for r in rows {
            let occurred = r
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let fields: [Option<&str>; 13] = [
                Some(r.id),
                Some(r.source),
                Some(r.external_id),
                Some(r.event_type),
                Some(&occurred),
                Some(&r.raw_payload),
                r.storage_key,
                r.text,
                r.actor_platform,
                r.actor_platform_user_id,
                Some(r.plugin_id),
                Some(r.plugin_version),
                r.correlation_id,
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    data.push(b'\t');
                }
                copy_text_field(&mut data, *f);
            }
            data.push(b'\n');
        }
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        sqlx::query(sql::CREATE_EVENTS_STAGE)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        let mut copy = tx
            .copy_in_raw(sql::COPY_EVENTS_STAGE)
            .await
            .map_err(pg_err)?;
        copy.send(data).await.map_err(pg_err)?;
        copy.finish().await.map_err(pg_err)?;
        let res = sqlx::query(sql::INSERT_EVENTS_FROM_STAGE)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(res.rows_affected())
    }
}

/// Appends one field in `COPY ... (FORMAT text)` form: `\N` for NULL, and backslash,
/// tab, newline and carriage return escaped.
fn copy_text_field(out: &mut Vec<u8>, f: Option<&str>) {
    let Some(s) = f else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Writes plugin-proposed links (`insert_identity_links.sql`: only pairs with no link row
/// at all) in `tx`; returns how many were written. Enrichment suggestions and resolution
/// batches share it, so both follow the one rule about links a person made or removed.
async fn insert_links(tx: &mut sqlx::PgTransaction<'_>, rows: &[LinkRow<'_>]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let res = sqlx::query(sql::INSERT_IDENTITY_LINKS)
        .bind(column(rows, |r| r.identity_id_1.as_str()))
        .bind(column(rows, |r| r.identity_id_2.as_str()))
        .bind(column(rows, |r| r.confidence))
        .bind(column(rows, |r| r.link_source))
        .bind(column(rows, |r| r.confidence_score))
        .bind(column(rows, |r| r.reason))
        .bind(column(rows, |r| r.plugin_id))
        .execute(&mut **tx)
        .await
        .map_err(pg_err)?;
    Ok(res.rows_affected())
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome> {
        if events.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let rows = event_rows(events)?;
        let inserted = match self.insert_mode {
            InsertMode::Unnest => self.insert_events_unnest(&rows).await?,
            InsertMode::Copy => self.insert_events_copy(&rows).await?,
        };
        Ok(outcome_from_inserted(events.len(), inserted))
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let after = after_id.unwrap_or("");
        let query = match &filter.ids {
            Some(ids) => sqlx::query_as::<_, StoredEventRow>(sql::LIST_EVENTS_BY_IDS)
                .bind(ids)
                .bind(after)
                .bind(i64::from(limit)),
            None => sqlx::query_as::<_, StoredEventRow>(sql::LIST_EVENTS)
                .bind(filter.source.as_deref())
                .bind(filter.plugin_id.as_deref())
                .bind(filter.since)
                .bind(filter.until)
                .bind(after)
                .bind(i64::from(limit))
                .bind(filter.event_types.as_deref())
                .bind(filter.keyword.as_deref()),
        };
        let rows = query.fetch_all(&self.pool).await.map_err(pg_err)?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome> {
        let rows = identity_rows(identities)?;
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let flags: Vec<bool> = sqlx::query_scalar(sql::UPSERT_IDENTITIES)
            .bind(column(&rows, |r| r.platform))
            .bind(column(&rows, |r| r.platform_user_id))
            .bind(column(&rows, |r| r.platform_username))
            .bind(column(&rows, |r| r.display_name))
            .bind(column(&rows, |r| r.profile_url))
            .bind(column(&rows, |r| r.avatar_url))
            .bind(column(&rows, |r| r.metadata.as_str()))
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(outcome_from_flags(&flags))
    }

    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome> {
        if links.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let accounts = link_accounts(links)?;
        let platforms = column(&accounts, |a| a.platform);
        let users = column(&accounts, |a| a.platform_user_id);
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        sqlx::query(sql::INSERT_LINK_IDENTITIES)
            .bind(&platforms)
            .bind(&users)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        let ids: Vec<IdentityIdRow> = sqlx::query_as(sql::SELECT_IDENTITY_IDS)
            .bind(&platforms)
            .bind(&users)
            .fetch_all(&mut *tx)
            .await
            .map_err(pg_err)?;
        let rows = link_rows(links, ids)?;
        let inserted = insert_links(&mut tx, &rows).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(outcome_from_inserted(links.len(), inserted))
    }

    async fn identity_id(&self, platform: &str, platform_user_id: &str) -> Result<Option<String>> {
        let rows: Vec<IdentityIdRow> = sqlx::query_as(sql::SELECT_IDENTITY_IDS)
            .bind(vec![platform])
            .bind(vec![platform_user_id])
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
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
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        let existing: Vec<String> = sqlx::query_scalar(sql::EXISTING_IDENTITY_IDS)
            .bind(vec![a, b])
            .fetch_all(&mut *tx)
            .await
            .map_err(pg_err)?;
        if let Some(missing) = [a, b]
            .into_iter()
            .find(|id| !existing.iter().any(|e| e == id))
        {
            return Err(unknown_identity(missing));
        }
        let created: bool = sqlx::query_scalar(sql::LINK_IDENTITIES)
            .bind(one)
            .bind(two)
            .bind(confidence)
            .bind(USER_MANUAL_LINK_SOURCE)
            .bind(score)
            .bind(reason)
            .fetch_one(&mut *tx)
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
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
        let rows: Vec<KnownIdentityRow> = sqlx::query_as(sql::IDENTITIES_AFTER)
            .bind(after.map(|p| p.created_at))
            .bind(after.map_or("", |p| p.id.as_str()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
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
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(KnownIdentity::from).collect())
    }

    async fn save_resolution(&self, batch: &ResolutionBatch) -> Result<WriteOutcome> {
        let rows = resolution_rows(batch)?;
        if rows.named.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        let existing: Vec<String> = sqlx::query_scalar(sql::EXISTING_IDENTITY_IDS)
            .bind(&rows.named)
            .fetch_all(&mut *tx)
            .await
            .map_err(pg_err)?;
        let existing: std::collections::HashSet<&str> =
            existing.iter().map(String::as_str).collect();
        // Returning drops the transaction, which rolls it back: nothing was written yet.
        check_identities_exist(&rows.named, |id| existing.contains(id))?;
        if !rows.indexed.is_empty() {
            sqlx::query(sql::DELETE_IDENTITY_KEYS)
                .bind(&batch.plugin_id)
                .bind(&rows.indexed)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
        }
        if !rows.keys.is_empty() {
            sqlx::query(sql::INSERT_IDENTITY_KEYS)
                .bind(&batch.plugin_id)
                .bind(column(&rows.keys, |k| k.index_key))
                .bind(column(&rows.keys, |k| k.identity_id))
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
        }
        let inserted = insert_links(&mut tx, &rows.links).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(outcome_from_inserted(rows.links.len(), inserted))
    }

    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome> {
        if matches.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let rows = match_rows(matches);
        let res = sqlx::query(sql::INSERT_KEYWORD_MATCHES)
            .bind(column(&rows, |m| m.event_id.as_str()))
            .bind(column(&rows, |m| m.keyword_id.as_str()))
            .bind(column(&rows, |m| m.matched_text.as_str()))
            .bind(column(&rows, |m| m.position))
            .bind(column(&rows, |m| m.occurrences))
            .bind(column(&rows, |m| m.plugin_id.as_str()))
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(outcome_from_inserted(matches.len(), res.rows_affected()))
    }

    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>> {
        let rows: Vec<KeywordRecordRow> = sqlx::query_as(sql::ACTIVE_KEYWORDS)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(rows.into_iter().map(KeywordRecord::from).collect())
    }

    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome> {
        let rows = keyword_rows(keywords)?;
        if rows.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let flags: Vec<bool> = sqlx::query_scalar(sql::UPSERT_KEYWORDS)
            .bind(column(&rows, |k| k.id))
            .bind(column(&rows, |k| k.term))
            .bind(column(&rows, |k| k.category))
            .bind(column(&rows, |k| k.match_strategy))
            .bind(column(&rows, |k| k.regex_pattern))
            .bind(column(&rows, |k| k.synonyms.as_str()))
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(outcome_from_flags(&flags))
    }

    async fn compute_daily_metrics(&self, range: &DayRange) -> Result<DailyMetricsOutcome> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        sqlx::query(sql::METRICS_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        let mut written = [0u64; 4];
        for ((delete, insert), rows) in sql::METRICS_RECOMPUTE.iter().zip(&mut written) {
            sqlx::query(delete)
                .bind(range.first)
                .bind(range.last)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
            *rows = sqlx::query(insert)
                .bind(range.start_utc())
                .bind(range.end_utc())
                .bind(range.utc_offset_seconds)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(pg_err)?;
        let [events, keywords, people, identities] = written;
        Ok(DailyMetricsOutcome {
            events,
            keywords,
            people,
            identities,
        })
    }

    async fn daily_metrics(&self, first: NaiveDate, last: NaiveDate) -> Result<DailyMetrics> {
        let events = sqlx::query_as(sql::METRICS_READ_EVENTS)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        let keywords = sqlx::query_as(sql::METRICS_READ_KEYWORDS)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        let people = sqlx::query_as(sql::METRICS_READ_PEOPLE)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        let identities = sqlx::query_as(sql::METRICS_READ_IDENTITIES)
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        daily_metrics_from_rows(events, keywords, people, identities)
    }

    /// `SELECT 1` on a pooled connection. When the pool has none within
    /// [`PING_POOL_WAIT`] (every connection busy with jobs, or the server gone: the pool
    /// then retries connecting until its acquire timeout, without saying why), one direct
    /// connection answers instead, so a busy database counts as healthy and a gone one
    /// is reported with the reason (refused, bad credentials, ...).
    async fn ping(&self) -> Result<()> {
        let pooled = sqlx::query(sql::PING).execute(&self.pool);
        match tokio::time::timeout(PING_POOL_WAIT, pooled).await {
            Ok(r) => r.map(|_| ()).map_err(pg_err),
            Err(_) => {
                // The health check names the backend (`backend()`) itself.
                let mut conn = PgConnection::connect_with(&self.pool.connect_options())
                    .await
                    .map_err(|e| match e {
                        sqlx::Error::Database(_) => pg_err(e),
                        other => StorageError::Unavailable(format!("cannot connect: {other}")),
                    })?;
                let answered = sqlx::query(sql::PING).execute(&mut conn).await;
                let _ = conn.close().await;
                answered.map(|_| ()).map_err(pg_err)
            }
        }
    }

    fn backend(&self) -> String {
        format!("PostgreSQL at {DATABASE_URL_VAR} ({})", self.shown_url)
    }
}

#[async_trait]
impl KvStore for PostgresStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar(sql::KV_GET)
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)
    }

    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query(sql::KV_SET)
            .bind(namespace)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        sqlx::query(sql::KV_DELETE)
            .bind(namespace)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
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
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)
    }

    async fn namespace_bytes(&self, namespace: &str) -> Result<u64> {
        let bytes: i64 = sqlx::query_scalar(sql::KV_NAMESPACE_BYTES)
            .bind(namespace)
            .fetch_one(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_are_escaped() {
        let mut out = Vec::new();
        copy_text_field(&mut out, Some("a\\b\tc\nd\re"));
        out.push(b'|');
        copy_text_field(&mut out, None);
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re|\\N");
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/drowl"),
            "postgres://u:***@db:5432/drowl"
        );
        let dbg = format!("{:?}", PostgresConfig::new("postgres://u:secret@db/drowl"));
        assert!(!dbg.contains("secret"));
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_config_error_naming_database_url() {
        let e = PostgresStore::connect("mysql://nope").await.unwrap_err();
        assert!(
            matches!(&e, StorageError::Config(m) if m.contains("DATABASE_URL")),
            "{e}"
        );
    }
}
