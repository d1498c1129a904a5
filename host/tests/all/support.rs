//! Shared helpers: building the real plugin components and running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds a plugin package for wasm32-wasip2 (once per test process) and returns the
/// path of its component. Each package is built on its own so SDK role features are
/// not unified across plugins.
pub(crate) fn component(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let file = root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if built.lock().unwrap().contains(package) {
        return file;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "building {package} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    assert!(file.exists(), "{} missing after build", file.display());
    built.lock().unwrap().insert(package.to_owned());
    file
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

/// A job request from drowl's JSON.
pub(crate) fn job(id: &str, v: serde_json::Value) -> drowl_host::jobs::JobRequest {
    drowl_host::jobs::JobRequest::from_value(id, &v).unwrap()
}
