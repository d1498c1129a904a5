//! `drowl-host migrate`: applies the PostgreSQL migrations in `migrations/` (compiled into
//! the binary) to the database in `DATABASE_URL`.
//!
//! Running it again is harmless: applied migrations are skipped, and concurrent runs are
//! serialised by sqlx's advisory lock. It prints one line per migration it applied, then
//! one summary line, on stdout; errors are one line on stderr.

use clap::Args;

use super::exit;
use crate::storage::StorageError;
use crate::storage::postgres::{DATABASE_URL_VAR, PostgresConfig, PostgresStore};

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL (drowl's `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Prints `message` as one line (storage errors may quote multi-line server messages).
fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    let line = message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("error: {line}");
    code
}

/// Runs the command; returns the exit code: 0 when the schema is up to date, 2 when
/// `DATABASE_URL` is missing, wrong or unreachable, 8 when a migration itself failed.
pub async fn run(args: MigrateArgs) -> u8 {
    let Some(url) = args.database_url.filter(|u| !u.trim().is_empty()) else {
        return fail(
            exit::USAGE,
            format!(
                "{DATABASE_URL_VAR} is not set; migrate needs the PostgreSQL database to \
                 migrate, e.g. {DATABASE_URL_VAR}=postgres://user:password@host:5432/drowl \
                 (or --database-url)"
            ),
        );
    };
    let cfg = PostgresConfig::new(url);
    let shown = cfg.redacted_url();
    let store = match PostgresStore::connect_with(&cfg).await {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let result = apply(&store, &shown).await;
    store.close().await;
    match result {
        Ok(()) => exit::OK,
        // The server went away mid-run: the same answer as unreachable at connect time.
        Err(e @ StorageError::Unavailable(_)) => fail(exit::USAGE, e),
        Err(e) => fail(exit::STORAGE, e),
    }
}

async fn apply(store: &PostgresStore, shown: &str) -> Result<(), StorageError> {
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    for m in &pending {
        println!("applied {m}");
    }
    if pending.is_empty() {
        println!("{shown}: schema is up to date, nothing to apply");
    } else {
        println!(
            "{shown}: applied {} migration{}; schema is up to date",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
