//! `drowl-host run-plugin` and `plugin check` as a user runs them: exit codes, one clear
//! error line, JSON on stdout.

use std::process::Command;

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

/// Runs the `drowl-host` binary in `cwd`, killing it if it runs longer than `limit` (a
/// plugin the deadline cannot stop would otherwise hang the test): its output and how
/// long it ran.
fn drowl_host_within(
    args: &[&str],
    cwd: &std::path::Path,
    limit: std::time::Duration,
) -> (std::process::Output, std::time::Duration) {
    use std::time::Instant;
    let (out_path, err_path) = (cwd.join("run.stdout"), cwd.join("run.stderr"));
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_drowl-host"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run drowl-host");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "drowl-host {} still running after {limit:?}; stderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = std::process::Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    (out, started.elapsed())
}

/// A data directory whose compiled-code cache is the one the in-process tests share, so
/// a run's time is the plugin's, not the compiler's.
fn data_dir_with_shared_cache(dir: &std::path::Path) -> std::path::PathBuf {
    let cache = root().join("target/drowl-test-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let data = dir.join("state");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(&cache, data.join("cache")).unwrap();
    data
}

/// Security row 27: a plugin that waits instead of running (a `std::thread::sleep` of the
/// largest duration there is, or one `wasi:io/poll` on a clock pollable that never fires)
/// runs no wasm, so epoch interruption alone never stops it. The host-side deadline does:
/// `run-plugin --timeout-ms 2000` ends it as `timeout` (exit 6) within seconds.
#[test]
fn run_plugin_stops_a_plugin_that_sleeps_or_waits_at_its_deadline() {
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = data_dir_with_shared_cache(d);
    for (mode, ms) in [("sleep", u64::MAX), ("poll", 0)] {
        job_file(
            d,
            "wait.json",
            &json!({ "type": "event_ingestion", "name": "probe",
                     "input": { "mode": mode, "ms": ms } }),
        );
        let (out, took) = drowl_host_within(
            &[
                "run-plugin",
                hostile.to_str().unwrap(),
                "--job",
                "wait.json",
                "--data-dir",
                data.to_str().unwrap(),
                "--timeout-ms",
                "2000",
            ],
            d,
            std::time::Duration::from_secs(40),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(6), "{mode}: {err}");
        let json = stdout_json(&out);
        assert_eq!(json["status"], "failed", "{mode}: {json}");
        assert_eq!(json["error"]["code"], "timeout", "{mode}: {json}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(
                "error: timeout: deadline exceeded: the plugin ran past its 2s budget"
            ),
            "{mode}: {err}"
        );
        eprintln!("{mode}: run-plugin --timeout-ms 2000 ended after {took:?}");
    }
}

