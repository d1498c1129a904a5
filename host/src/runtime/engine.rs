//! The one wasmtime [`Engine`] a host process uses, and its epoch ticker.
//!
//! Deadlines use epoch interruption rather than fuel: it costs a counter check at loop
//! heads instead of per-instruction accounting. A background thread advances the epoch
//! every [`EPOCH_TICK`]; each store's callback yields to tokio on every tick (so one
//! busy plugin never starves the other jobs on its worker thread) and traps once the
//! call's wall-clock deadline has passed. Fuel is optional, for operators who want
//! deterministic CPU limits.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances: the granularity of deadlines and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Count fuel so calls can be limited by instructions executed. Defaults to off.
    pub fuel: bool,
    /// Maximum wasm stack per call, in bytes. Defaults to 512 KiB (wasmtime's default);
    /// deep recursion traps with a stack overflow instead of crashing the host.
    pub max_wasm_stack: usize,
    /// Directory for wasmtime's compiled-code cache, so restarting the daemon or running
    /// `run-plugin` again does not recompile unchanged plugins. `None` disables it.
    pub cache_dir: Option<std::path::PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            fuel: false,
            max_wasm_stack: 512 * 1024,
            cache_dir: None,
        }
    }
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// Builds the engine and starts its epoch ticker.
///
/// The ticker holds only a weak reference, so it stops when the last clone of the
/// engine is dropped.
pub fn build(settings: &EngineSettings) -> Result<Engine, EngineError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(settings.fuel)
        .max_wasm_stack(settings.max_wasm_stack)
        // Leave room for host functions above the guest's stack budget.
        .async_stack_size(settings.max_wasm_stack + 1024 * 1024);
    if let Some(dir) = &settings.cache_dir {
        let mut cache_config = wasmtime::CacheConfig::new();
        cache_config.with_directory(dir.clone());
        let cache = wasmtime::Cache::new(cache_config).map_err(|e| EngineError(e.to_string()))?;
        config.cache(Some(cache));
    }
    let engine = Engine::new(&config).map_err(|e| EngineError(e.to_string()))?;
    spawn_ticker(engine.weak());
    Ok(engine)
}

fn spawn_ticker(weak: wasmtime::EngineWeak) {
    let spawned = std::thread::Builder::new()
        .name("drowl-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; deadlines will not fire");
    }
}
