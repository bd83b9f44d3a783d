//! A bounded ring: the oldest entry goes when a new one arrives at the bound, and drops are
//! counted. Holds the breadcrumbs.

use std::collections::VecDeque;

/// Breadcrumb messages are cut to this many characters (Sentry's limit).
pub const MAX_MESSAGE_CHARS: usize = 2048;

/// A bounded ring, oldest first.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    bound: usize,
    dropped: u64,
}

impl<T> Ring<T> {
    /// A ring holding at most `bound` entries (0 holds nothing and counts every push as dropped).
    pub fn new(bound: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(bound.min(1024)),
            bound,
            dropped: 0,
        }
    }

    /// Adds `item`, dropping the oldest at the bound.
    pub fn push(&mut self, item: T) {
        if self.bound == 0 {
            self.dropped += 1;
            return;
        }
        if self.items.len() == self.bound {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Entries dropped at the bound so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters (on a character boundary).
pub fn cut_message(message: &str) -> &str {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => message.get(..at).unwrap_or(message),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_exceeds_its_bound_and_counts_drops() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(i);
            assert!(r.len() <= 3);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(r.dropped(), 7);
        r.clear();
        assert!(r.is_empty());
        let mut none = Ring::new(0);
        none.push(1);
        assert!(none.is_empty());
        assert_eq!(none.dropped(), 1);
    }

    #[test]
    fn messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let cut = cut_message(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(cut_message("short"), "short");
    }
}
