//! The sandbox contains each fault to its own job.

use std::time::{Duration, Instant};

use drowl_host::jobs::{HostPolicy, JobFailure, PluginSettings};
use drowl_host::runtime::{Budget, CallError, EngineSettings, LoadError, Runtime};
use serde_json::json;

use crate::support::*;

fn policy(timeout_ms: u64, memory: u64) -> HostPolicy {
    let mut p = HostPolicy {
        caps: Budget {
            timeout: Duration::from_millis(timeout_ms),
            max_memory_bytes: memory,
            ..Budget::default()
        },
        ..HostPolicy::default()
    };
    p.plugins.insert(
        "hostile".into(),
        PluginSettings {
            config: [("token".to_owned(), "ghp_TOPsecret123".to_owned())].into(),
            grants: vec![],
            ..PluginSettings::default()
        },
    );
    p
}

fn probe(mode: &str) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "probe", "input": { "pluginId": "hostile", "mode": mode, "count": 3 } })
}

/// Components that are not drowl plugins are refused at load, naming the problem.
#[tokio::test]
async fn invalid_components_are_rejected_at_load_with_the_reason() {
    let runtime = Runtime::new(&EngineSettings::default()).unwrap();
    let cases = [
        (
            wat::parse_str("(component)").unwrap(),
            "exports none of drowl's plugin worlds",
        ),
        (
            wat::parse_str(r#"(component (import "drowl:plugin/log@0.3.0" (instance)))"#).unwrap(),
            "targets drowl:plugin@0.3.0, but this drowl-host supports drowl:plugin@0.1.0, 0.2.0",
        ),
        (
            wat::parse_str(r#"(component (import "drowl:plugin/log@0.2.0" (instance)))"#).unwrap(),
            "imports `drowl:plugin/log@0.2.0`, which drowl-host does not provide",
        ),
        (
            wat::parse_str(r#"(component (import "wasi:sockets/tcp@0.2.0" (instance)))"#).unwrap(),
            "imports `wasi:sockets/tcp@0.2.0`, which drowl-host does not provide; plugins reach the network only through drowl:plugin/http",
        ),
        (
            wat::parse_str(r#"(component (import "acme:evil/db" (instance)))"#).unwrap(),
            "imports `acme:evil/db`",
        ),
        (
            b"\0asm\x0d\x00\x01\x00garbage".to_vec(),
            "is not a valid component",
        ),
    ];
    for (bytes, needle) in cases {
        let err = runtime.load_bytes(&bytes, "case.wasm").await.unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "expected {needle:?} in {err}"
        );
        assert!(!matches!(err, LoadError::Io { .. }));
    }
}

/// An endless loop hits the deadline; a memory bomb hits the memory limit; deep
/// recursion overflows the stack; a panic is reported with its message. Each fails
/// only its own job and reports what it used.
#[tokio::test]
async fn each_fault_ends_only_its_own_job_with_a_category() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(1000, 32 << 20)).await;

    let started = Instant::now();
    let err = exec
        .execute(&job("loop", probe("loop")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::Call(CallError::Timeout(_))),
        "{:?}",
        err.failure
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "deadline took {:?}",
        started.elapsed()
    );
    assert_eq!(err.failure.code(), "timeout");

    let err = exec
        .execute(&job("grow", probe("grow")), None)
        .await
        .unwrap_err();
    assert_eq!(err.failure.code(), "memory-limit", "{}", err.failure);
    let peak = err.report.unwrap().usage.peak_memory_bytes;
    assert!(peak <= 32 << 20 && peak > 1 << 20, "peak {peak}");

    let err = exec
        .execute(&job("recurse", probe("recurse")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::Call(CallError::StackOverflow)),
        "{}",
        err.failure
    );

    let err = exec
        .execute(&job("panic", probe("panic")), None)
        .await
        .unwrap_err();
    assert!(
        err.failure
            .to_string()
            .contains("hostile plugin panicked on purpose"),
        "{}",
        err.failure
    );

    // The same executor still runs good jobs after all of that.
    let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 3);
}

/// A looping plugin does not hold up a healthy job running beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_starve_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(3000, 64 << 20)).await;
    let bad = {
        let exec = exec.clone();
        tokio::spawn(async move { exec.execute(&job("loop-1", probe("loop")), None).await })
    };
    let bad2 = {
        let exec = exec.clone();
        tokio::spawn(async move { exec.execute(&job("loop-2", probe("loop")), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for i in 0..5 {
        exec.execute(&job(&format!("good-{i}"), probe("ok")), None)
            .await
            .unwrap();
    }
    let healthy = started.elapsed();
    assert!(
        healthy < Duration::from_millis(1500),
        "healthy jobs took {healthy:?} next to two loops"
    );
    assert_eq!(bad.await.unwrap().unwrap_err().failure.code(), "timeout");
    assert_eq!(bad2.await.unwrap().unwrap_err().failure.code(), "timeout");
}

/// A request to a host the plugin did not declare is denied before any connection.
#[tokio::test]
async fn undeclared_hosts_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(5000, 64 << 20);
    p.default_grants = vec!["*".into()];
    let exec = executor(dir.path(), &[&hostile], p).await;
    let mut j = probe("http");
    j["input"]["url"] = json!("http://example.com/");
    let err = exec.execute(&job("http", j), None).await.unwrap_err();
    let msg = err.failure.to_string();
    assert!(
        msg.contains("request denied") && msg.contains("example.com"),
        "{msg}"
    );
    let report = err.report.unwrap();
    assert_eq!(report.usage.http_requests, 1);
    assert!(
        report.requests[0].remote_addr.is_none(),
        "no connection may be made"
    );
}

/// Secrets never reach logs or errors, in plain form or encoded.
#[tokio::test]
async fn secrets_are_redacted_from_logs_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(5000, 64 << 20)).await;
    let err = exec
        .execute(&job("leak", probe("leak-secret")), None)
        .await
        .unwrap_err();
    let report = err.report.unwrap();
    let everything = format!("{} {:?}", err.failure, report.logs);
    assert!(!everything.contains("ghp_TOPsecret123"), "{everything}");
    assert!(everything.contains("[REDACTED]"), "{everything}");
}

