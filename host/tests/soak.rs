//! Soak: thousands of faulty jobs interleaved with good ones through one executor, as
//! the daemon runs them (in process, several at once). Every good job must complete with
//! the right output, every faulty one must fail with its own category, and the process's
//! resident memory must not keep growing once it has warmed up.
//!
//! Its own test binary, so no other test's allocations show up in the RSS figures.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drowl_host::jobs::{Executor, HostPolicy, JobRequest, PluginSettings, ReadyPlugin, Registry};
use drowl_host::runtime::{Budget, EngineSettings, Runtime};
use drowl_testkit::soak::{FAULTS, SECRET, assert_flat_rss, rss_kib};
use futures::StreamExt;
use serde_json::json;

/// Faulty jobs run.
const FAULTY: usize = 2_000;
/// One good job after every this many faulty ones.
const FAULTY_PER_GOOD: usize = 4;
/// Jobs in flight at once.
const CONCURRENCY: usize = 4;
/// Jobs between two RSS samples.
const SAMPLE_EVERY: usize = 50;

fn policy() -> HostPolicy {
    let mut p = HostPolicy {
        caps: Budget {
            timeout: Duration::from_secs(20),
            max_memory_bytes: 32 << 20,
            max_guest_to_host_bytes: 4 << 20,
            max_batch_bytes: 1 << 20,
            max_resource_handles: 1_000,
            ..Budget::default()
        },
        ..HostPolicy::default()
    };
    p.plugins.insert(
        "hostile".into(),
        PluginSettings {
            config: [("token".to_owned(), SECRET.to_owned())].into(),
            grants: vec![],
            ..PluginSettings::default()
        },
    );
    p
}

/// An executor on embedded storage in `dir` with the hostile plugin installed, as the
/// daemon builds one. (The `all` binary's `support::executor` does the same; drowl-host's
/// integration-test helpers cannot live in a crate drowl-host depends on.)
async fn executor(dir: &Path, policy: HostPolicy) -> Executor {
    let storage = drowl_host::storage::open_embedded(dir).await.unwrap();
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/drowl-test-cache")),
        ..EngineSettings::default()
    })
    .unwrap();
    let loaded = runtime
        .load_file(Path::new(drowl_test_artifacts::HOSTILE_PLUGIN))
        .await
        .unwrap();
    let mut registry = Registry::default();
    registry
        .insert(ReadyPlugin::prepare(loaded, &policy, &storage).unwrap())
        .unwrap();
    Executor::new(runtime, storage, registry)
}

/// A job request from drowl's JSON.
fn job(id: &str, v: serde_json::Value) -> JobRequest {
    JobRequest::from_value(id, &v).unwrap()
}

enum Kind {
    Good,
    Fault(usize),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_faulty_jobs_leave_good_ones_and_memory_alone() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path(), policy()).await;

    let total = FAULTY + FAULTY / FAULTY_PER_GOOD;
    let kinds: Vec<Kind> = (0..total)
        .scan(0usize, |faults, i| {
            Some(if i % (FAULTY_PER_GOOD + 1) == FAULTY_PER_GOOD {
                Kind::Good
            } else {
                *faults += 1;
                Kind::Fault((*faults - 1) % FAULTS.len())
            })
        })
        .collect();

    let done = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(usize, u64, u64)>::new()));
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(kinds.into_iter().enumerate())
        .map(|(i, kind)| {
            let exec = exec.clone();
            let done = done.clone();
            let samples = samples.clone();
            async move {
                let outcome = match kind {
                    Kind::Good => {
                        let j = json!({ "type": "event_ingestion", "name": "soak", "input": {
                            "pluginId": "hostile", "mode": "ok", "count": 3, "tag": format!("j{i}-") } });
                        match exec.execute(&job(&format!("good-{i}"), j), None).await {
                            Ok(c) if c.output["eventsStored"] == 3
                                && c.output["eventsReceived"] == 3
                                && c.output["cursor"] == "1" =>
                            {
                                Ok(())
                            }
                            Ok(c) => Err(format!("good job {i}: wrong output {}", c.output)),
                            Err(e) => Err(format!("good job {i} failed: {}", e.failure)),
                        }
                    }
                    Kind::Fault(f) => {
                        let (mode, count, flag, code) = FAULTS[f];
                        let mut j = json!({ "type": "event_ingestion", "name": "soak", "input": {
                            "pluginId": "hostile", "mode": mode, "count": count } });
                        if !flag.is_empty() {
                            j["input"][flag] = json!(true);
                        }
                        match exec.execute(&job(&format!("bad-{i}"), j), None).await {
                            Err(e) if e.failure.code() == code => Ok(()),
                            Err(e) => Err(format!(
                                "{mode} ({i}): expected {code}, got {}: {}",
                                e.failure.code(),
                                e.failure
                            )),
                            Ok(c) => Err(format!("{mode} ({i}) completed: {}", c.output)),
                        }
                    }
                };
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(SAMPLE_EVERY) || n == total {
                    let (rss, hwm) = rss_kib("self");
                    samples.lock().unwrap().push((n, rss, hwm));
                }
                outcome
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let samples = samples.lock().unwrap().clone();
    println!(
        "soak: {total} jobs ({FAULTY} faulty) in {elapsed:.1?}, {:.0} jobs/s, concurrency {CONCURRENCY}",
        total as f64 / elapsed.as_secs_f64()
    );
    for (n, rss, hwm) in samples.iter().filter(|s| s.0 % 250 == 0 || s.0 == total) {
        println!(
            "soak: after {n:>5} jobs  VmRSS {:>7.1} MiB  VmHWM {:>7.1} MiB",
            *rss as f64 / 1024.0,
            *hwm as f64 / 1024.0
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {total} jobs misbehaved, first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    let rss: Vec<(usize, u64)> = samples.iter().map(|s| (s.0, s.1)).collect();
    assert_flat_rss("soak", &rss, total);
}
