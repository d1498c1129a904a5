//! Installed plugins, configured and ready to run.
//!
//! Configuration, grants and budgets are resolved once per plugin, when it is
//! registered: a bad config key or an invalid outbound host is reported then, not in the
//! middle of a job.

use std::collections::HashMap;
use std::sync::Arc;

use crate::capabilities::http::egress::{EgressClient, EgressLimits, EgressPolicy};
use crate::capabilities::{LoadedPlugin, PluginEnv, Redactor, ResolvedConfig};
use crate::runtime::{Budget, Role};
use crate::storage::Storage;

pub use crate::policy::{HostPolicy, PluginSettings};

/// Why a plugin could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Its configuration does not fit its manifest.
    #[error("plugin `{plugin}`: {source}")]
    Config {
        /// Plugin id.
        plugin: String,
        /// The problem.
        #[source]
        source: crate::capabilities::ConfigError,
    },
    /// Its egress policy is invalid.
    #[error("plugin `{plugin}`: {message}")]
    Egress {
        /// Plugin id.
        plugin: String,
        /// The problem.
        message: String,
    },
    /// Two plugins have the same id, or ids drowl's API addresses alike (`x` and
    /// `x-plugin`).
    #[error(
        "two plugins are installed as `{0}`; plugin ids must be unique (`x` and `x-plugin` count as one)"
    )]
    Duplicate(String),
}

/// The id drowl's API addresses a plugin by: it writes `github-plugin` for `github`, and
/// the executor accepts both, so `x` and `x-plugin` are one plugin as far as jobs go.
pub fn addressed_as(id: &str) -> &str {
    id.strip_suffix("-plugin").unwrap_or(id)
}

/// A plugin ready to run: compiled, configured, with its environment and budget.
#[derive(Debug)]
pub struct ReadyPlugin {
    /// The compiled plugin.
    pub loaded: LoadedPlugin,
    /// What it may reach.
    pub env: Arc<PluginEnv>,
    /// Its budget (its requests capped by the operator).
    pub budget: Budget,
}

impl ReadyPlugin {
    /// Configures a loaded plugin under the id its manifest declares: for `run-plugin`
    /// and tests, where the caller names the file and passes its config explicitly. The
    /// daemon installs plugins under the operator's ids ([`Self::prepare_as`], through
    /// [`super::install`]).
    pub fn prepare(
        loaded: LoadedPlugin,
        policy: &HostPolicy,
        storage: &Storage,
    ) -> Result<Self, RegistryError> {
        let id = loaded.manifest.id.clone();
        Self::prepare_as(id, loaded, policy, storage)
    }

    /// Configures a loaded plugin under `id`, the id the operator installed it as: its
    /// settings, secrets, grants, key-value namespace, object prefix and cursors are
    /// those of `id`, whatever the plugin's manifest says.
    pub fn prepare_as(
        id: String,
        loaded: LoadedPlugin,
        policy: &HostPolicy,
        storage: &Storage,
    ) -> Result<Self, RegistryError> {
        let settings = policy.plugins.get(&id).cloned().unwrap_or_default();
        let config =
            ResolvedConfig::resolve(&loaded.manifest, &settings.config).map_err(|source| {
                RegistryError::Config {
                    plugin: id.clone(),
                    source,
                }
            })?;
        let r = &loaded.manifest.resources;
        let budget = Budget::resolve(
            &policy.caps,
            r.max_memory_bytes,
            r.timeout_ms,
            r.max_http_requests,
        );
        let mut grants = policy.default_grants.clone();
        grants.extend(settings.grants.iter().cloned());
        let limits = EgressLimits {
            max_requests_per_job: budget.max_http_requests,
            ..policy.egress_limits
        };
        let egress_policy = EgressPolicy::new(
            &loaded.manifest.outbound_hosts,
            &grants,
            &config.values_map(),
            policy.allowed_networks.clone(),
            limits,
        )
        .map_err(|e| RegistryError::Egress {
            plugin: id.clone(),
            message: e.to_string(),
        })?;
        let egress = EgressClient::new(egress_policy).map_err(|e| RegistryError::Egress {
            plugin: id.clone(),
            message: e.to_string(),
        })?;
        // The manifest's secrets, and whatever the operator says is secret: a manifest
        // that declares a token a plain string does not get to have it printed.
        let redactor = Redactor::new(
            config
                .secrets
                .values()
                .map(String::as_str)
                .chain(settings.secret_values()),
        );
        let env = Arc::new(PluginEnv {
            plugin_id: id,
            plugin_version: loaded.manifest.version.clone(),
            config: Arc::new(config),
            redactor: Arc::new(redactor),
            kv: storage.kv.clone(),
            objects: storage.objects.clone(),
            egress,
            follow_up_grants: policy
                .default_follow_ups
                .iter()
                .chain(&settings.follow_ups)
                .cloned()
                .collect(),
        });
        Ok(Self {
            loaded,
            env,
            budget,
        })
    }

    /// The id the plugin runs under (the operator's, see [`Self::prepare_as`]).
    pub fn id(&self) -> &str {
        &self.env.plugin_id
    }

    /// Its world.
    pub fn role(&self) -> Role {
        self.loaded.role
    }
}

/// Plugins by id.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: HashMap<String, Arc<ReadyPlugin>>,
}

impl Registry {
    /// Adds a plugin; ids must be unique, `x` and `x-plugin` counting as one (drowl's
    /// API addresses them alike).
    pub fn insert(&mut self, plugin: ReadyPlugin) -> Result<Arc<ReadyPlugin>, RegistryError> {
        let id = plugin.id().to_owned();
        if self
            .plugins
            .keys()
            .any(|k| addressed_as(k) == addressed_as(&id))
        {
            return Err(RegistryError::Duplicate(id));
        }
        let p = Arc::new(plugin);
        self.plugins.insert(id, p.clone());
        Ok(p)
    }

    /// A plugin by id.
    pub fn get(&self, id: &str) -> Option<Arc<ReadyPlugin>> {
        self.plugins.get(id).cloned()
    }

    /// Installed ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.plugins.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The only plugin of a role, when exactly one is installed (used by `run-plugin`).
    pub fn only(&self) -> Option<Arc<ReadyPlugin>> {
        if self.plugins.len() == 1 {
            self.plugins.values().next().cloned()
        } else {
            None
        }
    }
}
