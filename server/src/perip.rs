//! Per-IP token buckets for the routes any page may call: `POST /api/orders` and
//! `POST /voice/session` under `--demo`, and `POST /voice/realtime`. The buckets are the ingest
//! limiter's ([`Limiter`]): bounded, idle ones evicted, whatever the number of callers.
//!
//! An IPv6 client is limited by its /64 (one subscriber usually holds a whole /64, so counting
//! single addresses would give it 2^64 buckets); an IPv4-mapped IPv6 address counts as IPv4.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::ingest::ratelimit::{Limiter, Rate};

/// Buckets held at most, per limited route.
pub const CAPACITY: usize = 10_000;

/// One route's per-IP limit.
#[derive(Debug)]
pub struct PerIp {
    limiter: Mutex<Limiter>,
    started: Instant,
}

impl PerIp {
    /// A limit of `rate` per client.
    pub fn new(rate: Rate) -> Self {
        let rate = Rate {
            per_sec: rate.per_sec.max(0.001),
            burst: rate.burst.max(1.0),
        };
        Self {
            limiter: Mutex::new(Limiter::new(rate, CAPACITY)),
            started: Instant::now(),
        }
    }

    /// Takes one token for `ip`; `Err(seconds)` to wait when there is none.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = self.started.elapsed().as_secs_f64();
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&key(ip), now)
    }
}

/// The bucket a client counts in: its IPv4 address, or its IPv6 /64.
pub fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(key(mapped), "192.0.2.7");
        assert_eq!(key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    /// Issue 13: a million distinct callers (IPv4 addresses and IPv6 /64s alike) leave at most
    /// [`CAPACITY`] buckets, and every one of them still gets its first token.
    #[test]
    fn a_million_distinct_ips_leave_the_table_bounded() {
        let limit = PerIp::new(Rate {
            per_sec: 1.0,
            burst: 5.0,
        });
        let started = std::time::Instant::now();
        for i in 0..1_000_000u32 {
            let ip = if i % 2 == 0 {
                IpAddr::from(i.to_be_bytes())
            } else {
                IpAddr::from([0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1])
            };
            assert!(limit.check(ip).is_ok(), "a new caller is refused");
        }
        let limiter = limit.limiter.lock().unwrap();
        assert!(limiter.len() <= CAPACITY, "{} buckets", limiter.len());
        assert!(limiter.evicted() >= 1_000_000 - CAPACITY as u64);
        println!(
            "a million distinct IPs: {} buckets held, {} evicted, {:?}",
            limiter.len(),
            limiter.evicted(),
            started.elapsed()
        );
    }

    #[test]
    fn each_ip_has_its_own_bucket() {
        let limit = PerIp::new(Rate {
            per_sec: 0.5,
            burst: 2.0,
        });
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limit.check(one).is_ok());
        assert!(limit.check(one).is_ok());
        assert_eq!(limit.check(one), Err(2));
        assert!(limit.check(two).is_ok());
    }
}
