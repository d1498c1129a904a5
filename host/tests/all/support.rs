//! Shared helpers: the real plugin components, the binary, and executors over them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The component of plugin package `package`, built for wasm32-wasip2 by
/// drowl-test-artifacts' build script before any test runs.
pub(crate) fn component(package: &str) -> PathBuf {
    drowl_test_artifacts::component(package).to_path_buf()
}

/// Runs the `drowl-host` binary.
pub(crate) fn drowl_host(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drowl-host"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run drowl-host")
}

/// Writes a job file and returns its path.
pub(crate) fn job_file(dir: &Path, name: &str, job: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, job.to_string()).unwrap();
    p
}

/// Stdout parsed as JSON.
pub(crate) fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Stderr as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An executor with embedded storage in `dir`, the given plugin files installed, and
/// `policy` (its `plugins` settings are keyed by plugin id).
pub(crate) async fn executor(
    dir: &Path,
    files: &[&Path],
    policy: drowl_host::jobs::HostPolicy,
) -> drowl_host::jobs::Executor {
    let storage = drowl_host::storage::open_embedded(dir).await.unwrap();
    executor_with(storage, files, policy).await
}

/// An executor over `storage` (embedded, or PostgreSQL and S3 from
/// `drowl_host::storage::open`), with the given plugin files installed and `policy`.
pub(crate) async fn executor_with(
    storage: drowl_host::storage::Storage,
    files: &[&Path],
    policy: drowl_host::jobs::HostPolicy,
) -> drowl_host::jobs::Executor {
    use drowl_host::jobs::{Executor, ReadyPlugin, Registry};
    use drowl_host::runtime::{EngineSettings, Runtime};
    let runtime = Runtime::new(&EngineSettings {
        cache_dir: Some(root().join("target/drowl-test-cache")),
        ..EngineSettings::default()
    })
    .unwrap();
    let mut registry = Registry::default();
    for f in files {
        let loaded = runtime.load_file(f).await.unwrap();
        registry
            .insert(ReadyPlugin::prepare(loaded, &policy, &storage).unwrap())
            .unwrap();
    }
    Executor::new(runtime, storage, registry)
}

/// A component built against contract 0.1.0 before 0.2.0 existed, kept as it was built
/// (`tests/fixtures/contract-0.1.0/`): `github_plugin.wasm` or `keywords_plugin.wasm`.
pub(crate) fn contract_0_1_0_fixture(file: &str) -> PathBuf {
    let path = root().join("tests/fixtures/contract-0.1.0").join(file);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// A job request from drowl's JSON.
pub(crate) fn job(id: &str, v: serde_json::Value) -> drowl_host::jobs::JobRequest {
    drowl_host::jobs::JobRequest::from_value(id, &v).unwrap()
}

/// A keyword as drowl's API stores it in the `keywords` table (jobs never write there;
/// tests that want stored matches put their keywords in place with this first).
pub(crate) fn tracked(id: &str, term: &str, strategy: &str) -> drowl_host::storage::KeywordRecord {
    drowl_host::storage::KeywordRecord {
        id: id.to_owned(),
        term: term.to_owned(),
        category: "technology".to_owned(),
        match_strategy: strategy.to_owned(),
        regex_pattern: None,
        synonyms: Vec::new(),
    }
}
