//! The one wasmtime [`Engine`] a host process uses, and its epoch ticker.
//!
//! Deadlines use epoch interruption rather than fuel: it costs a counter check at loop
//! heads instead of per-instruction accounting. A background thread advances the epoch
//! every [`EPOCH_TICK`]; each store's callback yields to tokio on every tick (so one
//! busy plugin never starves the other jobs on its worker thread) and traps once the
//! call's wall-clock deadline has passed. Fuel is optional, for operators who want
//! deterministic CPU limits. Epochs only stop wasm that runs; a guest waiting in a WASI
//! or host call is stopped by the host-side bound in [`crate::runtime::instance`].

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
    /// Allocate instances from a pool reserved up front instead of mapping and unmapping
    /// memory, tables and stacks for every job; `None` allocates on demand. On by
    /// default: `examples/bench_instantiate.rs` measured instantiation about twice as
    /// fast (p50 about 20 µs against 38 µs) and a whole one-page job about a quarter
    /// cheaper. If the address space cannot be reserved, the runtime falls back to
    /// on-demand allocation (see [`crate::runtime::Runtime::new`]).
    pub pooling: Option<PoolingSettings>,
    /// How long loading a plugin may spend instantiating it and calling its `describe`.
    /// Default [`DEFAULT_DESCRIBE_TIMEOUT`]. Plugins load before the daemon serves and
    /// `describe` only returns a manifest, so the budget is small: a component that sleeps
    /// or spins there fails to load instead of holding the start.
    pub describe_timeout: Duration,
    /// Largest manifest `describe` may return, serialised as JSON, in bytes. Default
    /// [`crate::manifest::DEFAULT_MAX_MANIFEST_BYTES`]. The manifest is kept for the
    /// plugin's lifetime and printed and stored, so a plugin cannot use it to hand the
    /// host data.
    pub max_manifest_bytes: usize,
}

/// The default of [`EngineSettings::describe_timeout`]: far more than any honest
/// `describe` needs (they take microseconds), short enough not to hold a daemon's start.
pub const DEFAULT_DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            fuel: false,
            max_wasm_stack: 512 * 1024,
            cache_dir: None,
            pooling: Some(PoolingSettings::default()),
            describe_timeout: DEFAULT_DESCRIBE_TIMEOUT,
            max_manifest_bytes: crate::manifest::DEFAULT_MAX_MANIFEST_BYTES,
        }
    }
}

/// Sizes of the pooling instance allocator.
///
/// The pool reserves address space (not memory) for `slots` plugin instances when the
/// engine is built: with the defaults about 1 TiB of the 128 TiB a 64-bit Linux process
/// has, nearly all of it guard regions that let compiled code skip bounds checks. A slot
/// is reset before reuse: linear memory back to the component's initial image, tables
/// cleared, and (with `zero_stacks`) the fiber stack zeroed. Each job holds one slot while it runs, as does loading a plugin;
/// [`crate::runtime::Runtime`] makes a job wait for a free slot rather than fail when
/// all are taken. Budgets still apply inside a slot: these are only the ceilings the
/// pool is built for, and every one of them must be at least the matching operator cap
/// in [`crate::runtime::Budget`] (see [`PoolingSettings::covers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingSettings {
    /// Plugin instances alive at once. Default 128.
    pub slots: u32,
    /// Largest linear memory of any instance, in bytes. Default 4 GiB, which covers every
    /// memory budget a 32-bit plugin can use.
    pub max_memory_bytes: u64,
    /// Linear memories per plugin instance. Components built with wit-bindgen have one;
    /// composed components may have more. Default 2.
    pub memories_per_instance: u32,
    /// Tables per plugin instance (wit-component adds one to the plugin's own). Default 8.
    pub tables_per_instance: u32,
    /// Core module instances per plugin instance. Default 16, as `Budget::max_instances`.
    pub core_instances_per_instance: u32,
    /// Elements per table. Default 100,000, as `Budget::max_table_elements`.
    pub max_table_elements: usize,
    /// Bytes of each linear memory a released slot may reset with `memset` and keep
    /// resident, instead of returning them to the kernel. With `reset_dirty_pages` only
    /// the pages the job touched are copied back, anywhere in the memory up to this many
    /// bytes; without it, the lowest bytes are, touched or not. Default 4 MiB, about
    /// twice what a Rust plugin touches in a small job (its shadow stack ends at 1 MiB,
    /// its heap follows): what a job touches beyond it is `madvise`d away as before, so
    /// an idle daemon keeps at most this much per used slot.
    pub keep_resident_bytes: usize,
    /// Reset a released slot's linear memory by asking the kernel which pages the job
    /// touched (Linux's `PAGEMAP_SCAN`, kernel 6.7 or later; where it is unavailable
    /// wasmtime falls back to the plain reset) and copying back only those, up to
    /// `keep_resident_bytes`, instead of `madvise`-ing the memory away. The pages stay
    /// resident, so the next job neither faults them in again nor makes the kernel
    /// flush every core's TLB (the `madvise` shootdowns issue #14's profile found); the
    /// slot is still back at the component's initial image before reuse. Default on:
    /// `bench_instantiate` measured a whole job (instantiate and one call) about a third
    /// cheaper than with the `madvise` reset.
    pub reset_dirty_pages: bool,
    /// Zero a fiber stack when its job releases it. WebAssembly cannot read native
    /// stacks, so this is defence in depth (host frames of one job never linger for the
    /// next), at the price of clearing the stack on every call. Default on.
    pub zero_stacks: bool,
}

