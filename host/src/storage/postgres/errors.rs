//! How sqlx errors become the storage errors the job layer understands.

use super::DATABASE_URL_VAR;
use crate::storage::StorageError;

/// Maps an sqlx error from a running store to the storage error the job layer understands.
pub(super) fn pg_err(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = format!("{} (SQLSTATE {code})", d.message());
            match code.get(..2).unwrap_or("") {
                // connection exception, insufficient resources, operator intervention
                // (shutdown, cancel), system error, serialization failure / deadlock.
                "08" | "53" | "57" | "58" | "40" | "55" => StorageError::Unavailable(msg),
                // auth, missing database, undefined table/column: the schema or the URL.
                "28" | "3D" | "42" | "0A" => StorageError::Config(format!(
                    "{msg}; check {DATABASE_URL_VAR} and run `drowl-host migrate`"
                )),
                _ => StorageError::Invalid(msg),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => {
            StorageError::Unavailable(format!("PostgreSQL ({DATABASE_URL_VAR}): {e}"))
        }
        sqlx::Error::Configuration(_) | sqlx::Error::Migrate(_) => {
            StorageError::Config(e.to_string())
        }
        _ => StorageError::Invalid(e.to_string()),
    }
}

/// Explains a failed first connection, naming `DATABASE_URL`.
pub(super) fn connect_err(e: sqlx::Error, shown: &str) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.get(..2).unwrap_or("") {
                "28" => StorageError::Config(format!(
                    "PostgreSQL refused the credentials in {DATABASE_URL_VAR} ({shown}): {}",
                    d.message()
                )),
                "3D" => StorageError::Config(format!(
                    "the database named in {DATABASE_URL_VAR} ({shown}) does not exist: {}",
                    d.message()
                )),
                _ => match pg_err(e) {
                    StorageError::Invalid(m) | StorageError::Config(m) => StorageError::Config(
                        format!("PostgreSQL at {DATABASE_URL_VAR} ({shown}) refused: {m}"),
                    ),
                    StorageError::Unavailable(m) => StorageError::Unavailable(format!(
                        "PostgreSQL at {DATABASE_URL_VAR} ({shown}) is not ready: {m}"
                    )),
                },
            }
        }
        sqlx::Error::Configuration(_) => {
            StorageError::Config(format!("{DATABASE_URL_VAR} ({shown}) is not usable: {e}"))
        }
        _ => StorageError::Unavailable(format!(
            "cannot reach PostgreSQL at {DATABASE_URL_VAR} ({shown}): {e}"
        )),
    }
}
