//! drowl's `plugins` table as the host's plugin registry, and the components it installs.
//!
//! drowl's API and UI read and write `plugins` (id, name, version, manifest, config,
//! `is_installed`, `is_enabled`, `last_error`, ...); the host adds one column,
//! `component_sha256`, naming the component the row runs, and one table,
//! `plugin_components`, holding installed components by content
//! (`migrations/0006_plugin_registry.sql`, embedded `0005`). `drowl-host plugin install`
//! writes rows through [`PluginStore`]; `serve` reads them on every poll and writes
//! `last_error` when a row's plugin fails to load.
//!
//! A row counts as installed while `is_installed` is true; `remove` clears it (and
//! `is_enabled`) rather than deleting the row, as drowl's own model does, and a later
//! `install` of the id takes the row over. Components are never deleted by an upgrade:
//! a daemon that has not yet seen the upgrade, or a job still running the old build,
//! may need them.

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, StorageConfig};

/// One row of `plugins`, as drowl's columns and the host's hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRow {
    /// The plugin id (`github`), the key of everything the plugin keeps.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Its version (semver), from its manifest.
    pub version: String,
    /// What it does.
    pub description: Option<String>,
    /// Who wrote it.
    pub author_name: Option<String>,
    /// Their e-mail.
    pub author_email: Option<String>,
    /// Their web page.
    pub author_url: Option<String>,
    /// The manifest, in the JSON shape `plugin check` prints.
    pub manifest: serde_json::Value,
    /// Configuration values as written: `${VAR}` references are kept as references, so
    /// secrets are read from the daemon's environment and never stored.
    pub config: serde_json::Value,
    /// Whether jobs may run it.
    pub is_enabled: bool,
    /// Whether it is installed (`remove` clears this and keeps the row).
    pub is_installed: bool,
    /// When it was (last) installed.
    pub installed_at: Option<DateTime<Utc>>,
    /// When it was last enabled.
    pub enabled_at: Option<DateTime<Utc>>,
    /// When it was last disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it last failed to load in a daemon; cleared once it loads.
    pub last_error: Option<String>,
    /// When that was.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// The component installed for it (`plugin_components.sha256`); `None` for a row
    /// drowl's API wrote without one, whose component is the file of that id in the
    /// daemon's plugins directory.
    pub component_sha256: Option<String>,
}

impl PluginRow {
    /// Whether a daemon runs it: installed and enabled.
    pub fn runs(&self) -> bool {
        self.is_installed && self.is_enabled
    }
}

/// What a component says about itself, as a row records it on install and upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginComponent {
    /// Human-readable name.
    pub name: String,
    /// Version (semver).
    pub version: String,
    /// What it does.
    pub description: Option<String>,
    /// Author's name.
    pub author_name: Option<String>,
    /// Author's e-mail.
    pub author_email: Option<String>,
    /// Author's web page.
    pub author_url: Option<String>,
    /// The whole manifest as JSON.
    pub manifest: serde_json::Value,
    /// SHA-256 of the component (hex, lowercase), stored with [`PluginStore::put_component`]
    /// first.
    pub sha256: String,
}

/// drowl's `plugins` table and the installed components.
#[async_trait]
pub trait PluginStore: Send + Sync + 'static {
    /// Every row, installed or not, ordered by id.
    async fn plugins(&self) -> Result<Vec<PluginRow>>;

    /// One row.
    async fn plugin(&self, id: &str) -> Result<Option<PluginRow>>;

    /// Records `component` installed as `id` with `config` (a JSON object), enabled or
    /// not. Returns `false`, changing nothing, when `id` is installed already (its
    /// component is replaced with [`Self::upgrade_plugin`]); a row that was removed
    /// (`is_installed` false) is taken over.
    async fn install_plugin(
        &self,
        id: &str,
        component: &PluginComponent,
        config: &serde_json::Value,
        enabled: bool,
    ) -> Result<bool>;

    /// Replaces the component, manifest, name and version of installed plugin `id`, and
    /// its config when `config` is given; whether it is enabled does not change. Returns
    /// `false` when `id` is not installed.
    async fn upgrade_plugin(
        &self,
        id: &str,
        component: &PluginComponent,
        config: Option<&serde_json::Value>,
    ) -> Result<bool>;

    /// Enables or disables installed plugin `id`, stamping `enabled_at` or `disabled_at`
    /// when that changes it. Returns `false` when `id` is not installed.
    async fn set_plugin_enabled(&self, id: &str, enabled: bool) -> Result<bool>;

    /// Marks `id` not installed (and not enabled), keeping the row. Returns `false` when
    /// it was not installed.
    async fn uninstall_plugin(&self, id: &str) -> Result<bool>;

    /// Records how loading `id` went in a daemon: `Some(error)` sets `last_error` (and
    /// `last_error_at`), `None` clears both. Writes only when `last_error` changes, so
    /// a daemon that polls writes nothing while nothing happens.
    async fn record_plugin_load(&self, id: &str, error: Option<&str>) -> Result<()>;

    /// Stores a component under its SHA-256 (hex, lowercase); storing it again is a no-op.
    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()>;

    /// A stored component's bytes.
    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>>;
}

/// Opens the registry `config` names (PostgreSQL with `DATABASE_URL`, else the embedded
/// SQLite under `data_dir`) and nothing else, for commands that only manage plugins: no
/// S3, no `jobs` pool. PostgreSQL must be migrated (`drowl-host migrate`).
pub async fn open_plugin_store(
    config: &StorageConfig,
    data_dir: &std::path::Path,
) -> Result<Arc<dyn PluginStore>> {
    match &config.postgres {
        Some(pg) => {
            let db = super::postgres::PostgresStore::connect_with(pg).await?;
            if config.migrate_on_start {
                db.migrate().await?;
            } else {
                db.check_schema().await?;
            }
            Ok(Arc::new(db))
        }
        None => Ok(Arc::new(
            super::sqlite::SqliteStore::open(&data_dir.join("drowl.db")).await?,
        )),
    }
}

/// A `plugins` row as both SQL backends read it (JSON columns as text), before
/// [`PluginRow::try_from`] parses them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawPluginRow {
    id: String,
    name: String,
    version: String,
    description: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    author_url: Option<String>,
    manifest: String,
    config: String,
    is_enabled: bool,
    is_installed: bool,
    installed_at: Option<DateTime<Utc>>,
    enabled_at: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    component_sha256: Option<String>,
}

impl TryFrom<RawPluginRow> for PluginRow {
    type Error = super::StorageError;

    fn try_from(r: RawPluginRow) -> Result<Self> {
        let json = |column: &str, text: &str| {
            serde_json::from_str(text).map_err(|e| {
                super::StorageError::Invalid(format!(
                    "plugins.{column} of `{}` is not JSON: {e}",
                    r.id
                ))
            })
        };
        Ok(Self {
            manifest: json("manifest", &r.manifest)?,
            config: json("config", &r.config)?,
            id: r.id,
            name: r.name,
            version: r.version,
            description: r.description,
            author_name: r.author_name,
            author_email: r.author_email,
            author_url: r.author_url,
            is_enabled: r.is_enabled,
            is_installed: r.is_installed,
            installed_at: r.installed_at,
            enabled_at: r.enabled_at,
            disabled_at: r.disabled_at,
            last_error: r.last_error,
            last_error_at: r.last_error_at,
            updated_at: r.updated_at,
            component_sha256: r.component_sha256,
        })
    }
}

/// `value` as the text a JSON column is bound as.
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}