impl Default for PoolingSettings {
    fn default() -> Self {
        Self {
            slots: 128,
            max_memory_bytes: 4 << 30,
            memories_per_instance: 2,
            tables_per_instance: 8,
            core_instances_per_instance: 16,
            max_table_elements: 100_000,
            keep_resident_bytes: 4 << 20,
            reset_dirty_pages: true,
            zero_stacks: true,
        }
    }
}

impl PoolingSettings {
    /// Whether a pool of this size can hold every instance `budget` allows, so the
    /// budget, not the pool, is what stops a plugin.
    pub fn covers(&self, budget: &crate::runtime::Budget) -> bool {
        self.max_memory_bytes >= budget.max_memory_bytes
            && self.max_table_elements >= budget.max_table_elements
    }

    fn config(&self) -> wasmtime::PoolingAllocationConfig {
        let slots = self.slots.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(self.core_instances_per_instance))
            .max_core_instances_per_component(self.core_instances_per_instance)
            .total_memories(slots.saturating_mul(self.memories_per_instance))
            .max_memories_per_component(self.memories_per_instance)
            .total_tables(slots.saturating_mul(self.tables_per_instance))
            .max_tables_per_component(self.tables_per_instance)
            .max_tables_per_module(self.tables_per_instance)
            .table_elements(self.max_table_elements)
            .total_stacks(slots)
            .max_memory_size(
                usize::try_from(self.max_memory_bytes.min(4 << 30)).unwrap_or(usize::MAX),
            )
            .linear_memory_keep_resident(self.keep_resident_bytes)
            .pagemap_scan(if self.reset_dirty_pages {
                wasmtime::Enabled::Auto
            } else {
                wasmtime::Enabled::No
            })
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10);
        pool
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
    if let Some(pool) = &settings.pooling {
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool.config()));
        // A pooled stack is reused by the next job: clear what this one left on it.
        config.async_stack_zeroing(pool.zero_stacks);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Budget;

    #[test]
    fn the_default_pool_covers_every_budget_an_operator_can_set() {
        let pool = PoolingSettings::default();
        assert!(pool.covers(&Budget::default()));
        // `--max-memory` can ask for all of a 32-bit memory.
        assert!(pool.covers(&Budget {
            max_memory_bytes: 4 << 30,
            ..Budget::default()
        }));
        assert!(!pool.covers(&Budget {
            max_table_elements: 1_000_000,
            ..Budget::default()
        }));
    }
}
