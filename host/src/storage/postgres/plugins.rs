//! drowl's `plugins` table and the installed components, in PostgreSQL (see
//! `storage::plugins`).

use async_trait::async_trait;

use super::PostgresStore;
use super::errors::pg_err;
use crate::storage::plugins::{PluginComponent, PluginRow, PluginStore, RawPluginRow, json_text};
use crate::storage::{Result, StorageError};

/// The registry's queries, one file each in `queries/`.
mod sql {
    pub(super) const LIST: &str = include_str!("queries/plugins_list.sql");
    pub(super) const GET: &str = include_str!("queries/plugins_get.sql");
    pub(super) const INSTALL: &str = include_str!("queries/plugins_install.sql");
    pub(super) const UPGRADE: &str = include_str!("queries/plugins_upgrade.sql");
    pub(super) const SET_ENABLED: &str = include_str!("queries/plugins_set_enabled.sql");
    pub(super) const UNINSTALL: &str = include_str!("queries/plugins_uninstall.sql");
    pub(super) const RECORD_LOAD: &str = include_str!("queries/plugins_record_load.sql");
    pub(super) const PUT_COMPONENT: &str = include_str!("queries/plugin_components_put.sql");
    pub(super) const GET_COMPONENT: &str = include_str!("queries/plugin_components_get.sql");
}

#[async_trait]
impl PluginStore for PostgresStore {
    async fn plugins(&self) -> Result<Vec<PluginRow>> {
        sqlx::query_as::<_, RawPluginRow>(sql::LIST)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?
            .into_iter()
            .map(PluginRow::try_from)
            .collect()
    }

    async fn plugin(&self, id: &str) -> Result<Option<PluginRow>> {
        sqlx::query_as::<_, RawPluginRow>(sql::GET)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)?
            .map(PluginRow::try_from)
            .transpose()
    }

    async fn install_plugin(
        &self,
        id: &str,
        c: &PluginComponent,
        config: &serde_json::Value,
        enabled: bool,
    ) -> Result<bool> {
        let row: Option<String> = sqlx::query_scalar(sql::INSTALL)
            .bind(id)
            .bind(&c.name)
            .bind(&c.version)
            .bind(&c.description)
            .bind(&c.author_name)
            .bind(&c.author_email)
            .bind(&c.author_url)
            .bind(json_text(&c.manifest))
            .bind(json_text(config))
            .bind(enabled)
            .bind(&c.sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(row.is_some())
    }

    async fn upgrade_plugin(
        &self,
        id: &str,
        c: &PluginComponent,
        config: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let done = sqlx::query(sql::UPGRADE)
            .bind(id)
            .bind(&c.name)
            .bind(&c.version)
            .bind(&c.description)
            .bind(&c.author_name)
            .bind(&c.author_email)
            .bind(&c.author_url)
            .bind(json_text(&c.manifest))
            .bind(config.map(json_text))
            .bind(&c.sha256)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_plugin_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        let done = sqlx::query(sql::SET_ENABLED)
            .bind(id)
            .bind(enabled)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn uninstall_plugin(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(sql::UNINSTALL)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_plugin_load(&self, id: &str, error: Option<&str>) -> Result<()> {
        sqlx::query(sql::RECORD_LOAD)
            .bind(id)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        let size = i64::try_from(bytes.len())
            .map_err(|_| StorageError::Invalid("component larger than 2^63 bytes".into()))?;
        sqlx::query(sql::PUT_COMPONENT)
            .bind(sha256)
            .bind(bytes)
            .bind(size)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar(sql::GET_COMPONENT)
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)
    }
}
