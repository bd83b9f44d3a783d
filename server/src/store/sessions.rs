//! Dashboard sign-in sessions: only hashes are stored (dashboard/session.rs makes them).

use super::Store;
use crate::error::AppError;

/// The most live sessions kept; past it the ones closest to expiry go first.
pub const MAX_SESSIONS: i64 = 10_000;

impl Store {
    /// Stores a session that expires at `expires_ms`, dropping expired ones and keeping at most
    /// [`MAX_SESSIONS`].
    pub async fn create_session(
        &self,
        id_hash: &str,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), AppError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_ms <= ?")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM dashboard_sessions WHERE id_hash IN (
               SELECT id_hash FROM dashboard_sessions ORDER BY expires_ms DESC LIMIT -1 OFFSET ?)",
        )
        .bind(MAX_SESSIONS - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, token_hash, expires_ms) VALUES (?, ?, ?)",
        )
        .bind(id_hash)
        .bind(token_hash)
        .bind(expires_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a session with this hash exists, was issued under `token_hash` and has not
    /// expired at `now_ms`.
    pub async fn session_valid(
        &self,
        id_hash: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<bool, AppError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM dashboard_sessions
             WHERE id_hash = ? AND token_hash = ? AND expires_ms > ?",
        )
        .bind(id_hash)
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), AppError> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
