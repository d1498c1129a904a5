//! Test helpers shared by drowl-host's and drowl-bull's integration tests: the machine's
//! Redis (127.0.0.1:6379), the lock that says who may restart it, private Redis servers,
//! child processes killed on drop ([`Proc`]), what the soak tests share ([`soak`]), and
//! (feature `storage`) real PostgreSQL and S3 services for storage tests.
//!
//! Why a crate of its own: both test suites need these helpers, and two copies drifted
//! apart. drowl-bull's restart tests serialised only with the other tests of their own
//! binary, so a `cargo test -p drowl-bull` could shut the machine's Redis down under a
//! `cargo test -p drowl-host` running at the same time. With one copy, every test process
//! on the machine takes the same lock file.
//!
//! # The restart lock
//!
//! Tests that use the machine's Redis hold [`RedisInUse`] (a shared `flock`); tests that
//! stop it hold [`RedisRestartGuard`] (an exclusive one). Both lock the same file in the
//! temp dir, `drowl-redis-restart.lock`, across processes: cargo runs test binaries one
//! after another, but engineers run several `cargo test`s at once.
//!
//! `flock` belongs to an open file description, and each guard opens the file anew, so the
//! guards exclude each other between the threads of one test binary too: a restart test
//! waits for the other threads' [`RedisInUse`], and they for it. What must never happen is
//! one test (one thread) holding one kind while it asks for the other: it waits for itself
//! for ever. So, as drowl-host's `daemon_redis` binary does, keep the tests that restart the
//! machine's Redis in a test binary of their own, take no [`RedisInUse`] there (other tests
//! in it use a [`PrivateRedis`]), and never take both guards in one test.
//!
//! Acquiring blocks the calling thread. In a `#[tokio::test]` that is the test's own
//! thread (each test has its own runtime), so only that test waits.
//!
//! Needs `redis-server` and `redis-cli` on PATH. Not published.
//!
//! With the `storage` feature, the `storage` module has the PostgreSQL and S3 services drowl-host's
//! storage tests run against.

mod process;
pub mod soak;
#[cfg(feature = "storage")]
pub mod storage;

pub use process::Proc;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The machine's Redis.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long a Redis may take to start or stop before a test gives up.
const REDIS_WAIT: Duration = Duration::from_secs(10);

/// Runs `redis-cli` with `args` (against the machine's Redis unless they say `-p`).
pub fn redis_cli(args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli (is redis-tools installed?)")
}

/// Whether the machine's Redis answers PING.
pub fn redis_up() -> bool {
    redis_cli(&["ping"]).stdout.starts_with(b"PONG")
}

