//! `keyword_extraction` over 100,000 stored events in PostgreSQL, end to end.
//!
//! Not a test: it prints events per second for drowl's keyword job as the daemon runs it
//! (read events from PostgreSQL in pages of 500, hand each page to the `keywords` plugin
//! in its sandbox, store the matches of tracked keywords), including the continuation
//! jobs a long run splits into, so the README can quote it and #14's enrichment target
//! can be judged against it.
//!
//! ```text
//! cargo run -p drowl-host --example bench_enrich \
//!     --config 'profile.dev.package.drowl-host.opt-level=2' \
//!     --config 'profile.dev.package.drowl-host.debug-assertions=false' \
//!     -- [events] [keywords]
//! ```
//!
//! Defaults: 100,000 events (half with the text this host extracts, half as drowl's API
//! stores them: a GitHub-shaped raw payload and no text) and 50 tracked keywords; two
//! runs, the second a rerun that must store nothing new; each prints a
//! `BENCH enrich.e2e_<run>_eps=...` summary line for `scripts/bench.sh`. The fixture is
//! generated inside PostgreSQL (`generate_series`). PostgreSQL: `DROWL_TEST_PG_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); a `drowl_test_<random>` database is
//! created and dropped.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use drowl_host::jobs::{Executor, HostPolicy, JobRequest, ReadyPlugin, Registry};
use drowl_host::runtime::{EngineSettings, Runtime};
use drowl_host::storage::postgres::PostgresConfig;
use drowl_host::storage::{self, Storage, StorageConfig};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// Technologies a DevRel team tracks; the fixture's texts mention them.
const TERMS: [&str; 10] = [
    "TypeScript",
    "React",
    "Rust",
    "WebAssembly",
    "PostgreSQL",
    "Kubernetes",
    "Deno",
    "Svelte",
    "GraphQL",
    "Tailwind",
];

/// Keywords (`$1` of them), then events (`$1` of them). Even events carry extracted text; odd ones only a
/// GitHub push payload, as drowl's API stores them. Every text mentions one of the
/// tracked terms in a sentence of ordinary length.
const FIXTURE: [&str; 3] = [
    "INSERT INTO keywords (id, term, category, match_strategy)
     SELECT 'kw-' || g,
            CASE WHEN g <= 10 THEN (ARRAY['TypeScript','React','Rust','WebAssembly','PostgreSQL',
                                          'Kubernetes','Deno','Svelte','GraphQL','Tailwind'])[g]
                 ELSE 'term' || g END,
            'technology', 'word_boundary'
       FROM generate_series(1, $1) g",
    "INSERT INTO events (id, source, external_id, event_type, occurred_at, raw_payload, text,
                         plugin_id, plugin_version)
     SELECT 'ev-' || lpad(g::text, 9, '0'), 'github', 'ext-' || g, 'push',
            timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
            jsonb_build_object('type', 'PushEvent', 'payload', jsonb_build_object(
                'commits', jsonb_build_array(jsonb_build_object('message',
                    'Refactor the ' || (ARRAY['TypeScript','React','Rust','WebAssembly',
                    'PostgreSQL','Kubernetes','Deno','Svelte','GraphQL','Tailwind'])[1 + g % 10]
                    || ' integration and update the docs for release ' || g)))),
            CASE WHEN g % 2 = 0 THEN
                'Refactor the ' || (ARRAY['TypeScript','React','Rust','WebAssembly','PostgreSQL',
                'Kubernetes','Deno','Svelte','GraphQL','Tailwind'])[1 + g % 10]
                || ' integration and update the docs for release ' || g
            END,
            'github', '1.0.0'
       FROM generate_series(1, $1) g",
    "ANALYZE",
];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let events = args.first().copied().unwrap_or(100_000).max(1);
    let keywords = args.get(1).copied().unwrap_or(50).max(TERMS.len() as i64);
    // A database of its own, dropped afterwards (the test suite's helper).
    let db = drowl_testkit::storage::TestDb::create().await;
    bench(&db.url, events, keywords).await
}

/// An executor over `storage` with the keywords plugin installed, as the daemon builds it.
async fn executor(storage: &Storage) -> Result<Executor> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root.join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })?;
    let loaded = runtime
        .load_file(Path::new(drowl_test_artifacts::KEYWORDS_PLUGIN))
        .await?;
    let mut registry = Registry::default();
    registry.insert(ReadyPlugin::prepare(
        loaded,
        &HostPolicy::default(),
        storage,
    )?)?;
    Ok(Executor::new(runtime, storage.clone(), registry))
}

/// Runs drowl's keyword job over every event, following its continuations as `serve`
/// would enqueue them; returns (jobs, events scanned, matches stored).
async fn run(exec: &Executor, tag: &str) -> Result<(u64, u64, u64)> {
    let mut input = json!({});
    let (mut jobs, mut scanned, mut stored) = (0u64, 0u64, 0u64);
    loop {
        jobs += 1;
        let payload = json!({ "type": "keyword_extraction", "name": "extract-keywords",
                              "input": input });
        let job = JobRequest::from_value(&format!("{tag}-{jobs}"), &payload)?;
        let done = exec
            .execute(&job, None)
            .await
            .map_err(|f| anyhow::anyhow!("{}", f.failure))?;
        scanned += done.output["eventsScanned"].as_u64().unwrap_or(0);
        stored += done.output["matchesStored"].as_u64().unwrap_or(0);
        match done.continuation {
            Some(next) => input = next,
            None => return Ok((jobs, scanned, stored)),
        }
    }
}

async fn bench(url: &str, events: i64, keywords: i64) -> Result<()> {
    // Objects (none here: enrichment writes none) would go to files under this directory.
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
    for (sql, n) in FIXTURE.iter().zip([Some(keywords), Some(events), None]) {
        let mut q = sqlx::query(sql);
        if let Some(n) = n {
            q = q.bind(n);
        }
        q.execute(&mut conn)
            .await
            .with_context(|| (*sql).to_owned())?;
    }
    eprintln!(
        "fixture: {events} events (half without text), {keywords} keywords in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let exec = executor(&storage).await?;
    println!(
        "keyword_extraction over {events} stored events, {keywords} tracked keywords, PostgreSQL \
         ({} build of drowl-host)",
        if cfg!(debug_assertions) {
            "unoptimised"
        } else {
            "optimised"
        }
    );
    for (tag, what) in [("first", "first run"), ("again", "rerun (nothing new)")] {
        let t = Instant::now();
        let (jobs, scanned, stored) = run(&exec, tag).await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {what:<22} {jobs:>3} jobs  {scanned:>8} events  {stored:>8} matches stored  \
             {secs:>7.2} s  {:>8.0} events/s",
            scanned as f64 / secs
        );
        println!(
            "BENCH enrich.e2e_{tag}_eps={:.0} enrich.e2e_events={scanned}",
            scanned as f64 / secs
        );
    }
    let matches: i64 = sqlx::query_scalar("SELECT count(*) FROM keyword_matches")
        .fetch_one(&mut conn)
        .await?;
    anyhow::ensure!(
        matches == events,
        "{matches} matches stored for {events} events, each mentioning one tracked term"
    );
    Ok(())
}
