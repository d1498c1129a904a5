//! `drowl-host run-plugin` and `plugin check` as a user runs them: exit codes, one clear
//! error line, JSON on stdout.

use serde_json::json;

use crate::support::*;

fn ingest(mode: &str) -> serde_json::Value {
    json!({ "type": "event_ingestion", "name": "probe", "input": { "mode": mode, "count": 2 } })
}

/// Each kind of bad input gets its own exit code and one line naming the problem.
#[test]
fn every_bad_input_has_its_exit_code_and_message() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = job_file(d, "good.json", &ingest("ok"));
    let h = hostile.to_str().unwrap();

    // Missing plugin file.
    let out = drowl_host(
        &["run-plugin", "nope.wasm", "--job", good.to_str().unwrap()],
        d,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nope.wasm does not exist"),
        "{}",
        stderr(&out)
    );

    // Missing job file.
    let out = drowl_host(&["run-plugin", h, "--job", "missing.json"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read job file missing.json"),
        "{}",
        stderr(&out)
    );

    // Malformed job JSON and a job of an unknown type.
    std::fs::write(d.join("bad.json"), "{\"type\": ").unwrap();
    let out = drowl_host(&["run-plugin", h, "--job", "bad.json"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    std::fs::write(d.join("type.json"), r#"{"type":"fly","input":{}}"#).unwrap();
    let out = drowl_host(&["run-plugin", h, "--job", "type.json"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown job type \"fly\""),
        "{}",
        stderr(&out)
    );

    // Not WebAssembly; a core module rather than a component.
    std::fs::write(d.join("text.wasm"), "hello").unwrap();
    let out = drowl_host(&["run-plugin", "text.wasm", "--job", "good.json"], d);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("is not a WebAssembly file"),
        "{}",
        stderr(&out)
    );
    std::fs::write(d.join("core.wasm"), wat::parse_str("(module)").unwrap()).unwrap();
    let out = drowl_host(&["run-plugin", "core.wasm", "--job", "good.json"], d);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("core WebAssembly module, not a component"),
        "{}",
        stderr(&out)
    );

    // Unknown config key, with the declared keys listed.
    let out = drowl_host(
        &[
            "run-plugin",
            h,
            "--job",
            "good.json",
            "--config",
            "colour=red",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("config key `colour` is not declared"),
        "{}",
        stderr(&out)
    );

    // Plugin error, trap, deadline, memory limit.
    for (mode, code, needle) in [
        ("retry", 4, "upstream hiccup"),
        ("panic", 5, "panicked at"),
        ("recurse", 5, "stack overflow"),
        ("loop", 6, "deadline exceeded"),
        ("grow", 7, "memory"),
    ] {
        job_file(d, "m.json", &ingest(mode));
        let out = drowl_host(
            &[
                "run-plugin",
                h,
                "--job",
                "m.json",
                "--timeout-ms",
                "1500",
                "--max-memory",
                "33554432",
            ],
            d,
        );
        assert_eq!(out.status.code(), Some(code), "{mode}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.lines().last().unwrap().starts_with("error: "),
            "{mode}: {err}"
        );
        assert!(err.contains(needle), "{mode}: {err}");
        let json = stdout_json(&out);
        assert_eq!(json["status"], "failed", "{mode}");
    }
}

/// Every fault of the hostile plugin, run as a plugin author runs it: the job fails with
/// its own category in the JSON, the exit code that category maps to, one `error:` line,
/// and the secret in no output.
#[test]
fn every_hostile_fault_fails_run_plugin_with_its_category() {
    use drowl_testkit::soak::{FAULTS, SECRET};
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hostile.to_str().unwrap();
    let token = format!("token={SECRET}");
    for (i, (mode, count, flag, code)) in FAULTS
        .iter()
        .copied()
        .chain([("loop", 1, "", "timeout")])
        .enumerate()
    {
        let mut job = json!({ "type": "event_ingestion", "name": "probe",
                              "input": { "mode": mode, "count": count } });
        if !flag.is_empty() {
            job["input"][flag] = json!(true);
        }
        let file = format!("f{i}.json");
        job_file(d, &file, &job);
        let out = drowl_host(
            &[
                "run-plugin",
                h,
                "--job",
                &file,
                "--config",
                &token,
                "--timeout-ms",
                "1500",
                "--max-memory",
                "33554432",
                "--max-hostcall-bytes",
                "4194304",
                "--max-page-bytes",
                "1048576",
                "--max-handles",
                "1000",
            ],
            d,
        );
        let err = stderr(&out);
        let exit = match code {
            "invalid-output" | "plugin-permanent" => 4,
            "trap" | "output-limit" | "resource-limit" => 5,
            "timeout" => 6,
            "memory-limit" => 7,
            other => panic!("no exit code known for {other}"),
        };
        assert_eq!(out.status.code(), Some(exit), "{mode}: {err}");
        let json = stdout_json(&out);
        assert_eq!(json["status"], "failed", "{mode}");
        assert_eq!(json["error"]["code"], code, "{mode}: {json}");
        assert!(
            err.lines()
                .last()
                .unwrap_or_default()
                .starts_with("error: "),
            "{mode}: {err}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains(SECRET) && !err.contains(SECRET),
            "{mode}: the secret got out"
        );
    }
}

/// The success path prints the result as JSON and a one-line summary.
#[test]
fn a_successful_run_prints_json_and_a_summary() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    job_file(d, "j.json", &ingest("ok"));
    let out = drowl_host(
        &[
            "run-plugin",
            hostile.to_str().unwrap(),
            "--job",
            "j.json",
            "--data-dir",
            "state",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(json["status"], "completed");
    assert_eq!(json["output"]["eventsStored"], 2);
    assert_eq!(json["plugin"]["id"], "hostile");
    let err = stderr(&out);
    assert!(
        err.contains("stored 2 events (0 duplicates) from 1 pages"),
        "{err}"
    );
    assert!(err.contains("peak guest memory"), "{err}");
    assert!(d.join("state/drowl.db").exists());
}

/// `plugin check` prints the manifest and imports, or the load problem.
#[test]
fn plugin_check_reports_manifest_or_problem() {
    let keywords = component("keywords-plugin");
    let dir = tempfile::tempdir().unwrap();
    let out = drowl_host(&["plugin", "check", keywords.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(json["manifest"]["id"], "keywords");
    assert_eq!(json["world"], "enrichment-plugin");
    assert!(
        json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "drowl:plugin/log@0.1.0")
    );

    std::fs::write(
        dir.path().join("empty.wasm"),
        wat::parse_str("(component)").unwrap(),
    )
    .unwrap();
    let out = drowl_host(&["plugin", "check", "empty.wasm"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("exports none of drowl's plugin worlds"),
        "{}",
        stderr(&out)
    );
}

/// Security matrix row 28 through `run-plugin`: a follow-up addressed to another plugin
/// fails the job as the plugin's permanent error unless `--allow-follow-up` grants it.
#[test]
fn run_plugin_refuses_follow_ups_for_other_plugins_unless_granted() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hostile.to_str().unwrap();
    job_file(
        d,
        "deputy.json",
        &json!({ "type": "event_ingestion", "name": "deputy", "input": { "mode": "enqueue-other" } }),
    );
    let refused = drowl_host(&["run-plugin", h, "--job", "deputy.json"], d);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(4), "{err}");
    assert_eq!(stdout_json(&refused)["error"]["code"], "plugin-permanent");
    assert!(err.contains("not granted to plugin `hostile`"), "{err}");

    let granted = drowl_host(
        &[
            "run-plugin",
            h,
            "--job",
            "deputy.json",
            "--allow-follow-up",
            "event_ingestion:github",
        ],
        d,
    );
    assert_eq!(granted.status.code(), Some(0), "{}", stderr(&granted));
    let out = stdout_json(&granted);
    assert_eq!(out["status"], "completed", "{out}");
    let bad = drowl_host(
        &[
            "run-plugin",
            h,
            "--job",
            "deputy.json",
            "--allow-follow-up",
            "github",
        ],
        d,
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("TYPE:PLUGIN"), "{}", stderr(&bad));
}

/// `plugin check` says which id `serve` installs a file as, and warns when the manifest
/// declares another one (`serve` would refuse the file).
#[test]
fn plugin_check_names_the_id_serve_installs_the_file_as() {
    let dir = tempfile::tempdir().unwrap();
    let keywords = component("keywords-plugin");
    let out = drowl_host(&["plugin", "check", keywords.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["installsAs"], "keywords");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("serve installs keywords_plugin.wasm as `keywords`"),
        "{}",
        stderr(&out)
    );

    std::fs::copy(component("hostile-plugin"), dir.path().join("github.wasm")).unwrap();
    let out = drowl_host(&["plugin", "check", "github.wasm"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = stdout_json(&out);
    assert_eq!(
        (&json["installsAs"], &json["manifest"]["id"]),
        (&json!("github"), &json!("hostile"))
    );
    assert!(
        stderr(&out).contains(
            "warning: serve would refuse github.wasm: its name installs it as `github`, but its manifest declares `hostile`"
        ),
        "{}",
        stderr(&out)
    );
}

/// `run-plugin --config 'label=${VAR}'` reads the value from the environment and redacts
/// it from the job's error and logs, although the manifest declares `label` a plain
/// string.
#[test]
fn run_plugin_redacts_config_read_from_the_environment() {
    const LABEL: &str = "row29-run-plugin-label";
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    job_file(
        d,
        "leak.json",
        &json!({ "type": "event_ingestion", "name": "probe", "input": { "mode": "leak-config" } }),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
        .args([
            "run-plugin",
            hostile.to_str().unwrap(),
            "--job",
            "leak.json",
        ])
        .args(["--config", "label=${ROW29_RUN_PLUGIN_LABEL}"])
        .current_dir(d)
        .env_remove("RUST_LOG")
        .env("ROW29_RUN_PLUGIN_LABEL", LABEL)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let everything = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!everything.contains(LABEL), "{everything}");
    let json = stdout_json(&out);
    assert_eq!(
        json["error"]["message"],
        "plugin error (Permanent): failing with label [REDACTED] in the message"
    );
    assert!(
        json["logs"].to_string().contains("my label is [REDACTED]"),
        "{json}"
    );
}
