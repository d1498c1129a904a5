//! The sandboxed plugin runtime: one engine, components compiled once, a fresh store per
//! job.
//!
//! The runtime knows WASI and the drowl worlds' exports, not the drowl imports: the store's
//! data type `T` is whatever the capabilities layer builds (see [`StoreState`]), and that
//! layer links its imports into the runtime's linker when the runtime is built.
//!
//! - [`engine`]: the wasmtime engine and its epoch ticker (deadlines).
//! - [`fault`]: a host function's own failure, kept to the calling job.
//! - [`loader`]: checking and compiling a `.wasm`, reading its manifest.
//! - [`instance`]: running one job in a fresh store with its budgets.
//! - [`limits`]: budgets and the memory limiter.
//! - [`state`]: the sandbox a store holds, and the [`StoreState`] trait through which
//!   the layer above supplies the rest of the store's data.
//! - [`stderr`]: the plugin's stderr, of which the tail is kept.

pub mod engine;
pub mod fault;
pub mod instance;
pub mod limits;
pub mod loader;
pub mod state;
pub mod stderr;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use engine::EngineSettings;
pub use fault::{HostFault, guarded};
pub use instance::{CallError, PluginInstance};
pub use limits::Budget;
pub use loader::{LoadError, LoadedPlugin};
pub use state::{RunStats, Sandbox, StoreState};

/// The world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `ingestion-plugin`.
    Ingestion,
    /// `enrichment-plugin`.
    Enrichment,
    /// `export-plugin`.
    Export,
    /// `identity-plugin` (contract 0.2.0): proposes links between identities.
    Resolution,
    /// `webhook-plugin` (contract 0.2.0): only receives pushed deliveries.
    Webhook,
}

impl Role {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            Self::Ingestion => "ingestion-plugin",
            Self::Enrichment => "enrichment-plugin",
            Self::Export => "export-plugin",
            Self::Resolution => "identity-plugin",
            Self::Webhook => "webhook-plugin",
        }
    }

    /// The world's name, given whether the component also exports `webhooks` and
    /// `schedules` (an ingestion plugin that does is a `connector-plugin`, one with only
    /// schedules a `scheduled-plugin`).
    pub fn world_with(self, webhooks: bool, schedules: bool) -> &'static str {
        match (self, webhooks, schedules) {
            (Self::Ingestion, true, _) => "connector-plugin",
            (Self::Ingestion, false, true) => "scheduled-plugin",
            (role, _, _) => role.world(),
        }
    }

    /// Manifest capabilities compatible with the world.
    pub fn capabilities(self) -> &'static [&'static str] {
        match self {
            Self::Ingestion => &["event_ingestion", "webhook", "scheduled"],
            Self::Enrichment => &["keyword_extraction", "identity_resolution", "analytics"],
            Self::Export => &["export"],
            Self::Resolution => &["identity_resolution"],
            Self::Webhook => &["webhook"],
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be configured.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The host imports could not be linked (a host bug).
    #[error("cannot link host imports: {0}")]
    Link(String),
}

/// Builds the store data `describe` runs in: a state with no backends and no grants.
type DescribeState<T> = dyn Fn(Instant) -> T + Send + Sync;

/// The engine and linker shared by every plugin and job in a process.
pub struct Runtime<T: StoreState> {
    engine: Engine,
    linker: Arc<Linker<T>>,
    /// With the pooling allocator, one permit per pool slot: a job waits for a slot
    /// instead of failing to instantiate when every slot is taken.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Whether the engine meters fuel (`EngineSettings::fuel`).
    meters_fuel: bool,
    /// What instantiating a plugin and calling its `describe` may use at load.
    describe_limits: loader::DescribeLimits,
    describe_state: Arc<DescribeState<T>>,
}

// By hand: a derive would require `T: Clone`, and the store data never is.
impl<T: StoreState> Clone for Runtime<T> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            linker: self.linker.clone(),
            slots: self.slots.clone(),
            meters_fuel: self.meters_fuel,
            describe_limits: self.describe_limits,
            describe_state: self.describe_state.clone(),
        }
    }
}

/// The fuel of a job on a fuel-metering engine whose budget sets no limit.
const UNLIMITED_FUEL: u64 = u64::MAX / 2;

/// `budget` as an engine that does (or does not) meter fuel needs it: with metering,
/// always some fuel (none would trap at the first instruction); without, none (so no
/// store is asked to set fuel it cannot hold).
pub(crate) fn fuel_for_engine(budget: &Budget, meters_fuel: bool) -> Budget {
    Budget {
        fuel: meters_fuel.then(|| budget.fuel.unwrap_or(UNLIMITED_FUEL)),
        ..*budget
    }
}

