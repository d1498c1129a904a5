//! Security matrix row 30: everything a plugin hands the host is bounded by a budget the
//! operator can set, with a named violation, so one job's memory and records stay near
//! the guest's own budget.

use drowl_host::jobs::HostPolicy;
use serde_json::json;

use crate::support::*;

fn probe(mode: &str, count: u32) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": mode,
            "input": { "pluginId": "hostile", "mode": mode, "count": count } })
}

/// 1,000 lines x 32 fields x 4 KiB would be 128 MiB kept for one job; the job keeps at
/// most its log budget (1 MiB by default), completes, and names the violation.
#[tokio::test]
async fn log_fields_are_kept_within_the_jobs_log_budget() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    let done = exec
        .execute(&job("fields", probe("log-fields", 1000)), None)
        .await
        .unwrap();
    let report = done.report.unwrap();
    let kept = serde_json::to_vec(&report.logs).unwrap().len();
    assert!(kept <= (1 << 20) + 64 * 1024, "{kept} bytes of logs kept");
    assert!(!report.logs.is_empty());
    assert_eq!(report.usage.log_lines, 1000);
    assert_eq!(
        report.usage.log_lines_dropped as usize,
        1000 - report.logs.len()
    );
    assert_eq!(report.usage.violations, vec!["log-bytes"]);
    assert_eq!(done.output["usage"]["violations"], json!(["log-bytes"]));
}

/// A job writes at most its key-value and object quotas; the plugin sees `too-large` for
/// the write over it, and the usage names the violation.
#[tokio::test]
async fn key_value_and_object_writes_stop_at_the_jobs_quota() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut policy = HostPolicy::default();
    policy.caps.max_kv_bytes_per_job = 4 << 20;
    policy.caps.max_object_bytes_per_job = 20 << 20;
    let exec = executor(dir.path(), &[&hostile], policy).await;

    let kv = exec
        .execute(&job("kv", probe("kv-flood", 40)), None)
        .await
        .unwrap();
    // 1 MiB values plus their keys: three fit in 4 MiB, the fourth does not.
    assert_eq!(
        kv.report.as_ref().unwrap().usage.violations,
        vec!["kv-bytes"]
    );
    let stored = exec
        .storage()
        .kv
        .list_keys("hostile", "flood-", 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "{stored:?}");

    let objects = exec
        .execute(&job("objects", probe("objects-flood", 40)), None)
        .await
        .unwrap();
    let usage = &objects.report.as_ref().unwrap().usage;
    assert_eq!(usage.violations, vec!["object-bytes"]);
    assert_eq!(usage.objects_written, 2);
    assert_eq!(usage.object_bytes_written, 16 << 20);
}

/// A plugin keeps at most its key-value and object quotas across jobs: each job asks
/// once what the plugin has stored, so a second job is refused at its first write over
/// what is left and names the violation, and the stored bytes stay within the quota.
#[tokio::test]
async fn key_value_and_object_bytes_stop_at_the_plugins_quota() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let mut policy = HostPolicy::default();
    policy.caps.max_kv_bytes_per_plugin = 3 << 20;
    policy.caps.max_object_bytes_per_plugin = 20 << 20;
    let exec = executor(dir.path(), &[&hostile], policy).await;
    let storage = exec.storage();

    // Two 1 MiB values (plus keys) fit the plugin's 3 MiB; the job stays within it.
    let first = exec
        .execute(&job("kv-1", probe("kv-flood", 2)), None)
        .await
        .unwrap();
    assert!(first.report.as_ref().unwrap().usage.violations.is_empty());
    // The next job may not add a third: refused at its first write.
    let second = exec
        .execute(&job("kv-2", probe("kv-flood", 40)), None)
        .await
        .unwrap();
    assert_eq!(
        second.report.as_ref().unwrap().usage.violations,
        vec!["kv-bytes-per-plugin"]
    );
    let stored = storage
        .kv
        .list_keys("hostile", "flood-", 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let bytes = storage.kv.namespace_bytes("hostile").await.unwrap();
    assert!(bytes <= 3 << 20, "{bytes} bytes stored");

    // Objects: two of 8 MiB fit in 20 MiB, a third does not, in this job or the next.
    let first = exec
        .execute(&job("objects-1", probe("objects-flood", 40)), None)
        .await
        .unwrap();
    let usage = &first.report.as_ref().unwrap().usage;
    assert_eq!(usage.violations, vec!["object-bytes-per-plugin"]);
    assert_eq!(usage.objects_written, 2);
    let second = exec
        .execute(&job("objects-2", probe("objects-flood", 40)), None)
        .await
        .unwrap();
    let usage = &second.report.as_ref().unwrap().usage;
    assert_eq!(usage.violations, vec!["object-bytes-per-plugin"]);
    assert_eq!(usage.objects_written, 0);
    let prefix = drowl_host::storage::ObjectKey::plugin_objects_prefix("hostile").unwrap();
    assert_eq!(
        storage.objects.prefix_bytes(&prefix).await.unwrap(),
        16 << 20
    );
}

