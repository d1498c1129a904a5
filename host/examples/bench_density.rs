//! Density: resident memory per plugin instance with 100 and 1,000 jobs at once, idle
//! (instantiated, no call running) and active (inside a call), and what epoch
//! interruption costs compiled code against none.
//!
//! Not a test: it prints figures for issue #14's density item, which has no target.
//!
//! ```text
//! cargo run --release -p drowl-host --example bench_density -- [counts...]
//! ```
//!
//! Defaults: 100 and 1,000 instances. Instances are the hostile test plugin's, built by
//! drowl-host's runtime with the daemon's default settings except the pooling allocator's
//! slot count, raised from 128 to the largest count + 8 so that 1,000 instances can be
//! alive at once (the daemon makes a job wait for a free slot instead). Resident memory is
//! this process's `VmRSS` from `/proc/self/status`, sampled before and while the instances
//! are alive; the difference divided by the count is the per-instance figure. "Idle" holds
//! instantiated plugins without calling them; "active" has every instance inside an
//! `ingest` call of the plugin's `sleep` mode (a guest blocked in WASI `poll`, with its
//! fiber stack and touched linear memory live), sampled half way through the sleep.
//!
//! The epoch figure compiles one hand-written core module (a loop of arithmetic and
//! memory loads and stores, the kind of code epoch checks are inserted into at every loop
//! head and function entry) in two plain wasmtime engines, one with
//! `epoch_interruption(true)` and a 10 ms ticker whose callback lets the call continue
//! (as drowl's, minus the yield to tokio), one without, and times the same call in both.
//!
//! Prints `BENCH density.*` and `BENCH epoch.*` summary lines for `scripts/bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use drowl_host::bindings::ingestion::exports::drowl::plugin::ingestion::IngestRequest;
use drowl_host::bindings::types::JobContext;
use drowl_host::capabilities::{JobScope, PluginInstance, PluginRuntime};
use drowl_host::jobs::{HostPolicy, ReadyPlugin};
use drowl_host::runtime::engine::PoolingSettings;
use drowl_host::runtime::{EngineSettings, Runtime};

/// How long each active instance sleeps inside its call.
const ACTIVE_SLEEP_MS: u64 = 3_000;

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn request(i: usize, mode: &str, ms: u64) -> IngestRequest {
    IngestRequest {
        job: JobContext {
            job_id: format!("density-{i}"),
            job_type: "event_ingestion".into(),
            name: "bench".into(),
            attempt: 1,
            max_attempts: 1,
            input: format!(r#"{{"pluginId":"hostile","mode":"{mode}","count":0,"ms":{ms}}}"#),
            idempotency_key: format!("event_ingestion:density-{i}"),
        },
        since: None,
        cursor: None,
        config: Vec::new(),
    }
}

async fn instantiate(runtime: &PluginRuntime, plugin: &ReadyPlugin) -> Result<PluginInstance> {
    Ok(plugin
        .instantiate(
            runtime,
            JobScope {
                id: "bench",
                depth: 0,
                progress: None,
            },
        )
        .await?)
}

/// KiB per instance with `n` instantiated and held, none called.
async fn idle(runtime: &PluginRuntime, plugin: &ReadyPlugin, n: usize) -> Result<f64> {
    let before = rss_kib();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(instantiate(runtime, plugin).await?);
    }
    let during = rss_kib();
    for i in held {
        drop(i.finish());
    }
    Ok(during.saturating_sub(before) as f64 / n as f64)
}

/// KiB per instance with `n` instances inside a sleeping `ingest` call at once.
async fn active(runtime: &Arc<PluginRuntime>, plugin: &Arc<ReadyPlugin>, n: usize) -> Result<f64> {
    let before = rss_kib();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (runtime, plugin) = (runtime.clone(), plugin.clone());
        tasks.spawn(async move {
            let mut inst = instantiate(&runtime, &plugin).await?;
            inst.ingest(&request(i, "sleep", ACTIVE_SLEEP_MS))
                .await?
                .map_err(|e| anyhow::anyhow!("ingest failed: {e:?}"))?;
            drop(inst.finish());
            anyhow::Ok(())
        });
    }
    // Every task has instantiated and entered its call well before half the sleep.
    tokio::time::sleep(Duration::from_millis(ACTIVE_SLEEP_MS / 2)).await;
    let during = rss_kib();
    let entered = started.elapsed();
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    anyhow::ensure!(
        entered < Duration::from_millis(ACTIVE_SLEEP_MS),
        "sampling came too late"
    );
    Ok(during.saturating_sub(before) as f64 / n as f64)
}

