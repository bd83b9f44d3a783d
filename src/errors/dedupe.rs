//! Dedupe against the previous event: the same exception (type, value and stack) or the same
//! message is dropped, as a page that throws in a loop would otherwise flood the server.
//!
//! An event is remembered by a 64-bit FNV-1a hash of its parts, not by a copy of them: nothing
//! is cloned per capture and nothing but eight bytes is kept. Two different events share a hash
//! with a chance of about 2⁻⁶⁴; the cost of such a collision is one event not sent.

/// What makes two events the same: a hash of their parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature(u64);

impl Signature {
    /// An exception: its type, value and `Error.stack` text (the frames are read from the
    /// stack, so the same stack means the same frames).
    pub fn exception(kind: &str, value: &str, stack: &str) -> Self {
        Self::of(1, &[kind, value, stack])
    }

    /// A message event.
    pub fn message(message: &str) -> Self {
        Self::of(2, &[message])
    }

    fn of(tag: u8, parts: &[&str]) -> Self {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        eat(tag);
        for part in parts {
            // The length first, so ("ab", "c") and ("a", "bc") differ.
            for b in (part.len() as u32).to_le_bytes() {
                eat(b);
            }
            for &b in part.as_bytes() {
                eat(b);
            }
        }
        Self(h)
    }
}

/// Remembers the previous event's signature.
#[derive(Debug, Default)]
pub struct Dedupe {
    previous: Option<Signature>,
    dropped: u64,
}

impl Dedupe {
    /// True when `next` repeats the previous event (it should be dropped); remembers `next`.
    pub fn is_repeat(&mut self, next: Signature) -> bool {
        let repeat = self.previous == Some(next);
        if repeat {
            self.dropped += 1;
        }
        self.previous = Some(next);
        repeat
    }

    /// Events dropped as repeats.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(value: &str, line: u32) -> Signature {
        let stack = std::format!("TypeError: {value}\n    at f (https://app.test/a.js:{line}:1)");
        Signature::exception("TypeError", value, &stack)
    }

    #[test]
    fn repeats_are_caught_and_changes_are_not() {
        let mut d = Dedupe::default();
        assert!(!d.is_repeat(ex("x", 1)));
        assert!(d.is_repeat(ex("x", 1)));
        assert!(!d.is_repeat(ex("x", 2)), "another place");
        assert!(!d.is_repeat(ex("y", 2)), "another value");
        assert!(!d.is_repeat(Signature::message("m")));
        assert!(d.is_repeat(Signature::message("m")));
        assert!(!d.is_repeat(ex("y", 2)), "only the previous event counts");
        assert_eq!(d.dropped(), 2);
    }

    #[test]
    fn parts_are_kept_apart() {
        let e = Signature::exception;
        assert_ne!(e("ab", "c", ""), e("a", "bc", ""), "a boundary moved");
        assert_ne!(
            e("Error", "", "x"),
            e("Error", "x", ""),
            "value against stack"
        );
        assert_ne!(
            e("m", "", ""),
            Signature::message("m"),
            "an exception is not a message"
        );
        assert_ne!(Signature::message(""), Signature::message("\0"));
        assert_eq!(e("E", "v", "s"), e("E", "v", "s"));
    }

    #[test]
    fn the_hash_is_fnv_1a() {
        // FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of the bytes
        // [2, 0, 0, 0, 0]: a message, then its length 0 as four bytes.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in [2u8, 0, 0, 0, 0] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        assert_eq!(Signature::message(""), Signature(h));
    }
}