/// A 32 MiB cursor is refused as invalid output naming `next-cursor`, and nothing of it
/// is stored.
#[tokio::test]
async fn an_oversized_cursor_is_invalid_output() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = component("hostile-plugin");
    let exec = executor(dir.path(), &[&hostile], HostPolicy::default()).await;
    let failed = exec
        .execute(&job("cursor", probe("cursor-huge", 32 * 1024)), None)
        .await
        .unwrap_err();
    assert_eq!(failed.failure.code(), "invalid-output");
    let message = failed.failure.to_string();
    assert!(message.contains("next-cursor"), "{message}");
    assert!(
        message.len() < 1024,
        "the message does not carry the cursor"
    );
    let cursors = exec
        .storage()
        .kv
        .list_keys("drowl-host/cursors", "", 100)
        .await
        .unwrap();
    assert!(cursors.is_empty(), "{cursors:?}");
}

/// The same budgets through `run-plugin`: the operator's flag sets the cursor budget, and
/// the failure is the plugin's (exit 4, `invalid-output`).
#[test]
fn run_plugin_enforces_the_cursor_budget_flag() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hostile.to_str().unwrap();
    job_file(d, "cursor.json", &probe("cursor-huge", 8));
    let ok = drowl_host(&["run-plugin", h, "--job", "cursor.json"], d);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let refused = drowl_host(
        &[
            "run-plugin",
            h,
            "--job",
            "cursor.json",
            "--max-cursor-bytes",
            "4096",
        ],
        d,
    );
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    let out = stdout_json(&refused);
    assert_eq!(out["error"]["code"], "invalid-output", "{out}");
    assert!(stderr(&refused).contains("next-cursor"));
}

/// The manifest budget is the operator's: with `--max-manifest-bytes` below what a real
/// manifest takes, `plugin check` and `run-plugin` refuse the component as not loadable
/// (exit 3), naming the file, the limit and the flag; with the default it loads.
#[test]
fn the_manifest_budget_is_an_operator_flag() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hostile.to_str().unwrap();
    let ok = drowl_host(&["plugin", "check", h], d);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let refused = drowl_host(&["plugin", "check", h, "--max-manifest-bytes", "128"], d);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{err}");
    assert!(err.contains("hostile_plugin.wasm"), "{err}");
    assert!(err.contains("the limit is 128"), "{err}");
    assert!(err.contains("--max-manifest-bytes"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    job_file(d, "ok.json", &probe("ok", 1));
    let refused = drowl_host(
        &[
            "run-plugin",
            h,
            "--job",
            "ok.json",
            "--max-manifest-bytes",
            "128",
        ],
        d,
    );
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{err}");
    assert!(err.contains("the limit is 128"), "{err}");
}
