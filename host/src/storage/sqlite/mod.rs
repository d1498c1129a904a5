//! The embedded backend: one SQLite file in the data directory.
//!
//! `drowl-host` must work with nothing but a data directory (for `run-plugin`, demos and
//! small installations), so events, identities, keywords, matches and plugin state live in
//! a single SQLite database whose schema mirrors the PostgreSQL one (same table and column
//! names, see `host/migrations-sqlite/`).
//!
//! SQLite allows one writer at a time. Rather than let several connections race for the
//! write lock (and hit `SQLITE_BUSY` when a deferred transaction upgrades), writes go through
//! a pool of exactly one connection, and reads use a separate read-only pool: with WAL,
//! readers never block the writer nor the other way round. Each batch is one transaction
//! holding one multi-row `INSERT` per chunk of rows (chunked to SQLite's bound-variable
//! limit), never a round trip per row.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::common::{
    check_link_score, dedup_identities, dedup_keywords, metadata_json, ordered_pair,
    prefix_upper_bound, ts_from_text, ts_to_text,
};
use super::{
    EventFilter, EventStore, IdentityLinkRecord, IdentityRecord, KeywordMatchRecord, KeywordRecord,
    KvStore, NewEvent, Result, StorageError, StoredEvent, WriteOutcome,
};

/// The embedded schema, compiled into the binary so a fresh data directory needs no files.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations-sqlite");

