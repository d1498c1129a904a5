//! drowl's `jobs` table, in the same file and through the same writer as everything else.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::errors::db_err;
use super::{SqliteStore, sql};
use crate::storage::rows::{job_rows, json_rows};
use crate::storage::{JobStore, JobUpdate, Result};

/// The `jobs` table goes through the one writer too (see the module docs); its
/// timestamps are RFC 3339 text, as the mirror has always written them.
#[async_trait]
impl JobStore for SqliteStore {
    async fn record_all(&self, updates: &[JobUpdate]) -> Result<()> {
        let rows = job_rows(updates);
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(sql::JOBS_UPSERT)
            .bind(json_rows(&rows)?)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn unsettled(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(sql::JOBS_UNSETTLED)
            .bind(before.to_rfc3339())
            .bind(limit)
            .fetch_all(&self.writer)
            .await
            .map_err(db_err)
    }

    async fn mark_lost(&self, id: &str, code: &str, message: &str) -> Result<()> {
        sqlx::query(sql::JOBS_MARK_LOST)
            .bind(id)
            .bind(code)
            .bind(message)
            .bind(Utc::now().to_rfc3339())
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
