//! What the sandbox costs per job: a fresh store, the plugin instantiated from its
//! pre-instance, the first call, and the store dropped, with wasmtime's default
//! (on-demand) allocator and with the pooling allocator, side by side in one run.
//!
//! Not a test: it prints microseconds per job so the runtime can be compared with the
//! baseline in toolchain-facts.md (fresh Store + instantiate + first call about 25-40 µs;
//! target 10 µs).
//!
//! ```text
//! cargo run --release -p drowl-host --example bench_instantiate -- [iterations] [plugin.wasm ...]
//! ```
//!
//! Defaults: 5,000 iterations after 500 of warm-up, over the hostile and keywords
//! plugins. For each plugin and allocator it measures three things: instantiate and drop;
//! instantiate, `describe` and drop; and, for ingestion plugins, instantiate, one
//! `ingest` of a one-event page and drop (what a job costs apart from storage). The
//! allocators take turns every few hundred jobs so that on a shared machine they see the
//! same background load; compare medians, the tails are mostly other processes. A
//! `BENCH sandbox.*` summary line (the hostile plugin's instantiate + `describe`, pooling
//! and on-demand) ends the output for `scripts/bench.sh`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use drowl_host::bindings::ingestion::exports::drowl::plugin::ingestion::IngestRequest;
use drowl_host::bindings::types::JobContext;
use drowl_host::jobs::{HostPolicy, ReadyPlugin};
use drowl_host::runtime::engine::PoolingSettings;
use drowl_host::runtime::{EngineSettings, Role, Runtime};

const WARM_UP: usize = 500;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    Instantiate,
    Describe,
    Ingest,
}

impl Work {
    fn label(self) -> &'static str {
        match self {
            Self::Instantiate => "instantiate",
            Self::Describe => "instantiate + describe",
            Self::Ingest => "instantiate + ingest (1 event)",
        }
    }
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    Stats {
        mean: total / samples.len() as u32,
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn request(i: usize) -> IngestRequest {
    IngestRequest {
        job: JobContext {
            job_id: format!("bench-{i}"),
            job_type: "event_ingestion".into(),
            name: "bench".into(),
            attempt: 1,
            max_attempts: 1,
            input: r#"{"pluginId":"hostile","mode":"ok","count":1}"#.into(),
            idempotency_key: format!("event_ingestion:bench-{i}"),
        },
        since: None,
        cursor: None,
        config: Vec::new(),
    }
}

async fn one(
    runtime: &drowl_host::capabilities::PluginRuntime,
    plugin: &ReadyPlugin,
    work: Work,
    i: usize,
) -> Result<()> {
    let mut instance = plugin
        .instantiate(
            runtime,
            drowl_host::capabilities::JobScope {
                id: "bench",
                depth: 0,
                progress: None,
            },
        )
        .await?;
    match work {
        Work::Instantiate => {}
        Work::Describe => {
            instance.describe().await?;
        }
        Work::Ingest => {
            instance
                .ingest(&request(i))
                .await?
                .map_err(|e| anyhow::anyhow!("ingest failed: {e:?}"))?;
        }
    }
    drop(instance.finish());
    Ok(())
}

/// Iterations measured per allocator before switching to the next, so that both see the
/// same background load on a shared machine.
const ROUND: usize = 250;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let iterations: usize = match args.next() {
        Some(n) => n.parse().context("iterations must be a number")?,
        None => 5_000,
    };
    let mut plugins: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if plugins.is_empty() {
        plugins = vec![
            PathBuf::from(drowl_test_artifacts::HOSTILE_PLUGIN),
            PathBuf::from(drowl_test_artifacts::KEYWORDS_PLUGIN),
        ];
    }
    let data = std::env::temp_dir().join(format!("drowl-bench-instantiate-{}", std::process::id()));
    let storage = drowl_host::storage::open_embedded(&data).await?;
    let policy = HostPolicy::default();

    let pooled = |pool: PoolingSettings| EngineSettings {
        pooling: Some(pool),
        ..EngineSettings::default()
    };
    let allocators = [
        (
            "on-demand",
            EngineSettings {
                pooling: None,
                ..EngineSettings::default()
            },
        ),
        ("pooling (default)", pooled(PoolingSettings::default())),
        (
            "pooling, stacks not zeroed",
            pooled(PoolingSettings {
                zero_stacks: false,
                ..PoolingSettings::default()
            }),
        ),
        (
            // What the default was before issue #14: every released memory `madvise`d.
            "pooling, madvise reset",
            pooled(PoolingSettings {
                keep_resident_bytes: 0,
                reset_dirty_pages: false,
                ..PoolingSettings::default()
            }),
        ),
    ];
    println!(
        "{iterations} iterations after {WARM_UP} of warm-up, allocators alternating every {ROUND}; microseconds per job (mean / p50 / p99)"
    );
    let mut bench_lines = Vec::new();
    for path in &plugins {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut ready = Vec::new();
        for (_, settings) in &allocators {
            let runtime = Runtime::new(settings)?;
            let loaded = runtime
                .load_file(path)
                .await
                .with_context(|| format!("loading {}", path.display()))?;
            let plugin = Arc::new(ReadyPlugin::prepare(loaded, &policy, &storage)?);
            ready.push((runtime, plugin));
        }
        let mut works = vec![Work::Instantiate, Work::Describe];
        if ready[0].1.role() == Role::Ingestion {
            works.push(Work::Ingest);
        }
        println!("\n{name}");
        print!("  {:<32}", "");
        for (label, _) in &allocators {
            print!(" {label:>28}");
        }
        println!();
        for work in works {
            let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(iterations); ready.len()];
            for (runtime, plugin) in &ready {
                for i in 0..WARM_UP {
                    one(runtime, plugin, work, i).await?;
                }
            }
            let mut done = 0;
            while done < iterations {
                let n = ROUND.min(iterations - done);
                for ((runtime, plugin), out) in ready.iter().zip(samples.iter_mut()) {
                    for i in done..done + n {
                        let t = Instant::now();
                        one(runtime, plugin, work, i).await?;
                        out.push(t.elapsed());
                    }
                }
                done += n;
            }
            print!("  {:<32}", work.label());
            let mut summary = Vec::new();
            for (s, (label, _)) in samples.into_iter().zip(&allocators) {
                let s = stats(s);
                print!(
                    " {:>10.1} / {:>6.1} / {:>6.1}",
                    micros(s.mean),
                    micros(s.p50),
                    micros(s.p99)
                );
                summary.push((*label, s));
            }
            println!();
            // The figure of issue #14's sandbox target: a no-op plugin (the hostile test
            // plugin) instantiated and called once (`describe`), with the daemon's
            // default allocator (pooling) and with on-demand allocation.
            if name.starts_with("hostile") && work == Work::Describe {
                for (key, label) in [("pooling", "pooling (default)"), ("ondemand", "on-demand")] {
                    if let Some((_, s)) = summary.iter().find(|(l, _)| *l == label) {
                        bench_lines.push(format!(
                            "sandbox.{key}_p50_us={:.1} sandbox.{key}_mean_us={:.1}",
                            micros(s.p50),
                            micros(s.mean)
                        ));
                    }
                }
            }
        }
    }
    if !bench_lines.is_empty() {
        println!("BENCH {}", bench_lines.join(" "));
    }
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
