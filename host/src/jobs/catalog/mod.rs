//! drowl's `plugins` table as the daemon's registry, next to the plugins directory, kept
//! current while the daemon runs.
//!
//! # Which plugins run
//!
//! A daemon runs the plugins of two sources, decided per id:
//!
//! 1. A `plugins` row decides for its id whenever there is one. It runs only while
//!    installed and enabled (`is_installed`, `is_enabled`), with its `config` (over the
//!    `plugins.json` entry's; `${VAR}` references read from the daemon's environment).
//!    Its component is the one `drowl-host plugin install` recorded (`component_sha256`,
//!    fetched from the database into the data directory's store when this machine lacks
//!    it); a row drowl's API wrote without one runs the plugins directory's file of its
//!    id. A directory file whose id a row with a component has (or addresses alike,
//!    `x` and `x-plugin`) is not run.
//! 2. A file in the plugins directory with no row runs as before the registry existed:
//!    id from its name or a `plugins.json` pin, config from `plugins.json`.
//!
//! Grants (hosts, sources, platforms, follow-ups) stay the operator's, in `plugins.json`
//! and the command line: the table, which drowl's API writes, can choose which plugins
//! run and their config, never widen what they may reach.
//!
//! # Changes while running
//!
//! [`Catalog::watch`] reads the table and lists the directory every poll interval. An
//! install, upgrade, config change, enable, disable or removal, by the CLI or by drowl's
//! API directly in SQL, and a file added, replaced or deleted in the directory, loads
//! what changed (a config change re-prepares the compiled plugin without compiling it
//! again) and then swaps the registry whole ([`SharedRegistry`]): a job holds the plugin
//! it started with until it ends, so it finishes on that build and config; jobs that
//! start after the swap run the new one. A disabled or removed plugin's new jobs fail
//! as `plugin-not-found`, saying so and what brings it back; they stay failed in the
//! queue (and the `jobs` table), to be retried once it runs again.
//!
//! # Load errors
//!
//! A row whose plugin fails to load (not a valid component, a manifest declaring another
//! id, a config that does not fit, an unset `${VAR}`, a component no one has) gets the
//! reason in `last_error`, cleared once it loads. The previous build keeps serving when
//! there was one: an upgrade to a broken build, or a config change that does not fit,
//! never takes a working plugin away. A failed load is retried when its row or file
//! changes, not on every poll. With several daemons on one database, each writes what
//! it saw, the last to load or fail deciding the column. At start, a problem with the plugins directory's files
//! (two files for one id, a pinned digest, a manifest declaring another id) still stops
//! the daemon, as it always has; while it runs such a problem is logged and the
//! directory's previous state kept.

pub mod components;
pub mod manage;
pub mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use self::components::{ComponentError, ComponentStore, is_sha256};
use super::install::{InstallError, InstallPlan};
use super::registry::{HostPolicy, ReadyPlugin, Registry, SharedRegistry, addressed_as};
use crate::capabilities::{LoadedPlugin, PluginRuntime};
use crate::ids::validate_plugin_id;
use crate::storage::{PluginRow, Storage, StorageError};

/// What a daemon's catalog is built from.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// The plugins directory (`serve --plugins`).
    pub plugins_dir: PathBuf,
    /// The data directory, whose `components/` holds installed components.
    pub data_dir: PathBuf,
    /// Budgets, grants and the `plugins.json` settings.
    pub policy: HostPolicy,
    /// Components loaded at once.
    pub parallel_loads: usize,
}

/// Why the daemon cannot start with its plugins.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The plugins directory cannot be installed as it is.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// The `plugins` table cannot be read.
    #[error("cannot read the plugins table: {0}")]
    Table(#[source] StorageError),
}

/// Where an id's component comes from, as it was when last seen: a change is a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    /// Installed through the table: this digest.
    Stored(String),
    /// A file of the plugins directory.
    File {
        path: PathBuf,
        len: u64,
        modified: Option<SystemTime>,
    },
}

/// What should run under one id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    component: Component,
    /// The row's config as written, when the id has a row.
    row_config: Option<BTreeMap<String, String>>,
}

/// A plugin that runs, and what it was built from.
struct Running {
    wanted: Wanted,
    loaded: LoadedPlugin,
    ready: Arc<ReadyPlugin>,
}

/// One file of the plugins directory as listed.
type FileState = (PathBuf, u64, Option<SystemTime>);