/// Object keys cannot escape the plugin's prefix.
#[tokio::test]
async fn object_keys_cannot_escape_the_plugin_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(5000, 64 << 20)).await;
    for key in [
        "../keywords/objects/x",
        "/etc/passwd",
        "a/../../b",
        "a\u{0}b",
    ] {
        let mut j = probe("objects");
        j["input"]["url"] = json!(key);
        let err = exec.execute(&job("obj", j), None).await.unwrap_err();
        assert!(
            err.failure.to_string().contains("invalid object key"),
            "{key:?}: {}",
            err.failure
        );
    }
    let mut j = probe("objects");
    j["input"]["url"] = json!("cache/page-1.json");
    let ok = exec.execute(&job("obj-ok", j), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 1);
    assert!(
        dir.path()
            .join("objects/plugins/hostile/objects/cache/page-1.json")
            .exists()
    );
    assert!(!dir.path().join("objects/plugins/keywords").exists());
}

/// Oversized output and contract violations fail the job as invalid output.
#[tokio::test]
async fn contract_violations_are_invalid_output() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(10_000, 256 << 20);
    p.caps.max_batch_bytes = 4 << 20;
    let exec = executor(dir.path(), &[&hostile], p).await;
    for (mode, needle) in [
        ("bad-source", "source \"github\" is not declared"),
        ("bad-time", "not RFC 3339"),
        ("bad-payload", "payload is not JSON"),
        ("huge-output", "over the limit"),
    ] {
        let mut j = probe(mode);
        j["input"]["count"] = json!(8);
        let err = exec.execute(&job(mode, j), None).await.unwrap_err();
        assert_eq!(
            err.failure.code(),
            "invalid-output",
            "{mode}: {}",
            err.failure
        );
        assert!(
            err.failure.to_string().contains(needle),
            "{mode}: {}",
            err.failure
        );
    }
}

/// An executor like `support::executor`, on an engine with `settings`.
async fn executor_on_engine(
    dir: &std::path::Path,
    files: &[&std::path::Path],
    policy: HostPolicy,
    settings: EngineSettings,
) -> drowl_host::jobs::Executor {
    use drowl_host::jobs::{Executor, ReadyPlugin, Registry};
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..settings
    })
    .unwrap();
    let storage = drowl_host::storage::open_embedded(dir).await.unwrap();
    let mut registry = Registry::default();
    for f in files {
        let loaded = runtime.load_file(f).await.unwrap();
        registry
            .insert(ReadyPlugin::prepare(loaded, &policy, &storage).unwrap())
            .unwrap();
    }
    Executor::new(runtime, storage, registry)
}

fn probe_with(mode: &str, count: u32) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "probe", "input": { "pluginId": "hostile", "mode": mode, "count": count } })
}

/// A host call handed a gigantic argument ends only that job: over the per-call budget
/// the argument is never copied into the host (output-limit); under it, the import's own
/// caps answer (a KV value over 1 MiB is an error the plugin sees; a huge log line is
/// kept only as a bounded prefix).
#[tokio::test]
async fn giant_host_call_arguments_end_only_their_job() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(10_000, 256 << 20);
    p.caps.max_guest_to_host_bytes = 16 << 20;
    let exec = executor(dir.path(), &[&hostile], p).await;

    for mode in ["log-huge", "kv-huge"] {
        let started = Instant::now();
        let err = exec
            .execute(&job(mode, probe_with(mode, 24)), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.failure.code(),
            "output-limit",
            "{mode}: {}",
            err.failure
        );
        let msg = err.failure.to_string();
        assert!(
            msg.contains("more than 16777216 bytes to the host in one call")
                && msg.contains("smaller pieces"),
            "{mode}: {msg}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode} took {:?}",
            started.elapsed()
        );
    }

    // Under the per-call budget: the KV cap is an error the plugin gets and reports.
    let err = exec
        .execute(&job("kv-2", probe_with("kv-huge", 2)), None)
        .await
        .unwrap_err();
    assert_eq!(err.failure.code(), "plugin-permanent", "{}", err.failure);
    assert!(
        err.failure
            .to_string()
            .contains("value larger than the host's limit of 1048576 bytes"),
        "{}",
        err.failure
    );

    // A 4 MiB log line is accepted but kept as a bounded prefix.
    let done = exec
        .execute(&job("log-4", probe_with("log-huge", 4)), None)
        .await
        .unwrap();
    let logs = &done.report.as_ref().unwrap().logs;
    assert_eq!(logs.len(), 1);
    assert!(
        logs[0].message.len() <= 4096 + 16,
        "{}",
        logs[0].message.len()
    );
    assert!(logs[0].message.ends_with("[truncated]"));

    let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 3);
}

/// A return value bigger than the per-call budget is refused while wasmtime lifts it,
/// before the host holds it; a page over the event or byte limits is invalid output.
#[tokio::test]
async fn huge_return_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(20_000, 256 << 20);
    p.caps.max_guest_to_host_bytes = 16 << 20;
    p.caps.max_events_per_batch = 100;
    let exec = executor(dir.path(), &[&hostile], p).await;

    // One 24 MiB payload; 200,000 small events (their records alone are over 16 MiB).
    for (mode, count) in [("huge-output", 24), ("many-events", 200_000)] {
        let err = exec
            .execute(&job(mode, probe_with(mode, count)), None)
            .await
            .unwrap_err();
        assert_eq!(
            err.failure.code(),
            "output-limit",
            "{mode}: {}",
            err.failure
        );
        let report = err.report.unwrap();
        assert_eq!(
            report.usage.bytes_from_plugin, 0,
            "{mode}: no page may be accepted"
        );
    }
    // Under the per-call budget, the host's page limits apply.
    let err = exec
        .execute(&job("many", probe_with("many-events", 500)), None)
        .await
        .unwrap_err();
    assert_eq!(err.failure.code(), "invalid-output", "{}", err.failure);
    assert!(
        err.failure
            .to_string()
            .contains("a page of 500 events is over the limit of 100"),
        "{}",
        err.failure
    );
    let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 3);
}

