//! Capped exponential backoff with jitter, shared by the WebSocket service (reconnects) and the
//! transport (retries).

/// The schedule (js-api.md): attempt `n` waits
/// `min(maxDelayMs, initialDelayMs * factor^(n-1))`, scaled by a random factor in
/// `[1 - jitter, 1 + jitter]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first attempt.
    pub initial_delay_ms: f64,
    /// The cap before jitter.
    pub max_delay_ms: f64,
    /// Growth per attempt.
    pub factor: f64,
    /// Relative spread, `0..=1`.
    pub jitter: f64,
    /// Attempts before giving up; `None` is forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial_delay_ms: 1000.0,
            max_delay_ms: 30_000.0,
            factor: 2.0,
            jitter: 0.25,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (1-based); `unit` is a random number in `[0, 1)`.
    pub fn delay_ms(&self, n: u32, unit: f64) -> f64 {
        let base =
            (self.initial_delay_ms * powu(self.factor, n.saturating_sub(1))).min(self.max_delay_ms);
        let scale = 1.0 - self.jitter + 2.0 * self.jitter * unit.clamp(0.0, 1.0);
        (base * scale).max(0.0)
    }
}

/// `base` to the power `exponent`, by squaring (`f64::powi` needs `std`).
fn powu(mut base: f64, mut exponent: u32) -> f64 {
    let mut result = 1.0;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result *= base;
        }
        base *= base;
        exponent >>= 1;
    }
    result
}

/// xorshift64*: uniform numbers in `[0, 1)` for jitter, deterministic under a seed (tests).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded with `seed` (any value; 0 is made odd).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn powu_is_powi() {
        for base in [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0] {
            for e in 0..40u32 {
                let want = f64::powi(base, e as i32);
                let got = powu(base, e);
                assert!(
                    (got - want).abs() <= want.abs() * 1e-12,
                    "{base}^{e}: {got} vs {want}"
                );
            }
        }
        assert_eq!(powu(2.0, u32::MAX), f64::INFINITY);
    }

    #[test]
    fn backoff_stays_within_jitter_bounds_and_the_cap() {
        let b = Backoff::default();
        for n in 1..=40 {
            let base = (1000.0 * 2f64.powi(n as i32 - 1)).min(30_000.0);
            for unit in [0.0, 0.25, 0.5, 0.999_999] {
                let d = b.delay_ms(n, unit);
                assert!(
                    d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9,
                    "n={n} d={d}"
                );
            }
        }
        assert_eq!(b.delay_ms(1, 0.5), 1000.0);
        assert_eq!(b.delay_ms(3, 0.5), 4000.0);
        assert_eq!(b.delay_ms(30, 0.5), 30_000.0);
        assert_eq!(b.delay_ms(u32::MAX, 0.5), 30_000.0);
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay_ms(2, 0.9), 2000.0);
    }

    #[test]
    fn jitter_stays_in_the_unit_interval_and_spreads() {
        let mut j = Jitter::new(0);
        let v: Vec<f64> = (0..10_000).map(|_| j.next_unit()).collect();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