/// Security row 27: a `describe` that sleeps (the slow-describe test plugin sleeps an
/// hour) fails the load after the describe budget, naming the file, instead of holding
/// `plugin check` (default budget, 5 s) or `run-plugin` (`--describe-timeout-ms`).
#[test]
fn a_describe_that_sleeps_fails_the_load_after_its_budget() {
    let slow = component("slow-describe-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let limit = std::time::Duration::from_secs(40);
    let (out, took) = drowl_host_within(&["plugin", "check", slow.to_str().unwrap()], d, limit);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("slow_describe_plugin.wasm: describe did not return within 5s"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no report for a plugin that did not load"
    );
    eprintln!("plugin check gave up after {took:?}");

    job_file(d, "j.json", &ingest("ok"));
    let (out, took) = drowl_host_within(
        &[
            "run-plugin",
            slow.to_str().unwrap(),
            "--job",
            "j.json",
            "--describe-timeout-ms",
            "1500",
        ],
        d,
        limit,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("error: slow_describe_plugin.wasm: describe did not return within 1.5s"),
        "{err}"
    );
    eprintln!("run-plugin gave up after {took:?}");
}

/// Security rows 31 and 32 as a plugin author meets them: a secret in a cursor, a
/// follow-up or a quoted value, NUL in a field, and an identity on another platform each
/// fail `run-plugin` with the category and the field named, and the secret (plain or
/// hex) is in no output; `--allow-platform` grants the platform.
#[test]
fn run_plugin_refuses_secrets_nul_and_foreign_identities() {
    const SECRET: &str = "ghp_RUNPLUGINsecret7";
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let hostile = component("hostile-plugin");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = hostile.to_str().unwrap();
    let token = format!("token={SECRET}");
    let run = |mode: &str, field: &str, extra: &[&str]| {
        let file = format!("{mode}-{field}.json");
        job_file(
            d,
            &file,
            &json!({ "type": "event_ingestion", "name": "probe",
                     "input": { "mode": mode, "field": field } }),
        );
        let mut args = vec!["run-plugin", h, "--job", &file, "--config", &token];
        args.extend_from_slice(extra);
        drowl_host(&args, d)
    };
    for (mode, field, code, needle) in [
        (
            "leak-secret-in",
            "next-cursor",
            "invalid-output",
            "next-cursor holds one of the plugin's secrets",
        ),
        (
            "leak-secret-in",
            "next-cursor-hex",
            "invalid-output",
            "next-cursor holds one of the plugin's secrets",
        ),
        (
            "leak-secret-in",
            "follow-up-name",
            "plugin-permanent",
            "holds one of this plugin's secrets",
        ),
        (
            "leak-secret-in",
            "follow-up-input",
            "plugin-permanent",
            "holds one of this plugin's secrets",
        ),
        (
            "leak-secret-in",
            "source",
            "invalid-output",
            "events[0].source \"[REDACTED]\"",
        ),
        (
            "nul-in",
            "event-type",
            "invalid-output",
            "events[0].event-type \"pu\\0sh\" contains a NUL",
        ),
        (
            "nul-in",
            "actor.display-name",
            "invalid-output",
            "events[0].actor.display-name",
        ),
        (
            "foreign-identity",
            "actor",
            "invalid-output",
            "events[0].actor.platform \"github\" is not a platform of plugin `hostile`",
        ),
    ] {
        let out = run(mode, field, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{mode} {field}: {err}");
        let json = stdout_json(&out);
        assert_eq!(json["status"], "failed", "{mode} {field}");
        assert_eq!(json["error"]["code"], code, "{mode} {field}: {json}");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{mode} {field}: {message}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        for s in [SECRET, hex.as_str()] {
            assert!(
                !stdout.contains(s) && !err.contains(s),
                "{mode} {field}: the secret got out:\n{stdout}\n{err}"
            );
        }
    }
    let out = run("foreign-identity", "actor", &["--allow-platform", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["output"]["identities"], 1);
}

/// Issue #13: the deployment files in `examples/deploy/` stay in step with the binary:
/// the settings file they mount passes `config check`, every `DROWL_*`/drowl variable
/// they set is one `serve` reads, every flag they pass is one `serve` has, and every
/// first-party plugin `scripts/build-plugins.sh` builds is copied into the image.
#[test]
fn the_deployment_files_use_what_serve_has() {
    let deploy = root().join("examples/deploy");
    let read =
        |f: &str| std::fs::read_to_string(deploy.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let (dockerfile, compose, unit) = (
        read("Dockerfile"),
        read("compose.yaml"),
        read("drowl-host.service"),
    );
    let help = drowl_host(&["serve", "--help"], &root());
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // Variables the files set for the daemon: drowl's own are read by storage/queue, the
    // DROWL_ ones must be flags' `env`.
    let drowl_vars = [
        "DATABASE_URL",
        "REDIS_URL",
        "S3_ENDPOINT",
        "S3_BUCKET",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "WORKER_HOST",
        "WORKER_PORT",
    ];
    for text in [&dockerfile, &compose, &unit] {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("DROWL_") {
                assert!(
                    help.contains(&format!("env: {word}")),
                    "{word} is not read by serve"
                );
            }
        }
        // How each file starts the daemon: compose's `command:`, the unit's `ExecStart=`,
        // the image's `CMD`.
        let invocations = text.lines().filter(|l| {
            let l = l.trim_start();
            l.starts_with("command:") || l.starts_with("ExecStart=") || l.starts_with("CMD")
        });
        for line in invocations {
            for flag in line.split(|c: char| c.is_whitespace() || "\"[],".contains(c)) {
                if let Some(name) = flag.strip_prefix("--") {
                    assert!(
                        help.contains(&format!("--{name}")),
                        "--{name} is not a serve flag"
                    );
                }
            }
        }
    }
    for var in drowl_vars {
        assert!(
            compose.contains(var) || dockerfile.contains(var),
            "the image or compose.yaml sets {var}"
        );
    }
    let script = std::fs::read_to_string(root().join("scripts/build-plugins.sh")).unwrap();
    for p in ["github", "feed", "keywords", "identity", "export"] {
        assert!(
            script.contains(&format!("{p}-plugin")),
            "build-plugins.sh builds {p}"
        );
    }
    assert!(dockerfile.contains("for p in github feed keywords identity export"));
    assert!(
        dockerfile.contains("USER drowl"),
        "the image runs as a user of its own"
    );

    let plugins = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drowl-host"))
        .args(["config", "check", "--config-file"])
        .arg(deploy.join("drowl.toml"))
        .env("DROWL_PLUGIN_DIR", plugins.path())
        .env("GITHUB_TOKEN", "ghp_from_the_environment")
        .env("GITHUB_WEBHOOK_SECRET", "whsec_from_the_environment")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        !shown.contains("ghp_from_the_environment"),
        "secrets masked: {shown}"
    );
}