/// A plugin that leaks resource handles (here WASI output streams, one per call) ends
/// at the handle budget with its own category, quickly, instead of growing the host.
#[tokio::test]
async fn leaked_resource_handles_end_the_job_at_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(10_000, 64 << 20);
    p.caps.max_resource_handles = 1_000;
    let exec = executor(dir.path(), &[&hostile], p).await;

    let started = Instant::now();
    let err = exec
        .execute(&job("leak", probe_with("handles", 10_000_000)), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.failure,
            JobFailure::Call(CallError::ResourceLimit(1_000))
        ),
        "{:?}",
        err.failure
    );
    assert_eq!(err.failure.code(), "resource-limit");
    assert!(
        err.failure.to_string().contains("drop each handle"),
        "{}",
        err.failure
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // A few handles are fine, and the next job starts from an empty table.
    for i in 0..3 {
        let ok = exec
            .execute(&job(&format!("few-{i}"), probe_with("handles", 900)), None)
            .await
            .unwrap();
        assert_eq!(ok.output["eventsReceived"], 1);
    }
}

/// A plugin that logs without end keeps the first lines, counts the rest, and still
/// finishes quickly.
#[tokio::test]
async fn a_log_flood_is_capped_and_the_job_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(20_000, 64 << 20);
    p.caps.max_log_lines = 50;
    let exec = executor(dir.path(), &[&hostile], p).await;
    let started = Instant::now();
    let done = exec
        .execute(&job("flood", probe_with("log-flood", 200_000)), None)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let report = done.report.unwrap();
    assert_eq!(report.logs.len(), 50);
    assert_eq!(report.logs[49].message, "flood line 49");
    assert_eq!(report.usage.log_lines, 200_000);
    assert_eq!(done.output["usage"]["logLines"], 200_000);
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// stderr keeps its tail: a plugin that prints megabytes there neither fails nor grows
/// the host, and a panic after such output is still reported with its message.
#[tokio::test]
async fn stderr_floods_are_bounded_and_keep_the_panic_message() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(20_000, 64 << 20)).await;
    let done = exec
        .execute(&job("stderr", probe_with("stderr-flood", 20_000)), None)
        .await
        .unwrap();
    assert_eq!(done.output["eventsStored"], 1);

    let mut j = probe_with("stderr-flood", 20_000);
    j["input"]["then_panic"] = json!(true);
    let err = exec
        .execute(&job("stderr-panic", j), None)
        .await
        .unwrap_err();
    assert_eq!(err.failure.code(), "trap");
    assert!(
        err.failure
            .to_string()
            .contains("panicked after a stderr flood"),
        "{}",
        err.failure
    );
}

/// `std::process::exit` and `abort` end only their job, each with a message saying
/// what happened.
#[tokio::test]
async fn exit_and_abort_end_only_their_job() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], policy(5000, 64 << 20)).await;
    for (mode, needle) in [
        // WASI 0.2's exit carries only ok/error, so status 3 arrives as 1.
        ("exit", "called exit(1) instead of returning"),
        ("abort", "the plugin aborted"),
    ] {
        let err = exec
            .execute(&job(mode, probe(mode)), None)
            .await
            .unwrap_err();
        assert_eq!(err.failure.code(), "trap", "{mode}: {}", err.failure);
        assert!(
            err.failure.to_string().contains(needle),
            "{mode}: {}",
            err.failure
        );
        assert!(err.report.is_some(), "{mode}: usage is still reported");
    }
    let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 3);
}

/// With fuel on, a CPU-bound plugin stops at its fuel budget, the same way every run,
/// and a successful job reports the (deterministic) fuel it consumed.
#[tokio::test]
async fn fuel_budgets_are_deterministic_and_reported() {
    const FUEL: u64 = 50_000_000;
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(20_000, 64 << 20);
    p.caps.fuel = Some(FUEL);
    let exec = executor_on_engine(
        dir.path(),
        &[&hostile],
        p,
        EngineSettings {
            fuel: true,
            ..EngineSettings::default()
        },
    )
    .await;

    for i in 0..2 {
        let err = exec
            .execute(&job(&format!("spin-{i}"), probe("loop")), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err.failure, JobFailure::Call(CallError::OutOfFuel(FUEL))),
            "{:?}",
            err.failure
        );
        assert_eq!(err.failure.code(), "fuel");
        assert!(err.failure.to_string().contains("fuel budget of 50000000"));
        assert_eq!(err.report.unwrap().usage.fuel_consumed, Some(FUEL));
    }

    let mut used = Vec::new();
    for i in 0..2 {
        let mut j = probe("ok");
        j["input"]["tag"] = json!(format!("fuel-{i}-"));
        let done = exec
            .execute(&job(&format!("ok-{i}"), j), None)
            .await
            .unwrap();
        let fuel = done.report.unwrap().usage.fuel_consumed.unwrap();
        assert!(fuel > 0 && fuel < FUEL, "{fuel}");
        assert_eq!(done.output["usage"]["fuelConsumed"], fuel);
        used.push(fuel);
    }
    // Same work, same fuel (the tag has the same length in both runs).
    assert_eq!(used[0], used[1]);
}

