//! drowl's `jobs` table, on a pool of its own.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::errors::pg_err;
use super::{DATABASE_URL_VAR, PostgresConfig, sql};
use crate::storage::rows::{column, job_rows};
use crate::storage::{JobStore, JobUpdate, Result, StorageError};

/// drowl's `jobs` table in PostgreSQL, on a pool of its own.
///
/// The daemon's mirror writes from one task and its reconciler from another, so a few
/// connections suffice. With a pool apart from the other stores', a burst of job writes
/// never makes a mirror write wait for a connection, nor the other way round.
#[derive(Debug, Clone)]
pub struct PostgresJobStore {
    pool: PgPool,
}

impl PostgresJobStore {
    /// Connections the mirror's pool may open.
    const MAX_CONNECTIONS: u32 = 4;

    /// The `jobs` table through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A pool of its own on the database `cfg` names, connected on first use: commands
    /// that never mirror a job never open it. [`super::PostgresStore::connect_with`] is what
    /// checks, at start-up, that the database answers.
    pub fn connect_lazy(cfg: &PostgresConfig) -> Result<Self> {
        let opts = PgConnectOptions::from_str(&cfg.url).map_err(|e| {
            StorageError::Config(format!(
                "{DATABASE_URL_VAR} ({}) is not a valid PostgreSQL URL: {e}",
                cfg.redacted_url()
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(Self::MAX_CONNECTIONS)
            .connect_lazy_with(opts);
        Ok(Self::new(pool))
    }

    /// The pool, for tests and tools that read the table.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl JobStore for PostgresJobStore {
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<()> {
        let rows = job_rows(updates);
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::JOBS_UPSERT)
            .bind(column(&rows, |r| r.id))
            .bind(column(&rows, |r| r.job_type))
            .bind(column(&rows, |r| r.name))
            .bind(column(&rows, |r| r.status))
            .bind(column(&rows, |r| r.priority))
            .bind(column(&rows, |r| r.input.as_str()))
            .bind(column(&rows, |r| r.output.as_deref()))
            .bind(column(&rows, |r| r.error_message))
            .bind(column(&rows, |r| r.error_code))
            .bind(column(&rows, |r| r.error_details.as_deref()))
            .bind(column(&rows, |r| r.started_at))
            .bind(column(&rows, |r| r.completed_at))
            .bind(column(&rows, |r| r.timeout_ms))
            .bind(column(&rows, |r| r.retry_attempt))
            .bind(column(&rows, |r| r.retry_max_attempts))
            .bind(column(&rows, |r| r.retry_backoff_strategy))
            .bind(column(&rows, |r| r.retry_last_at))
            .bind(column(&rows, |r| r.plugin_id))
            .bind(column(&rows, |r| r.created_at))
            .bind(column(&rows, |r| r.user_id))
            .bind(column(&rows, |r| r.correlation_id))
            .bind(column(&rows, |r| r.parent_job_id))
            .bind(column(&rows, |r| r.tags.as_deref()))
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn unsettled(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(sql::JOBS_UNSETTLED)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)
    }

    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<()> {
        sqlx::query(sql::JOBS_MARK_LOST)
            .bind(id)
            .bind(code)
            .bind(message)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
