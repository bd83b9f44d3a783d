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
        match self {
            Self::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // The server going away reaches a pooled connection as an error on its next query
            // (pools do not ping before each use).
            Self::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| going_away(&code))
            }
            _ => false,
        }
    }
}

/// Whether a SQLSTATE says the database server is going away or cannot take connections now:
/// class 08 (connection exception) and 57P (operator intervention: shutdown, crash, starting
/// up, idle session timeout).
fn going_away(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || sqlstate.starts_with("57P")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shutdown_or_a_lost_connection_is_unavailable_and_a_bad_query_is_not() {
        for code in ["57P01", "57P02", "57P03", "57P05", "08006", "08001"] {
            assert!(super::going_away(code), "{code}");
        }
        for code in ["23505", "42P01", "40P01", "57014", ""] {
            assert!(!super::going_away(code), "{code}");
        }
    }
}
