//! The sandboxed plugin runtime: one engine, components compiled once, a fresh store per
//! job.
//!
//! - [`engine`]: the wasmtime engine and its epoch ticker (deadlines).
//! - [`bindings`]: the host side of `drowl:plugin@0.1.0`.
//! - [`loader`]: checking and compiling a `.wasm`, reading its manifest.
//! - [`instance`]: running one job in a fresh store with its budgets.
//! - [`limits`]: budgets and the memory limiter.
//! - [`manifest`]: the validated manifest.
//! - [`state`]: what a store holds.
//! - [`stderr`]: the plugin's stderr, of which the tail is kept.

pub mod bindings;
pub mod engine;
pub mod instance;
pub mod limits;
pub mod loader;
pub mod manifest;
pub mod state;
pub mod stderr;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use engine::EngineSettings;
pub use instance::{CallError, JobReport, PluginInstance};
pub use limits::Budget;
pub use loader::{LoadError, LoadedPlugin};
pub use state::PluginState;

use crate::capabilities::PluginEnv;
use crate::storage::{KvStore, ObjectKey, ObjectStore, StorageError};

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
}

impl Role {
    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            Self::Ingestion => "ingestion-plugin",
            Self::Enrichment => "enrichment-plugin",
            Self::Export => "export-plugin",
        }
    }

    /// Manifest capabilities compatible with the world.
    pub fn capabilities(self) -> &'static [&'static str] {
        match self {
            Self::Ingestion => &["event_ingestion", "webhook", "scheduled"],
            Self::Enrichment => &["keyword_extraction", "identity_resolution", "analytics"],
            Self::Export => &["export"],
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

/// The engine and linker shared by every plugin and job in a process.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    /// With the pooling allocator, one permit per pool slot: a job waits for a slot
    /// instead of failing to instantiate when every slot is taken.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Whether the engine meters fuel (`EngineSettings::fuel`).
    meters_fuel: bool,
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

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and links WASI (nothing granted) and the drowl imports once.
    ///
    /// When the pooling allocator's address space cannot be reserved (a `ulimit -v`, a
    /// 32-bit host), the engine is built with on-demand allocation instead and a warning
    /// logged: slower instantiation, same sandbox.
    pub fn new(settings: &EngineSettings) -> Result<Self, RuntimeError> {
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
        crate::capabilities::add_to_linker(&mut linker)
            .map_err(|e| RuntimeError::Link(format!("{e:#}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            slots: pooling.map(|p| Arc::new(tokio::sync::Semaphore::new(p.slots.max(1) as usize))),
            meters_fuel: settings.fuel,
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
    pub async fn load_file(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
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
    pub async fn load_bytes(&self, bytes: &[u8], name: &str) -> Result<LoadedPlugin, LoadError> {
        let engine = self.engine.clone();
        let linker = self.linker.clone();
        loader::load(
            &engine,
            &linker,
            bytes,
            name,
            describe_env(),
            self.slots.as_ref(),
            self.meters_fuel,
        )
        .await
    }

    /// Starts a job: a fresh store with `budget`, the plugin instantiated from its
    /// cached pre-instance.
    pub async fn instantiate(
        &self,
        plugin: &LoadedPlugin,
        env: Arc<PluginEnv>,
        job_id: &str,
        budget: &Budget,
        progress: Option<crate::capabilities::ProgressSink>,
    ) -> Result<PluginInstance, CallError> {
        let slot = self.slot().await;
        PluginInstance::start(
            &self.engine,
            &plugin.pre,
            env,
            job_id,
            &fuel_for_engine(budget, self.meters_fuel),
            progress,
            slot,
        )
        .await
    }
}

/// Backends for `describe`, which must not touch state: every operation fails.
struct NoBackend;

#[async_trait]
impl KvStore for NoBackend {
    async fn get(&self, _: &str, _: &str) -> crate::storage::Result<Option<Vec<u8>>> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
    async fn set(&self, _: &str, _: &str, _: &[u8]) -> crate::storage::Result<()> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
    async fn delete(&self, _: &str, _: &str) -> crate::storage::Result<()> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
    async fn list_keys(&self, _: &str, _: &str, _: u32) -> crate::storage::Result<Vec<String>> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
}

#[async_trait]
impl ObjectStore for NoBackend {
    async fn put(&self, _: &ObjectKey, _: bytes::Bytes, _: &str) -> crate::storage::Result<()> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
    async fn get(&self, _: &ObjectKey) -> crate::storage::Result<Option<bytes::Bytes>> {
        Err(StorageError::Unavailable(
            "not available during describe".into(),
        ))
    }
    fn describe(&self, key: &ObjectKey) -> String {
        key.to_string()
    }
}

fn describe_env() -> Arc<PluginEnv> {
    let policy = crate::capabilities::http::egress::EgressPolicy::new(
        &[],
        &[],
        &Default::default(),
        Vec::new(),
        Default::default(),
    )
    .unwrap_or_else(|_| unreachable!("an empty policy is always valid"));
    #[allow(
        clippy::expect_used,
        reason = "building a client with no origins cannot fail"
    )]
    let egress =
        crate::capabilities::http::egress::EgressClient::new(policy).expect("empty egress client");
    Arc::new(PluginEnv {
        plugin_id: "describe".into(),
        plugin_version: "0.0.0".into(),
        config: Default::default(),
        redactor: Default::default(),
        kv: Arc::new(NoBackend),
        objects: Arc::new(NoBackend),
        egress,
    })
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
