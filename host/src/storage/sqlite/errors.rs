//! How sqlx errors become the storage errors the job layer understands.

use crate::storage::StorageError;

/// Maps an sqlx error to the storage error the job layer understands.
pub(super) fn db_err(e: sqlx::Error) -> StorageError {
    match &e {
        sqlx::Error::Database(d) => {
            if matches!(
                d.kind(),
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::NotNullViolation
                    | sqlx::error::ErrorKind::CheckViolation
            ) {
                return StorageError::Invalid(d.message().to_owned());
            }
            // Primary result code: the low byte of the extended code.
            let primary = d
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            match primary {
                // BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL: a retry may succeed.
                Some(5 | 6 | 7 | 10 | 13 | 14 | 15) => StorageError::Unavailable(e.to_string()),
                // READONLY, CORRUPT, NOTADB, ERROR (SQL error: schema mismatch).
                Some(8 | 11 | 26 | 1) => StorageError::Config(e.to_string()),
                _ => StorageError::Invalid(e.to_string()),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StorageError::Unavailable(e.to_string()),
        sqlx::Error::Configuration(_) | sqlx::Error::Migrate(_) => {
            StorageError::Config(e.to_string())
        }
        _ => StorageError::Invalid(e.to_string()),
    }
}
