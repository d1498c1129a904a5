//! The registry in memory, for unit tests, with the SQL backends' rules.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::Utc;

use super::{PluginComponent, PluginRow, PluginStore};
use crate::storage::{Result, StorageError};

/// `plugins` and `plugin_components` in memory. For tests only.
#[derive(Debug, Default)]
pub struct MemoryPluginStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rows: BTreeMap<String, PluginRow>,
    components: BTreeMap<String, Vec<u8>>,
}

impl MemoryPluginStore {
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StorageError::Unavailable("memory store poisoned by a panic".into()))
    }

    /// Inserts or replaces a row as drowl's API would, without any check (tests).
    pub fn put_row(&self, row: PluginRow) -> Result<()> {
        self.lock()?.rows.insert(row.id.clone(), row);
        Ok(())
    }
}

fn apply(row: &mut PluginRow, c: &PluginComponent) {
    row.name.clone_from(&c.name);
    row.version.clone_from(&c.version);
    row.description.clone_from(&c.description);
    row.author_name.clone_from(&c.author_name);
    row.author_email.clone_from(&c.author_email);
    row.author_url.clone_from(&c.author_url);
    row.manifest = c.manifest.clone();
    row.component_sha256 = Some(c.sha256.clone());
}

#[async_trait]
impl PluginStore for MemoryPluginStore {
    async fn plugins(&self) -> Result<Vec<PluginRow>> {
        Ok(self.lock()?.rows.values().cloned().collect())
    }

    async fn plugin(&self, id: &str) -> Result<Option<PluginRow>> {
        Ok(self.lock()?.rows.get(id).cloned())
    }

    async fn install_plugin(
        &self,
        id: &str,
        c: &PluginComponent,
        config: &serde_json::Value,
        enabled: bool,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        if s.rows.get(id).is_some_and(|r| r.is_installed) {
            return Ok(false);
        }
        let now = Utc::now();
        let mut row = PluginRow {
            id: id.to_owned(),
            name: String::new(),
            version: String::new(),
            description: None,
            author_name: None,
            author_email: None,
            author_url: None,
            manifest: serde_json::Value::Null,
            config: config.clone(),
            is_enabled: enabled,
            is_installed: true,
            installed_at: Some(now),
            enabled_at: enabled.then_some(now),
            disabled_at: (!enabled).then_some(now),
            last_error: None,
            last_error_at: None,
            updated_at: now,
            component_sha256: None,
        };
        apply(&mut row, c);
        s.rows.insert(id.to_owned(), row);
        Ok(true)
    }

    async fn upgrade_plugin(
        &self,
        id: &str,
        c: &PluginComponent,
        config: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        let Some(row) = s.rows.get_mut(id).filter(|r| r.is_installed) else {
            return Ok(false);
        };
        apply(row, c);
        if let Some(config) = config {
            row.config = config.clone();
        }
        row.updated_at = Utc::now();
        Ok(true)
    }

    async fn set_plugin_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        let mut s = self.lock()?;
        let Some(row) = s.rows.get_mut(id).filter(|r| r.is_installed) else {
            return Ok(false);
        };
        let now = Utc::now();
        if enabled && !row.is_enabled {
            row.enabled_at = Some(now);
        }
        if !enabled && row.is_enabled {
            row.disabled_at = Some(now);
        }
        row.is_enabled = enabled;
        row.updated_at = now;
        Ok(true)
    }

    async fn uninstall_plugin(&self, id: &str) -> Result<bool> {
        let mut s = self.lock()?;
        let Some(row) = s.rows.get_mut(id).filter(|r| r.is_installed) else {
            return Ok(false);
        };
        let now = Utc::now();
        if row.is_enabled {
            row.disabled_at = Some(now);
        }
        row.is_installed = false;
        row.is_enabled = false;
        row.updated_at = now;
        Ok(true)
    }

    async fn record_plugin_load(&self, id: &str, error: Option<&str>) -> Result<()> {
        let mut s = self.lock()?;
        if let Some(row) = s.rows.get_mut(id)
            && row.last_error.as_deref() != error
        {
            row.last_error = error.map(str::to_owned);
            row.last_error_at = error.map(|_| Utc::now());
        }
        Ok(())
    }

    async fn put_component(&self, sha256: &str, bytes: &[u8]) -> Result<()> {
        self.lock()?
            .components
            .entry(sha256.to_owned())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    async fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.components.get(sha256).cloned())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_registry_follows_the_shared_rules() {
        super::super::conformance::plugin_rows_follow_the_rules(
            &super::MemoryPluginStore::default(),
        )
        .await;
    }
}
