//! Token buckets per key with bounded memory: idle buckets are evicted, and when the table is full
//! the least recently used one goes, whatever the number of distinct callers.

use std::collections::HashMap;

/// Rate and burst of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Bucket size.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: f64,
}

/// Why tokens were not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough now: retry after this many seconds.
    Wait(u64),
    /// More than the bucket ever holds.
    OverBurst,
}

/// Buckets keyed by caller, at most `capacity` of them.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    capacity: usize,
    buckets: HashMap<String, Bucket>,
    evicted: u64,
}

impl Limiter {
    /// A limiter holding at most `capacity` buckets.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            evicted: 0,
        }
    }

    /// Takes one token for `key` at `now` (seconds). `Err(seconds)` says how long until one is
    /// available again (at least 1).
    pub fn check(&mut self, key: &str, now: f64) -> Result<(), u64> {
        self.check_n(key, 1.0, now).map_err(|e| match e {
            Refusal::Wait(secs) => secs,
            Refusal::OverBurst => u64::MAX, // a burst under one token: configuration refuses it
        })
    }

    /// Takes `n` tokens for `key` at `now` (seconds), or none: a request that costs more than the
    /// tokens left waits for them whole ([`Refusal::Wait`]); one that costs more than the burst
    /// can never pass ([`Refusal::OverBurst`]).
    pub fn check_n(&mut self, key: &str, n: f64, now: f64) -> Result<(), Refusal> {
        let rate = self.rate;
        if n > rate.burst {
            return Err(Refusal::OverBurst);
        }
        if !self.buckets.contains_key(key) {
            self.make_room(now);
        }
        let b = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        b.tokens = (b.tokens + (now - b.last).max(0.0) * rate.per_sec).min(rate.burst);
        b.last = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            let wait = ((n - b.tokens) / rate.per_sec).ceil();
            Err(Refusal::Wait((wait as u64).max(1)))
        }
    }

    /// The rate every bucket fills at.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Buckets evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn make_room(&mut self, now: f64) {
        if self.buckets.len() < self.capacity {
            return;
        }
        // First drop every bucket that has refilled completely: it holds no information.
        let full_after = self.rate.burst / self.rate.per_sec;
        let before = self.buckets.len();
        self.buckets.retain(|_, b| now - b.last < full_after);
        self.evicted += (before - self.buckets.len()) as u64;
        if self.buckets.len() >= self.capacity {
            // Still full: the least recently used tenth goes at once, so a flood of new callers
            // costs one sort per `capacity / 10` arrivals, not a scan per arrival.
            let mut by_age: Vec<(f64, String)> = self
                .buckets
                .iter()
                .map(|(k, b)| (b.last, k.clone()))
                .collect();
            by_age.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (_, key) in by_age.into_iter().take((self.capacity / 10).max(1)) {
                self.buckets.remove(&key);
                self.evicted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut l = Limiter::new(
            Rate {
                per_sec: 10.0,
                burst: 5.0,
            },
            100,
        );
        for _ in 0..5 {
            assert!(l.check("k", 0.0).is_ok());
        }
        assert_eq!(l.check("k", 0.0), Err(1));
        assert!(l.check("k", 0.1).is_ok(), "one token after 100 ms");
        assert!(l.check("k", 0.1).is_err());
        assert!(l.check("other", 0.1).is_ok(), "keys are independent");
    }

    #[test]
    fn retry_after_grows_with_a_slow_rate() {
        let mut l = Limiter::new(
            Rate {
                per_sec: 0.1,
                burst: 1.0,
            },
            10,
        );
        assert!(l.check("k", 0.0).is_ok());
        assert_eq!(l.check("k", 0.0), Err(10));
    }

    #[test]
    fn memory_is_bounded_whatever_the_callers() {
        let mut l = Limiter::new(
            Rate {
                per_sec: 1.0,
                burst: 100.0,
            },
            1000,
        );
        for i in 0..100_000 {
            let _ = l.check(&format!("caller-{i}"), f64::from(i) * 0.0001);
            assert!(l.len() <= 1000);
        }
        assert!(l.evicted() >= 99_000);
    }

    #[test]
    fn requests_pay_per_token_and_wait_for_all_of_them() {
        let mut l = Limiter::new(
            Rate {
                per_sec: 1.0,
                burst: 2.0,
            },
            10,
        );
        assert_eq!(l.check_n("k", 100.0, 0.0), Err(Refusal::OverBurst));
        assert_eq!(l.check_n("k", 2.0, 0.0), Ok(()));
        assert_eq!(l.check_n("k", 2.0, 0.5), Err(Refusal::Wait(2)));
        assert_eq!(
            l.check_n("k", 2.0, 2.0),
            Ok(()),
            "nothing was taken by the refusal"
        );
    }
}
