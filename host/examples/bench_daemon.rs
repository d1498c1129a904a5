//! Daemon throughput: no-op drowl jobs per second through the queue with 1 and 2
//! `drowl-host serve` processes, side by side with the raw Redis round-trip rate on the same
//! machine, drowl-bull's `noop_worker` (the queue protocol alone) when it is built, and,
//! when `tests/interop/node_modules` has bull, Bull's own Node.js worker on the same jobs.
//! Worker CPU time per job is printed too: it says where the time goes on a busy machine.
//!
//! Not a test. Build the binary in the same profile first, then run:
//!
//! ```text
//! cargo build -p drowl-host --bin drowl-host && cargo run -p drowl-host --example bench_daemon -- [JOBS] [CONCURRENCY]
//! ```
//!
//! (add `--release` to both for release numbers). Defaults: 5,000 jobs per run, concurrency
//! 8 per daemon. Each job is `{"type":"event_ingestion","input":{"pluginId":"hostile",
//! "mode":"ok","count":0}}` with `removeOnComplete: true`: a fresh plugin instance, one
//! ingest call, the cursor saved, the job mirrored (running, completed) into the `jobs`
//! table. Storage is the embedded default (SQLite + files, one data dir per daemon) unless
//! `DATABASE_URL` is set, which the daemons then use.
//!
//! Each run pauses the queue, fills it, starts the workers and waits until they serve, then
//! resumes the queue and times until `wait`, `paused` and `active` are all empty.
//!
//! `--levels 1,8,50` (used by `scripts/bench.sh`) replaces the default runs with issue
//! #14's side-by-side: at each concurrency, one `drowl-host serve` process and one Bull
//! Node.js worker on the same number of jobs, alternating, and prints a
//! `BENCH queue.c<N>.drowl_jobs_s=... queue.c<N>.bull_jobs_s=... queue.c<N>.drowl_cpu_us=...`
//! line per level (CPU per job is the worker process's user + system time).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use drowl_bull::{JobOptions, KeepJobs, Queue, QueueConfig};
use fred::prelude::{Builder, ClientLike, Config, KeysInterface, ListInterface, ReconnectPolicy};
use futures::StreamExt as _;
use serde_json::json;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Sequential round trips per second for one command shape, on one connection.
async fn raw_rate(client: &fred::prelude::Client, what: &str) -> anyhow::Result<f64> {
    let n = 20_000u32;
    let key = format!("bench:raw:{}", std::process::id());
    let t0 = Instant::now();
    for i in 0..n {
        if what == "PING" {
            let _: String = client.ping(None).await?;
        } else {
            let _: i64 = client.lpush(&key, i).await?;
        }
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    let _: i64 = client.del(&key).await?;
    Ok(rate)
}

/// The `drowl-host` binary next to this example (same profile).
fn drowl_host_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .context("no target directory")?
        .join("drowl-host");
    ensure!(
        bin.exists(),
        "{} is missing: run `cargo build -p drowl-host --bin drowl-host` in this profile first",
        bin.display()
    );
    Ok(bin)
}

/// drowl-bull's `noop_worker` example, when built in this profile
/// (`cargo build -p drowl-bull --examples`).
fn noop_worker_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("noop_worker");
    bin.exists().then_some(bin)
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (USER_HZ,
    // 100 on Linux).
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Child processes stopped with SIGTERM (then SIGKILL) when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
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

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `drowl-host serve`: the whole daemon.
    Serve,
    /// drowl-bull's `noop_worker` example: the queue protocol alone, no plugin or storage.
    QueueOnly,
    /// Bull's own Node.js worker with a no-op handler.
    Bull,
}