/// A job's result records what it used: time, peak memory, bytes from the plugin and
/// its HTTP requests with their bytes.
#[tokio::test]
async fn each_job_records_what_it_used() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "hello from the test server";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut p = policy(10_000, 64 << 20);
    p.default_grants = vec!["*".into()];
    p.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    let target = format!("http://127.0.0.1:{port}");
    p.plugins
        .get_mut("hostile")
        .unwrap()
        .config
        .insert("target".into(), target.clone());
    let exec = executor(dir.path(), &[&hostile], p).await;

    let mut j = probe("http");
    j["input"]["url"] = json!(format!("{target}/feed"));
    let done = exec.execute(&job("http", j), None).await.unwrap();
    let usage = &done.report.as_ref().unwrap().usage;
    assert_eq!(usage.http_requests, 1);
    assert_eq!(usage.http_bytes_in, 26);
    assert_eq!(usage.http_bytes_out, 0);
    assert!(usage.peak_memory_bytes >= 1 << 16, "{usage:?}");
    assert!(usage.bytes_from_plugin > 26, "{usage:?}");
    assert!(
        usage.instantiate_us > 0 && usage.instantiate_us <= usage.wall_ms * 1000 + 1000,
        "{usage:?}"
    );
    let recorded = &done.output["usage"];
    for key in [
        "wallMs",
        "instantiateUs",
        "peakMemoryBytes",
        "httpRequests",
        "httpBytesIn",
        "httpBytesOut",
        "bytesFromPlugin",
        "logLines",
    ] {
        assert!(recorded.get(key).is_some(), "{key} missing from {recorded}");
    }
    assert_eq!(recorded["httpRequests"], 1);
    let requests = &done.report.as_ref().unwrap().requests;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, Some(200));
    assert_eq!(requests[0].bytes_in, 26);
}

/// The plugin's manifest requests 192 MiB and 30 s: an operator cap below that wins, and
/// above it the plugin gets what it asked for, not the cap.
#[tokio::test]
async fn manifest_requests_are_capped_by_the_operator() {
    let hostile = component("hostile-plugin");

    // Operator caps below the request: the caps win.
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path(), &[&hostile], policy(1_000, 32 << 20)).await;
    let budget = exec.registry().get("hostile").unwrap().budget;
    assert_eq!(budget.max_memory_bytes, 32 << 20);
    assert_eq!(budget.timeout, Duration::from_millis(1_000));
    let err = exec
        .execute(&job("grow-small", probe("grow")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::Call(CallError::MemoryLimit(m)) if m == 32 << 20),
        "{:?}",
        err.failure
    );
    assert!(err.report.unwrap().usage.peak_memory_bytes <= 32 << 20);

    // Operator caps above the request: the plugin's smaller request is honoured.
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path(), &[&hostile], policy(120_000, 1 << 30)).await;
    let budget = exec.registry().get("hostile").unwrap().budget;
    assert_eq!(budget.max_memory_bytes, 192 << 20);
    assert_eq!(budget.timeout, Duration::from_millis(30_000));
    let err = exec
        .execute(&job("grow-big", probe("grow")), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.failure, JobFailure::Call(CallError::MemoryLimit(m)) if m == 192 << 20),
        "{:?}",
        err.failure
    );
    let peak = err.report.unwrap().usage.peak_memory_bytes;
    assert!(peak > 160 << 20 && peak <= 192 << 20, "peak {peak}");
}

