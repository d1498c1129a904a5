//! The production event and key-value store: PostgreSQL, shared with drowl's API and UI.
//!
//! The schema lives in the repository's top-level `migrations/` (drowl's tables plus the
//! host's additions) and is applied by [`PostgresStore::migrate`]. Every batch is one
//! statement: arrays are bound per column and expanded with `UNNEST`, so a page of 1,000
//! events costs one round trip, and `ON CONFLICT DO NOTHING` on (`source`, `external_id`)
//! makes re-runs and concurrent duplicates harmless (PostgreSQL's speculative insertion is
//! safe under concurrency). Rows are sorted by their conflict key before insertion so two
//! overlapping batches lock rows in the same order and cannot deadlock each other.
//!
//! [`InsertMode::Copy`] is the alternative measured by `examples/bench_ingest.rs`: `COPY`
//! into a per-connection temporary table, then one `INSERT ... SELECT ... ON CONFLICT`.
//!
//! Errors are classified for the job layer: connection trouble is
//! [`StorageError::Unavailable`] (the job is retried, which is safe), bad data is
//! [`StorageError::Invalid`], and a wrong URL, credentials or missing schema is
//! [`StorageError::Config`].

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Row};

use super::common::{
    check_link_score, dedup_identities, dedup_keywords, metadata_json, ordered_pair,
    prefix_upper_bound,
};
use super::{
    EventFilter, EventStore, IdentityLinkRecord, IdentityRecord, KeywordMatchRecord, KeywordRecord,
    KvStore, NewEvent, Result, StorageError, StoredEvent, WriteOutcome,
};

/// drowl's schema plus the host's tables, compiled into the binary.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

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

/// A migration compiled into this binary, as `drowl-host migrate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// The number the file name starts with (`0002_host_tables.sql` is 2).
    pub version: i64,
    /// The rest of the file name, as sqlx reads it (`host tables`).
    pub description: String,
}

impl std::fmt::Display for MigrationInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04} {}", self.version, self.description)
    }
}

/// `postgres://user@host:port/db`, without the password, for messages and logs.
fn redact_url(url: &str) -> String {
    crate::config::redact_url(url, "<unparseable URL>")
}

/// Maps an sqlx error from a running store to the storage error the job layer understands.
fn pg_err(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = format!("{} (SQLSTATE {code})", d.message());
            match code.get(..2).unwrap_or("") {
                // connection exception, insufficient resources, operator intervention
                // (shutdown, cancel), system error, serialization failure / deadlock.
                "08" | "53" | "57" | "58" | "40" | "55" => StorageError::Unavailable(msg),
                // auth, missing database, undefined table/column: the schema or the URL.
                "28" | "3D" | "42" | "0A" => StorageError::Config(format!(
                    "{msg}; check {DATABASE_URL_VAR} and run `drowl-host migrate`"
                )),
                _ => StorageError::Invalid(msg),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => {
            StorageError::Unavailable(format!("PostgreSQL ({DATABASE_URL_VAR}): {e}"))
        }
        sqlx::Error::Configuration(_) | sqlx::Error::Migrate(_) => {
            StorageError::Config(e.to_string())
        }
        _ => StorageError::Invalid(e.to_string()),
    }
}

