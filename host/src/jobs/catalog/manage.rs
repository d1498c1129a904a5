//! What `drowl-host plugin install|upgrade|enable|disable|remove|list` do to the
//! registry.
//!
//! Installing checks the component as the daemon would load it (a component, a drowl
//! world, a contract version this host supports, a valid manifest, imports it provides),
//! compiles it into the data directory's compiled-code cache (wasmtime's, keyed by
//! wasmtime's version and the engine's settings, which `serve` with the same data
//! directory reuses), stores it by content in the database and in the data directory,
//! and only then records the row. Nothing is recorded for a component that would not
//! load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::components::{ComponentError, ComponentStore, sha256_hex};
use super::settings;
use crate::capabilities::{LoadedPlugin, PluginRuntime};
use crate::ids::{BadPluginId, validate_plugin_id};
use crate::runtime::LoadError;
use crate::storage::{PluginComponent, PluginRow, PluginStore, StorageError};

/// Why a registry command failed; each says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The component file cannot be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The problem.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a loadable plugin.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// The id asked for is not a plugin id.
    #[error(transparent)]
    BadId(#[from] BadPluginId),
    /// The component declares another id than the one it is installed as.
    #[error(
        "{file} declares plugin `{declared}`, not `{given}`; a plugin is installed under the id its manifest declares (drop --id, or install the right file)"
    )]
    IdMismatch {
        /// The file.
        file: PathBuf,
        /// The id asked for.
        given: String,
        /// The id its manifest declares.
        declared: String,
    },
    /// The id is installed already.
    #[error(
        "plugin `{id}` is already installed (version {version}); replace it with `drowl-host plugin upgrade {id} FILE`"
    )]
    Taken {
        /// The id.
        id: String,
        /// The installed version.
        version: String,
    },
    /// The id is not installed.
    #[error("plugin `{id}` is not installed; installed plugins: {installed}")]
    Unknown {
        /// The id.
        id: String,
        /// What is installed, comma-separated (or `none`).
        installed: String,
    },
    /// The config does not fit the manifest.
    #[error("plugin `{id}`: {message}")]
    Config {
        /// The id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The component cannot be kept.
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an install or upgrade recorded.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    /// The plugin id.
    pub id: String,
    /// Its version now.
    pub version: String,
    /// The version it replaced, for an upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// Its world.
    pub world: &'static str,
    /// The contract version it targets.
    pub wit_version: String,
    /// The component's SHA-256.
    pub sha256: String,
    /// Whether jobs may run it.
    pub enabled: bool,
    /// Nothing changed: the row already had this component (and config).
    pub unchanged: bool,
}

/// The registry commands, over one database, data directory and engine.
pub struct Manager {
    runtime: PluginRuntime,
    db: Arc<dyn PluginStore>,
    components: ComponentStore,
}

impl Manager {
    /// Commands on `db`, keeping components in `data_dir` and compiling them with
    /// `runtime` (whose engine should cache compiled code in `data_dir/cache`, as
    /// `serve`'s does).
    pub fn new(runtime: PluginRuntime, db: Arc<dyn PluginStore>, data_dir: &Path) -> Self {
        Self {
            runtime,
            db,
            components: ComponentStore::new(data_dir),
        }
    }

    /// Every row, installed or not.
    pub async fn list(&self) -> Result<Vec<PluginRow>, ManageError> {
        Ok(self.db.plugins().await?)
    }

    /// Installs `file` as `id` (its manifest's id when `None`) with `config`, enabled
    /// or not. Refused when the id is installed (use [`Self::upgrade`]).
    pub async fn install(
        &self,
        file: &Path,
        id: Option<&str>,
        config: &BTreeMap<String, String>,
        enabled: bool,
    ) -> Result<Installed, ManageError> {
        let (bytes, loaded) = self.load(file).await?;
        let declared = loaded.manifest.id.clone();
        let id = match id {
            Some(given) => {
                validate_plugin_id(given)?;
                if given != declared {
                    return Err(ManageError::IdMismatch {
                        file: file.to_path_buf(),
                        given: given.to_owned(),
                        declared,
                    });
                }
                given.to_owned()
            }
            None => declared,
        };
        if let Some(row) = self.db.plugin(&id).await?.filter(|r| r.is_installed) {
            return Err(ManageError::Taken {
                id,
                version: row.version,
            });
        }
        settings::check(&loaded.manifest, loaded.receives_webhooks(), config).map_err(
            |message| ManageError::Config {
                id: id.clone(),
                message,
            },
        )?;
        let component = self.keep(&bytes, &loaded).await?;
        if !self
            .db
            .install_plugin(&id, &component, &settings::to_json(config), enabled)
            .await?
        {
            // Installed by someone else between the check and now.
            let version = self
                .db
                .plugin(&id)
                .await?
                .map(|r| r.version)
                .unwrap_or_default();
            return Err(ManageError::Taken { id, version });
        }
        Ok(installed(id, &loaded, None, enabled, false))
    }

