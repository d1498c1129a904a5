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
            wat::parse_str(r#"(component (import "drowl:plugin/log@0.2.0" (instance)))"#).unwrap(),
            "targets drowl:plugin@0.2.0, but this drowl-host supports drowl:plugin@0.1.0",
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
