//! `data_export` of one million stored events with the `export` plugin, end to end.
//!
//! Not a test: it prints how long exporting takes and the process's peak resident memory
//! after exporting a tenth of the events and after all of them, so "memory flat for a
//! million events" (issue #12) is a figure, not a promise: the host holds one page (500
//! events) at a time and the plugin one compressed part.
//!
//! ```text
//! cargo run -p drowl-host --example bench_export \
//!     --config 'profile.dev.package.drowl-host.opt-level=2' \
//!     --config 'profile.dev.package.drowl-host.debug-assertions=false' \
//!     -- [events]
//! ```
//!
//! Defaults: 1,000,000 events with a GitHub-shaped raw payload and text, generated inside
//! PostgreSQL (`generate_series`); parts written as gzipped NDJSON to a temporary data
//! directory (the embedded object store; S3 would add the network, not memory). Each
//! export follows its continuation jobs as `serve` would enqueue them. PostgreSQL:
//! `DROWL_TEST_PG_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); a
//! `drowl_test_<random>` database is created and dropped.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use drowl_host::jobs::{Executor, HostPolicy, JobRequest, ReadyPlugin, Registry};
use drowl_host::runtime::{EngineSettings, Runtime};
use drowl_host::storage::postgres::PostgresConfig;
use drowl_host::storage::{self, Storage, StorageConfig};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const FIXTURE: [&str; 2] = [
    "INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload, text,
                         plugin_id, plugin_version)
     SELECT 'ev-' || lpad(g::text, 9, '0'), 'github', 'ext-' || g, 'push',
            timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
            jsonb_build_object('type', 'PushEvent', 'repo', jsonb_build_object('name', 'drowl/drowl'),
                'payload', jsonb_build_object('commits', jsonb_build_array(jsonb_build_object(
                    'sha', md5(g::text), 'message', 'Update the docs for release ' || g)))),
            'Update the docs for release ' || g, 'github', '1.0.0'
       FROM generate_series(1, $1) g",
    "ANALYZE",
];

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn executor(storage: &Storage) -> Result<Executor> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root.join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })?;
    let loaded = runtime
        .load_file(Path::new(drowl_test_artifacts::EXPORT_PLUGIN))
        .await?;
    let mut registry = Registry::default();
    registry.insert(ReadyPlugin::prepare(
        loaded,
        &HostPolicy::default(),
        storage,
    )?)?;
    Ok(Executor::new(runtime, storage.clone(), registry))
}

/// Runs one export with its continuations; returns (jobs, events delivered, parts).
async fn export(
    exec: &Executor,
    tag: &str,
    mut input: serde_json::Value,
) -> Result<(u64, u64, u64)> {
    let mut jobs = 0u64;
    loop {
        jobs += 1;
        let payload = json!({ "type": "data_export", "name": "export-events", "input": input });
        let job = JobRequest::from_value(&format!("{tag}-{jobs}"), &payload)?;
        let done = exec
            .execute(&job, None)
            .await
            .map_err(|f| anyhow::anyhow!("{}", f.failure))?;
        match done.continuation {
            Some(next) => input = next,
            None => {
                let delivered = done.output["delivered"].as_u64().unwrap_or(0);
                let parts = done.output["locations"]
                    .as_array()
                    .map_or(0, |l| l.len() as u64);
                return Ok((jobs, delivered, parts));
            }
        }
    }
}

async fn bench(url: &str, events: i64) -> Result<()> {
    let data = tempfile::tempdir()?;
    let storage = storage::open(
        &StorageConfig {
            postgres: Some(PostgresConfig::new(url)),
            s3: None,
            migrate_on_start: true,
        },
        data.path(),
    )
    .await?;
    let mut conn = PgConnection::connect(url).await?;
    let started = Instant::now();
    for (sql, n) in FIXTURE.iter().zip([Some(events), None]) {
        let mut q = sqlx::query(sql);
        if let Some(n) = n {
            q = q.bind(n);
        }
        q.execute(&mut conn)
            .await
            .with_context(|| (*sql).to_owned())?;
    }
    eprintln!(
        "fixture: {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let exec = executor(&storage).await?;
    println!(
        "data_export to gzipped NDJSON, PostgreSQL -> export plugin -> files ({} build of drowl-host)",
        if cfg!(debug_assertions) {
            "unoptimised"
        } else {
            "optimised"
        }
    );
    println!("  peak RSS before any export: {:>7.1} MiB", peak_rss_mib());
    let tenth = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")?
        + chrono::Duration::seconds(events / 10 + 1);
    for (tag, what, input) in [
        (
            "tenth",
            "a tenth",
            json!({ "pluginId": "export", "until": tenth.to_rfc3339() }),
        ),
        ("all", "all", json!({ "pluginId": "export" })),
    ] {
        let t = Instant::now();
        let (jobs, delivered, parts) = export(&exec, tag, input).await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {what:<8} {jobs:>3} jobs {delivered:>8} events {parts:>5} parts {secs:>7.2} s \
             {:>8.0} events/s   peak RSS {:>7.1} MiB",
            delivered as f64 / secs,
            peak_rss_mib()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let events: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("events must be a number")?
        .unwrap_or(1_000_000)
        .max(10);
    // A database of its own, dropped afterwards (the test suite's helper).
    let db = drowl_testkit::storage::TestDb::create().await;
    bench(&db.url, events).await
}