    /// Replaces installed plugin `id`'s component with `file`, and its config with
    /// `config` when given (otherwise the installed config, which must fit the new
    /// manifest, is kept). The old component stays stored: jobs that started on it
    /// finish on it.
    pub async fn upgrade(
        &self,
        id: &str,
        file: &Path,
        config: Option<&BTreeMap<String, String>>,
    ) -> Result<Installed, ManageError> {
        validate_plugin_id(id)?;
        let Some(row) = self.db.plugin(id).await?.filter(|r| r.is_installed) else {
            return Err(self.unknown(id).await);
        };
        let (bytes, loaded) = self.load(file).await?;
        if loaded.manifest.id != id {
            return Err(ManageError::IdMismatch {
                file: file.to_path_buf(),
                given: id.to_owned(),
                declared: loaded.manifest.id.clone(),
            });
        }
        let kept;
        let effective = match config {
            Some(c) => c,
            None => {
                kept = settings::from_json(&row.config).map_err(|message| ManageError::Config {
                    id: id.to_owned(),
                    message,
                })?;
                &kept
            }
        };
        settings::check(&loaded.manifest, loaded.receives_webhooks(), effective).map_err(|message| ManageError::Config {
            id: id.to_owned(),
            message: match config {
                Some(_) => message,
                None => format!(
                    "the installed config does not fit version {}: {message}; give the whole new config with --config",
                    loaded.manifest.version
                ),
            },
        })?;
        let same_component = row.component_sha256.as_deref() == Some(loaded.sha256.as_str());
        let config_json = config.map(settings::to_json);
        let unchanged = same_component && config_json.as_ref().is_none_or(|c| *c == row.config);
        if !unchanged {
            let component = self.keep(&bytes, &loaded).await?;
            if !self
                .db
                .upgrade_plugin(id, &component, config_json.as_ref())
                .await?
            {
                return Err(self.unknown(id).await);
            }
        }
        Ok(installed(
            id.to_owned(),
            &loaded,
            Some(row.version),
            row.is_enabled,
            unchanged,
        ))
    }

    /// Enables or disables installed plugin `id`.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<PluginRow, ManageError> {
        if !self.db.set_plugin_enabled(id, enabled).await? {
            return Err(self.unknown(id).await);
        }
        self.row(id).await
    }

    /// Removes installed plugin `id` (the row stays, not installed; components stay).
    pub async fn remove(&self, id: &str) -> Result<PluginRow, ManageError> {
        if !self.db.uninstall_plugin(id).await? {
            return Err(self.unknown(id).await);
        }
        self.row(id).await
    }

    async fn row(&self, id: &str) -> Result<PluginRow, ManageError> {
        match self.db.plugin(id).await? {
            Some(row) => Ok(row),
            None => Err(self.unknown(id).await),
        }
    }

    /// The refusal for an id that is not installed, listing what is.
    async fn unknown(&self, id: &str) -> ManageError {
        let installed: Vec<String> = self
            .db
            .plugins()
            .await
            .map(|rows| {
                rows.into_iter()
                    .filter(|r| r.is_installed)
                    .map(|r| r.id)
                    .collect()
            })
            .unwrap_or_default();
        ManageError::Unknown {
            id: id.to_owned(),
            installed: if installed.is_empty() {
                "none".into()
            } else {
                installed.join(", ")
            },
        }
    }

    /// Reads and loads `file` as the daemon would: checked, compiled (into the cache),
    /// described.
    async fn load(&self, file: &Path) -> Result<(Vec<u8>, LoadedPlugin), ManageError> {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|source| ManageError::Read {
                file: file.to_path_buf(),
                source,
            })?;
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let loaded = self.runtime.load_bytes(&bytes, &name).await?;
        Ok((bytes, loaded))
    }

    /// Stores the component in the database and the data directory; what its row records.
    async fn keep(
        &self,
        bytes: &[u8],
        loaded: &LoadedPlugin,
    ) -> Result<PluginComponent, ManageError> {
        let sha256 = sha256_hex(bytes);
        self.db.put_component(&sha256, bytes).await?;
        self.components.put(&sha256, bytes)?;
        let m = &loaded.manifest;
        let manifest = serde_json::to_value(m)
            .map_err(|e| StorageError::Invalid(format!("manifest of `{}`: {e}", m.id)))?;
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(PluginComponent {
            name: m.name.clone(),
            version: m.version.clone(),
            description: text(&m.description),
            author_name: text(&m.author.name),
            author_email: m.author.email.clone(),
            author_url: m.author.url.clone(),
            manifest,
            sha256,
        })
    }
}

fn installed(
    id: String,
    loaded: &LoadedPlugin,
    previous_version: Option<String>,
    enabled: bool,
    unchanged: bool,
) -> Installed {
    Installed {
        id,
        version: loaded.manifest.version.clone(),
        previous_version,
        world: loaded.world(),
        wit_version: loaded.wit_version.clone(),
        sha256: loaded.sha256.clone(),
        enabled,
        unchanged,
    }
}
