//! Throughput benchmark: no-op jobs per second through the queue with 1 and 2 worker
//! processes (the `noop_worker` example), side by side with the raw Redis round-trip rate
//! and, when `tests/interop/node_modules` has bull, Bull's own Node.js worker.
//!
//! `cargo run -p drowl-bull --example bench [-- JOBS]` (build `noop_worker` in the same
//! profile first: `cargo build -p drowl-bull --examples`). Each run pre-fills JOBS jobs
//! (`removeOnComplete: true`, as the toolchain baseline), starts the workers, and times from
//! the first job taken until `wait` and `active` are both empty.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use drowl_bull::{JobOptions, KeepJobs, Queue, QueueConfig};
use fred::prelude::{Builder, ClientLike, Config, ListInterface, ReconnectPolicy};
use futures::StreamExt as _;
use serde_json::json;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Sequential round trips per second for one command shape.
async fn raw_rate(client: &fred::prelude::Client, what: &str) -> anyhow::Result<f64> {
    let n = 20_000u32;
    let key = format!("bench:raw:{}", std::process::id());
    let t0 = Instant::now();
    for i in 0..n {
        match what {
            "PING" => {
                let _: String = client.ping(None).await?;
            }
            _ => {
                let _: i64 = client.lpush(&key, i).await?;
            }
        }
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    let _: i64 = fred::prelude::KeysInterface::del(client, &key).await?;
    Ok(rate)
}

fn redis_benchmark() -> Option<String> {
    let out = Command::new("redis-benchmark")
        .args(["-q", "-t", "ping,lpush", "-n", "100000"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = text
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .map(|l| l.trim().to_owned())
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

fn examples_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("no examples directory")
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Rust,
    Bull,
}

fn spawn(kind: Kind, queue: &str, concurrency: usize) -> anyhow::Result<Child> {
    let mut cmd = match kind {
        Kind::Rust => {
            let mut c = Command::new(examples_dir()?.join("noop_worker"));
            c.env("CONCURRENCY", concurrency.to_string());
            c
        }
        Kind::Bull => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
            let mut c = Command::new("node");
            c.arg("bull_tool.js")
                .arg("work")
                .arg(concurrency.to_string())
                .current_dir(dir);
            c
        }
    };
    cmd.env("QUEUE", queue)
        .env("REDIS_URL", REDIS_URL)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(cmd.spawn()?)
}

async fn run(kind: Kind, procs: usize, concurrency: usize, jobs: usize) -> anyhow::Result<f64> {
    let queue = format!(
        "bench-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone())).await?;
    let added: Vec<_> = futures::stream::iter(0..jobs)
        .map(|_| {
            q.add(
                "__default__",
                json!({}),
                JobOptions::new().remove_on_complete(KeepJobs::Remove(true)),
            )
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for a in added {
        a?;
    }
    let wait_key = q.key("wait");
    let active_key = q.key("active");
    let workers = Workers(
        (0..procs)
            .map(|_| spawn(kind, &queue, concurrency))
            .collect::<anyhow::Result<_>>()?,
    );
    let limit = Instant::now() + Duration::from_secs(300);
    let mut started = None;
    let total = u64::try_from(jobs)?;
    loop {
        let wait: u64 = q.client().llen(&wait_key).await?;
        let active: u64 = q.client().llen(&active_key).await?;
        let now = Instant::now();
        if started.is_none() && wait < total {
            started = Some(now);
        }
        if wait == 0 && active == 0 {
            break;
        }
        anyhow::ensure!(now < limit, "workers did not drain the queue");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    drop(workers);
    q.obliterate().await?;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let mut cfg = Config::from_url(REDIS_URL)?;
    cfg.fail_fast = true;
    let client = Builder::from_config(cfg)
        .set_policy(ReconnectPolicy::new_constant(0, 500))
        .build()?;
    client.init().await?;
    println!("drowl-bull benchmark: {jobs} no-op jobs per run, removeOnComplete");
    println!(
        "raw redis (fred, sequential round trips): PING {:.0}/s, LPUSH {:.0}/s",
        raw_rate(&client, "PING").await?,
        raw_rate(&client, "LPUSH").await?
    );
    if let Some(rb) = redis_benchmark() {
        println!("redis-benchmark (50 clients): {rb}");
    }
    let bull_available = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/node_modules/bull")
        .exists();
    println!("{:<28} {:>12}", "worker", "jobs/s");
    for (procs, conc) in [(1, 1), (2, 1), (1, 50), (2, 50)] {
        let rate = run(Kind::Rust, procs, conc, jobs).await?;
        println!(
            "{:<28} {:>12.0}",
            format!("drowl-bull {procs} proc x c{conc}"),
            rate
        );
    }
    if bull_available {
        for (procs, conc) in [(1, 1), (2, 1), (1, 50), (2, 50)] {
            let rate = run(Kind::Bull, procs, conc, jobs).await?;
            println!(
                "{:<28} {:>12.0}",
                format!("bull (node) {procs} proc x c{conc}"),
                rate
            );
        }
    } else {
        println!("(bull not installed in tests/interop: skipped Bull's own worker)");
    }
    client.quit().await?;
    Ok(())
}
