//! Dedupe against the previous event: the same exception (type, value and frames) or the same
//! message is dropped, as a page that throws in a loop would otherwise flood the server.

use super::stack::Frame;
use crate::prelude::*;

/// What makes two events the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// An exception: type, value and where.
    Exception {
        /// `TypeError`, …
        kind: String,
        /// The message.
        value: String,
        /// Frames, oldest first.
        frames: Vec<Frame>,
    },
    /// A message event.
    Message(String),
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
        let repeat = self.previous.as_ref() == Some(&next);
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
        Signature::Exception {
            kind: "TypeError".into(),
            value: value.into(),
            frames: vec![Frame {
                filename: "a.js".into(),
                lineno: Some(line),
                ..Frame::default()
            }],
        }
    }

    #[test]
    fn repeats_are_caught_and_changes_are_not() {
        let mut d = Dedupe::default();
        assert!(!d.is_repeat(ex("x", 1)));
        assert!(d.is_repeat(ex("x", 1)));
        assert!(!d.is_repeat(ex("x", 2)), "another place");
        assert!(!d.is_repeat(ex("y", 2)), "another value");
        assert!(!d.is_repeat(Signature::Message("m".into())));
        assert!(d.is_repeat(Signature::Message("m".into())));
        assert!(!d.is_repeat(ex("y", 2)), "only the previous event counts");
        assert_eq!(d.dropped(), 2);
    }
}
