//! `drowl-host migrate`: applies the PostgreSQL migrations (owner: storage wiring, issue #3).

use clap::Args;

use super::exit;

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL (drowl's `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Runs the command; returns the exit code.
pub async fn run(_args: MigrateArgs) -> u8 {
    eprintln!("error: migrate is not wired yet");
    exit::UNSUPPORTED
}