/// Starts the machine's Redis, unless it is up, with the command line the machine itself
/// uses (no persistence), so tests leave it as they found it; waits until it answers.
pub fn start_redis() {
    if redis_up() {
        return;
    }
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ])
        .status()
        .expect("redis-server");
    assert!(status.success(), "redis-server failed to start");
    let end = Instant::now() + REDIS_WAIT;
    while !redis_up() {
        assert!(Instant::now() < end, "redis did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the machine's Redis without saving: everything in it is lost. Hold a
/// [`RedisRestartGuard`] while it is down.
pub fn stop_redis() {
    let _ = redis_cli(&["shutdown", "nosave"]);
    let end = Instant::now() + REDIS_WAIT;
    while redis_up() {
        assert!(Instant::now() < end, "redis did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lock file (see the crate documentation), one for every test process on the machine.
fn redis_lock_path() -> PathBuf {
    std::env::temp_dir().join("drowl-redis-restart.lock")
}

/// A new open file description of the lock file: each guard needs its own, since `flock`
/// locks belong to it.
fn redis_lock_file() -> File {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(redis_lock_path())
        .expect("lock file")
}

/// Held while a test uses the machine's Redis, so no test that takes
/// [`RedisRestartGuard`] restarts it meanwhile (its queue would vanish). Shared: any number
/// of tests, in any process, hold it at once.
#[must_use = "the lock is released when this is dropped"]
#[derive(Debug)]
pub struct RedisInUse {
    _lock: File,
}

impl RedisInUse {
    /// Waits until no test holds [`RedisRestartGuard`], then takes the shared lock.
    pub fn acquire() -> Self {
        let file = redis_lock_file();
        file.lock_shared()
            .expect("lock the Redis restart file (shared)");
        Self { _lock: file }
    }
}

/// Held while a test may stop or restart the machine's Redis: the exclusive lock, so it
/// waits for every test holding [`RedisInUse`] and they wait for it. When dropped it starts
/// Redis again before releasing the lock, so a failing test never leaves the machine
/// without Redis.
#[must_use = "the lock is released (and Redis started) when this is dropped"]
#[derive(Debug)]
pub struct RedisRestartGuard {
    _lock: File,
}

impl RedisRestartGuard {
    /// Waits until no other test holds either guard, then takes the exclusive lock.
    pub fn acquire() -> Self {
        let file = redis_lock_file();
        file.lock().expect("lock the Redis restart file");
        Self { _lock: file }
    }
}

impl Drop for RedisRestartGuard {
    fn drop(&mut self) {
        start_redis();
    }
}

/// A Redis of the test's own on a free port, in its own temp directory, killed on drop:
/// for tests that restart Redis without touching the machine's (and so take no lock).
///
/// Without persistence ([`PrivateRedis::start`]) a restart loses every key, as the
/// machine's Redis does. With AOF ([`PrivateRedis::start_persistent`], `appendfsync
/// always`) every write it acknowledged is still there after a restart.
#[derive(Debug)]
pub struct PrivateRedis {
    /// The port it listens on (127.0.0.1), the same across restarts.
    pub port: u16,
    /// The running server; `None` while stopped.
    child: Option<Child>,
    persistent: bool,
    /// Its working directory: the log, and with persistence the append-only files.
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one without persistence (`--save "" --appendonly no`).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts one with AOF (`--appendonly yes --appendfsync always`) in its own directory.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut me = Self {
            port,
            child: None,
            persistent,
            dir: tempfile::tempdir().expect("private redis dir"),
        };
        me.spawn();
        me
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against it.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli")
    }

    /// Whether it answers PING.
    pub fn up(&self) -> bool {
        self.cli(&["ping"]).stdout.starts_with(b"PONG")
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let mut child = cmd.spawn().expect("redis-server");
        let end = Instant::now() + REDIS_WAIT;
        while !self.up() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "private redis on port {} exited ({status}):\n{}",
                    self.port,
                    self.log()
                );
            }
            assert!(
                Instant::now() < end,
                "private redis on port {} did not start:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Stops it (nothing happens if it is stopped). Without persistence: SIGKILL, every
    /// key is lost. With persistence: SHUTDOWN, which flushes and fsyncs the AOF.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.persistent {
            let _ = self.cli(&["shutdown", "nosave"]);
            let end = Instant::now() + REDIS_WAIT;
            while let Ok(None) = child.try_wait() {
                if Instant::now() > end {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "private redis on port {} did not shut down:\n{}",
                        self.port,
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it (see [`PrivateRedis::stop`]) if it runs, and starts it again on the same
    /// port: without persistence it comes back empty, with persistence with its data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::TryLockError;

    fn get(redis: &PrivateRedis, key: &str) -> String {
        String::from_utf8_lossy(&redis.cli(&["get", key]).stdout)
            .trim()
            .to_owned()
    }

    #[test]
    fn without_persistence_a_restart_loses_the_data() {
        let mut redis = PrivateRedis::start();
        assert!(redis.cli(&["set", "k", "v"]).stdout.starts_with(b"OK"));
        assert_eq!(get(&redis, "k"), "v");
        redis.restart();
        assert!(redis.up());
        assert_eq!(get(&redis, "k"), "");
    }

    #[test]
    fn with_aof_a_restart_keeps_the_data() {
        let mut redis = PrivateRedis::start_persistent();
        assert!(redis.cli(&["set", "k", "v"]).stdout.starts_with(b"OK"));
        redis.stop();
        assert!(!redis.up());
        redis.restart();
        assert_eq!(get(&redis, "k"), "v");
        assert!(redis.url().ends_with(&format!(":{}", redis.port)));
    }

    #[test]
    fn a_private_redis_stops_when_dropped() {
        let redis = PrivateRedis::start();
        let pid = redis.child.as_ref().expect("running").id();
        drop(redis);
        // Killed and reaped (another test's server may take the port, so not a PING).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    /// Probes the lock from a new open file description, as another test would.
    fn probe(exclusive: bool) -> Result<(), TryLockError> {
        let file = redis_lock_file();
        if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        }
    }

    #[test]
    fn redis_in_use_is_shared_and_keeps_restarts_out() {
        let _in_use = RedisInUse::acquire();
        assert!(probe(false).is_ok(), "a second user may share it");
        assert!(
            matches!(probe(true), Err(TryLockError::WouldBlock)),
            "a restart must wait"
        );
    }

    #[test]
    fn the_restart_guard_is_exclusive_and_leaves_redis_up() {
        let guard = RedisRestartGuard::acquire();
        assert!(matches!(probe(false), Err(TryLockError::WouldBlock)));
        assert!(matches!(probe(true), Err(TryLockError::WouldBlock)));
        drop(guard);
        assert!(redis_up());
    }
}
