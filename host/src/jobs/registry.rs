//! Installed plugins, configured and ready to run.
//!
//! Configuration, grants and budgets are resolved once per plugin, when it is
//! registered: a bad config key or an invalid outbound host is reported then, not in the
//! middle of a job.
//!
//! # Who may write for a source or platform
//!
//! A manifest's `sources` are what a plugin *claims*; the registry decides what it
//! *owns* ([`Registry::scope`]), so that no plugin can store events in another
//! connector's name (the real connector would then count them as duplicates) or rewrite
//! another platform's accounts:
//!
//! - A declared source that no other installed plugin declares is the plugin's own.
//! - A source that several installed plugins declare belongs only to those the operator
//!   grants it to (plugins.json `sources`, or `--allow-source`); while it is granted to
//!   none of them, none may emit it, and the registry logs an error naming them when the
//!   second registers. No one wins by loading first or by picking a file name.
//! - Identities (event actors, observations, enrichment identities and links) are
//!   accepted for the platforms named like the plugin's owned sources, and for the
//!   platforms the operator grants it (plugins.json `platforms`, or `--allow-platform`).
//!
//! What a plugin returns outside its scope fails the job as `invalid-output` naming the
//! field and the value.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::output::OutputScope;
use super::webhook::{WEBHOOK_SECRET_KEY, WebhookSecret};
use crate::capabilities::http::egress::{EgressClient, EgressLimits, EgressPolicy};
use crate::capabilities::{
    JobScope, LoadedPlugin, PluginEnv, PluginInstance, PluginRuntime, Redactor, ResolvedConfig,
};
use crate::runtime::{Budget, CallError, Role};
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
    /// The operator granted a source the plugin does not declare (a typo, or the wrong
    /// plugin).
    #[error(
        "plugin `{plugin}`: source `{source_name}` is granted but its manifest does not declare it (declared: {declared})"
    )]
    UndeclaredSource {
        /// Plugin id.
        plugin: String,
        /// The granted source.
        source_name: String,
        /// What the manifest declares.
        declared: String,
    },
}

/// The sources and platforms the operator granted one plugin (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct OutputGrants {
    /// Declared sources granted explicitly.
    pub sources: BTreeSet<String>,
    /// Platforms granted beyond those of its sources.
    pub platforms: BTreeSet<String>,
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
    /// The sources and platforms granted to it.
    pub grants: OutputGrants,
    /// The key its webhook deliveries are signed with (config `webhook-secret`), when it
    /// receives webhooks and the operator set one. Kept here, out of the plugin's config:
    /// the host verifies deliveries, the plugin never reads the key.
    pub webhook_secret: Option<WebhookSecret>,
}

