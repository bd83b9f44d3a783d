//! Dashboard sign-in sessions: only hashes are stored (dashboard/session.rs makes them).

use super::engine::each;
use super::{Store, StoreError};

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
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        each!(&mut tx, |t| {
            sqlx::query("DELETE FROM dashboard_sessions WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(&mut **t)
                .await?;
            // Room for the new one: keep the MAX_SESSIONS - 1 that expire last.
            sqlx::query(
                "DELETE FROM dashboard_sessions WHERE id_hash NOT IN (
                   SELECT id_hash FROM dashboard_sessions ORDER BY expires_ms DESC LIMIT $1)",
            )
            .bind(MAX_SESSIONS - 1)
            .execute(&mut **t)
            .await?;
            sqlx::query(
                "INSERT INTO dashboard_sessions (id_hash, token_hash, expires_ms) VALUES ($1, $2, $3)",
            )
            .bind(id_hash)
            .bind(token_hash)
            .bind(expires_ms)
            .execute(&mut **t)
            .await?;
            Ok::<_, sqlx::Error>(())
        })?;
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
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = each!(&self.pool, |p| sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM dashboard_sessions
             WHERE id_hash = $1 AND token_hash = $2 AND expires_ms > $3",
        )
        .bind(id_hash)
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(p)
        .await)?;
        Ok(found.is_some())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        each!(&self.pool, |p| sqlx::query(
            "DELETE FROM dashboard_sessions WHERE id_hash = $1"
        )
        .bind(id_hash)
        .execute(p)
        .await
        .map(drop))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store::testdb::on_both_engines! {
        /// Sessions: valid only with their token and before expiry; logout ends one; expired
        /// ones are dropped when a new one is made.
        async fn sessions_check_token_expiry_and_logout(store: Store) {
            store.create_session("a", "tok", 1_000, 5_000).await.unwrap();
            store.create_session("b", "tok", 1_000, 2_000).await.unwrap();
            assert!(store.session_valid("a", "tok", 4_999).await.unwrap());
            assert!(!store.session_valid("a", "tok", 5_000).await.unwrap(), "expired");
            assert!(!store.session_valid("a", "other", 1_000).await.unwrap(), "other token");
            assert!(!store.session_valid("zz", "tok", 1_000).await.unwrap(), "unknown");
            store.delete_session("a").await.unwrap();
            assert!(!store.session_valid("a", "tok", 1_000).await.unwrap(), "logged out");
            store.create_session("c", "tok", 3_000, 9_000).await.unwrap();
            let left = store
                .query_i64("SELECT COUNT(*) FROM dashboard_sessions")
                .await
                .unwrap();
            assert_eq!(left, 1, "b expired and went");
        }
    }
}