/// A loop of `n` iterations of arithmetic with a load and a store each.
const LOOP_WAT: &str = r#"
(module
  (memory 1)
  (func (export "spin") (param $n i64) (result i64)
    (local $i i64) (local $x i64)
    (loop $top
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (i64.store (i32.and (i32.wrap_i64 (local.get $x)) (i32.const 0xfff8)) (local.get $x))
      (local.set $x (i64.xor (local.get $x)
                             (i64.load (i32.and (i32.wrap_i64 (local.get $i)) (i32.const 0xfff8)))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $top (i64.lt_u (local.get $i) (local.get $n))))
    (local.get $x)))
"#;

/// Nanoseconds per loop iteration (best of 5 calls of `iters`), with or without epochs.
fn spin(epochs: bool, iters: i64) -> Result<f64> {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(epochs);
    let engine = wasmtime::Engine::new(&config)?;
    // The host's wasmtime is built without its `wat` feature (it only loads binary
    // components), so the text is assembled here.
    let module = wasmtime::Module::new(&engine, wat::parse_str(LOOP_WAT)?)?;
    let mut store = wasmtime::Store::new(&engine, ());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = epochs.then(|| {
        let (engine, stop) = (engine.clone(), stop.clone());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(wasmtime::UpdateDeadline::Continue(1)));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                engine.increment_epoch();
                std::thread::sleep(drowl_host::runtime::engine::EPOCH_TICK);
            }
        })
    });
    let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
    let f = instance.get_typed_func::<i64, i64>(&mut store, "spin")?;
    f.call(&mut store, 1_000_000)?;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(f.call(&mut store, iters)?);
        best = best.min(t.elapsed().as_secs_f64() * 1e9 / iters as f64);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    Ok(best)
}

#[tokio::main]
async fn main() -> Result<()> {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().with_context(|| format!("{a:?} is not a count")))
        .collect::<Result<_>>()?;
    let counts = if counts.is_empty() {
        vec![100, 1_000]
    } else {
        counts
    };
    let most = counts.iter().copied().max().unwrap_or(1);
    let slots = u32::try_from(most + 8)?;
    let data = tempfile::tempdir()?;
    let storage = drowl_host::storage::open_embedded(data.path()).await?;
    let settings = EngineSettings {
        pooling: Some(PoolingSettings {
            slots,
            ..PoolingSettings::default()
        }),
        ..EngineSettings::default()
    };
    let runtime = Arc::new(Runtime::new(&settings)?);
    let loaded = runtime
        .load_file(std::path::Path::new(drowl_test_artifacts::HOSTILE_PLUGIN))
        .await?;
    let plugin = Arc::new(ReadyPlugin::prepare(
        loaded,
        &HostPolicy::default(),
        &storage,
    )?);
    // Warm up: fault in the code and the runtime's own structures once.
    for i in 0..50 {
        let mut inst = instantiate(&runtime, &plugin).await?;
        inst.ingest(&request(i, "ok", 0))
            .await?
            .map_err(|e| anyhow::anyhow!("ingest failed: {e:?}"))?;
        drop(inst.finish());
    }
    println!(
        "density: hostile test plugin ({} KiB component), pooling allocator with {slots} slots \
         (default 128; raised so {most} instances fit), RSS from /proc/self/status, \
         baseline {} MiB",
        std::fs::metadata(drowl_test_artifacts::HOSTILE_PLUGIN).map_or(0, |m| m.len() / 1024),
        rss_kib() / 1024
    );
    println!(
        "{:<10} {:>18} {:>20}",
        "instances", "idle KiB/instance", "active KiB/instance"
    );
    let mut summary = Vec::new();
    for &n in &counts {
        let idle_kib = idle(&runtime, &plugin, n).await?;
        let active_kib = active(&runtime, &plugin, n).await?;
        println!("{n:<10} {idle_kib:>18.1} {active_kib:>20.1}");
        summary.push(format!(
            "density.idle_kib_{n}={idle_kib:.1} density.active_kib_{n}={active_kib:.1}"
        ));
    }
    println!("BENCH {}", summary.join(" "));

    let iters = 200_000_000;
    let without = spin(false, iters)?;
    let with = spin(true, iters)?;
    println!(
        "epoch interruption: a {iters}-iteration wasm loop (arithmetic + load + store), best of 5: \
         {without:.3} ns/iteration without, {with:.3} ns with epochs (ticker every {} ms): \
         {:+.1}%",
        drowl_host::runtime::engine::EPOCH_TICK.as_millis(),
        (with / without - 1.0) * 100.0
    );
    println!(
        "BENCH epoch.off_ns={without:.3} epoch.on_ns={with:.3} epoch.overhead_pct={:.1}",
        (with / without - 1.0) * 100.0
    );
    Ok(())
}
