//! *Pure.* The rules of voice keys shared by every instance through the `voice_keys` table
//! (PostgreSQL), the same rules as the in-memory [`crate::voice::keys::KeyStore`]: a key works
//! once, before its expiry; at most `cap` unspent keys; a store full of live keys refuses new ones
//! with the time until the first expires, and never pushes a live key out.
//!
//! The table keeps only a SHA-256 hash of each key, so reading the database does not give anyone
//! a key that works. Times are wall-clock milliseconds since the Unix epoch (instances share the
//! database's rows, not a monotonic clock).
//!
//! The shell (`store::cluster`) runs: mint = in one transaction under an advisory lock, delete
//! the expired rows (counted), read the live count and the first expiry, [`admit`], insert;
//! redeem = `DELETE … WHERE key_hash = $1 RETURNING expires_at` (atomic: of two instances
//! presenting one key, exactly one gets the row), then [`judge`].

use std::time::Duration;

use crate::voice::keys::{Full, KeyError};

/// The advisory lock id mints take, so two instances cannot both fill the last place.
pub const MINT_LOCK: i64 = 0x7669_6769_6c6b; // "vigilk"

/// What the table stores for `key`: SHA-256 as lowercase hex.
pub fn hash(key: &str) -> String {
    crate::dashboard::session::hash(key)
}

/// Whether a new key may be stored when `live` unexpired keys are outstanding, the first of them
/// expiring at `first_expiry`; `Full` says how long until it does.
pub fn admit(live: i64, first_expiry: Option<i64>, cap: usize, now_ms: i64) -> Result<(), Full> {
    let cap = i64::try_from(cap.max(1)).unwrap_or(i64::MAX);
    if live < cap {
        return Ok(());
    }
    let wait = first_expiry.unwrap_or(now_ms).saturating_sub(now_ms).max(0);
    Err(Full {
        retry_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
    })
}

/// The verdict on a key whose row was deleted by the redeem (`Some(expires_at)`) or that had no
/// row (`None`).
pub fn judge(expires_at: Option<i64>, now_ms: i64) -> Result<(), KeyError> {
    match expires_at {
        None => Err(KeyError::Unknown),
        Some(t) if now_ms >= t => Err(KeyError::Expired),
        Some(_) => Ok(()),
    }
}

/// When a key minted at `now_ms` stops working.
pub fn expiry(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_not_the_key() {
        let h = hash("ek_abc");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash("ek_abc"));
        assert_ne!(h, hash("ek_abd"));
        assert!(!h.contains("abc"));
    }

    #[test]
    fn a_full_table_refuses_until_the_first_key_expires() {
        assert_eq!(admit(0, None, 2, 1_000), Ok(()));
        assert_eq!(admit(1, Some(5_000), 2, 1_000), Ok(()));
        assert_eq!(
            admit(2, Some(41_000), 2, 1_000),
            Err(Full {
                retry_after: Duration::from_secs(40)
            })
        );
        // A cap of 0 is 1, as in the memory store.
        assert!(admit(1, Some(2_000), 0, 1_000).is_err());
        // A first expiry in the past (not purged yet) waits nothing.
        assert_eq!(
            admit(2, Some(500), 2, 1_000),
            Err(Full {
                retry_after: Duration::ZERO
            })
        );
    }

    #[test]
    fn a_key_is_good_until_its_expiry() {
        let exp = expiry(10_000, Duration::from_secs(60));
        assert_eq!(exp, 70_000);
        assert_eq!(judge(Some(exp), 69_999), Ok(()));
        assert_eq!(judge(Some(exp), 70_000), Err(KeyError::Expired));
        assert_eq!(judge(None, 0), Err(KeyError::Unknown));
    }
}