/// A hand-written ingestion plugin: a core module with a bump allocator whose `describe`
/// and `ingest` return records laid out in a data segment, wrapped in the same component
/// structure wit-component produces for the drowl world (types imported from
/// `drowl:plugin/types`, each exported interface re-exported through a shim so its types
/// are named). `{MEMORY}` is replaced by the data segment.
const PROBE_COMPONENT: &str = r#"
(component
  (type $types-ty
    (instance
      (type (;0;) (option string))
      (type (;1;) (record (field "name" string) (field "email" 0) (field "url" 0)))
      (export (;2;) "author" (type (eq 1)))
      (type (;3;) (enum "event-ingestion" "identity-resolution" "keyword-extraction" "analytics" "export" "webhook" "scheduled"))
      (export (;4;) "capability" (type (eq 3)))
      (type (;5;) (enum "string" "number" "boolean" "secret" "url" "email" "json" "array"))
      (export (;6;) "field-type" (type (eq 5)))
      (type (;7;) (record (field "key" string) (field "label" string) (field "field-type" 6) (field "description" string) (field "required" bool) (field "default" 0)))
      (export (;8;) "config-field" (type (eq 7)))
      (type (;9;) (option u64))
      (type (;10;) (option u32))
      (type (;11;) (record (field "max-memory-bytes" 9) (field "timeout-ms" 9) (field "max-http-requests" 10)))
      (export (;12;) "resource-request" (type (eq 11)))
      (type (;13;) (list 4))
      (type (;14;) (list string))
      (type (;15;) (list 8))
      (type (;16;) (record (field "id" string) (field "name" string) (field "version" string) (field "description" string) (field "author" 2) (field "capabilities" 13) (field "sources" 14) (field "config" 15) (field "outbound-hosts" 14) (field "min-host-version" string) (field "resources" 12) (field "license" 0) (field "homepage" 0)))
      (export (;17;) "manifest" (type (eq 16)))
      (type (;18;) (record (field "job-id" string) (field "job-type" string) (field "name" string) (field "attempt" u32) (field "max-attempts" u32) (field "input" string) (field "idempotency-key" string)))
      (export (;19;) "job-context" (type (eq 18)))
      (type (;20;) (record (field "platform" string) (field "platform-user-id" string) (field "platform-username" 0) (field "display-name" 0) (field "profile-url" 0) (field "avatar-url" 0) (field "metadata-json" 0)))
      (export (;21;) "identity-observation" (type (eq 20)))
      (type (;22;) (option 21))
      (type (;23;) (record (field "external-id" string) (field "source" string) (field "event-type" string) (field "occurred-at" string) (field "actor" 22) (field "text" 0) (field "payload" string)))
      (export (;24;) "event" (type (eq 23)))
      (type (;25;) (record (field "message" string) (field "retry-after-ms" 9)))
      (export (;26;) "retry-info" (type (eq 25)))
      (type (;27;) (variant (case "retryable" 26) (case "rate-limited" 26) (case "permanent" string) (case "invalid-config" string)))
      (export (;28;) "job-error" (type (eq 27)))
    )
  )
  (import "drowl:plugin/types@0.1.0" (instance $types (type $types-ty)))

  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 8192))
    ;; cabi_realloc as a bump allocator: the host only allocates the ingest request.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (local.get $p))
    (func (export "describe") (result i32) (i32.const 1024))
    (func (export "ingest") (param i32) (result i32) (i32.const 2048))
    (data (i32.const 0) "{MEMORY}")
  )
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "realloc" (core func $realloc))
  (alias core export $i "describe" (core func $core-describe))
  (alias core export $i "ingest" (core func $core-ingest))

  (alias export $types "manifest" (type $manifest))
  (alias export $types "author" (type $author))
  (alias export $types "capability" (type $capability))
  (alias export $types "field-type" (type $field-type))
  (alias export $types "config-field" (type $config-field))
  (alias export $types "resource-request" (type $resource-request))
  (type $describe-ty (func (result $manifest)))
  (func $describe (type $describe-ty)
    (canon lift (core func $core-describe) (memory $memory) string-encoding=utf8))
  (component $plugin-shim
    (type (;0;) (option string))
    (type (;1;) (record (field "name" string) (field "email" 0) (field "url" 0)))
    (import "import-type-author" (type (;2;) (eq 1)))
    (type (;3;) (enum "event-ingestion" "identity-resolution" "keyword-extraction" "analytics" "export" "webhook" "scheduled"))
    (import "import-type-capability" (type (;4;) (eq 3)))
    (type (;5;) (enum "string" "number" "boolean" "secret" "url" "email" "json" "array"))
    (import "import-type-field-type" (type (;6;) (eq 5)))
    (type (;7;) (record (field "key" string) (field "label" string) (field "field-type" 6) (field "description" string) (field "required" bool) (field "default" 0)))
    (import "import-type-config-field" (type (;8;) (eq 7)))
    (type (;9;) (option u64))
    (type (;10;) (option u32))
    (type (;11;) (record (field "max-memory-bytes" 9) (field "timeout-ms" 9) (field "max-http-requests" 10)))
    (import "import-type-resource-request" (type (;12;) (eq 11)))
    (type (;13;) (list 4))
    (type (;14;) (list string))
    (type (;15;) (list 8))
    (type (;16;) (record (field "id" string) (field "name" string) (field "version" string) (field "description" string) (field "author" 2) (field "capabilities" 13) (field "sources" 14) (field "config" 15) (field "outbound-hosts" 14) (field "min-host-version" string) (field "resources" 12) (field "license" 0) (field "homepage" 0)))
    (import "import-type-manifest" (type (;17;) (eq 16)))
    (type (;18;) (func (result 17)))
    (import "import-func-describe" (func (;0;) (type 18)))
    (export (;19;) "manifest" (type 17))
    (type (;20;) (func (result 19)))
    (export (;1;) "describe" (func 0) (func (type 20)))
  )
  (instance $plugin (instantiate $plugin-shim
    (with "import-func-describe" (func $describe))
    (with "import-type-author" (type $author))
    (with "import-type-capability" (type $capability))
    (with "import-type-field-type" (type $field-type))
    (with "import-type-config-field" (type $config-field))
    (with "import-type-resource-request" (type $resource-request))
    (with "import-type-manifest" (type $manifest))
  ))
  (export "drowl:plugin/plugin@0.1.0" (instance $plugin))

  (alias export $types "job-context" (type $job-context))
  (alias export $types "event" (type $event))
  (alias export $types "identity-observation" (type $identity-observation))
  (alias export $types "retry-info" (type $retry-info))
  (alias export $types "job-error" (type $job-error))
  (type $opt-string (option string))
  (type $config-pair (tuple string string))
  (type $config-list (list $config-pair))
  (type $ingest-request (record (field "job" $job-context) (field "since" $opt-string) (field "cursor" $opt-string) (field "config" $config-list)))
  (type $events (list $event))
  (type $identities (list $identity-observation))
  (type $ingest-batch (record (field "events" $events) (field "identities" $identities) (field "next-cursor" $opt-string) (field "has-more" bool)))
  (type $ingest-result (result $ingest-batch (error $job-error)))
  (type $ingest-ty (func (param "req" $ingest-request) (result $ingest-result)))
  (func $ingest (type $ingest-ty)
    (canon lift (core func $core-ingest) (memory $memory) (realloc $realloc) string-encoding=utf8))
  (component $ingestion-shim
    (type (;0;) (record (field "job-id" string) (field "job-type" string) (field "name" string) (field "attempt" u32) (field "max-attempts" u32) (field "input" string) (field "idempotency-key" string)))
    (import "import-type-job-context" (type (;1;) (eq 0)))
    (type (;2;) (option string))
    (type (;3;) (record (field "platform" string) (field "platform-user-id" string) (field "platform-username" 2) (field "display-name" 2) (field "profile-url" 2) (field "avatar-url" 2) (field "metadata-json" 2)))
    (import "import-type-identity-observation" (type (;4;) (eq 3)))
    (type (;5;) (option 4))
    (type (;6;) (record (field "external-id" string) (field "source" string) (field "event-type" string) (field "occurred-at" string) (field "actor" 5) (field "text" 2) (field "payload" string)))
    (import "import-type-event" (type (;7;) (eq 6)))
    (type (;8;) (option u64))
    (type (;9;) (record (field "message" string) (field "retry-after-ms" 8)))
    (import "import-type-retry-info" (type (;10;) (eq 9)))
    (type (;11;) (variant (case "retryable" 10) (case "rate-limited" 10) (case "permanent" string) (case "invalid-config" string)))
    (import "import-type-job-error" (type (;12;) (eq 11)))
    (type (;13;) (tuple string string))
    (type (;14;) (list 13))
    (type (;15;) (record (field "job" 1) (field "since" 2) (field "cursor" 2) (field "config" 14)))
    (import "import-type-ingest-request" (type (;16;) (eq 15)))
    (type (;17;) (list 7))
    (type (;18;) (list 4))
    (type (;19;) (record (field "events" 17) (field "identities" 18) (field "next-cursor" 2) (field "has-more" bool)))
    (import "import-type-ingest-batch" (type (;20;) (eq 19)))
    (type (;21;) (result 20 (error 12)))
    (type (;22;) (func (param "req" 16) (result 21)))
    (import "import-func-ingest" (func (;0;) (type 22)))
    (export (;23;) "job-context" (type 1))
    (export (;24;) "event" (type 7))
    (export (;25;) "identity-observation" (type 4))
    (export (;26;) "job-error" (type 12))
    (type (;27;) (tuple string string))
    (type (;28;) (list 27))
    (type (;29;) (record (field "job" 23) (field "since" 2) (field "cursor" 2) (field "config" 28)))
    (export (;30;) "ingest-request" (type 29))
    (type (;31;) (list 24))
    (type (;32;) (list 25))
    (type (;33;) (record (field "events" 31) (field "identities" 32) (field "next-cursor" 2) (field "has-more" bool)))
    (export (;34;) "ingest-batch" (type 33))
    (type (;35;) (result 34 (error 26)))
    (type (;36;) (func (param "req" 30) (result 35)))
    (export (;1;) "ingest" (func 0) (func (type 36)))
  )
  (instance $ingestion (instantiate $ingestion-shim
    (with "import-func-ingest" (func $ingest))
    (with "import-type-job-context" (type $job-context))
    (with "import-type-identity-observation" (type $identity-observation))
    (with "import-type-event" (type $event))
    (with "import-type-retry-info" (type $retry-info))
    (with "import-type-job-error" (type $job-error))
    (with "import-type-ingest-request" (type $ingest-request))
    (with "import-type-ingest-batch" (type $ingest-batch))
  ))
  (export "drowl:plugin/ingestion@0.1.0" (instance $ingestion))
)
"#;

