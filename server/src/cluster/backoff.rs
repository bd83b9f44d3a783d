//! *Pure.* How long the listener waits before trying PostgreSQL again: capped exponential
//! backoff with jitter, so instances that lost the database together do not reconnect in step.
//! The randomness is a parameter (a number in `0..=u32::MAX`).

use std::time::Duration;

/// The first wait.
pub const BASE: Duration = Duration::from_millis(100);
/// The longest wait.
pub const CAP: Duration = Duration::from_secs(5);

/// Failed attempts since the last success.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The wait before the next attempt (half of it fixed, half from `random`), counting one more
    /// failure: 100 ms, 200 ms, 400 ms, ... up to 5 s, each between half and all of that.
    pub fn next(&mut self, random: u32) -> Duration {
        let ceiling = BASE.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter = half.mul_f64(f64::from(random) / f64::from(u32::MAX));
        half + jitter
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A success: the next failure starts again at [`BASE`].
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_within_their_jitter() {
        let mut low = Backoff::default();
        let mut high = Backoff::default();
        let mut ceilings = Vec::new();
        for _ in 0..40 {
            let a = low.next(0);
            let b = high.next(u32::MAX);
            assert!(a <= b && b <= CAP && a * 2 >= b.saturating_sub(Duration::from_nanos(2)));
            ceilings.push(b);
        }
        assert_eq!(ceilings[0], BASE);
        assert_eq!(ceilings[1], BASE * 2);
        assert_eq!(ceilings[2], BASE * 4);
        assert!(ceilings[10..].iter().all(|c| *c == CAP), "{ceilings:?}");
        assert_eq!(high.attempts(), 40);
        high.reset();
        assert_eq!(high.next(u32::MAX), BASE);
    }
}
