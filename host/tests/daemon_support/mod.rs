//! Helpers for the daemon tests: real `drowl-host serve` processes on the machine's Redis,
//! the real `bull` npm client (node, in tests/interop), plugin components, Redis restarts.
//!
//! Every process a test starts is SIGKILLed when its handle drops (drowl-testkit's `Proc`),
//! so a failing test leaves nothing running; a daemon's stderr goes to a file that is
//! printed when a test fails.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drowl_testkit::Proc;
pub(crate) use drowl_testkit::REDIS_URL;

/// A queue name no other test (or earlier run) uses.
pub(crate) fn unique_queue(tag: &str) -> String {
    format!(
        "daemon-{tag}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The workspace root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target directory this test binary was built into (`target/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The hostile and keywords components, built by drowl-test-artifacts before any test.
pub(crate) fn components() -> Vec<PathBuf> {
    [
        drowl_test_artifacts::HOSTILE_PLUGIN,
        drowl_test_artifacts::KEYWORDS_PLUGIN,
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// A plugin directory holding copies of the hostile and keywords components.
pub(crate) fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("plugin dir");
    for c in components() {
        let name = c.file_name().expect("component file name");
        std::fs::copy(&c, dir.path().join(name)).expect("copy component");
    }
    dir
}

/// A plugin directory holding copies of components under the given file names (which
/// make their plugin ids: see `drowl_host::jobs::install`).
pub(crate) fn plugin_dir_with(files: &[(&Path, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("plugin dir");
    for (c, name) in files {
        std::fs::copy(c, dir.path().join(name)).expect("copy component");
    }
    dir
}

/// One wasmtime code cache for every daemon the tests start, so each does not recompile
/// the components (seconds in a debug build); wasmtime writes it with atomic renames.
fn shared_cache() -> PathBuf {
    let dir = target_dir().join("daemon-test-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    dir
}

/// How to start one `drowl-host serve`.
#[derive(Clone, Debug)]
pub(crate) struct Serve {
    pub(crate) queue: String,
    pub(crate) plugins: PathBuf,
    pub(crate) concurrency: usize,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) name: String,
    /// Passed as `--redis-url`; empty: not passed (the test sets `REDIS_URL`).
    pub(crate) redis_url: String,
    /// Passed as `--listen`; `None`: not passed, so the daemon listens where
    /// `WORKER_HOST`/`WORKER_PORT` say (0.0.0.0:3002 by default, which concurrent tests
    /// would fight over: only tests that set both use this).
    pub(crate) listen: Option<String>,
    /// Passed as `--config-file`; then the queue, plugins directory, concurrency and
    /// listen address are the file's (their flags are not passed).
    pub(crate) config_file: Option<PathBuf>,
}

impl Serve {
    /// `serve` on `queue` with the plugins in `plugins`, concurrency 1, embedded storage.
    pub(crate) fn new(queue: &str, plugins: &Path) -> Self {
        Self {
            queue: queue.to_owned(),
            plugins: plugins.to_path_buf(),
            concurrency: 1,
            args: Vec::new(),
            env: Vec::new(),
            name: "serve".to_owned(),
            redis_url: REDIS_URL.to_owned(),
            listen: Some("127.0.0.1:0".to_owned()),
            config_file: None,
        }
    }

    /// Start with the settings file `path` holding the queue name, plugins directory,
    /// concurrency and listen address (`[http] host`, `port`): no flag for them is passed.
    pub(crate) fn config_file(mut self, path: &Path) -> Self {
        self.config_file = Some(path.to_path_buf());
        self
    }

    /// Listen where `WORKER_HOST` and `WORKER_PORT` say, instead of `--listen
    /// 127.0.0.1:0`.
    pub(crate) fn worker_address(mut self, host: &str, port: u16) -> Self {
        self.listen = None;
        self.env("WORKER_HOST", host)
            .env("WORKER_PORT", &port.to_string())
    }

    /// Reach Redis at `url` through drowl's `REDIS_URL`, not the `--redis-url` flag.
    pub(crate) fn redis_env(mut self, url: &str) -> Self {
        self.redis_url = String::new();
        self.env("REDIS_URL", url)
    }

    pub(crate) fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    pub(crate) fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub(crate) fn args(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(|s| (*s).to_owned()));
        self
    }

    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub(crate) fn name(mut self, n: &str) -> Self {
        self.name = n.to_owned();
        self
    }

    pub(crate) fn redis(mut self, url: &str) -> Self {
        self.redis_url = url.to_owned();
        self
    }

    /// Starts the process and waits until it serves (its status line is printed).
    pub(crate) fn start(self) -> Daemon {
        let mut d = self.spawn();
        d.addr = Some(d.wait_ready(Duration::from_secs(60)));
        d
    }

    /// Starts the process, which must exit without serving; its exit status and stderr.
    pub(crate) fn refused(self) -> (ExitStatus, String) {
        let mut d = self.spawn();
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = d.proc.child.try_wait() {
                return (status, d.log());
            }
            let log = d.log();
            assert!(
                !log.contains("status on http://"),
                "{} served instead of refusing to start:\n{log}",
                d.proc.name
            );
            assert!(
                Instant::now() < end,
                "{} neither served nor exited:\n{log}",
                d.proc.name
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn spawn(self) -> Daemon {
        let dir = tempfile::tempdir().expect("daemon dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::os::unix::fs::symlink(shared_cache(), data.join("cache")).expect("cache link");
        let log_path = dir.path().join("stderr.log");
        let log = File::create(&log_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drowl-host"));
        cmd.arg("serve");
        match &self.config_file {
            Some(file) => {
                cmd.arg("--config-file").arg(file);
            }
            None => {
                cmd.arg("--plugins")
                    .arg(&self.plugins)
                    .args(["--queue", &self.queue])
                    .args(["--concurrency", &self.concurrency.to_string()]);
            }
        }
        if !self.redis_url.is_empty() {
            cmd.args(["--redis-url", &self.redis_url]);
        }
        // Always an ephemeral port unless the test chose WORKER_HOST/WORKER_PORT (or a
        // settings file): the default address (0.0.0.0:3002) is one port for every daemon
        // of every test.
        if let Some(listen) = self.listen.as_ref().filter(|_| self.config_file.is_none()) {
            cmd.args(["--listen", listen]);
        }
        cmd.arg("--data-dir")
            .arg(&data)
            .args(&self.args)
            // Only what the tests set: no storage, queue or plugin settings from the caller.
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("DROWL_QUEUE")
            .env_remove("DROWL_QUEUE_PREFIX")
            .env_remove("DROWL_PLUGIN_CONFIG")
            .env_remove("DROWL_CONCURRENCY")
            .env_remove("DROWL_LISTEN")
            .env_remove("WORKER_HOST")
            .env_remove("WORKER_PORT")
            .env_remove("DROWL_STARTUP_TIMEOUT_MS")
            .env_remove("DROWL_DATA_DIR")
            .env_remove("DROWL_PLUGIN_DIR")
            .env_remove("DROWL_SCHEDULES")
            .env_remove("DROWL_CONFIG_FILE")
            .env_remove("DROWL_UI")
            .env_remove("DROWL_UI_TOKEN")
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_LOG").unwrap_or_else(|_| "warn,drowl_bull=info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().expect("log fd"));
        for (k, _) in std::env::vars() {
            if k.starts_with("S3_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let proc = Proc {
            child: cmd.spawn().expect("spawn drowl-host serve"),
            name: self.name,
        };
        Daemon {
            proc,
            log_path,
            addr: None,
            _dir: dir,
        }
    }
}

/// A running `drowl-host serve`.
pub(crate) struct Daemon {
    /// The process, with the name given by [`Serve::name`].
    proc: Proc,
    log_path: PathBuf,
    addr: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub(crate) fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Its stderr so far.
    pub(crate) fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn wait_ready(&mut self, limit: Duration) -> SocketAddr {
        let end = Instant::now() + limit;
        loop {
            let log = self.log();
            if let Some(rest) = log.split("status on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default();
                return addr
                    .parse()
                    .unwrap_or_else(|e| panic!("status address {addr:?}: {e}"));
            }
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                panic!(
                    "{} exited ({status}) before serving:\n{log}",
                    self.proc.name
                );
            }
            assert!(
                Instant::now() < end,
                "{} not serving after {limit:?}:\n{log}",
                self.proc.name
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Its data directory (the embedded database is `drowl.db` there).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// The HTTP status server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr.expect("daemon address")
    }

    /// GET `path` on the status server: status code and JSON body.
    pub(crate) async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("http://{}{path}", self.addr());
        let resp = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// GET `path` on the status server: status code and body as text.
    pub(crate) async fn get_text(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.addr());
        let resp = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// POST `path` (no body) on the status server: status code and JSON body.
    pub(crate) async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("http://{}{path}", self.addr());
        let resp = reqwest::Client::new()
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// POST `body` to `path` with `headers`: status code and body as text (what a
    /// platform pushing a webhook sees).
    pub(crate) async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let url = format!("http://{}{path}", self.addr());
        let mut req = reqwest::Client::new().post(&url).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Sends a signal (`TERM`, `KILL`, …).
    pub(crate) fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.wait_for(limit)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Gone before its log is read, so the tail holds its last words.
        self.proc.kill();
        if std::thread::panicking() || std::env::var("DAEMON_STDERR").is_ok() {
            let log = self.log();
            let tail: String = {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            };
            eprintln!(
                "--- {} (pid {}) stderr, last lines:\n{tail}",
                self.proc.name,
                self.pid()
            );
        }
    }
}

/// `tests/interop` with the real bull installed (`npm ci` when missing).
pub(crate) fn interop_dir() -> PathBuf {
    static READY: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = ready.as_ref() {
        return d.clone();
    }
    let dir = repo_root().join("tests/interop");
    if !dir.join("node_modules/bull/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm ci (is node installed?)");
        assert!(status.success(), "npm ci in tests/interop failed");
    }
    *ready = Some(dir.clone());
    dir
}

/// A `node` command in tests/interop with QUEUE and REDIS_URL set.
pub(crate) fn node_command(script: &str, args: &[&str], queue: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(interop_dir())
        .env("QUEUE", queue)
        .env("REDIS_URL", REDIS_URL);
    cmd
}

/// Runs a daemon scenario to completion (off the async runtime) and returns its output.
pub(crate) async fn scenario_output(name: &str, args: &[&str], queue: &str) -> Output {
    let mut cmd = node_command("daemon_scenarios.js", &[&[name], args].concat(), queue);
    tokio::task::spawn_blocking(move || cmd.output().expect("run node"))
        .await
        .expect("node task")
}

/// Runs a daemon scenario; panics with its output unless it passed; returns its JSON line.
pub(crate) async fn scenario(name: &str, args: &[&str], queue: &str) -> serde_json::Value {
    let out = scenario_output(name, args, queue).await;
    assert_success(&format!("scenario {name}"), &out);
    last_json_line(&out)
}

/// The last stdout line, as JSON.
pub(crate) fn last_json_line(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
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

/// Deletes every key of a test queue (best effort).
pub(crate) async fn obliterate(queue: &str) {
    let config = drowl_bull::QueueConfig::new(REDIS_URL).queue_name(queue.to_owned());
    if let Ok(q) = drowl_bull::Queue::connect(&config).await {
        let _ = q.obliterate().await;
        let _ = q.close().await;
    }
}

/// The job's record once it has finished (completed or failed), polling; panics after
/// `limit`.
pub(crate) async fn finished(
    q: &drowl_bull::Queue,
    id: &str,
    limit: Duration,
) -> drowl_bull::JobRecord {
    eventually(limit, &format!("job {id} finished"), || async move {
        q.get_job(id)
            .await
            .ok()?
            .filter(|r| r.finished_on.is_some())
    })
    .await
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- The machine's Redis, restarted by the fault tests: drowl-testkit's, one copy for
// drowl-host's and drowl-bull's tests, with the machine-wide restart lock ----

#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use drowl_testkit::{
    PrivateRedis, RedisInUse, RedisRestartGuard, redis_cli, redis_up, start_redis, stop_redis,
};
