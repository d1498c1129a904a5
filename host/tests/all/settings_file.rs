//! The settings file (`--config-file`, `DROWL_CONFIG_FILE`) and `drowl-host config check`
//! as an operator uses them: precedence, one line per problem, secrets masked, every
//! command reading the same file, and examples/drowl.toml kept valid.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::support::*;

/// Runs `drowl-host` in `cwd` with only the given variables of drowl's (the caller's own
/// DROWL_*, WORKER_*, REDIS_URL, DATABASE_URL and S3_* are removed).
fn run(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drowl-host"));
    cmd.args(args).current_dir(cwd).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("DROWL_")
            || k.starts_with("WORKER_")
            || k.starts_with("S3_")
            || k == "REDIS_URL"
            || k == "DATABASE_URL"
        {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run drowl-host")
}

/// A directory holding `drowl.toml` with `text` and an empty `plugins.d`.
fn dir_with(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drowl.toml"), text).unwrap();
    std::fs::create_dir(dir.path().join("plugins.d")).unwrap();
    dir
}

fn setting<'a>(out: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    &out["settings"][key]
}

/// Flag > environment > file > default, each setting saying which; secrets masked
/// everywhere in the output; nothing is connected to (REDIS_URL and DATABASE_URL point
/// where nothing listens).
#[test]
fn config_check_prints_every_setting_with_its_source_and_no_secret() {
    const TOKEN: &str = "ghp_settingsFileSecretToken";
    const LITERAL: &str = "literal-but-listed-secret";
    let dir = dir_with(&format!(
        r#"
[queue]
name = "from-file"
prefix = "file-prefix"
concurrency = 8
[plugins.hostile]
config = {{ token = "${{SETTINGS_TEST_TOKEN}}", label = "{LITERAL}", target = "http://127.0.0.1:9" }}
secrets = ["label"]
"#
    ));
    let out = run(
        &[
            "config",
            "check",
            "--config-file",
            "drowl.toml",
            "--format",
            "json",
            "--concurrency",
            "3",
        ],
        dir.path(),
        &[
            ("SETTINGS_TEST_TOKEN", TOKEN),
            ("DROWL_QUEUE", "from-env"),
            ("DROWL_CONCURRENCY", "6"),
            ("REDIS_URL", "redis://:redisPassw0rd@127.0.0.1:1/0"),
            (
                "DATABASE_URL",
                "postgres://drowl:pgPassw0rd@127.0.0.1:1/drowl",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for secret in [TOKEN, LITERAL, "redisPassw0rd", "pgPassw0rd"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
    let v = stdout_json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["file"], "drowl.toml");
    let concurrency = setting(&v, "queue.concurrency");
    assert_eq!(
        (
            &concurrency["value"],
            &concurrency["source"],
            &concurrency["from"]
        ),
        (&json!(3), &json!("flag"), &json!("--concurrency"))
    );
    let name = setting(&v, "queue.name");
    assert_eq!(
        (&name["value"], &name["source"], &name["from"]),
        (&json!("from-env"), &json!("env"), &json!("DROWL_QUEUE"))
    );
    let prefix = setting(&v, "queue.prefix");
    assert_eq!(
        (&prefix["value"], &prefix["source"], &prefix["from"]),
        (&json!("file-prefix"), &json!("file"), &json!("drowl.toml"))
    );
    let lock = setting(&v, "queue.lock_duration_ms");
    assert_eq!(
        (&lock["value"], &lock["source"]),
        (&json!(30000), &json!("default"))
    );
    let config = &setting(&v, "plugins.hostile.config")["value"];
    assert_eq!(config["token"], "${SETTINGS_TEST_TOKEN}");
    assert_eq!(config["label"], "***");
    assert_eq!(config["target"], "http://127.0.0.1:9");
    assert_eq!(
        setting(&v, "REDIS_URL")["value"],
        "redis://:***@127.0.0.1:1/0"
    );
    assert_eq!(
        setting(&v, "DATABASE_URL")["value"],
        "postgres://drowl:***@127.0.0.1:1/drowl"
    );
    assert!(
        stderr(&out).contains("ok: the settings are valid (settings file drowl.toml)"),
        "{}",
        stderr(&out)
    );
}

/// An invalid file: exit 2, nothing on stdout, one line per problem on stderr, each
/// naming the file and the key.
#[test]
fn config_check_names_every_problem_and_exits_2() {
    let dir = dir_with(
        r#"
[queue]
concurrency = 0
type_limits = { event_ingestion = 2, ingest = 1 }
rate_limit = "fast"
[job_defaults.analytics]
backoff = "fixed:100"
[grants]
networks = ["localhost"]
[plugins.github]
config = { token = "${SETTINGS_TEST_SURELY_UNSET}" }
[[schedules]]
name = "nightly"
cron = "0 25 * * *"
job = { type = "event_ingestion", name = "probe", input = {} }
"#,
    );
    let out = run(
        &["config", "check", "--config-file", "drowl.toml"],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        lines,
        [
            "error: drowl.toml: queue.concurrency: must be at least 1",
            "error: drowl.toml: queue.type_limits.ingest: unknown job type; one of event_ingestion, identity_resolution, keyword_extraction, analytics, report_generation, data_export, cleanup, custom",
            "error: drowl.toml: queue.rate_limit: must look like MAX/MS, e.g. 100/1000",
            "error: drowl.toml: grants.networks: \"localhost\" is not an IP network; write it like 127.0.0.0/8 or ::1/128",
            "error: drowl.toml: job_defaults.analytics.backoff: backoff must be exponential:MS (drowl's MS, 2·MS, 4·MS) or linear:MS (MS, 2·MS, 3·MS), got \"fixed:100\"",
            "error: drowl.toml: plugins.github.config.token: environment variable SETTINGS_TEST_SURELY_UNSET is not set",
            "error: drowl.toml: schedules: schedule \"nightly\": cron: invalid job options: cron \"0 25 * * *\": Component error: Number out of bounds.",
        ],
        "{err}"
    );

    // A typo: the line, the key and the keys the table knows.
    std::fs::write(
        dir.path().join("drowl.toml"),
        "[plugins.github]\nconfig = {}\nconfg = { token = \"x\" }\n",
    )
    .unwrap();
    let out = run(
        &["config", "check", "--config-file", "drowl.toml"],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "error: drowl.toml:3: plugins.github.confg: unknown key; known keys: config, secrets, grants, file, sha256"
    );

    // Problems the flags and environment make are reported too, naming them.
    std::fs::write(dir.path().join("drowl.toml"), "").unwrap();
    let out = run(
        &[
            "config",
            "check",
            "--config-file",
            "drowl.toml",
            "--job-defaults",
            "analytics:timeout=600000",
        ],
        dir.path(),
        &[("WORKER_PORT", "http"), ("REDIS_URL", "localhost:6379")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("error: WORKER_PORT (--worker-port) \"http\" is not a port number"),
        "{err}"
    );
    assert!(
        err.contains(
            "error: --job-defaults analytics: timeout=600000 is above --timeout-ms 300000"
        ),
        "{err}"
    );
    assert!(err.contains("error: REDIS_URL: "), "{err}");
    assert!(!err.contains("error: drowl.toml"), "{err}");
}

/// A missing file, and a file that is not TOML, are one line each for every command.
#[test]
fn every_command_refuses_a_bad_settings_file_before_doing_anything() {
    let dir = dir_with("[queue]\nname = \"a\"\nnmae = \"b\"\n");
    let job = job_file(
        dir.path(),
        "job.json",
        &json!({"type": "cleanup", "name": "c", "input": {}}),
    );
    let job = job.to_str().unwrap();
    let want = "error: drowl.toml:3: queue.nmae: unknown key; known keys: name, prefix, concurrency, type_limits, rate_limit, lock_duration_ms, stalled_interval_ms, shutdown_grace_ms";
    let hostile = component("hostile-plugin");
    let hostile = hostile.to_str().unwrap();
    for args in [
        &["serve"][..],
        &["enqueue", "--job", job],
        &["jobs"],
        &["schedules"],
        &["migrate"],
        &["run-plugin", hostile, "--job", job],
        &["plugin", "check", hostile],
        &["config", "check"],
    ] {
        // Through the variable, as a container would set it.
        let out = run(args, dir.path(), &[("DROWL_CONFIG_FILE", "drowl.toml")]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim(), want, "{args:?}");
    }
    let out = run(&["jobs", "--config-file", "missing.toml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: missing.toml: cannot read the settings file:"),
        "{}",
        stderr(&out)
    );
}

/// The issue's "run-plugin cannot read plugins.json": it reads the plugin's settings
/// from the settings file (and from the JSON file with --plugin-config); `--config` goes
/// over them key by key; a value from the environment is redacted from the result.
#[test]
fn run_plugin_reads_the_plugins_settings_from_the_settings_file() {
    const LABEL: &str = "label-from-the-environment";
    let dir = dir_with(
        "[plugins.hostile]\nconfig = { label = \"from-the-file\" }\n[budgets]\ntimeout_ms = 20000\n",
    );
    let d = dir.path();
    job_file(
        d,
        "leak.json",
        &json!({"type": "event_ingestion", "name": "probe", "input": {"mode": "leak-config"}}),
    );
    let hostile = component("hostile-plugin");
    let h = hostile.to_str().unwrap();
    let base = [
        "run-plugin",
        h,
        "--job",
        "leak.json",
        "--config-file",
        "drowl.toml",
    ];
    let out = run(&base, d, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failing with label from-the-file in the message"),
        "{}",
        stderr(&out)
    );

    let flagged: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--config", "label=from-a-flag"])
        .collect();
    let out = run(&flagged, d, &[]);
    assert!(
        stderr(&out).contains("failing with label from-a-flag"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        d.join("drowl.toml"),
        "[plugins.hostile]\nconfig = { label = \"${SETTINGS_TEST_LABEL}\" }\n",
    )
    .unwrap();
    let out = run(&base, d, &[("SETTINGS_TEST_LABEL", LABEL)]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(all.contains("failing with label [REDACTED]"), "{all}");
    assert!(!all.contains(LABEL), "{all}");

    // The JSON plugin config file operators already have.
    std::fs::write(d.join("drowl.toml"), "").unwrap();
    std::fs::write(
        d.join("plugins.json"),
        json!({"hostile": {"config": {"label": "from-plugins-json"}}}).to_string(),
    )
    .unwrap();
    let with_json: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--plugin-config", "plugins.json"])
        .collect();
    let out = run(&with_json, d, &[]);
    assert!(
        stderr(&out).contains("failing with label from-plugins-json"),
        "{}",
        stderr(&out)
    );
}

/// examples/drowl.toml documents every key: it must pass `config check` (with the
/// variable it names set), and what `config check` prints must pass it again.
#[test]
fn the_example_settings_file_passes_config_check() {
    let example = root().join("examples/drowl.toml");
    let dir = dir_with(&std::fs::read_to_string(&example).unwrap());
    let env = [("GITHUB_TOKEN", "ghp_exampleToken")];
    let out = run(
        &["config", "check", "--config-file", "drowl.toml"],
        dir.path(),
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("token = \"${GITHUB_TOKEN}\""), "{printed}");
    assert!(!printed.contains("ghp_exampleToken"), "{printed}");
    std::fs::write(dir.path().join("effective.toml"), &printed).unwrap();
    let again = run(
        &[
            "config",
            "check",
            "--config-file",
            "effective.toml",
            "--format",
            "json",
        ],
        dir.path(),
        &env,
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}\n{printed}",
        stderr(&again)
    );
    let v = stdout_json(&again);
    assert_eq!(
        setting(&v, "queue.type_limits")["value"]["event_ingestion"],
        2
    );
    assert_eq!(
        setting(&v, "job_defaults.event_ingestion.backoff")["value"],
        "exponential:2000"
    );
    assert_eq!(setting(&v, "schedules")["value"][0]["tz"], "Asia/Tokyo");

    // Every key of the example's tables is a key config check shows, so the example
    // documents them all: none is missing from it.
    let example: toml::Table = std::fs::read_to_string(&example).unwrap().parse().unwrap();
    for key in v["settings"].as_object().unwrap().keys() {
        if key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            || key.starts_with("job_defaults.")
            || key.starts_with("plugins.")
        {
            continue;
        }
        let mut at = Some(&toml::Value::Table(example.clone()));
        for part in key.split('.') {
            at = at.and_then(|t| t.get(part));
        }
        let commented = std::fs::read_to_string(root().join("examples/drowl.toml"))
            .unwrap()
            .contains(&format!("# {} = ", key.rsplit('.').next().unwrap()));
        assert!(
            at.is_some() || commented,
            "examples/drowl.toml does not document `{key}`"
        );
    }
}

/// `plugin check` takes its load budgets from the file's `[budgets]`; `migrate` reads the
/// file too (and still wants DATABASE_URL from the environment, never from the file).
#[test]
fn plugin_check_and_migrate_read_the_settings_file() {
    let dir = dir_with("[budgets]\nmax_manifest_bytes = 64\n");
    let hostile = component("hostile-plugin");
    let out = run(
        &[
            "plugin",
            "check",
            hostile.to_str().unwrap(),
            "--config-file",
            "drowl.toml",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("64"), "{}", stderr(&out));
    let out = run(
        &[
            "plugin",
            "check",
            hostile.to_str().unwrap(),
            "--config-file",
            "drowl.toml",
            "--max-manifest-bytes",
            "1000000",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "a flag wins: {}", stderr(&out));

    let out = run(&["migrate", "--config-file", "drowl.toml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: DATABASE_URL is not set"),
        "{}",
        stderr(&out)
    );
}