/// Starts one worker and waits until it takes jobs.
fn spawn(
    kind: Kind,
    queue: &str,
    concurrency: usize,
    work: &Path,
    n: usize,
) -> anyhow::Result<Child> {
    let log = work.join(format!("{queue}-{n}.log"));
    let mut cmd = match kind {
        Kind::Serve => {
            let data = work.join(format!("{queue}-{n}"));
            std::fs::create_dir_all(&data)?;
            // One compiled-code cache for every daemon of the run.
            std::os::unix::fs::symlink(work.join("cache"), data.join("cache"))?;
            let mut c = Command::new(drowl_host_bin()?);
            c.arg("serve")
                .arg("--plugins")
                .arg(work.join("plugins"))
                .args(["--queue", queue, "--redis-url", REDIS_URL])
                .args(["--listen", "127.0.0.1:0"])
                .args(["--concurrency", &concurrency.to_string()])
                .arg("--data-dir")
                .arg(&data)
                .env("RUST_LOG", "error");
            c
        }
        Kind::QueueOnly => {
            let mut c = Command::new(noop_worker_bin().context("noop_worker")?);
            c.env("QUEUE", queue)
                .env("REDIS_URL", REDIS_URL)
                .env("CONCURRENCY", concurrency.to_string())
                .env("RUST_LOG", "error");
            c
        }
        Kind::Bull => {
            let mut c = Command::new("node");
            c.arg("bull_tool.js")
                .arg("work")
                .arg(concurrency.to_string())
                .current_dir(repo_root().join("tests/interop"))
                .env("QUEUE", queue)
                .env("REDIS_URL", REDIS_URL);
            c
        }
    };
    let out = std::fs::File::create(&log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    let ready = match kind {
        Kind::Serve => "status on http://",
        Kind::Bull => "ready",
        // It prints nothing: give it a moment to connect.
        Kind::QueueOnly => {
            std::thread::sleep(Duration::from_millis(500));
            return Ok(child);
        }
    };
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(ready) {
            return Ok(child);
        }
        if Instant::now() > end {
            bail!("{kind:?} worker not ready after 120 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One run's figures.
struct Rate {
    jobs_per_s: f64,
    /// Worker CPU time per job, all processes together.
    cpu_per_job: Duration,
}

/// Jobs per second through `procs` workers of `kind` at `concurrency` each.
async fn run(
    kind: Kind,
    procs: usize,
    concurrency: usize,
    jobs: usize,
    work: &Path,
) -> anyhow::Result<Rate> {
    let queue = format!(
        "bench-daemon-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let q = Queue::connect(&QueueConfig::new(REDIS_URL).queue_name(queue.clone())).await?;
    q.pause().await?;
    let job = json!({"type": "event_ingestion", "name": "noop",
                     "input": {"pluginId": "hostile", "mode": "ok", "count": 0}});
    let added: Vec<_> = futures::stream::iter(0..jobs)
        .map(|_| {
            // Bull's default name: a Bull worker's `process(handler)` handles only that.
            q.add(
                "__default__",
                job.clone(),
                JobOptions::new().remove_on_complete(KeepJobs::Remove(true)),
            )
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for a in added {
        a?;
    }
    let workers = Procs(
        (0..procs)
            .map(|n| spawn(kind, &queue, concurrency, work, n))
            .collect::<anyhow::Result<_>>()?,
    );
    let keys = [q.key("wait"), q.key("paused"), q.key("active")];
    let cpu = |w: &Procs| w.0.iter().map(|c| cpu_time(c.id())).sum::<Duration>();
    let cpu0 = cpu(&workers);
    let t0 = Instant::now();
    q.resume().await?;
    let limit = t0 + Duration::from_secs(600);
    loop {
        let mut left = 0u64;
        for k in &keys {
            let n: u64 = q.client().llen(k).await?;
            left += n;
        }
        if left == 0 {
            break;
        }
        ensure!(Instant::now() < limit, "workers did not drain the queue");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t0.elapsed();
    let cpu_used = cpu(&workers).saturating_sub(cpu0);
    let counts = q.get_job_counts().await?;
    drop(workers);
    q.obliterate().await?;
    ensure!(
        counts.failed == 0 && counts.delayed == 0,
        "jobs failed or were delayed: {counts:?}"
    );
    Ok(Rate {
        jobs_per_s: jobs as f64 / elapsed.as_secs_f64(),
        cpu_per_job: cpu_used / u32::try_from(jobs).unwrap_or(u32::MAX).max(1),
    })
}

fn row(what: &str, r: &Rate) {
    println!(
        "{what:<44} {:>8.0} {:>12.0}",
        r.jobs_per_s,
        r.cpu_per_job.as_secs_f64() * 1e6
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut levels: Option<Vec<usize>> = None;
    let mut positional = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        if a == "--levels" {
            let list = argv
                .next()
                .context("--levels needs a list such as 1,8,50")?;
            levels = Some(
                list.split(',')
                    .map(|l| l.trim().parse())
                    .collect::<Result<_, _>>()
                    .context("--levels: concurrency levels such as 1,8,50")?,
            );
        } else {
            positional.push(a);
        }
    }
    let mut args = positional.into_iter();
    let jobs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let concurrency: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);

    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(work.path().join("plugins"))?;
    std::fs::create_dir_all(work.path().join("cache"))?;
    let hostile = drowl_test_artifacts::HOSTILE_PLUGIN;
    std::fs::copy(hostile, work.path().join("plugins/hostile_plugin.wasm"))?;

    let mut cfg = Config::from_url(REDIS_URL)?;
    cfg.fail_fast = true;
    let client = Builder::from_config(cfg)
        .set_policy(ReconnectPolicy::new_constant(0, 500))
        .build()?;
    client.init().await?;

    println!(
        "command: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!(
        "drowl-host daemon benchmark: {jobs} no-op jobs per run, removeOnComplete, binary {}, storage {}",
        drowl_host_bin()?.display(),
        if std::env::var_os("DATABASE_URL").is_some() {
            "DATABASE_URL (PostgreSQL) + files"
        } else {
            "embedded (SQLite + files per daemon)"
        }
    );
    println!(
        "raw redis on this machine (fred, one connection, sequential round trips): PING {:.0}/s, LPUSH {:.0}/s",
        raw_rate(&client, "PING").await?,
        raw_rate(&client, "LPUSH").await?
    );
    // Warm the shared compiled-code cache so no run pays for compilation.
    run(Kind::Serve, 1, 1, 20, work.path()).await?;
    println!(
        "load average before the runs: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("{:<44} {:>8} {:>12}", "worker", "jobs/s", "cpu us/job");
    if let Some(levels) = levels {
        anyhow::ensure!(
            repo_root().join("tests/interop/node_modules/bull").exists(),
            "bull is not installed in tests/interop: run scripts/services.sh"
        );
        for c in levels {
            let drowl = run(Kind::Serve, 1, c, jobs, work.path()).await?;
            row(&format!("drowl-host serve 1 proc x c{c}"), &drowl);
            let bull = run(Kind::Bull, 1, c, jobs, work.path()).await?;
            row(&format!("bull 4 node worker 1 proc x c{c} (no-op)"), &bull);
            println!(
                "BENCH queue.c{c}.drowl_jobs_s={:.0} queue.c{c}.bull_jobs_s={:.0} \
                 queue.c{c}.drowl_cpu_us={:.0} queue.c{c}.bull_cpu_us={:.0}",
                drowl.jobs_per_s,
                bull.jobs_per_s,
                drowl.cpu_per_job.as_secs_f64() * 1e6,
                bull.cpu_per_job.as_secs_f64() * 1e6
            );
        }
        client.quit().await?;
        return Ok(());
    }
    for procs in [1, 2] {
        let r = run(Kind::Serve, procs, concurrency, jobs, work.path()).await?;
        row(
            &format!("drowl-host serve {procs} proc x c{concurrency}"),
            &r,
        );
    }
    if noop_worker_bin().is_some() {
        let r = run(Kind::QueueOnly, 1, concurrency, jobs, work.path()).await?;
        row(
            &format!("drowl-bull noop_worker 1 proc x c{concurrency} (queue only)"),
            &r,
        );
    } else {
        println!(
            "(noop_worker not built: `cargo build -p drowl-bull --examples` for the queue-only row)"
        );
    }
    if repo_root().join("tests/interop/node_modules/bull").exists() {
        for conc in [1, 50] {
            let r = run(Kind::Bull, 1, conc, jobs, work.path()).await?;
            row(&format!("bull 4 node worker 1 proc x c{conc} (no-op)"), &r);
        }
    } else {
        println!(
            "(bull not installed in tests/interop: `npm ci` there to compare Bull's own worker)"
        );
    }
    client.quit().await?;
    Ok(())
}