/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER` since 3.32 (the bundled library is newer).
const MAX_VARS: usize = 32_766;

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per statement for a table with `cols` bound columns.
fn rows_per_stmt(cols: usize) -> usize {
    (MAX_VARS / cols).max(1)
}

/// Maps an sqlx error to the storage error the job layer understands.
fn db_err(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            if matches!(
                d.kind(),
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::NotNullViolation
                    | sqlx::error::ErrorKind::CheckViolation
            ) {
                return StorageError::Invalid(d.message().to_owned());
            }
            // Primary result code: the low byte of the extended code.
            let primary = d
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            match primary {
                // BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL: a retry may succeed.
                Some(5 | 6 | 7 | 10 | 13 | 14 | 15) => StorageError::Unavailable(e.to_string()),
                // READONLY, CORRUPT, NOTADB, ERROR (SQL error: schema mismatch).
                Some(8 | 11 | 26 | 1) => StorageError::Config(e.to_string()),
                _ => StorageError::Invalid(e.to_string()),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e.to_string()),
        sqlx::Error::Configuration(_) | sqlx::Error::Migrate(_) => {
            StorageError::Config(e.to_string())
        }
        _ => StorageError::Invalid(e.to_string()),
    }
}

fn json_text(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::Invalid(format!("unserialisable JSON: {e}")))
}

/// Events, identities, keywords, matches and plugin key-value state in one SQLite file.
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

    /// The write pool (a single connection), for host modules that keep their own tables
    /// in the same file (`jobs`, `plugins`).
    pub fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// Closes both pools, checkpointing the WAL; later calls fail as unavailable.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Counts the rows of `identities` matching the given accounts, inside `tx`.
    async fn count_identities(
        tx: &mut sqlx::SqliteConnection,
        accounts: &[(&str, &str)],
    ) -> Result<u64> {
        let mut n = 0u64;
        for chunk in accounts.chunks(rows_per_stmt(2)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT count(*) FROM identities WHERE (platform, platform_user_id) IN (VALUES ",
            );
            let mut sep = qb.separated(", ");
            for (p, u) in chunk {
                sep.push("(")
                    .push_bind_unseparated(*p)
                    .push_unseparated(", ");
                sep.push_bind_unseparated(*u).push_unseparated(")");
            }
            qb.push(")");
            let c: i64 = qb
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            n += u64::try_from(c).unwrap_or(0);
        }
        Ok(n)
    }
}

/// An event with its computed columns, borrowed for one statement.
struct EventRow<'a> {
    e: &'a NewEvent,
    occurred_at: String,
    payload: String,
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome> {
        if events.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let rows = events
            .iter()
            .map(|e| {
                Ok(EventRow {
                    e,
                    occurred_at: ts_to_text(&e.occurred_at),
                    payload: json_text(&e.raw_payload)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let now = ts_to_text(&Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut inserted = 0u64;
        for chunk in rows.chunks(rows_per_stmt(15)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (id, source, external_id, event_type, occurred_at, \
                 ingested_at, raw_payload, storage_key, text, actor_platform, \
                 actor_platform_user_id, plugin_id, plugin_version, correlation_id, created_at) ",
            );
            qb.push_values(chunk, |mut b, r| {
                let e = r.e;
                b.push_bind(&e.id)
                    .push_bind(&e.source)
                    .push_bind(&e.external_id)
                    .push_bind(&e.event_type)
                    .push_bind(&r.occurred_at)
                    .push_bind(&now)
                    .push_bind(&r.payload)
                    .push_bind(&e.storage_key)
                    .push_bind(&e.text)
                    .push_bind(e.actor.as_ref().map(|a| a.0.as_str()))
                    .push_bind(e.actor.as_ref().map(|a| a.1.as_str()))
                    .push_bind(&e.plugin_id)
                    .push_bind(&e.plugin_version)
                    .push_bind(&e.correlation_id)
                    .push_bind(&now);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            inserted += qb
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        Ok(WriteOutcome {
            inserted,
            existing: events.len() as u64 - inserted,
        })
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT id, source, external_id, event_type, occurred_at, raw_payload, storage_key, \
             text, actor_platform, actor_platform_user_id, plugin_id FROM events WHERE 1 = 1",
        );
        if let Some(ids) = &filter.ids {
            let ids = serde_json::to_string(ids)
                .map_err(|e| StorageError::Invalid(format!("event ids: {e}")))?;
            qb.push(" AND id IN (SELECT value FROM json_each(")
                .push_bind(ids)
                .push("))");
        } else {
            if let Some(s) = &filter.source {
                qb.push(" AND source = ").push_bind(s.clone());
            }
            if let Some(p) = &filter.plugin_id {
                qb.push(" AND plugin_id = ").push_bind(p.clone());
            }
            if let Some(t) = &filter.since {
                qb.push(" AND occurred_at >= ").push_bind(ts_to_text(t));
            }
            if let Some(t) = &filter.until {
                qb.push(" AND occurred_at < ").push_bind(ts_to_text(t));
            }
        }
        if let Some(a) = after_id {
            qb.push(" AND id > ").push_bind(a.to_owned());
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.reader).await.map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("raw_payload").map_err(db_err)?;
                let occurred: String = r.try_get("occurred_at").map_err(db_err)?;
                let ap: Option<String> = r.try_get("actor_platform").map_err(db_err)?;
                let au: Option<String> = r.try_get("actor_platform_user_id").map_err(db_err)?;
                Ok(StoredEvent {
                    id: r.try_get("id").map_err(db_err)?,
                    source: r.try_get("source").map_err(db_err)?,
                    external_id: r.try_get("external_id").map_err(db_err)?,
                    event_type: r.try_get("event_type").map_err(db_err)?,
                    occurred_at: ts_from_text(&occurred)?,
                    raw_payload: serde_json::from_str(&payload).map_err(|e| {
                        StorageError::Invalid(format!("stored raw_payload is not JSON: {e}"))
                    })?,
                    storage_key: r.try_get("storage_key").map_err(db_err)?,
                    text: r.try_get("text").map_err(db_err)?,
                    actor: ap.zip(au),
                    plugin_id: r.try_get("plugin_id").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome> {
        let recs = dedup_identities(identities);
        if recs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let metadata = recs
            .iter()
            .map(|r| metadata_json(&r.metadata))
            .collect::<Result<Vec<_>>>()?;
        let accounts: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| (r.platform.as_str(), r.platform_user_id.as_str()))
            .collect();
        let now = ts_to_text(&Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing = Self::count_identities(&mut tx, &accounts).await?;
        let rows: Vec<_> = recs.iter().zip(metadata.iter()).collect();
        for chunk in rows.chunks(rows_per_stmt(12)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO identities (id, platform, platform_user_id, platform_username, \
                 display_name, profile_url, avatar_url, discovered_at, last_verified_at, \
                 metadata, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (r, m)| {
                b.push_bind(uuid::Uuid::new_v4().to_string())
                    .push_bind(&r.platform)
                    .push_bind(&r.platform_user_id)
                    .push_bind(&r.platform_username)
                    .push_bind(&r.display_name)
                    .push_bind(&r.profile_url)
                    .push_bind(&r.avatar_url)
                    .push_bind(&now)
                    .push_bind(&now)
                    .push_bind(*m)
                    .push_bind(&now)
                    .push_bind(&now);
            });
            qb.push(
                " ON CONFLICT (platform, platform_user_id) DO UPDATE SET \
                 platform_username = coalesce(excluded.platform_username, identities.platform_username), \
                 display_name = coalesce(excluded.display_name, identities.display_name), \
                 profile_url = coalesce(excluded.profile_url, identities.profile_url), \
                 avatar_url = coalesce(excluded.avatar_url, identities.avatar_url), \
                 metadata = json_patch(identities.metadata, excluded.metadata), \
                 last_verified_at = excluded.last_verified_at, \
                 updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        let total = recs.len() as u64;
        Ok(WriteOutcome {
            inserted: total - existing.min(total),
            existing: existing.min(total),
        })
    }

    async fn insert_identity_links(&self, links: &[IdentityLinkRecord]) -> Result<WriteOutcome> {
        if links.is_empty() {
            return Ok(WriteOutcome::default());
        }
        for l in links {
            check_link_score(l.confidence_score)?;
        }
        let mut accounts: Vec<(&str, &str)> = links
            .iter()
            .flat_map(|l| {
                [
                    (l.a.0.as_str(), l.a.1.as_str()),
                    (l.b.0.as_str(), l.b.1.as_str()),
                ]
            })
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        let now = ts_to_text(&Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        // Accounts seen only through a link still get an identity row, so the link can
        // reference it; a later observation fills in names.
        for chunk in accounts.chunks(rows_per_stmt(6)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO identities (id, platform, platform_user_id, discovered_at, \
                 created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (p, u)| {
                b.push_bind(uuid::Uuid::new_v4().to_string())
                    .push_bind(*p)
                    .push_bind(*u)
                    .push_bind(&now)
                    .push_bind(&now)
                    .push_bind(&now);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        let mut ids = std::collections::HashMap::with_capacity(accounts.len());
        for chunk in accounts.chunks(rows_per_stmt(2)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT id, platform, platform_user_id FROM identities \
                 WHERE (platform, platform_user_id) IN (VALUES ",
            );
            let mut sep = qb.separated(", ");
            for (p, u) in chunk {
                sep.push("(")
                    .push_bind_unseparated(*p)
                    .push_unseparated(", ");
                sep.push_bind_unseparated(*u).push_unseparated(")");
            }
            qb.push(")");
            for r in qb.build().fetch_all(&mut *tx).await.map_err(db_err)? {
                let id: String = r.try_get(0).map_err(db_err)?;
                let p: String = r.try_get(1).map_err(db_err)?;
                let u: String = r.try_get(2).map_err(db_err)?;
                ids.insert((p, u), id);
            }
        }
        let lookup = |acc: &(String, String)| {
            ids.get(acc).cloned().ok_or_else(|| {
                StorageError::Unavailable(format!(
                    "identity {}:{} vanished mid-write",
                    acc.0, acc.1
                ))
            })
        };
        let mut rows = Vec::with_capacity(links.len());
        for l in links {
            let (a, b) = (lookup(&l.a)?, lookup(&l.b)?);
            let (one, two) = ordered_pair(&a, &b)?;
            rows.push((l, one.to_owned(), two.to_owned()));
        }
        let mut inserted = 0u64;
        for chunk in rows.chunks(rows_per_stmt(10)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO identity_links (id, identity_id_1, identity_id_2, confidence, \
                 link_source, confidence_score, reason, plugin_id, is_active, created_at) ",
            );
            qb.push_values(chunk, |mut b, (l, one, two)| {
                b.push_bind(uuid::Uuid::new_v4().to_string())
                    .push_bind(one)
                    .push_bind(two)
                    .push_bind(&l.confidence)
                    .push_bind(&l.link_source)
                    .push_bind(l.confidence_score)
                    .push_bind(&l.reason)
                    .push_bind(&l.plugin_id)
                    .push_bind(1i32)
                    .push_bind(&now);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            inserted += qb
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        Ok(WriteOutcome {
            inserted,
            existing: links.len() as u64 - inserted,
        })
    }

    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome> {
        if matches.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let now = ts_to_text(&Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let mut inserted = 0u64;
        for chunk in matches.chunks(rows_per_stmt(7)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO keyword_matches (event_id, keyword_id, matched_text, position, \
                 occurrences, plugin_id, created_at) ",
            );
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(&m.event_id)
                    .push_bind(&m.keyword_id)
                    .push_bind(&m.matched_text)
                    .push_bind(m.position)
                    .push_bind(m.occurrences)
                    .push_bind(&m.plugin_id)
                    .push_bind(&now);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            inserted += qb
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(db_err)?;
        Ok(WriteOutcome {
            inserted,
            existing: matches.len() as u64 - inserted,
        })
    }

    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>> {
        let rows = sqlx::query(
            "SELECT id, term, category, match_strategy, regex_pattern, synonyms FROM keywords \
             WHERE is_active = 1 ORDER BY priority DESC, term, id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let synonyms: String = r.try_get("synonyms").map_err(db_err)?;
                Ok(KeywordRecord {
                    id: r.try_get("id").map_err(db_err)?,
                    term: r.try_get("term").map_err(db_err)?,
                    category: r.try_get("category").map_err(db_err)?,
                    match_strategy: r.try_get("match_strategy").map_err(db_err)?,
                    regex_pattern: r.try_get("regex_pattern").map_err(db_err)?,
                    synonyms: serde_json::from_str(&synonyms).map_err(|e| {
                        StorageError::Invalid(format!("stored synonyms are not a JSON list: {e}"))
                    })?,
                })
            })
            .collect()
    }

    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome> {
        let recs = dedup_keywords(keywords);
        if recs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let synonyms = recs
            .iter()
            .map(|k| {
                serde_json::to_string(&k.synonyms)
                    .map_err(|e| StorageError::Invalid(format!("synonyms: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = serde_json::to_string(&recs.iter().map(|k| &k.id).collect::<Vec<_>>())
            .map_err(|e| StorageError::Invalid(format!("keyword ids: {e}")))?;
        let now = ts_to_text(&Utc::now());
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let existing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM keywords WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let rows: Vec<_> = recs.iter().zip(synonyms.iter()).collect();
        for chunk in rows.chunks(rows_per_stmt(8)) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO keywords (id, term, category, match_strategy, regex_pattern, \
                 synonyms, created_at, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (k, s)| {
                b.push_bind(&k.id)
                    .push_bind(&k.term)
                    .push_bind(&k.category)
                    .push_bind(&k.match_strategy)
                    .push_bind(&k.regex_pattern)
                    .push_bind(*s)
                    .push_bind(&now)
                    .push_bind(&now);
            });
            qb.push(
                " ON CONFLICT (id) DO UPDATE SET term = excluded.term, \
                 category = excluded.category, match_strategy = excluded.match_strategy, \
                 regex_pattern = excluded.regex_pattern, synonyms = excluded.synonyms, \
                 updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        let total = recs.len() as u64;
        let existing = u64::try_from(existing).unwrap_or(0).min(total);
        Ok(WriteOutcome {
            inserted: total - existing,
            existing,
        })
    }
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM plugin_kv WHERE namespace = ? AND key = ?")
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)
    }

    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .bind(ts_to_text(&Utc::now()))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM plugin_kv WHERE namespace = ? AND key = ?")
            .bind(namespace)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_keys(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT key FROM plugin_kv WHERE namespace = ");
        qb.push_bind(namespace)
            .push(" AND key >= ")
            .push_bind(prefix);
        if let Some(upper) = prefix_upper_bound(prefix) {
            qb.push(" AND key < ").push_bind(upper);
        }
        qb.push(" ORDER BY key LIMIT ").push_bind(i64::from(limit));
        qb.build_query_scalar()
            .fetch_all(&self.reader)
            .await
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::tests_common as tc;

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

    #[tokio::test]
    async fn batches_larger_than_one_statement_are_chunked() {
        let (_dir, store) = open().await;
        let t = tc::tag();
        let n = rows_per_stmt(15) * 2 + 17;
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
        // An inactive (retracted) link does not block a new active one.
        sqlx::query("UPDATE identity_links SET is_active = 0")
            .execute(store.write_pool())
            .await
            .unwrap();
        assert_eq!(
            store
                .insert_identity_links(&[link("u1", "u2")])
                .await
                .unwrap()
                .inserted,
            1
        );
        assert_eq!(
            store
                .insert_identity_links(&[link("u1", "u2")])
                .await
                .unwrap()
                .existing,
            1
        );
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