impl<T: StoreState> std::fmt::Debug for Runtime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl<T: StoreState> Runtime<T> {
    /// Builds the engine and links WASI (nothing granted), then the imports `link` adds,
    /// once. `describe_state` builds the store data a plugin's `describe` runs in.
    ///
    /// When the pooling allocator's address space cannot be reserved (a `ulimit -v`, a
    /// 32-bit host), the engine is built with on-demand allocation instead and a warning
    /// logged: slower instantiation, same sandbox.
    pub fn build(
        settings: &EngineSettings,
        link: impl FnOnce(&mut Linker<T>) -> wasmtime::Result<()>,
        describe_state: impl Fn(Instant) -> T + Send + Sync + 'static,
    ) -> Result<Self, RuntimeError> {
        let mut pooling = settings.pooling;
        let engine = match engine::build(settings) {
            Ok(engine) => engine,
            Err(e) if pooling.is_some() => {
                tracing::warn!(error = %e, "cannot reserve the instance pool; allocating instances on demand");
                pooling = None;
                engine::build(&EngineSettings {
                    pooling: None,
                    ..settings.clone()
                })?
            }
            Err(e) => return Err(e.into()),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        link(&mut linker).map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            slots: pooling.map(|p| Arc::new(tokio::sync::Semaphore::new(p.slots.max(1) as usize))),
            meters_fuel: settings.fuel,
            describe_limits: loader::DescribeLimits {
                budget: fuel_for_engine(
                    &Budget {
                        timeout: settings.describe_timeout,
                        ..Budget::default()
                    },
                    settings.fuel,
                ),
                max_manifest_bytes: settings.max_manifest_bytes,
            },
            describe_state: Arc::new(describe_state),
        })
    }

    /// Waits for a pool slot when the engine pools instances. The wait does not count
    /// against the job's deadline, which starts once the instance is being created.
    async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.slots {
            // The semaphore is never closed, so acquiring only waits.
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads a plugin file: checks, compiles (cached on disk when configured) and
    /// describes it.
    pub async fn load_file(&self, path: &Path) -> Result<LoadedPlugin<T>, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.load_bytes(&bytes, &name).await
    }

    /// Loads a plugin from bytes; `name` is used in messages.
    pub async fn load_bytes(&self, bytes: &[u8], name: &str) -> Result<LoadedPlugin<T>, LoadError> {
        let describe = self.describe_state.clone();
        loader::load(
            &self.engine,
            &self.linker,
            bytes,
            name,
            move |deadline| describe(deadline),
            self.slots.as_ref(),
            &self.describe_limits,
        )
        .await
    }

    /// Loads several plugin files at once, at most `parallel` at a time, and returns each
    /// file's outcome in the order given.
    ///
    /// Why at once: a daemon loads every plugin before it serves, and loading one means
    /// compiling it and calling its `describe` (bounded by the describe budget). One after
    /// another, each slow or hostile component would delay all the others by its budget;
    /// side by side, the start takes about as long as the slowest load.
    pub async fn load_files(
        &self,
        files: Vec<PathBuf>,
        parallel: usize,
    ) -> Vec<(PathBuf, Result<LoadedPlugin<T>, LoadError>)> {
        use futures::StreamExt as _;
        futures::stream::iter(files)
            .map(|file| {
                let runtime = self.clone();
                async move {
                    // A task per file, so the loads run on every worker thread; a panic
                    // while loading one is that file's error, not the caller's.
                    let task = tokio::spawn({
                        let file = file.clone();
                        async move { runtime.load_file(&file).await }
                    });
                    let loaded = task.await.unwrap_or_else(|e| {
                        Err(LoadError::Describe {
                            name: file.display().to_string(),
                            message: format!("loading failed: {e}"),
                        })
                    });
                    (file, loaded)
                }
            })
            .buffered(parallel.max(1))
            .collect()
            .await
    }

    /// Starts a job: a fresh store with `budget`, the plugin instantiated from its
    /// cached pre-instance. `state` builds the store's data once the job's deadline is
    /// known (after any wait for a pool slot, which does not count against it).
    pub async fn instantiate_with(
        &self,
        plugin: &LoadedPlugin<T>,
        budget: &Budget,
        state: impl FnOnce(Instant) -> T,
    ) -> Result<PluginInstance<T>, CallError> {
        let slot = self.slot().await;
        PluginInstance::start(
            &self.engine,
            &plugin.pre,
            &fuel_for_engine(budget, self.meters_fuel),
            state,
            slot,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuel_follows_the_engine() {
        let capped = Budget {
            fuel: Some(1_000),
            ..Budget::default()
        };
        let open = Budget::default();
        assert_eq!(fuel_for_engine(&capped, true).fuel, Some(1_000));
        assert_eq!(fuel_for_engine(&open, true).fuel, Some(UNLIMITED_FUEL));
        assert_eq!(fuel_for_engine(&capped, false).fuel, None);
        assert_eq!(fuel_for_engine(&open, false).fuel, None);
        assert_eq!(fuel_for_engine(&capped, true).timeout, capped.timeout);
    }
}
