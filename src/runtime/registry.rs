//! The cleanup manager's bookkeeping, with no browser in it: entries by priority, and the page
//! lifecycle state machine that turns `pagehide` / `pageshow` into actions.
//!
//! The shell in [`super::manager`] holds a `Registry` of live services and feeds page events to a
//! [`Lifecycle`]; everything that decides *what* happens and *in which order* lives here and is
//! tested natively.

use crate::prelude::*;
use thiserror::Error;

/// The id of one entry in a [`Registry`]. Ids are never reused within a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u64);

impl EntryId {
    /// The raw number, for carrying the id through JS.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`EntryId::get`].
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// The registry refused an entry because it holds its limit already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the cleanup manager holds {limit} entries already; dispose some before adding more")]
pub struct RegistryFull {
    /// The limit that was reached.
    pub limit: usize,
}

impl RegistryFull {
    /// The same text as `Display`, built without `core::fmt`.
    pub fn message(&self) -> String {
        crate::text::concat(&[
            "the cleanup manager holds ",
            &crate::text::uint(self.limit as u64),
            " entries already; dispose some before adding more",
        ])
    }
}

#[derive(Debug)]
struct Entry<T> {
    id: EntryId,
    priority: i32,
    value: T,
}

/// Entries with a priority, bounded, drained highest priority first.
///
/// Among equal priorities the newest entry goes first, as a stack unwinds: something registered
/// later may depend on something registered earlier, never the other way round.
#[derive(Debug)]
pub struct Registry<T> {
    entries: Vec<Entry<T>>,
    next_id: u64,
    limit: usize,
    refused: u64,
}

impl<T> Registry<T> {
    /// An empty registry that holds at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Self {
            entries: Vec::new(),
            next_id: 1,
            limit,
            refused: 0,
        }
    }

    /// Adds `value` with `priority`; higher priorities are disposed first.
    pub fn insert(&mut self, priority: i32, value: T) -> Result<EntryId, RegistryFull> {
        if self.entries.len() >= self.limit {
            self.refused += 1;
            return Err(RegistryFull { limit: self.limit });
        }
        let id = EntryId(self.next_id);
        self.next_id += 1;
        // Kept sorted by (priority, id) ascending, so dispose order is simply the reverse: no
        // sort at dispose time (and no sort code in the wasm bundle).
        let at = self.entries.partition_point(|e| e.priority <= priority);
        self.entries.insert(
            at,
            Entry {
                id,
                priority,
                value,
            },
        );
        Ok(id)
    }

    /// Takes one entry out, if it is still there.
    pub fn remove(&mut self, id: EntryId) -> Option<T> {
        let at = self.entries.iter().position(|e| e.id == id)?; // O(n), n <= limit
        Some(self.entries.remove(at).value)
    }

    /// True while `id` is held.
    pub fn contains(&self, id: EntryId) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many inserts were refused because the registry was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The entries in dispose order (highest priority first, newest first among equals).
    pub fn iter_in_order(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().rev().map(|e| &e.value)
    }

    /// Empties the registry and returns every entry in dispose order. The iterator owns the
    /// entries (the registry is empty at once), and yields them without collecting them again.
    pub fn drain_in_order(&mut self) -> impl Iterator<Item = T> + use<T> {
        core::mem::take(&mut self.entries)
            .into_iter()
            .rev()
            .map(|e| e.value)
    }
}

/// Where the page is in its life, as far as the cleanup manager cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Shown, services running.
    #[default]
    Live,
    /// In the back/forward cache: network resources closed, the rest kept.
    Suspended,
}

/// What the browser told the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEvent {
    /// `pagehide`; `persisted` is true when the page enters the back/forward cache.
    PageHide {
        /// `PageTransitionEvent.persisted`.
        persisted: bool,
    },
    /// `pageshow`; `persisted` is true when the page comes back from the back/forward cache.
    PageShow {
        /// `PageTransitionEvent.persisted`.
        persisted: bool,
    },
    /// `disposeAll()` called by hand: the same as a final `pagehide`.
    DisposeAll,
}

/// What the cleanup manager must do, in the order returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask every service to send what it holds with a request that outlives the page.
    Flush,
    /// Close network resources (sockets, peer connections); keep the rest.
    Suspend,
    /// Reopen what [`Action::Suspend`] closed.
    Resume,
    /// Drop every entry, highest priority first.
    DisposeAll,
}

/// The page lifecycle state machine (js-api.md, ownership rule 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    phase: Phase,
}

