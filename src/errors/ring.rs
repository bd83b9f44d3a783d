//! A bounded ring: the oldest entry goes when a new one arrives at the bound, and drops are
//! counted. Holds the breadcrumbs.

use crate::prelude::*;
/// Breadcrumb messages are cut to this many characters (Sentry's limit).
pub const MAX_MESSAGE_CHARS: usize = 2048;

/// A bounded ring, oldest first: a `Vec` that grows to the bound, then overwrites its oldest
/// entry (no `VecDeque`: its code is ~1 KB of wasm per element type).
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: Vec<T>,
    /// Where the oldest entry is once the ring is full (0 before).
    head: usize,
    bound: usize,
    dropped: u64,
}

impl<T> Ring<T> {
    /// A ring holding at most `bound` entries (0 holds nothing and counts every push as dropped).
    pub fn new(bound: usize) -> Self {
        Self {
            items: Vec::with_capacity(bound.min(1024)),
            head: 0,
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
        if self.items.len() < self.bound {
            self.items.push(item);
            return;
        }
        if let Some(oldest) = self.items.get_mut(self.head) {
            *oldest = item;
        }
        self.head = (self.head + 1) % self.bound;
        self.dropped += 1;
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let (newer, older) = self.items.split_at(self.head.min(self.items.len()));
        older.iter().chain(newer)
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
        self.head = 0;
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
    fn keeps_the_newest_in_order_like_a_bounded_deque() {
        for bound in 0..6 {
            let mut ring = Ring::new(bound);
            let mut model = alloc::collections::VecDeque::new();
            for i in 0..20 {
                if i == 11 {
                    ring.clear();
                    model.clear();
                }
                ring.push(i);
                model.push_back(i);
                if model.len() > bound {
                    model.pop_front();
                }
                let held: Vec<i32> = ring.iter().copied().collect();
                assert_eq!(held, Vec::from(model.clone()), "bound {bound}, after {i}");
            }
        }
    }

    #[test]
    fn messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(3000);
        let cut = cut_message(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(cut_message("short"), "short");
    }
}