fn json_text(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::Invalid(format!("unserialisable JSON: {e}")))
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

    /// Applies the migrations in `migrations/`; applied ones are skipped, so running it on
    /// every start is harmless. Concurrent runs are serialised by sqlx's advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => match pg_err(inner) {
                StorageError::Unavailable(m) => StorageError::Unavailable(m),
                other => StorageError::Config(format!("migration failed: {other}")),
            },
            other => StorageError::Config(format!("migration failed: {other}")),
        })
    }

    /// The migrations this binary carries that the database has not applied yet, oldest
    /// first: what [`Self::migrate`] would apply.
    ///
    /// Reads sqlx's own bookkeeping table (`_sqlx_migrations`), so the answer agrees with
    /// what `migrate` does. A migration applied with different contents, or left half
    /// applied by a failed run, is a [`StorageError::Config`]: applying more on top of it
    /// would not give the schema this binary expects.
    pub async fn pending_migrations(&self) -> Result<Vec<MigrationInfo>> {
        let has_table: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(pg_err)?;
        let applied: std::collections::HashMap<i64, (Vec<u8>, bool)> = if has_table {
            sqlx::query_as::<_, (i64, Vec<u8>, bool)>(
                "SELECT version, checksum, success FROM _sqlx_migrations",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?
            .into_iter()
            .map(|(v, c, ok)| (v, (c, ok)))
            .collect()
        } else {
            std::collections::HashMap::new()
        };
        let mut pending = Vec::new();
        for m in MIGRATOR.iter() {
            if m.migration_type.is_down_migration() {
                continue;
            }
            let info = MigrationInfo {
                version: m.version,
                description: m.description.to_string(),
            };
            match applied.get(&m.version) {
                None => pending.push(info),
                Some((_, false)) => {
                    return Err(StorageError::Config(format!(
                        "migration {info} failed part-way in the database at {DATABASE_URL_VAR} \
                         ({}); repair it by hand, then run `drowl-host migrate`",
                        self.shown_url
                    )));
                }
                Some((checksum, true)) if checksum.as_slice() != &*m.checksum => {
                    return Err(StorageError::Config(format!(
                        "migration {info} applied in the database at {DATABASE_URL_VAR} ({}) \
                         differs from the one in this drowl-host; was the file edited after \
                         it was released?",
                        self.shown_url
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(pending)
    }

    /// Fails unless every migration of this binary is applied, saying how to apply them.
    ///
    /// The daemon runs this at start-up when it was not asked to migrate, so a missing
    /// schema is reported once, naming the command to run, instead of as an "undefined
    /// table" error in the first job.
    pub async fn check_schema(&self) -> Result<()> {
        let pending = self.pending_migrations().await?;
        if pending.is_empty() {
            return Ok(());
        }
        let list = pending
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(StorageError::Config(format!(
            "the PostgreSQL database at {DATABASE_URL_VAR} ({}) lacks {} of drowl-host's \
             migrations ({list}); run `drowl-host migrate` first, or start the daemon with \
             --migrate",
            self.shown_url,
            pending.len()
        )))
    }

    /// The pool, for host modules that keep their own tables here (`jobs`, `plugins`,
    /// analytics rollups).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn insert_events_unnest(&self, events: &[&NewEvent], payloads: &[String]) -> Result<u64> {
        let col = |f: fn(&NewEvent) -> Option<&str>| -> Vec<Option<&str>> {
            events.iter().map(|e| f(e)).collect()
        };
        let res = sqlx::query(
            "INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload, \
             storage_key, text, actor_platform, actor_platform_user_id, plugin_id, \
             plugin_version, correlation_id) \
             SELECT id, source, external_id, event_type, occurred_at, raw_payload::jsonb, \
             storage_key, text, ap, au, plugin_id, plugin_version, correlation_id \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
             $12::text[], $13::text[]) AS t(id, source, external_id, event_type, occurred_at, \
             raw_payload, storage_key, text, ap, au, plugin_id, plugin_version, correlation_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(col(|e| Some(&e.id)))
        .bind(col(|e| Some(&e.source)))
        .bind(col(|e| Some(&e.external_id)))
        .bind(col(|e| Some(&e.event_type)))
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(payloads)
        .bind(col(|e| e.storage_key.as_deref()))
        .bind(col(|e| e.text.as_deref()))
        .bind(col(|e| e.actor.as_ref().map(|a| a.0.as_str())))
        .bind(col(|e| e.actor.as_ref().map(|a| a.1.as_str())))
        .bind(col(|e| Some(&e.plugin_id)))
        .bind(col(|e| Some(&e.plugin_version)))
        .bind(col(|e| e.correlation_id.as_deref()))
        .execute(&self.pool)
        .await
        .map_err(pg_err)?;
        Ok(res.rows_affected())
    }

    async fn insert_events_copy(&self, events: &[&NewEvent], payloads: &[String]) -> Result<u64> {
        let mut data = Vec::with_capacity(payloads.iter().map(|p| p.len() + 200).sum());
        for (e, p) in events.iter().zip(payloads) {
            let occurred = e
                .occurred_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let fields: [Option<&str>; 13] = [
                Some(&e.id),
                Some(&e.source),
                Some(&e.external_id),
                Some(&e.event_type),
                Some(&occurred),
                Some(p),
                e.storage_key.as_deref(),
                e.text.as_deref(),
                e.actor.as_ref().map(|a| a.0.as_str()),
                e.actor.as_ref().map(|a| a.1.as_str()),
                Some(&e.plugin_id),
                Some(&e.plugin_version),
                e.correlation_id.as_deref(),
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
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS events_stage (id text, source text, \
             external_id text, event_type text, occurred_at timestamptz, raw_payload jsonb, \
             storage_key text, text text, ap text, au text, plugin_id text, \
             plugin_version text, correlation_id text) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        let mut copy = tx
            .copy_in_raw("COPY events_stage FROM STDIN (FORMAT text)")
            .await
            .map_err(pg_err)?;
        copy.send(data).await.map_err(pg_err)?;
        copy.finish().await.map_err(pg_err)?;
        let res = sqlx::query(
            "INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload, \
             storage_key, text, actor_platform, actor_platform_user_id, plugin_id, \
             plugin_version, correlation_id) \
             SELECT * FROM events_stage ON CONFLICT DO NOTHING",
        )
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

/// Explains a failed first connection, naming `DATABASE_URL`.
fn connect_err(e: sqlx::Error, shown: &str) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.get(..2).unwrap_or("") {
                "28" => StorageError::Config(format!(
                    "PostgreSQL refused the credentials in {DATABASE_URL_VAR} ({shown}): {}",
                    d.message()
                )),
                "3D" => StorageError::Config(format!(
                    "the database named in {DATABASE_URL_VAR} ({shown}) does not exist: {}",
                    d.message()
                )),
                _ => match pg_err(e) {
                    StorageError::Invalid(m) | StorageError::Config(m) => StorageError::Config(
                        format!("PostgreSQL at {DATABASE_URL_VAR} ({shown}) refused: {m}"),
                    ),
                    StorageError::Unavailable(m) => StorageError::Unavailable(format!(
                        "PostgreSQL at {DATABASE_URL_VAR} ({shown}) is not ready: {m}"
                    )),
                },
            }
        }
        sqlx::Error::Configuration(_) => {
            StorageError::Config(format!("{DATABASE_URL_VAR} ({shown}) is not usable: {e}"))
        }
        _ => StorageError::Unavailable(format!(
            "cannot reach PostgreSQL at {DATABASE_URL_VAR} ({shown}): {e}"
        )),
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn insert_events(&self, events: &[NewEvent]) -> Result<WriteOutcome> {
        if events.is_empty() {
            return Ok(WriteOutcome::default());
        }
        // Same order for every writer: overlapping batches then wait instead of deadlocking.
        let mut sorted: Vec<&NewEvent> = events.iter().collect();
        sorted.sort_by(|a, b| (&a.source, &a.external_id).cmp(&(&b.source, &b.external_id)));
        let payloads = sorted
            .iter()
            .map(|e| json_text(&e.raw_payload))
            .collect::<Result<Vec<_>>>()?;
        let inserted = match self.insert_mode {
            InsertMode::Unnest => self.insert_events_unnest(&sorted, &payloads).await?,
            InsertMode::Copy => self.insert_events_copy(&sorted, &payloads).await?,
        };
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
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT id, source, external_id, event_type, occurred_at, raw_payload, storage_key, \
             text, actor_platform, actor_platform_user_id, plugin_id FROM events WHERE true",
        );
        if let Some(ids) = &filter.ids {
            qb.push(" AND id = ANY(").push_bind(ids.clone()).push(")");
        } else {
            if let Some(s) = &filter.source {
                qb.push(" AND source = ").push_bind(s.clone());
            }
            if let Some(p) = &filter.plugin_id {
                qb.push(" AND plugin_id = ").push_bind(p.clone());
            }
            if let Some(t) = filter.since {
                qb.push(" AND occurred_at >= ").push_bind(t);
            }
            if let Some(t) = filter.until {
                qb.push(" AND occurred_at < ").push_bind(t);
            }
        }
        if let Some(a) = after_id {
            qb.push(" AND id > ").push_bind(a.to_owned());
        }
        // `events.id` is declared `COLLATE "C"`: byte order, as in SQLite, and the
        // primary key serves both the `id >` bound and the ordering.
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                let ap: Option<String> = r.try_get("actor_platform").map_err(pg_err)?;
                let au: Option<String> = r.try_get("actor_platform_user_id").map_err(pg_err)?;
                Ok(StoredEvent {
                    id: r.try_get("id").map_err(pg_err)?,
                    source: r.try_get("source").map_err(pg_err)?,
                    external_id: r
                        .try_get::<Option<String>, _>("external_id")
                        .map_err(pg_err)?
                        .unwrap_or_default(),
                    event_type: r.try_get("event_type").map_err(pg_err)?,
                    occurred_at: r.try_get("occurred_at").map_err(pg_err)?,
                    raw_payload: r.try_get("raw_payload").map_err(pg_err)?,
                    storage_key: r.try_get("storage_key").map_err(pg_err)?,
                    text: r.try_get("text").map_err(pg_err)?,
                    actor: ap.zip(au),
                    plugin_id: r.try_get("plugin_id").map_err(pg_err)?,
                })
            })
            .collect()
    }

    async fn upsert_identities(&self, identities: &[IdentityRecord]) -> Result<WriteOutcome> {
        let mut recs = dedup_identities(identities);
        if recs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        recs.sort_by(|a, b| {
            (&a.platform, &a.platform_user_id).cmp(&(&b.platform, &b.platform_user_id))
        });
        let meta = recs
            .iter()
            .map(|r| metadata_json(&r.metadata))
            .collect::<Result<Vec<_>>>()?;
        let col = |f: fn(&IdentityRecord) -> Option<&str>| -> Vec<Option<&str>> {
            recs.iter().map(|r| f(r)).collect()
        };
        let flags: Vec<bool> = sqlx::query_scalar(
            "INSERT INTO identities (platform, platform_user_id, platform_username, \
             display_name, profile_url, avatar_url, metadata, last_verified_at) \
             SELECT p, u, n, d, pr, av, m::jsonb, now() \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[]) AS t(p, u, n, d, pr, av, m) \
             ON CONFLICT (platform, platform_user_id) DO UPDATE SET \
             platform_username = coalesce(EXCLUDED.platform_username, identities.platform_username), \
             display_name = coalesce(EXCLUDED.display_name, identities.display_name), \
             profile_url = coalesce(EXCLUDED.profile_url, identities.profile_url), \
             avatar_url = coalesce(EXCLUDED.avatar_url, identities.avatar_url), \
             metadata = identities.metadata || EXCLUDED.metadata, \
             last_verified_at = now(), updated_at = now() \
             RETURNING (xmax = 0)",
        )
        .bind(col(|r| Some(&r.platform)))
        .bind(col(|r| Some(&r.platform_user_id)))
        .bind(col(|r| r.platform_username.as_deref()))
        .bind(col(|r| r.display_name.as_deref()))
        .bind(col(|r| r.profile_url.as_deref()))
        .bind(col(|r| r.avatar_url.as_deref()))
        .bind(&meta)
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        let inserted = flags.iter().filter(|f| **f).count() as u64;
        Ok(WriteOutcome {
            inserted,
            existing: flags.len() as u64 - inserted,
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
        let platforms: Vec<&str> = accounts.iter().map(|a| a.0).collect();
        let users: Vec<&str> = accounts.iter().map(|a| a.1).collect();
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        // Accounts seen only through a link get an identity row so the link can reference
        // it; a later observation fills in the names.
        sqlx::query(
            "INSERT INTO identities (platform, platform_user_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&platforms)
        .bind(&users)
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT i.id, i.platform, i.platform_user_id FROM identities i \
             JOIN UNNEST($1::text[], $2::text[]) AS t(p, u) \
             ON i.platform = t.p AND i.platform_user_id = t.u",
        )
        .bind(&platforms)
        .bind(&users)
        .fetch_all(&mut *tx)
        .await
        .map_err(pg_err)?;
        let ids: std::collections::HashMap<(String, String), String> =
            rows.into_iter().map(|(id, p, u)| ((p, u), id)).collect();
        let lookup = |acc: &(String, String)| {
            ids.get(acc).cloned().ok_or_else(|| {
                StorageError::Unavailable(format!(
                    "identity {}:{} vanished mid-write",
                    acc.0, acc.1
                ))
            })
        };
        let mut pairs = Vec::with_capacity(links.len());
        for l in links {
            let (a, b) = (lookup(&l.a)?, lookup(&l.b)?);
            let (one, two) = ordered_pair(&a, &b)?;
            pairs.push((one.to_owned(), two.to_owned(), l));
        }
        pairs.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        let res = sqlx::query(
            "INSERT INTO identity_links (identity_id_1, identity_id_2, confidence, link_source, \
             confidence_score, reason, plugin_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::real[], \
             $6::text[], $7::text[]) \
             ON CONFLICT (identity_id_1, identity_id_2) WHERE is_active DO NOTHING",
        )
        .bind(pairs.iter().map(|p| p.0.as_str()).collect::<Vec<_>>())
        .bind(pairs.iter().map(|p| p.1.as_str()).collect::<Vec<_>>())
        .bind(
            pairs
                .iter()
                .map(|p| p.2.confidence.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            pairs
                .iter()
                .map(|p| p.2.link_source.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            pairs
                .iter()
                .map(|p| p.2.confidence_score)
                .collect::<Vec<_>>(),
        )
        .bind(
            pairs
                .iter()
                .map(|p| p.2.reason.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            pairs
                .iter()
                .map(|p| p.2.plugin_id.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        let inserted = res.rows_affected();
        Ok(WriteOutcome {
            inserted,
            existing: links.len() as u64 - inserted,
        })
    }

    async fn insert_keyword_matches(&self, matches: &[KeywordMatchRecord]) -> Result<WriteOutcome> {
        if matches.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut ms: Vec<&KeywordMatchRecord> = matches.iter().collect();
        ms.sort_by(|a, b| (&a.event_id, &a.keyword_id).cmp(&(&b.event_id, &b.keyword_id)));
        let res = sqlx::query(
            "INSERT INTO keyword_matches (event_id, keyword_id, matched_text, position, \
             occurrences, plugin_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], \
             $6::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(ms.iter().map(|m| m.event_id.as_str()).collect::<Vec<_>>())
        .bind(ms.iter().map(|m| m.keyword_id.as_str()).collect::<Vec<_>>())
        .bind(
            ms.iter()
                .map(|m| m.matched_text.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(ms.iter().map(|m| m.position).collect::<Vec<_>>())
        .bind(ms.iter().map(|m| m.occurrences).collect::<Vec<_>>())
        .bind(ms.iter().map(|m| m.plugin_id.as_str()).collect::<Vec<_>>())
        .execute(&self.pool)
        .await
        .map_err(pg_err)?;
        let inserted = res.rows_affected();
        Ok(WriteOutcome {
            inserted,
            existing: matches.len() as u64 - inserted,
        })
    }

    async fn active_keywords(&self) -> Result<Vec<KeywordRecord>> {
        let rows = sqlx::query(
            "SELECT id, term, category, match_strategy, regex_pattern, synonyms FROM keywords \
             WHERE is_active ORDER BY priority DESC, term, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok(KeywordRecord {
                    id: r.try_get("id").map_err(pg_err)?,
                    term: r.try_get("term").map_err(pg_err)?,
                    category: r.try_get("category").map_err(pg_err)?,
                    match_strategy: r.try_get("match_strategy").map_err(pg_err)?,
                    regex_pattern: r.try_get("regex_pattern").map_err(pg_err)?,
                    synonyms: r.try_get("synonyms").map_err(pg_err)?,
                })
            })
            .collect()
    }

    async fn upsert_keywords(&self, keywords: &[KeywordRecord]) -> Result<WriteOutcome> {
        let mut recs = dedup_keywords(keywords);
        if recs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        recs.sort_by(|a, b| a.id.cmp(&b.id));
        // Synonym lists differ in length, which a 2-D array cannot hold: pass JSON.
        let synonyms = recs
            .iter()
            .map(|k| {
                serde_json::to_string(&k.synonyms)
                    .map_err(|e| StorageError::Invalid(format!("synonyms: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let flags: Vec<bool> = sqlx::query_scalar(
            "INSERT INTO keywords (id, term, category, match_strategy, regex_pattern, synonyms) \
             SELECT id, term, category, ms, rp, \
             ARRAY(SELECT jsonb_array_elements_text(s::jsonb)) \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             AS t(id, term, category, ms, rp, s) \
             ON CONFLICT (id) DO UPDATE SET term = EXCLUDED.term, \
             category = EXCLUDED.category, match_strategy = EXCLUDED.match_strategy, \
             regex_pattern = EXCLUDED.regex_pattern, synonyms = EXCLUDED.synonyms, \
             updated_at = now() \
             RETURNING (xmax = 0)",
        )
        .bind(recs.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
        .bind(recs.iter().map(|k| k.term.as_str()).collect::<Vec<_>>())
        .bind(recs.iter().map(|k| k.category.as_str()).collect::<Vec<_>>())
        .bind(
            recs.iter()
                .map(|k| k.match_strategy.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            recs.iter()
                .map(|k| k.regex_pattern.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(&synonyms)
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        let inserted = flags.iter().filter(|f| **f).count() as u64;
        Ok(WriteOutcome {
            inserted,
            existing: flags.len() as u64 - inserted,
        })
    }
}

#[async_trait]
impl KvStore for PostgresStore {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM plugin_kv WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)
    }

    async fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_kv (namespace, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, \
             updated_at = now()",
        )
        .bind(namespace)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM plugin_kv WHERE namespace = $1 AND key = $2")
            .bind(namespace)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn list_keys(&self, namespace: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT key FROM plugin_kv WHERE namespace = ");
        qb.push_bind(namespace)
            .push(" AND key >= ")
            .push_bind(prefix);
        if let Some(upper) = prefix_upper_bound(prefix) {
            qb.push(" AND key < ").push_bind(upper);
        }
        qb.push(" ORDER BY key LIMIT ").push_bind(i64::from(limit));
        qb.build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)
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
