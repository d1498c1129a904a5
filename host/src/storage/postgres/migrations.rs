//! The schema in the repository's top-level `migrations/`: applying it, and saying what a
//! database still lacks.

use sqlx::migrate::Migrator;

use super::errors::pg_err;
use super::{DATABASE_URL_VAR, PostgresStore, sql};
use crate::storage::{Result, StorageError};

/// drowl's schema plus the host's tables, compiled into the binary.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

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

impl PostgresStore {
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
        let has_table: bool = sqlx::query_scalar(sql::MIGRATIONS_TABLE_EXISTS)
            .fetch_one(&self.pool)
            .await
            .map_err(pg_err)?;
        let applied: std::collections::HashMap<i64, (Vec<u8>, bool)> = if has_table {
            sqlx::query_as::<_, (i64, Vec<u8>, bool)>(sql::APPLIED_MIGRATIONS)
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
}
