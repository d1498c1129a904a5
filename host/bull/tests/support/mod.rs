//! Shared helpers for the integration tests: unique queue names, the example worker binary,
//! the real bull client (node), and the machine's Redis (from drowl-testkit).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A child process killed when dropped: drowl-testkit's, one copy for drowl-bull's and
/// drowl-host's tests.
pub(crate) use drowl_testkit::Proc;
pub(crate) use drowl_testkit::REDIS_URL;

/// A queue name no other test (or earlier run) uses.
pub(crate) fn unique_queue(tag: &str) -> String {
    format!(
        "t-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `noop_worker` example, which `cargo test -p drowl-bull` builds next to the tests.
pub(crate) fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let debug_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = debug_dir.join("examples").join("noop_worker");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test -p drowl-bull` (which builds examples) or `cargo build -p drowl-bull --examples` first",
        bin.display()
    );
    // `cargo test --test X` does not rebuild examples: refuse a binary older than the code.
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = std::fs::read_dir(crate_dir.join("src"))
        .expect("read src")
        .flatten()
        .map(|e| e.path())
        .chain([crate_dir.join("examples/noop_worker.rs")]);
    for path in sources {
        let changed = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(
            changed <= built,
            "{} is older than {}: run `cargo build -p drowl-bull --examples` (or the whole `cargo test -p drowl-bull`)",
            bin.display(),
            path.display()
        );
    }
    bin
}

/// Start a worker process on `queue` with extra environment (CONCURRENCY, LOCK_MS, …).
pub(crate) fn spawn_worker(queue: &str, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(worker_bin());
    cmd.env("QUEUE", queue)
        .env("REDIS_URL", REDIS_URL)
        .env("RECORD", "1")
        .env(
            "RUST_LOG",
            std::env::var("WORKER_LOG").unwrap_or_else(|_| "warn,drowl_bull=info".into()),
        )
        .stdout(Stdio::null())
        .stderr(if std::env::var("WORKER_STDERR").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().expect("spawn noop_worker"),
        name: format!("worker on {queue}"),
    }
}

/// `tests/interop/node_modules` with the real bull, installed with `npm ci` when missing.
pub(crate) fn interop_dir() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = repo_root().join("tests/interop");
            if !dir.join("node_modules/bull/package.json").exists() {
                let status = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .status()
                    .expect("npm ci");
                assert!(status.success(), "npm ci in tests/interop failed");
            }
            dir
        })
        .clone()
}

/// Run `node <script> <args>` in tests/interop with QUEUE set; returns its output.
pub(crate) fn node(script: &str, args: &[&str], queue: &str, env: &[(&str, &str)]) -> Output {
    let dir = interop_dir();
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(&dir)
        .env("QUEUE", queue)
        .env("REDIS_URL", REDIS_URL);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run node")
}

pub(crate) fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// The machine's Redis and private ones: drowl-testkit's, one copy for drowl-bull's and
// drowl-host's tests. Tests that use the machine's Redis hold `RedisInUse`; the restart
// tests (their own binary, redis_restart.rs) hold `RedisRestartGuard`, the exclusive side
// of the same machine-wide lock, so they wait for each other across test processes.
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use drowl_testkit::{
    PrivateRedis, RedisInUse, RedisRestartGuard, redis_cli, redis_up, start_redis, stop_redis,
};
