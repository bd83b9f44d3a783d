//! What a [`super::Store`] method fails with. The HTTP boundary turns it into a `500` or `503`
//! (`impl From<StoreError> for AppError` in `crate::error`).

use std::path::PathBuf;

/// A store failure. Its `Display` never holds a password (URLs are redacted before they go in).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The folder of a SQLite file could not be created.
    #[error("cannot create the folder {0}: {1}")]
    Folder(PathBuf, #[source] std::io::Error),
    /// A URL naming no engine this build stores into (shown redacted).
    #[error("unsupported database URL {0}")]
    Unsupported(String),
    /// A value could not be encoded for storage.
    #[error("cannot encode a value for storage: {0}")]
    Encode(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the database is unreachable or out of connections for now (worth a retry), as
    /// opposed to a failure of the query itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}
