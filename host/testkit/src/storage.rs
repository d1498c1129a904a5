//! Real services for the storage integration tests: a fresh PostgreSQL database per test,
//! a moto_server process per test (unless `DROWL_TEST_S3_ENDPOINT` points at one), and a
//! loopback TCP proxy that can be stopped and restarted to simulate an outage.
//!
//! A missing service makes the test fail with a message saying what to start; nothing is
//! faked and nothing silently passes.
//!
//! Behind the `storage` feature: it pulls sqlx, tokio, url and uuid, which drowl-bull's
//! tests (the other user of this crate) do not need.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The maintenance database tests connect to in order to create their own.
pub fn admin_url() -> String {
    std::env::var("DROWL_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database created for one test and dropped afterwards (even if the test panics).
pub struct TestDb {
    /// Database name (`drowl_test_<random>`).
    pub name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestDb {
    /// Creates `drowl_test_<random>` on the server behind [`admin_url`].
    pub async fn create() -> Self {
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "these tests need a real PostgreSQL at {admin} (set DROWL_TEST_PG_ADMIN_URL \
                 to use another): {e}"
            )
        });
        let name = format!("drowl_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("admin URL parses");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// The URL of this database reached through `addr` instead (a proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let mut url = url::Url::parse(&self.url).expect("test URL parses");
        url.set_host(Some(&addr.ip().to_string())).expect("host");
        url.set_port(Some(addr.port())).expect("port");
        url.to_string()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Runs on its own thread and runtime: Drop may run inside (or outside) a runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(&admin_url()).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = c.execute(sql.as_str()).await;
                    }
                });
            }
        })
        .join();
    }
}

/// A TCP proxy on a fixed loopback port that forwards to `target` and can be stopped
/// (listener closed, live connections cut: clients see refused/reset) and restarted.
pub struct TcpProxy {
    /// The proxy's address; stays the same across restarts.
    pub addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Starts a proxy on a free port.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mut p = Self {
            addr,
            target,
            accept: None,
            conns: Arc::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, conns) = (self.target, self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let h = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("conns").push(h);
            }
        }));
    }

    /// Closes the listener and cuts every live connection.
    pub async fn stop(&mut self) {
        if let Some(h) = self.accept.take() {
            h.abort();
            let _ = h.await;
        }
        let conns: Vec<_> = self.conns.lock().expect("conns").drain(..).collect();
        for h in conns {
            h.abort();
            let _ = h.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind proxy port {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The workspace root, where `scripts/services.sh` installs `.venv`: this crate lives in
/// `host/testkit`, two levels below it.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where `moto_server` is: on PATH or in the repository's `.venv`.
fn moto_binary() -> Option<PathBuf> {
    let venv = workspace_root().join(".venv/bin/moto_server");
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("moto_server"))
            .find(|c| c.is_file())
    });
    on_path.or_else(|| venv.is_file().then_some(venv))
}

/// An S3-compatible server for one test: `DROWL_TEST_S3_ENDPOINT` if set, otherwise a
/// moto_server child process on a random loopback port (killed on drop).
pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    /// Uses `DROWL_TEST_S3_ENDPOINT`, or starts moto_server.
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("DROWL_TEST_S3_ENDPOINT") {
            let port = url::Url::parse(&endpoint)
                .ok()
                .and_then(|u| u.port_or_known_default())
                .expect("DROWL_TEST_S3_ENDPOINT must be a URL with a port");
            return Self {
                endpoint,
                port,
                child: None,
            };
        }
        let port = free_port();
        let mut s = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
        };
        s.spawn().await;
        s
    }

    /// Always starts a moto_server of its own, for tests that stop and restart it.
    pub async fn start_owned() -> Self {
        let port = free_port();
        let mut s = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let bin = moto_binary().unwrap_or_else(|| {
            panic!(
                "these tests need an S3-compatible server: set DROWL_TEST_S3_ENDPOINT, or \
                 install moto: python3 -m venv .venv && .venv/bin/pip install 'moto[server]'"
            )
        });
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port. moto keeps no state across restarts, so callers
    /// recreate the bucket, as a persistent server (MinIO) would still have it.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_is_where_services_sh_puts_the_venv() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("root manifest");
        assert!(manifest.contains("[workspace]"), "{}", root.display());
        assert!(root.join("scripts/services.sh").is_file());
    }
}