/// Where the probe's `describe` finds the manifest's id.
const PROBE_ID_AT: u32 = 256;
/// Where the probe keeps two bytes that are not UTF-8.
const PROBE_BAD_UTF8_AT: u32 = 600;
/// Where the probe keeps a valid external id, `probe-1`.
const PROBE_GOOD_ID_AT: u32 = 620;

/// The probe component, its manifest id being `id` and its one event's external id the
/// `(pointer, length)` pair given, both in the canonical ABI layout of the WIT records.
fn probe_component(id: &[u8], external_id: (u32, u32)) -> Vec<u8> {
    let mut mem = vec![0u8; 4096];
    let mut put = |at: u32, bytes: &[u8]| {
        mem[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    };
    let s = |ptr: u32, len: usize| -> Vec<u8> {
        [ptr.to_le_bytes(), (len as u32).to_le_bytes()].concat()
    };
    // Strings and list elements.
    put(PROBE_ID_AT, id);
    put(320, b"UTF-8 probe");
    put(352, b"0.1.0");
    put(384, &[0]); // capabilities: [event-ingestion]
    put(416, &s(448, 4)); // sources: ["test"]
    put(448, b"test");
    put(480, b"probe");
    put(512, b"2024-01-02T03:04:05Z");
    put(544, b"{}");
    put(PROBE_BAD_UTF8_AT, b"\xff\xfe");
    put(PROBE_GOOD_ID_AT, b"probe-1");
    // manifest (size 168, align 8): id, name, version, description, author (32 bytes of
    // empty name and two `none`s), capabilities, sources, config, outbound-hosts,
    // min-host-version, resources (all `none`), license, homepage.
    put(1024, &s(PROBE_ID_AT, id.len()));
    put(1024 + 8, &s(320, 11));
    put(1024 + 16, &s(352, 5));
    put(1024 + 64, &s(384, 1));
    put(1024 + 72, &s(416, 1));
    put(1024 + 96, &s(352, 5));
    // result<ingest-batch, job-error>: tag 0 (ok), payload at 8 (job-error aligns to 8):
    // events = [the event at 3072], no identities, no next cursor, has-more false.
    put(2048 + 8, &s(3072, 1));
    // event (size 132): external-id, source, event-type, occurred-at, actor (none),
    // text (none), payload.
    put(3072, &s(external_id.0, external_id.1 as usize));
    put(3072 + 8, &s(448, 4));
    put(3072 + 16, &s(480, 5));
    put(3072 + 24, &s(512, 20));
    put(3072 + 124, &s(544, 2));
    let data: String = mem.iter().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(PROBE_COMPONENT.replace("{MEMORY}", &data)).unwrap()
}

/// wasmtime refuses to lift a string that is not UTF-8 (or points outside memory); the
/// host reports it as that job's trap with a plain message, and the same executor goes
/// on running jobs. A valid id through the same hand-made component stores its event, so
/// the layout above is right and only the bad bytes make the difference.
#[tokio::test]
async fn invalid_utf8_from_a_plugin_is_a_trap_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let probes = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");

    // In `describe`: refused at load, saying why.
    let runtime = Runtime::new(&EngineSettings::default()).unwrap();
    let err = runtime
        .load_bytes(
            &probe_component(b"utf8-\xff\xfe", (PROBE_GOOD_ID_AT, 7)),
            "bad-id.wasm",
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, LoadError::Describe { .. })
            && msg.contains("describe failed")
            && msg.contains("not valid UTF-8"),
        "{msg}"
    );

    // In `ingest`: that job fails as a trap.
    for (name, external_id, expected) in [
        ("good", (PROBE_GOOD_ID_AT, 7), None),
        (
            "bad-utf8",
            (PROBE_BAD_UTF8_AT, 2),
            Some("string that is not valid UTF-8"),
        ),
        (
            "out-of-bounds",
            (65_530, 100),
            Some("out of bounds of memory"),
        ),
    ] {
        let file = probes.path().join(format!("{name}.wasm"));
        std::fs::write(&file, probe_component(b"utf8-probe", external_id)).unwrap();
        // The probe and the hostile plugin both declare the source `test`: a source two
        // installed plugins claim is emitted only by those the operator grants it to.
        let mut granted = policy(5000, 64 << 20);
        granted.default_sources = vec!["test".into()];
        let exec = executor(&dir.path().join(name), &[&file, &hostile], granted).await;
        let j = json!({ "type": "event_ingestion", "name": "probe", "input": { "pluginId": "utf8-probe" } });
        let result = exec.execute(&job(name, j), None).await;
        match expected {
            None => assert_eq!(result.unwrap().output["eventsStored"], 1),
            Some(needle) => {
                let err = result.unwrap_err();
                assert_eq!(err.failure.code(), "trap", "{name}: {}", err.failure);
                assert!(
                    err.failure.to_string().contains(needle),
                    "{name}: {}",
                    err.failure
                );
            }
        }
        let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
        assert_eq!(ok.output["eventsStored"], 3, "{name}");
    }
}

