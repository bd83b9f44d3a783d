//! *Pure.* The ephemeral key store: `ek_…` keys that open one voice call each.
//!
//! A key is minted by `POST /voice/session` and spent by the first `POST /voice/realtime` that
//! presents it, whatever that request's outcome. Time is a parameter (`now`), never read here, so
//! tests drive expiry without sleeping. The store holds at most `cap` keys: minting into a full
//! store first purges expired keys (counted); when it is still full of live keys the new key is
//! refused with the time until the first one expires. A live key is never pushed out, so a flood
//! of mints cannot spend a real user's unused key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The prefix every key carries (OpenAI's ephemeral keys look the same).
pub const KEY_PREFIX: &str = "ek_";

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Never minted, already spent, or evicted.
    #[error("unknown or already used key")]
    Unknown,
    /// Minted, but its time ran out.
    #[error("the key expired")]
    Expired,
}

/// The store holds its maximum of live keys; one expires (at the latest) after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the voice key store is full; retry after {retry_after:?}")]
pub struct Full {
    /// Until the first outstanding key expires (a spent one frees a place sooner).
    pub retry_after: Duration,
}

/// What the store dropped or refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Keys that expired unspent and were purged.
    pub expired: u64,
    /// New keys refused because the store was full of live ones.
    pub refused: u64,
}

/// Outstanding keys and when each stops working.
#[derive(Debug)]
pub struct KeyStore {
    keys: HashMap<String, Instant>,
    ttl: Duration,
    cap: usize,
    dropped: Dropped,
}

impl KeyStore {
    /// A store whose keys live `ttl` and which holds at most `cap` (at least 1) of them.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        Self {
            keys: HashMap::new(),
            ttl,
            cap: cap.max(1),
            dropped: Dropped::default(),
        }
    }

    /// How long a key lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Keys outstanding (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is outstanding.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Stores `key` (which the caller made unguessable) as valid until `now + ttl`, purging
    /// expired keys when the store is full. Returns the expiry instant, or [`Full`] (counted)
    /// when every place holds a live key.
    pub fn insert(&mut self, key: String, now: Instant) -> Result<Instant, Full> {
        if self.keys.len() >= self.cap {
            self.purge(now);
        }
        if self.keys.len() >= self.cap {
            self.dropped.refused += 1;
            let first = self.keys.values().min().copied().unwrap_or(now);
            return Err(Full {
                retry_after: first.saturating_duration_since(now),
            });
        }
        let expires = now + self.ttl;
        self.keys.insert(key, expires);
        Ok(expires)
    }

    /// Spends `key`: it works once, before its expiry, and never again.
    pub fn redeem(&mut self, key: &str, now: Instant) -> Result<(), KeyError> {
        let expires = self.keys.remove(key).ok_or(KeyError::Unknown)?;
        if now >= expires {
            self.dropped.expired += 1;
            return Err(KeyError::Expired);
        }
        Ok(())
    }

    /// Removes every key expired at `now`; returns how many went.
    pub fn purge(&mut self, now: Instant) -> usize {
        let before = self.keys.len();
        self.keys.retain(|_, expires| now < *expires);
        let gone = before - self.keys.len();
        self.dropped.expired += gone as u64;
        gone
    }
}

/// A fresh unguessable key: the prefix and 128 random bits from the OS generator, in hex.
pub fn new_key() -> String {
    format!("{KEY_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_key_works_once() {
        let now = Instant::now();
        let mut store = KeyStore::new(TTL, 8);
        store.insert("ek_a".into(), now).unwrap();
        assert_eq!(store.redeem("ek_a", now + Duration::from_secs(1)), Ok(()));
        assert_eq!(
            store.redeem("ek_a", now + Duration::from_secs(2)),
            Err(KeyError::Unknown)
        );
        assert!(store.is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let now = Instant::now();
        let mut store = KeyStore::new(TTL, 8);
        store.insert("ek_a".into(), now).unwrap();
        assert_eq!(store.redeem("ek_b", now), Err(KeyError::Unknown));
        assert_eq!(store.redeem("", now), Err(KeyError::Unknown));
        // The wrong guess did not spend the real key.
        assert_eq!(store.redeem("ek_a", now), Ok(()));
    }

    #[test]
    fn a_key_expires_after_its_ttl() {
        let now = Instant::now();
        let mut store = KeyStore::new(TTL, 8);
        let expires = store.insert("ek_a".into(), now).unwrap();
        assert_eq!(expires, now + TTL);
        store.insert("ek_b".into(), now).unwrap();
        assert_eq!(
            store.redeem("ek_a", now + TTL - Duration::from_millis(1)),
            Ok(())
        );
        assert_eq!(store.redeem("ek_b", now + TTL), Err(KeyError::Expired));
        // An expired key is gone, so a retry says unknown.
        assert_eq!(store.redeem("ek_b", now + TTL), Err(KeyError::Unknown));
        assert_eq!(store.dropped().expired, 1);
    }

    #[test]
    fn purge_removes_only_expired_keys_and_counts_them() {
        let now = Instant::now();
        let mut store = KeyStore::new(TTL, 8);
        store.insert("ek_old".into(), now).unwrap();
        store
            .insert("ek_new".into(), now + Duration::from_secs(30))
            .unwrap();
        assert_eq!(store.purge(now + TTL), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.dropped(),
            Dropped {
                expired: 1,
                refused: 0
            }
        );
        assert_eq!(store.redeem("ek_new", now + TTL), Ok(()));
    }

    #[test]
    fn a_full_store_refuses_new_keys_and_keeps_live_ones() {
        let now = Instant::now();
        let mut store = KeyStore::new(TTL, 2);
        store.insert("ek_1".into(), now).unwrap();
        store
            .insert("ek_2".into(), now + Duration::from_secs(10))
            .unwrap();
        // Full of live keys: the new one is refused until ek_1 expires, 40 s later.
        let t = now + Duration::from_secs(20);
        assert_eq!(
            store.insert("ek_3".into(), t),
            Err(Full {
                retry_after: Duration::from_secs(40)
            })
        );
        assert_eq!(store.len(), 2);
        assert_eq!(store.dropped().refused, 1);
        assert_eq!(store.redeem("ek_3", t), Err(KeyError::Unknown));
        // A spent key frees its place at once.
        assert_eq!(store.redeem("ek_1", t), Ok(()));
        store.insert("ek_4".into(), t).unwrap();
        // Later, ek_2 has expired: it is purged to make room.
        let later = now + Duration::from_secs(75);
        store.insert("ek_5".into(), later).unwrap();
        assert_eq!(
            store.dropped(),
            Dropped {
                expired: 1,
                refused: 1
            }
        );
        assert_eq!(store.redeem("ek_4", later), Ok(()));
        assert_eq!(store.redeem("ek_5", later), Ok(()));
    }

    #[test]
    fn new_keys_have_the_prefix_and_differ() {
        let a = new_key();
        let b = new_key();
        assert!(a.starts_with("ek_") && a.len() == 35, "{a}");
        assert_ne!(a, b);
    }
}
