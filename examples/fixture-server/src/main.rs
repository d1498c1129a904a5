//! `fixture-server`: serves recorded GitHub API responses on 127.0.0.1 for offline
//! plugin runs. Its first stdout line is `listening on http://127.0.0.1:PORT`, so a
//! script can start it with `--port 0` and read the port. See the library docs for
//! the endpoints and scenario knobs.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Parser;
use fixture_server::{BASE_SET, Options, start_with};

/// Serve recorded GitHub events API responses on loopback.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The fixture root: a directory of fixture sets.
    #[arg(long, default_value = "plugins/github/fixtures")]
    fixtures: PathBuf,
    /// The fixture set active at start.
    #[arg(long, default_value = BASE_SET)]
    set: String,
    /// Answer 401 to requests carrying any other bearer token.
    #[arg(long, env = "FIXTURE_SERVER_EXPECT_TOKEN")]
    expect_token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = Options {
        fixtures: args.fixtures,
        port: args.port,
        set: args.set,
        expect_token: args.expect_token,
    };
    let (addr, handle) = start_with(options).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    drop(out);
    shutdown_signal().await;
    handle.shutdown().await
}

/// Ctrl-C or, on Unix, SIGTERM (what scripts send with `kill`).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