impl Lifecycle {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Feeds one page event; returns the actions to run, in order.
    pub fn on(&mut self, event: PageEvent) -> &'static [Action] {
        use Action::*;
        match (self.phase, event) {
            (_, PageEvent::DisposeAll | PageEvent::PageHide { persisted: false }) => {
                self.phase = Phase::Live;
                &[Flush, DisposeAll]
            }
            (Phase::Live, PageEvent::PageHide { persisted: true }) => {
                self.phase = Phase::Suspended;
                &[Flush, Suspend]
            }
            (Phase::Suspended, PageEvent::PageHide { persisted: true }) => &[],
            (Phase::Suspended, PageEvent::PageShow { .. }) => {
                self.phase = Phase::Live;
                &[Resume]
            }
            // The first `pageshow` of a normal load: nothing was suspended.
            (Phase::Live, PageEvent::PageShow { .. }) => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_highest_priority_first_then_newest() {
        let mut r = Registry::new(16);
        r.insert(0, "low-old").unwrap();
        r.insert(10, "high").unwrap();
        r.insert(0, "low-new").unwrap();
        r.insert(-5, "lowest").unwrap();
        r.insert(10, "high-new").unwrap();
        let order: Vec<_> = r.iter_in_order().copied().collect();
        assert_eq!(order, ["high-new", "high", "low-new", "low-old", "lowest"]);
        assert_eq!(r.drain_in_order().collect::<Vec<_>>(), order);
        assert!(r.is_empty());
        assert!(
            r.drain_in_order().next().is_none(),
            "a second drain finds nothing"
        );
    }

    #[test]
    fn remove_takes_one_entry_once() {
        let mut r = Registry::new(4);
        let a = r.insert(0, 'a').unwrap();
        let b = r.insert(0, 'b').unwrap();
        assert!(r.contains(a));
        assert_eq!(r.remove(a), Some('a'));
        assert_eq!(r.remove(a), None);
        assert!(!r.contains(a));
        assert!(r.contains(b));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn ids_are_not_reused() {
        let mut r = Registry::new(4);
        let a = r.insert(0, ()).unwrap();
        r.remove(a);
        let b = r.insert(0, ()).unwrap();
        assert_ne!(a, b);
        assert_eq!(EntryId::from_raw(b.get()), b);
    }

    #[test]
    fn full_registry_refuses_and_counts() {
        let mut r = Registry::new(2);
        r.insert(0, 1).unwrap();
        r.insert(0, 2).unwrap();
        assert_eq!(r.insert(0, 3), Err(RegistryFull { limit: 2 }));
        assert_eq!(r.refused(), 1);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn final_pagehide_flushes_then_disposes() {
        let mut l = Lifecycle::default();
        assert_eq!(
            l.on(PageEvent::PageHide { persisted: false }),
            [Action::Flush, Action::DisposeAll]
        );
        assert_eq!(l.phase(), Phase::Live);
    }

    #[test]
    fn bfcache_suspends_then_resumes() {
        let mut l = Lifecycle::default();
        assert!(l.on(PageEvent::PageShow { persisted: false }).is_empty());
        assert_eq!(
            l.on(PageEvent::PageHide { persisted: true }),
            [Action::Flush, Action::Suspend]
        );
        assert_eq!(l.phase(), Phase::Suspended);
        assert!(l.on(PageEvent::PageHide { persisted: true }).is_empty());
        assert_eq!(
            l.on(PageEvent::PageShow { persisted: true }),
            [Action::Resume]
        );
        assert_eq!(l.phase(), Phase::Live);
        assert!(l.on(PageEvent::PageShow { persisted: true }).is_empty());
    }

    #[test]
    fn dispose_all_works_from_any_phase_and_twice() {
        let mut l = Lifecycle::default();
        l.on(PageEvent::PageHide { persisted: true });
        assert_eq!(
            l.on(PageEvent::DisposeAll),
            [Action::Flush, Action::DisposeAll]
        );
        assert_eq!(
            l.on(PageEvent::DisposeAll),
            [Action::Flush, Action::DisposeAll]
        );
        assert_eq!(l.phase(), Phase::Live);
    }

    #[test]
    fn evicted_page_in_cache_is_disposed() {
        let mut l = Lifecycle::default();
        l.on(PageEvent::PageHide { persisted: true });
        assert_eq!(
            l.on(PageEvent::PageHide { persisted: false }),
            [Action::Flush, Action::DisposeAll]
        );
    }
}
