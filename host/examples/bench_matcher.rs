//! Keyword matching in memory: the `keywords` plugin in its sandbox against the same Rust
//! matcher compiled natively, over the corpus `tests/interop/bench_matcher.js` (the plain
//! Node.js matcher of issue #14) writes, so all three see the same events and keywords.
//!
//! Not a test. Each of the three builds its matcher once per pass, as a `keyword_extraction`
//! job does (the plugin keeps the keywords it compiled for the job's first page): the
//! sandbox run instantiates the plugin once and calls `enrich` with each page of 500 events
//! (events and keywords cross the component boundary, matches come back), the native run
//! calls `keywords_plugin::matcher` directly. One thread, so the figures are per core.
//!
//! ```text
//! node tests/interop/bench_matcher.js --write /tmp/corpus.json
//! cargo run --release -p drowl-host --example bench_matcher -- /tmp/corpus.json [passes]
//! ```
//!
//! Prints the best of `passes` (default 3) timed passes after one warm-up pass, and a
//! `BENCH enrich.sandbox_eps=... enrich.native_eps=...` summary line for `scripts/bench.sh`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use drowl_host::bindings::enrichment::exports::drowl::plugin::enrichment as wit;
use drowl_host::bindings::types;
use drowl_host::capabilities::JobScope;
use drowl_host::jobs::{HostPolicy, ReadyPlugin};
use drowl_host::runtime::{EngineSettings, Runtime};
use keywords_plugin::matcher::{KeywordSpec, Matcher, Strategy};
use serde::Deserialize;

/// Events per `enrich` call, as `jobs::enrich` pages them.
const PAGE: usize = 500;

#[derive(Deserialize)]
struct Keyword {
    id: String,
    term: String,
    synonyms: Vec<String>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    text: String,
}

#[derive(Deserialize)]
struct Corpus {
    keywords: Vec<Keyword>,
    events: Vec<Event>,
}

fn wit_event(e: &Event) -> types::StoredEvent {
    types::StoredEvent {
        id: e.id.clone(),
        event: types::Event {
            external_id: e.id.clone(),
            source: "github".into(),
            event_type: "comment".into(),
            occurred_at: "2024-01-01T00:00:00Z".into(),
            actor: None,
            text: Some(e.text.clone()),
            payload: "{}".into(),
        },
    }
}

fn job_context(i: usize) -> types::JobContext {
    types::JobContext {
        job_id: format!("bench-{i}"),
        job_type: "keyword_extraction".into(),
        name: "bench".into(),
        attempt: 1,
        max_attempts: 1,
        input: "{}".into(),
        idempotency_key: format!("keyword_extraction:bench-{i}"),
    }
}

/// One timed pass; returns (seconds, matches).
fn best_of<F: FnMut() -> Result<u64>>(passes: usize, mut pass: F) -> Result<(f64, u64)> {
    pass()?;
    let mut best: Option<(f64, u64)> = None;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        let m = pass()?;
        let secs = t.elapsed().as_secs_f64();
        if best.is_none_or(|(s, _)| secs < s) {
            best = Some((secs, m));
        }
    }
    best.context("no pass")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .context("usage: bench_matcher CORPUS.json [passes] (write it with tests/interop/bench_matcher.js --write)")?,
    );
    let passes: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let corpus: Corpus = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("reading {}", path.display()))?;
    let n = corpus.events.len();
    let avg = corpus.events.iter().map(|e| e.text.len()).sum::<usize>() / n.max(1);

    // The sandbox: the daemon's runtime and the plugin as it installs it.
    let data = tempfile::tempdir()?;
    let storage = drowl_host::storage::open_embedded(data.path()).await?;
    let runtime = Runtime::new(&EngineSettings::default())?;
    let loaded = runtime
        .load_file(std::path::Path::new(drowl_test_artifacts::KEYWORDS_PLUGIN))
        .await?;
    let plugin = ReadyPlugin::prepare(loaded, &HostPolicy::default(), &storage)?;
    let wit_keywords: Vec<wit::Keyword> = corpus
        .keywords
        .iter()
        .map(|k| wit::Keyword {
            id: k.id.clone(),
            term: k.term.clone(),
            category: "technology".into(),
            strategy: wit::MatchStrategy::WordBoundary,
            regex_pattern: None,
            synonyms: k.synonyms.clone(),
        })
        .collect();
    let pages: Vec<Vec<types::StoredEvent>> = corpus
        .events
        .chunks(PAGE)
        .map(|c| c.iter().map(wit_event).collect())
        .collect();
    // `best_of` takes a synchronous closure; the sandbox calls are async, so time them
    // with an explicit loop of the same shape.
    let sandbox_pass = async || -> Result<u64> {
        let mut matches = 0u64;
        let mut instance = plugin
            .instantiate(
                &runtime,
                JobScope {
                    id: "bench",
                    depth: 0,
                    progress: None,
                },
            )
            .await?;
        for (i, page) in pages.iter().enumerate() {
            let req = wit::EnrichRequest {
                job: job_context(i),
                events: page.clone(),
                keywords: wit_keywords.clone(),
                config: Vec::new(),
            };
            let r = instance
                .enrich(&req)
                .await?
                .map_err(|e| anyhow::anyhow!("enrich failed: {e:?}"))?;
            matches += r.keyword_matches.len() as u64;
        }
        drop(instance.finish());
        Ok(matches)
    };
    sandbox_pass().await?;
    let mut sandbox: Option<(f64, u64)> = None;
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        let m = sandbox_pass().await?;
        let secs = t.elapsed().as_secs_f64();
        if sandbox.is_none_or(|(s, _)| secs < s) {
            sandbox = Some((secs, m));
        }
    }
    let (sandbox_secs, sandbox_matches) = sandbox.context("no pass")?;

    // Natively: the same matcher crate, compiled once per job like the plugin does.
    let specs: Vec<KeywordSpec> = corpus
        .keywords
        .iter()
        .map(|k| KeywordSpec {
            id: k.id.clone(),
            term: k.term.clone(),
            strategy: Strategy::WordBoundary,
            regex_pattern: None,
            synonyms: k.synonyms.clone(),
        })
        .collect();
    let (native_secs, native_matches) = best_of(passes, || {
        let mut matches = 0u64;
        let (matcher, problems) = Matcher::new_lenient(&specs);
        ensure!(problems.is_empty(), "keyword problems: {problems:?}");
        for e in &corpus.events {
            matches += matcher.find(&e.text).len() as u64;
        }
        Ok(matches)
    })?;
    ensure!(
        sandbox_matches == native_matches,
        "the sandbox found {sandbox_matches} matches, native {native_matches}"
    );

    println!(
        "keyword matching in memory: {n} events (avg {avg} B) from {}, {} keywords, pages of {PAGE}, \
         one thread, best of {passes}",
        path.display(),
        corpus.keywords.len()
    );
    let sandbox_eps = n as f64 / sandbox_secs;
    let native_eps = n as f64 / native_secs;
    println!(
        "  keywords plugin in the sandbox (one instance, enrich per page) {sandbox_secs:>7.3} s {sandbox_eps:>9.0} events/s  {sandbox_matches} matches"
    );
    println!(
        "  the same matcher natively (keywords_plugin::matcher)           {native_secs:>7.3} s {native_eps:>9.0} events/s  {native_matches} matches"
    );
    println!(
        "  sandbox / native speed: {:.2} (native is {:.2}x the sandbox)",
        sandbox_eps / native_eps,
        native_eps / sandbox_eps
    );
    println!("BENCH enrich.sandbox_eps={sandbox_eps:.0} enrich.native_eps={native_eps:.0}");
    Ok(())
}