/// The daemon's plugins: what runs, what failed, and how to bring both up to date.
pub struct Catalog {
    runtime: PluginRuntime,
    storage: Storage,
    components: ComponentStore,
    settings: CatalogSettings,
    shared: SharedRegistry,
    running: BTreeMap<String, Running>,
    /// Loads that failed, with what they were attempted for (retried when that changes).
    failed: BTreeMap<String, (Wanted, String)>,
    /// Why ids the operator knows of do not run, as the registry last said.
    unavailable: BTreeMap<String, String>,
    /// What was last written to each row's `last_error`.
    reported: BTreeMap<String, Option<String>>,
    /// The plugins directory as last listed (`None`: missing), and the plan made from it.
    dir_state: Option<Option<Vec<FileState>>>,
    plan: Option<InstallPlan>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("running", &self.running.keys().collect::<Vec<_>>())
            .field("failed", &self.failed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Loads what the table and the plugins directory say should run, and writes each
    /// row's `last_error`. Fails on a plugins-directory problem or an unreadable table;
    /// a plugin that fails to load is reported and left out.
    pub async fn start(
        runtime: PluginRuntime,
        storage: Storage,
        settings: CatalogSettings,
    ) -> Result<Self, CatalogError> {
        let mut catalog = Self {
            components: ComponentStore::new(&settings.data_dir),
            runtime,
            storage,
            settings,
            shared: SharedRegistry::default(),
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
            unavailable: BTreeMap::new(),
            reported: BTreeMap::new(),
            dir_state: None,
            plan: None,
        };
        catalog.refresh(true).await?;
        Ok(catalog)
    }

    /// The registry jobs run against, replaced as plugins change.
    pub fn shared(&self) -> SharedRegistry {
        self.shared.clone()
    }

    /// The ids that run now.
    pub fn ids(&self) -> Vec<String> {
        self.shared.current().ids()
    }

    /// The ids whose component failed to load and that run no build, with why (the
    /// message names the plugins directory's file or the plugin store's copy).
    pub fn not_loaded(&self) -> Vec<(String, String)> {
        self.failed
            .iter()
            .filter(|(id, _)| !self.running.contains_key(*id))
            .map(|(id, (wanted, message))| {
                let message = match &wanted.component {
                    Component::File { path, .. } if !message.contains(&*path.to_string_lossy()) => {
                        format!("{}: {message}", path.display())
                    }
                    _ => message.clone(),
                };
                (id.clone(), message)
            })
            .collect()
    }

    /// Brings the registry up to date every `every`, for as long as the daemon runs;
    /// `on_change` gets the catalog after each change of the registry or of the
    /// components that failed to load (what the dashboard and metrics list).
    pub async fn watch(mut self, every: Duration, on_change: impl Fn(&Self) + Send) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let failed_before = self.not_loaded();
            if self.poll().await {
                tracing::info!(plugins = ?self.ids(), "plugins changed");
                on_change(&self);
            } else if self.not_loaded() != failed_before {
                on_change(&self);
            }
        }
    }

    /// One pass of [`Self::watch`]: reads the table and the directory, loads what
    /// changed and swaps the registry if anything did. Returns whether it did.
    pub async fn poll(&mut self) -> bool {
        match self.refresh(false).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!("plugins not refreshed: {e}");
                false
            }
        }
    }

    /// One pass: reads the table and the directory, loads what changed, swaps the
    /// registry if anything did (or at start), writes `last_error`. Returns whether the
    /// registry changed.
    async fn refresh(&mut self, starting: bool) -> Result<bool, CatalogError> {
        let rows = match self.storage.plugins.plugins().await {
            Ok(rows) => rows,
            Err(e) if starting => return Err(CatalogError::Table(e)),
            Err(e) => {
                tracing::warn!(
                    "cannot read the plugins table, keeping the plugins as they are: {e}"
                );
                return Ok(false);
            }
        };
        let stored = rows
            .iter()
            .any(|r| r.is_installed && r.component_sha256.is_some());
        self.scan_dir(starting, stored)?;
        let (wanted, mut problems, unavailable) = self.wanted(&rows);

        // What to load, and what only to configure again.
        let mut to_load: Vec<(String, Wanted)> = Vec::new();
        let mut to_prepare: Vec<(String, Wanted, LoadedPlugin)> = Vec::new();
        for (id, w) in &wanted {
            if self.running.get(id).is_some_and(|r| r.wanted == *w)
                || self.failed.get(id).is_some_and(|(f, _)| f == w)
            {
                continue;
            }
            match self.running.get(id) {
                Some(r) if r.wanted.component == w.component => {
                    to_prepare.push((id.clone(), w.clone(), r.loaded.clone()));
                }
                _ => to_load.push((id.clone(), w.clone())),
            }
        }
        let mut changed = starting;
        for (id, w, loaded) in to_prepare {
            changed |= self.install(&id, w, Ok(loaded), starting)?;
        }
        let mut files = Vec::new();
        for (id, w) in to_load {
            let path = match &w.component {
                Component::File { path, .. } => path.clone(),
                Component::Stored(sha) => {
                    match self.components.fetch(sha, &*self.storage.plugins).await {
                        Ok(path) => path,
                        // The database is away: try again at the next poll.
                        Err(ComponentError::Storage(e)) if !starting => {
                            tracing::warn!(plugin = %id, "cannot fetch its component yet: {e}");
                            continue;
                        }
                        Err(e) => {
                            changed |= self.install(&id, w, Err(e.to_string()), starting)?;
                            continue;
                        }
                    }
                }
            };
            files.push((id, w, path));
        }
        let paths: Vec<PathBuf> = files.iter().map(|(_, _, p)| p.clone()).collect();
        let results = self
            .runtime
            .load_files(paths, self.settings.parallel_loads)
            .await;
        for ((id, w, _), (_, result)) in files.into_iter().zip(results) {
            let result = result.map_err(|e| e.to_string());
            changed |= self.install(&id, w, result, starting)?;
        }

        // What no longer should run.
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|id| !wanted.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(r) = self.running.remove(&id) {
                tracing::info!(plugin = %id, version = %r.ready.loaded.manifest.version, "plugin no longer runs");
                changed = true;
            }
        }
        self.failed.retain(|id, _| wanted.contains_key(id));

        // Failed loads are reported on their rows; those with nothing running are
        // unavailable, saying why.
        let mut unavailable = unavailable;
        for (id, (_, message)) in &self.failed {
            problems
                .entry(id.clone())
                .or_insert_with(|| message.clone());
        }
        for (id, message) in &problems {
            if !self.running.contains_key(id) {
                unavailable.insert(id.clone(), format!("failed to load: {message}"));
            }
        }
        if unavailable != self.unavailable {
            self.unavailable = unavailable;
            changed = true;
        }
        if changed {
            self.swap();
        }
        self.report(&rows, &wanted, &problems).await;
        Ok(changed)
    }

    /// Lists the plugins directory and, when it changed, plans it again.
    fn scan_dir(&mut self, starting: bool, stored: bool) -> Result<(), CatalogError> {
        let dir = &self.settings.plugins_dir;
        let state = list_dir(dir);
        if self.dir_state.as_ref() == Some(&state) {
            return Ok(());
        }
        self.dir_state = Some(state);
        match InstallPlan::new(dir, &self.settings.policy.plugins) {
            Ok(plan) => self.plan = Some(plan),
            // A daemon that runs installed plugins needs no directory.
            Err(InstallError::Missing { .. }) if stored || !starting => {
                if starting {
                    tracing::info!(dir = %dir.display(), "no plugins directory; running the plugins table's");
                }
                self.plan = None;
            }
            Err(e) if starting => return Err(e.into()),
            Err(e) => tracing::error!(
                dir = %dir.display(),
                "plugins directory not reloaded, its previous files still run: {e}"
            ),
        }
        Ok(())
    }

    /// What should run, by id; problems that keep a row from running, by id; and why
    /// the ids that do not run do not (rows that are disabled or removed).
    fn wanted(
        &self,
        rows: &[PluginRow],
    ) -> (
        BTreeMap<String, Wanted>,
        BTreeMap<String, String>,
        BTreeMap<String, String>,
    ) {
        let mut wanted = BTreeMap::new();
        let mut problems = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        let files: BTreeMap<&str, Component> = self
            .plan
            .iter()
            .flat_map(|plan| plan.files().filter_map(|f| Some((plan.id_of(f)?, f))))
            .map(|(id, path)| (id, file_component(path, self.dir_state.as_ref())))
            .collect();
        for row in rows {
            let id = row.id.as_str();
            if !row.is_installed {
                unavailable.insert(
                    id.to_owned(),
                    "was removed (plugins.is_installed = false); install it again with `drowl-host plugin install FILE`, then retry the job".to_owned(),
                );
                continue;
            }
            if !row.is_enabled {
                unavailable.insert(
                    id.to_owned(),
                    format!(
                        "is disabled in the plugins table (is_enabled = false); enable it with `drowl-host plugin enable {id}` (or set is_enabled = true), then retry the job"
                    ),
                );
                continue;
            }
            let component = match &row.component_sha256 {
                Some(sha) if is_sha256(sha) => Ok(Component::Stored(sha.clone())),
                Some(other) => Err(format!(
                    "its component_sha256 {other:?} is not a SHA-256 in lowercase hex; install it with `drowl-host plugin upgrade {id} FILE`"
                )),
                None => files.get(id).cloned().ok_or_else(|| {
                    format!(
                        "it has no component: install one with `drowl-host plugin upgrade {id} FILE` (or `plugin install`), or put {id}.wasm in the plugins directory {}",
                        self.settings.plugins_dir.display()
                    )
                }),
            };
            let checked = validate_plugin_id(id)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    match wanted.keys().find(|w: &&String| addressed_as(w) == addressed_as(id)) {
                        Some(other) => Err(format!(
                            "plugins `{other}` and `{id}` are one plugin for drowl's API (`x` and `x-plugin` are addressed alike); remove one"
                        )),
                        None => Ok(()),
                    }
                })
                .and(component)
                .and_then(|component| {
                    let config = settings::from_json(&row.config)?;
                    Ok(Wanted {
                        component,
                        row_config: Some(config),
                    })
                });
            match checked {
                Ok(w) => {
                    wanted.insert(id.to_owned(), w);
                }
                Err(message) => {
                    problems.insert(id.to_owned(), message);
                }
            }
        }
        // Directory files whose id no row decides.
        for (id, component) in files {
            if rows.iter().any(|r| r.id == id) {
                continue;
            }
            if let Some(row) = rows.iter().find(|r| {
                r.is_installed
                    && r.component_sha256.is_some()
                    && addressed_as(&r.id) == addressed_as(id)
            }) {
                tracing::warn!(
                    plugin = id,
                    "the plugins directory's `{id}` is not run: the plugins table installs `{}`, which drowl's API addresses alike",
                    row.id
                );
                continue;
            }
            wanted.insert(
                id.to_owned(),
                Wanted {
                    component,
                    row_config: None,
                },
            );
        }
        (wanted, problems, unavailable)
    }

    /// Configures a loaded component (or records why it could not be loaded) under
    /// `id`. A success replaces what ran before; a failure keeps it. Returns whether
    /// what runs changed. At start, a plugins-directory file declaring another id (or
    /// without its pinned digest) is an error, as it always was.
    fn install(
        &mut self,
        id: &str,
        wanted: Wanted,
        loaded: Result<LoadedPlugin, String>,
        starting: bool,
    ) -> Result<bool, CatalogError> {
        let ready = match loaded {
            Ok(loaded) => match self.build(id, &wanted, &loaded, starting) {
                Ok(ready) => Ok((loaded, ready)),
                Err(Refusal::Fatal(e)) => return Err(e.into()),
                Err(Refusal::Failed(message)) => Err(message),
            },
            Err(message) => Err(message),
        };
        match ready {
            Ok((loaded, ready)) => {
                tracing::info!(
                    plugin = id,
                    version = %ready.loaded.manifest.version,
                    world = ready.role().world(),
                    sha256 = %ready.loaded.sha256,
                    "plugin ready"
                );
                self.failed.remove(id);
                self.running.insert(
                    id.to_owned(),
                    Running {
                        wanted,
                        loaded,
                        ready: Arc::new(ready),
                    },
                );
                Ok(true)
            }
            Err(message) => {
                match self.running.get(id) {
                    Some(r) => tracing::error!(
                        plugin = id,
                        "plugin not reloaded, version {} keeps running: {message}",
                        r.ready.loaded.manifest.version
                    ),
                    None => tracing::error!(plugin = id, "plugin not loaded: {message}"),
                }
                self.failed.insert(id.to_owned(), (wanted, message));
                Ok(false)
            }
        }
    }

    /// Checks a loaded component against where it came from and configures it.
    fn build(
        &self,
        id: &str,
        wanted: &Wanted,
        loaded: &LoadedPlugin,
        starting: bool,
    ) -> Result<ReadyPlugin, Refusal> {
        match &wanted.component {
            Component::File { path, .. } => {
                let plan = self
                    .plan
                    .as_ref()
                    .ok_or_else(|| Refusal::Failed("the plugins directory is gone".to_owned()))?;
                match plan.check_loaded(path, loaded) {
                    Ok(_) => {}
                    Err(e) if starting => return Err(Refusal::Fatal(e)),
                    Err(e) => return Err(Refusal::Failed(e.to_string())),
                }
            }
            Component::Stored(sha) if loaded.manifest.id != id => {
                return Err(Refusal::Failed(format!(
                    "its component {sha} declares plugin `{}`; install that plugin's own build under `{id}`",
                    loaded.manifest.id
                )));
            }
            Component::Stored(_) => {}
        }
        let base = self.settings.policy.plugins.get(id);
        let plugin_settings = match &wanted.row_config {
            Some(config) => settings::row_settings(base, config).map_err(Refusal::Failed)?,
            None => base.cloned().unwrap_or_default(),
        };
        ReadyPlugin::prepare_with(
            id.to_owned(),
            loaded.clone(),
            &plugin_settings,
            &self.settings.policy,
            &self.storage,
        )
        .map_err(|e| Refusal::Failed(e.to_string()))
    }

    /// Builds the registry from what runs and hands it to the jobs that start next.
    fn swap(&self) {
        let mut registry = Registry::default();
        for (id, r) in &self.running {
            if let Err(e) = registry.insert_shared(r.ready.clone()) {
                tracing::error!(plugin = %id, "plugin not run: {e}");
            }
        }
        for (id, reason) in &self.unavailable {
            registry.set_unavailable(id, reason.clone());
        }
        self.shared.replace(registry);
    }

    /// Writes each wanted row's `last_error` where it changed: the problem that keeps
    /// it from running (or from being reloaded), or nothing once it runs as its row says.
    async fn report(
        &mut self,
        rows: &[PluginRow],
        wanted: &BTreeMap<String, Wanted>,
        problems: &BTreeMap<String, String>,
    ) {
        for row in rows.iter().filter(|r| r.runs()) {
            let id = &row.id;
            let status = match problems.get(id) {
                Some(message) => Some(match self.running.get(id) {
                    Some(r) => format!(
                        "{message} (this daemon keeps running version {} loaded before)",
                        r.ready.loaded.manifest.version
                    ),
                    None => message.clone(),
                }),
                None if self
                    .running
                    .get(id)
                    .is_some_and(|r| Some(&r.wanted) == wanted.get(id)) =>
                {
                    None
                }
                // Not loaded yet (its component could not be fetched): nothing to say.
                None => continue,
            };
            if self.reported.get(id) == Some(&status) {
                continue;
            }
            match self
                .storage
                .plugins
                .record_plugin_load(id, status.as_deref())
                .await
            {
                Ok(()) => {
                    self.reported.insert(id.clone(), status);
                }
                Err(e) => tracing::warn!(plugin = %id, "cannot write plugins.last_error: {e}"),
            }
        }
        self.reported
            .retain(|id, _| rows.iter().any(|r| r.id == *id && r.runs()));
    }
}

/// Why a loaded component does not run.
enum Refusal {
    /// A plugins-directory problem at start: the daemon stops, as it always has.
    Fatal(InstallError),
    /// Reported (on its row) and left out.
    Failed(String),
}

/// The `*.wasm` files of `dir` with their sizes and times, sorted; `None` when the
/// directory cannot be listed. A file replaced in place changes its size or time.
fn list_dir(dir: &Path) -> Option<Vec<FileState>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<FileState> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect();
    files.sort();
    Some(files)
}

/// The component of a directory file, as last listed.
fn file_component(path: &Path, state: Option<&Option<Vec<FileState>>>) -> Component {
    let (len, modified) = state
        .and_then(Option::as_ref)
        .and_then(|files| files.iter().find(|(p, _, _)| p == path))
        .map_or((0, None), |(_, len, modified)| (*len, *modified));
    Component::File {
        path: path.to_path_buf(),
        len,
        modified,
    }
}
