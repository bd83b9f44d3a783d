//! The SQL of cross-instance coordination (PostgreSQL only): `NOTIFY` for the orders feed and the
//! shared single-use voice keys. The rules are pure, in `cluster::keys`; this only runs them.

use sqlx::PgPool;

use super::StoreError;
use crate::cluster::keys;
use crate::voice::keys::{Full, KeyError};

/// Sends `payload` on `channel` to every listening instance (this one included).
pub async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a mint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minted {
    /// The key was stored until this time (ms since the epoch), else the table is full of live
    /// keys.
    pub stored: Result<i64, Full>,
    /// Expired keys deleted on the way.
    pub purged: u64,
}

/// Stores the hash of a new key valid for `ttl`, unless `cap` live keys are out.
/// Mints from every instance are serialized by an advisory lock, so the cap holds exactly. The
/// clock is read once the lock is held: a mint that waited for it must not judge, or date its
/// key, by a time older than the keys stored while it waited (its `retry_after` would exceed
/// the TTL).
pub async fn mint_key(
    pool: &PgPool,
    key_hash: &str,
    ttl: std::time::Duration,
    cap: usize,
) -> Result<Minted, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(keys::MINT_LOCK)
        .execute(&mut *tx)
        .await?;
    let now_ms = super::now_ms();
    let expires_at = keys::expiry(now_ms, ttl);
    let purged = sqlx::query("DELETE FROM voice_keys WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let (live, first): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), min(expires_at) FROM voice_keys")
            .fetch_one(&mut *tx)
            .await?;
    let stored = keys::admit(live, first, cap, now_ms).map(|()| expires_at);
    if stored.is_ok() {
        sqlx::query("INSERT INTO voice_keys (key_hash, expires_at) VALUES ($1, $2)")
            .bind(key_hash)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Minted { stored, purged })
}

/// Spends the key with this hash: its row is deleted whatever its expiry (one statement, so of
/// several instances presenting the same key exactly one gets the row), then judged.
pub async fn redeem_key(
    pool: &PgPool,
    key_hash: &str,
    now_ms: i64,
) -> Result<Result<(), KeyError>, StoreError> {
    let row: Option<(i64,)> =
        sqlx::query_as("DELETE FROM voice_keys WHERE key_hash = $1 RETURNING expires_at")
            .bind(key_hash)
            .fetch_optional(pool)
            .await?;
    Ok(keys::judge(row.map(|r| r.0), now_ms))
}

/// Unspent keys (expired ones not yet purged included).
pub async fn key_count(pool: &PgPool) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM voice_keys")
        .fetch_one(pool)
        .await?;
    Ok(n)
}