/// With the pooling allocator, more concurrent jobs than pool slots wait for a slot
/// instead of failing to instantiate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_for_a_pool_slot_instead_of_failing() {
    use drowl_host::runtime::engine::PoolingSettings;
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor_on_engine(
        dir.path(),
        &[&hostile],
        policy(10_000, 64 << 20),
        EngineSettings {
            pooling: Some(PoolingSettings {
                slots: 2,
                ..PoolingSettings::default()
            }),
            ..EngineSettings::default()
        },
    )
    .await;
    let started = Instant::now();
    let jobs: Vec<_> = (0..6)
        .map(|i| {
            let exec = exec.clone();
            tokio::spawn(async move {
                let mut j = probe("sleep");
                j["input"]["ms"] = json!(200);
                j["input"]["tag"] = json!(format!("slot-{i}"));
                exec.execute(&job(&format!("slot-{i}"), j), None).await
            })
        })
        .collect();
    for j in jobs {
        let done = j.await.unwrap();
        assert!(done.is_ok(), "{:?}", done.unwrap_err().failure);
    }
    // Two at a time, 200 ms each: three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(580),
        "{:?}",
        started.elapsed()
    );
}

/// A key-value backend that panics when a plugin (not the host) uses it.
struct PanickingKv(std::sync::Arc<dyn drowl_host::storage::KvStore>);

#[async_trait::async_trait]
impl drowl_host::storage::KvStore for PanickingKv {
    async fn get(&self, ns: &str, key: &str) -> drowl_host::storage::Result<Option<Vec<u8>>> {
        assert!(
            ns.starts_with("drowl-host/"),
            "backend bug on purpose: get {ns}/{key}"
        );
        self.0.get(ns, key).await
    }
    async fn set(&self, ns: &str, key: &str, value: &[u8]) -> drowl_host::storage::Result<()> {
        self.0.set(ns, key, value).await
    }
    async fn delete(&self, ns: &str, key: &str) -> drowl_host::storage::Result<()> {
        self.0.delete(ns, key).await
    }
    async fn list_keys(
        &self,
        ns: &str,
        prefix: &str,
        limit: u32,
    ) -> drowl_host::storage::Result<Vec<String>> {
        self.0.list_keys(ns, prefix, limit).await
    }
    async fn namespace_bytes(&self, ns: &str) -> drowl_host::storage::Result<u64> {
        self.0.namespace_bytes(ns).await
    }
}

/// A host function that fails hard (here a storage backend panicking under `kv.get`)
/// ends only the job that called it, as a trap whose message says the host failed;
/// the executor keeps running jobs.
#[tokio::test]
async fn a_panic_inside_a_host_call_ends_only_that_job() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut storage = drowl_host::storage::open_embedded(dir.path())
        .await
        .unwrap();
    storage.kv = std::sync::Arc::new(PanickingKv(storage.kv.clone()));
    let exec = executor_with(storage, &[&hostile], policy(5000, 64 << 20)).await;
    let err = exec
        .execute(&job("kv", probe("kv")), None)
        .await
        .unwrap_err();
    assert_eq!(err.failure.code(), "trap", "{}", err.failure);
    let msg = err.failure.to_string();
    assert!(
        msg.contains("drowl-host failed in kv.get") && msg.contains("backend bug on purpose"),
        "{msg}"
    );
    let ok = exec.execute(&job("ok", probe("ok")), None).await.unwrap();
    assert_eq!(ok.output["eventsStored"], 3);
}

