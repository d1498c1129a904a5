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