impl ReadyPlugin {
    /// A fresh instance of this plugin on `runtime` for the job `scope`, with the plugin's
    /// configuration and budget: how the executor starts every job, and what the benches
    /// time.
    pub async fn instantiate(
        &self,
        runtime: &PluginRuntime,
        scope: JobScope<'_>,
    ) -> Result<PluginInstance, CallError> {
        runtime
            .instantiate(&self.loaded, self.env.clone(), scope, &self.budget)
            .await
    }

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
        Self::prepare_with(id, loaded, &settings, policy, storage)
    }

    /// [`Self::prepare_as`] with `settings` for `id` instead of the policy's: for plugins
    /// from the `plugins` table, whose config comes from their row (see
    /// [`super::catalog`]).
    pub fn prepare_with(
        id: String,
        loaded: LoadedPlugin,
        settings: &PluginSettings,
        policy: &HostPolicy,
        storage: &Storage,
    ) -> Result<Self, RegistryError> {
        // `webhook-secret` is the host's, for a plugin that receives webhooks: accepted
        // whether or not the manifest declares it (checked against the declaration when
        // there is one), then taken out of what the plugin can read.
        let mut given = settings.config.clone();
        let webhook_secret = if loaded.receives_webhooks() {
            let value = given.get(WEBHOOK_SECRET_KEY).cloned();
            if loaded.manifest.field(WEBHOOK_SECRET_KEY).is_none() {
                given.remove(WEBHOOK_SECRET_KEY);
            }
            value
        } else {
            None
        };
        let mut config = ResolvedConfig::resolve(&loaded.manifest, &given).map_err(|source| {
            RegistryError::Config {
                plugin: id.clone(),
                source,
            }
        })?;
        if loaded.receives_webhooks() {
            config.secrets.remove(WEBHOOK_SECRET_KEY);
            config.values.remove(WEBHOOK_SECRET_KEY);
        }
        let declared = &loaded.manifest.sources;
        for s in &settings.sources {
            if !declared.contains(s) {
                return Err(RegistryError::UndeclaredSource {
                    plugin: id,
                    source_name: s.clone(),
                    declared: declared.join(", "),
                });
            }
        }
        // Grants to every plugin apply to those that declare the source.
        let output_grants = OutputGrants {
            sources: settings
                .sources
                .iter()
                .chain(
                    policy
                        .default_sources
                        .iter()
                        .filter(|s| declared.contains(s)),
                )
                .cloned()
                .collect(),
            platforms: settings
                .platforms
                .iter()
                .chain(&policy.default_platforms)
                .cloned()
                .collect(),
        };
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
        let values = config.values_map();
        let declared = declared_hosts(&loaded.manifest, &values);
        let egress_policy = EgressPolicy::new(
            &declared,
            &grants,
            &values,
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
                .chain(settings.secret_values())
                .chain(webhook_secret.as_deref()),
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
            identities: (loaded.role == Role::Resolution).then(|| storage.events.clone()),
        });
        Ok(Self {
            loaded,
            env,
            budget,
            grants: output_grants,
            webhook_secret: webhook_secret.filter(|s| !s.is_empty()).map(WebhookSecret),
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
    /// Why ids the operator knows of do not run (disabled, removed, failed to load), for
    /// the failure of a job that names one.
    unavailable: HashMap<String, String>,
}

/// The registry jobs run against, replaced whole when plugins change while the daemon
/// runs (see [`super::catalog`]).
///
/// A job reads it once ([`Self::current`]) and keeps the `Arc<ReadyPlugin>` it found for
/// its whole run, so a job started before an upgrade or a disable finishes on the build
/// and settings it started with; jobs that start after [`Self::replace`] see the new
/// registry. Every job reads it: [`ArcSwap`] loads without a lock, so jobs starting at
/// once never wait on each other or on a swap.
#[derive(Debug, Clone, Default)]
pub struct SharedRegistry(Arc<ArcSwap<Registry>>);

impl SharedRegistry {
    /// A shared registry holding `registry`.
    pub fn new(registry: Registry) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(registry)))
    }

    /// The registry as it is now.
    pub fn current(&self) -> Arc<Registry> {
        self.0.load_full()
    }

    /// Replaces the registry for jobs that start from now on.
    pub fn replace(&self, registry: Registry) {
        self.0.store(Arc::new(registry));
    }
}

impl Registry {
    /// Adds a plugin; ids must be unique, `x` and `x-plugin` counting as one (drowl's
    /// API addresses them alike). A source it declares that an installed plugin
    /// declares too, granted to neither, is logged as an error naming both: until the
    /// operator grants it, neither may emit it.
    pub fn insert(&mut self, plugin: ReadyPlugin) -> Result<Arc<ReadyPlugin>, RegistryError> {
        self.insert_shared(Arc::new(plugin))
    }