/// Instance slots are reused job after job: a job must never find in its linear memory
/// what an earlier job of the same plugin left there (the pooling allocator's
/// cross-instance leak class: CVE-2022-39393, CVE-2026-34988). Checked on each allocator
/// setting the host can run with; each round plants a fresh marker in 8 MiB, the next
/// job grows its memory past that and reads every byte. The first job of each engine is
/// the positive control: a marker it planted itself must be found.
#[tokio::test]
async fn a_job_never_sees_memory_an_earlier_job_left() {
    use drowl_host::runtime::engine::PoolingSettings;
    let hostile = component("hostile-plugin");
    let engines = [
        ("pooling", EngineSettings::default()),
        (
            "pooling, memory madvised away",
            EngineSettings {
                pooling: Some(PoolingSettings {
                    keep_resident_bytes: 0,
                    reset_dirty_pages: false,
                    ..PoolingSettings::default()
                }),
                ..EngineSettings::default()
            },
        ),
        (
            "pooling, every dirty page reset in place (16 MiB)",
            EngineSettings {
                pooling: Some(PoolingSettings {
                    keep_resident_bytes: 16 << 20,
                    reset_dirty_pages: true,
                    ..PoolingSettings::default()
                }),
                ..EngineSettings::default()
            },
        ),
        (
            "on-demand",
            EngineSettings {
                pooling: None,
                ..EngineSettings::default()
            },
        ),
    ];
    for (name, settings) in engines {
        let dir = tempfile::tempdir().unwrap();
        let exec =
            executor_on_engine(dir.path(), &[&hostile], policy(20_000, 64 << 20), settings).await;
        let residue = |mode: &str, tag: &str, mib: u32, plant_first: bool| {
            json!({ "type": "event_ingestion", "name": "residue", "input": {
                "pluginId": "hostile", "mode": mode, "count": mib, "tag": tag,
                "plant_first": plant_first } })
        };
        let control = exec
            .execute(
                &job("control", residue("residue-scan", "ctl-marker", 1, true)),
                None,
            )
            .await
            .expect_err("the scan finds a marker planted in the same job");
        assert!(
            control
                .failure
                .to_string()
                .contains("markers in linear memory"),
            "{name}: {}",
            control.failure
        );
        for round in 0..8 {
            let tag = format!("round-{round}-marker");
            exec.execute(
                &job(
                    &format!("plant-{round}"),
                    residue("residue-plant", &tag, 8, false),
                ),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: plant {round}: {}", e.failure));
            if let Err(e) = exec
                .execute(
                    &job(
                        &format!("scan-{round}"),
                        residue("residue-scan", &tag, 16, false),
                    ),
                    None,
                )
                .await
            {
                panic!("{name}: round {round}: {}", e.failure);
            }
        }
    }
}

/// Security row 27: jobs whose plugin waits instead of running (a `std::thread::sleep`
/// or a `wasi:io/poll` on a clock pollable, both of the largest duration) end as
/// `timeout` at their deadline, and free their instance and its pool slot: on a pool of
/// one slot, a good job queued behind them still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_jobs_end_at_their_deadline_and_free_their_slot() {
    use drowl_host::runtime::engine::PoolingSettings;
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor_on_engine(
        dir.path(),
        &[&hostile],
        policy(1000, 64 << 20),
        EngineSettings {
            pooling: Some(PoolingSettings {
                slots: 1,
                ..PoolingSettings::default()
            }),
            ..EngineSettings::default()
        },
    )
    .await;
    let started = Instant::now();
    let run = |id: &str, mut j: serde_json::Value, ms: u64| {
        let exec = exec.clone();
        let id = id.to_owned();
        j["input"]["ms"] = json!(ms);
        tokio::spawn(async move { exec.execute(&job(&id, j), None).await })
    };
    let sleeper = run("sleeper", probe("sleep"), u64::MAX);
    let poller = run("poller", probe("poll"), 0);
    let good = run("good", probe("ok"), 0);
    let all = async {
        (
            sleeper.await.unwrap(),
            poller.await.unwrap(),
            good.await.unwrap(),
        )
    };
    let (sleeper, poller, good) = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the waiting jobs still hold the only pool slot after 30 s");
    for (name, r) in [("sleep", sleeper), ("poll", poller)] {
        let err = r.expect_err(name);
        assert!(
            matches!(err.failure, JobFailure::Call(CallError::Timeout(_))),
            "{name}: {}",
            err.failure
        );
        let wall = err.report.expect("a report").usage.wall_ms;
        assert!((1000..10_000).contains(&wall), "{name}: ran {wall} ms");
    }
    assert_eq!(good.expect("the good job runs").output["eventsStored"], 3);
    eprintln!(
        "two waiting jobs and a good one on one slot: {:?}",
        started.elapsed()
    );
}

/// Security row 27: loading a component whose `describe` sleeps fails after the describe
/// budget with an error naming the file; several such files load side by side, so they
/// cost about one budget together, not one each; the good plugin among them loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_describes_fail_to_load_side_by_side_within_their_budget() {
    let slow = component("slow-describe-plugin");
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..4 {
        let copy = dir.path().join(format!("slow-{i}.wasm"));
        std::fs::copy(&slow, &copy).unwrap();
        files.push(copy);
    }
    files.push(hostile.clone());
    let budget = Duration::from_secs(2);
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        describe_timeout: budget,
        ..EngineSettings::default()
    })
    .unwrap();
    // Warm the code cache, so what is measured below is the describe calls.
    let _ = runtime.load_file(&hostile).await.unwrap();
    let started = Instant::now();
    let loaded = tokio::time::timeout(Duration::from_secs(60), runtime.load_files(files, 8))
        .await
        .expect("loading still held up by the sleeping describes after 60 s");
    let took = started.elapsed();
    assert_eq!(loaded.len(), 5);
    for (i, (file, r)) in loaded.iter().enumerate().take(4) {
        assert_eq!(file.file_name().unwrap(), format!("slow-{i}.wasm").as_str());
        let err = r.as_ref().expect_err("a sleeping describe does not load");
        assert!(matches!(err, LoadError::DescribeTimeout { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("slow-{i}.wasm: describe did not return within 2s")),
            "{err}"
        );
    }
    let (_, good) = &loaded[4];
    assert_eq!(good.as_ref().expect("hostile loads").manifest.id, "hostile");
    // One after another they would take at least four budgets (8 s).
    assert!(took < budget * 3, "four sleeping describes took {took:?}");
    eprintln!("four sleeping describes and a good plugin loaded in {took:?}");
}