    /// [`Self::insert`] for a plugin already shared: a registry rebuilt after a change
    /// keeps the plugins that did not change, compiled and configured as they were.
    pub fn insert_shared(
        &mut self,
        plugin: Arc<ReadyPlugin>,
    ) -> Result<Arc<ReadyPlugin>, RegistryError> {
        let id = plugin.id().to_owned();
        if self
            .plugins
            .keys()
            .any(|k| addressed_as(k) == addressed_as(&id))
        {
            return Err(RegistryError::Duplicate(id));
        }
        for source in &plugin.loaded.manifest.sources {
            for other in self.plugins.values() {
                if !other.loaded.manifest.sources.contains(source) {
                    continue;
                }
                let granted = |p: &ReadyPlugin| p.grants.sources.contains(source);
                if !granted(&plugin) && !granted(other) {
                    tracing::error!(
                        source = %source,
                        "plugins `{}` and `{id}` both declare source `{source}`, and it is granted to neither: neither may emit it until the operator grants it to the one that owns it (plugins.json `sources`, or --allow-source)",
                        other.id()
                    );
                }
            }
        }
        self.unavailable.remove(&id);
        self.plugins.insert(id, plugin.clone());
        Ok(plugin)
    }

    /// Records why `id` does not run (`disabled in the plugins table`, ...), so a job
    /// naming it fails saying so rather than "not installed".
    pub fn set_unavailable(&mut self, id: &str, reason: impl Into<String>) {
        if !self.plugins.contains_key(id) {
            self.unavailable.insert(id.to_owned(), reason.into());
        }
    }

    /// Why `id` (or `x` for `x-plugin`) does not run, when the operator knows of it.
    pub fn unavailable(&self, id: &str) -> Option<&str> {
        self.unavailable
            .get(id)
            .or_else(|| {
                id.strip_suffix("-plugin")
                    .and_then(|bare| self.unavailable.get(bare))
            })
            .map(String::as_str)
    }

    /// A plugin by id.
    pub fn get(&self, id: &str) -> Option<Arc<ReadyPlugin>> {
        self.plugins.get(id).cloned()
    }

    /// Plugin `id`, also when written `<id>-plugin` as drowl's API writes ids.
    pub fn addressed(&self, id: &str) -> Option<Arc<ReadyPlugin>> {
        self.get(id)
            .or_else(|| id.strip_suffix("-plugin").and_then(|bare| self.get(bare)))
    }

    /// The world of plugin `id` (drowl's API may write it as `<id>-plugin`), if installed.
    pub fn role_of(&self, id: &str) -> Option<Role> {
        self.addressed(id).map(|p| p.role())
    }

    /// Installed ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.plugins.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// What `plugin` may write for: the sources it owns and the identity platforms they
    /// and the operator's grants give it (see the module docs).
    pub(crate) fn scope(&self, plugin: &ReadyPlugin) -> OutputScope {
        let manifest = &plugin.loaded.manifest;
        let mut scope = OutputScope {
            plugin: manifest.id.clone(),
            declared: manifest.sources.clone(),
            platforms: plugin.grants.platforms.clone(),
            ..OutputScope::default()
        };
        for source in &manifest.sources {
            let mut others: Vec<String> = self
                .plugins
                .values()
                .filter(|o| o.id() != manifest.id && o.loaded.manifest.sources.contains(source))
                .map(|o| o.id().to_owned())
                .collect();
            if others.is_empty() || plugin.grants.sources.contains(source) {
                scope.sources.insert(source.clone());
                scope.platforms.insert(source.clone());
            } else {
                others.sort();
                scope.contested.insert(source.clone(), others);
            }
        }
        scope
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

/// The manifest's outbound hosts as the egress policy should read them: a `{{key}}`
/// template naming an *optional* config field the operator left unset declares nothing,
/// so a plugin whose extra hosts are optional (the feed plugin's `feeds`) loads and
/// reaches only its fixed hosts. A template naming a required or undeclared field is
/// kept, and [`EgressPolicy::new`] refuses it, naming the field: that is a mistake the
/// operator must hear about at load.
fn declared_hosts(
    manifest: &crate::manifest::Manifest,
    values: &std::collections::HashMap<String, String>,
) -> Vec<String> {
    manifest
        .outbound_hosts
        .iter()
        .filter(|entry| {
            let Some(key) = entry
                .trim()
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .map(str::trim)
            else {
                return true;
            };
            let optional = manifest.config.iter().any(|f| f.key == key && !f.required);
            let unset = values.get(key).is_none_or(|v| v.trim().is_empty());
            !(optional && unset)
        })
        .cloned()
        .collect()
}
