//! The resource ledger: how many browser resources of each kind are live right now.
//!
//! Every guard holds a [`Ticket`]; creating the ticket counts the resource in, dropping it counts the
//! resource out. Because a ticket cannot be copied or forgotten by safe code that holds a guard, the
//! counts are exact: `resources()` reads them and nothing else.
//!
//! This file is plain Rust (no browser), so its arithmetic is tested natively. The ledger is
//! per-thread: the browser runs one thread, and native tests each get a fresh one.

use core::cell::Cell;

/// The kinds of resource the ledger counts, one per guard type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An event listener (`addEventListener`).
    Listener,
    /// A `setInterval` timer.
    Interval,
    /// A `setTimeout` timer that has not fired yet.
    Timeout,
    /// A `PerformanceObserver` that is observing.
    Observer,
    /// A `WebSocket` that is not closed by us yet.
    Socket,
    /// An `RTCPeerConnection`.
    PeerConnection,
    /// An `RTCDataChannel`.
    DataChannel,
    /// A `MediaStreamTrack` that is not stopped.
    MediaTrack,
    /// A patched `console` method.
    ConsolePatch,
    /// A DOM element the runtime created and inserted.
    Element,
    /// An entry held by the cleanup manager (a service or a dispose callback).
    Service,
}

impl ResourceKind {
    /// Every kind, in the order `resources()` lists them.
    pub const ALL: [ResourceKind; 11] = [
        Self::Listener,
        Self::Interval,
        Self::Timeout,
        Self::Observer,
        Self::Socket,
        Self::PeerConnection,
        Self::DataChannel,
        Self::MediaTrack,
        Self::ConsolePatch,
        Self::Element,
        Self::Service,
    ];

    /// The key of this kind in the JS `ResourceCounts` object.
    pub const fn js_name(self) -> &'static str {
        match self {
            Self::Listener => "listeners",
            Self::Interval => "intervals",
            Self::Timeout => "timeouts",
            Self::Observer => "observers",
            Self::Socket => "sockets",
            Self::PeerConnection => "peerConnections",
            Self::DataChannel => "dataChannels",
            Self::MediaTrack => "mediaTracks",
            Self::ConsolePatch => "consolePatches",
            Self::Element => "elements",
            Self::Service => "services",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

const KINDS: usize = ResourceKind::ALL.len();

/// A snapshot of the ledger: live resources per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    live: [u32; KINDS],
}

impl Counts {
    /// Live resources of `kind`.
    pub fn get(&self, kind: ResourceKind) -> u32 {
        self.live[kind.index()]
    }

    /// Live resources of every kind added up.
    pub fn total(&self) -> u64 {
        self.live.iter().map(|&n| u64::from(n)).sum()
    }

    /// True when nothing at all is live.
    pub fn is_zero(&self) -> bool {
        self.total() == 0
    }

    /// `(kind, live)` pairs in [`ResourceKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ResourceKind, u32)> + '_ {
        ResourceKind::ALL.iter().map(|&k| (k, self.get(k)))
    }
}

/// Live and lifetime counts per kind. One per thread, reached through [`Ticket`] and [`counts`].
#[derive(Debug, Default)]
struct Ledger {
    live: [Cell<u32>; KINDS],
    opened: [Cell<u64>; KINDS],
}

impl Ledger {
    fn acquire(&self, kind: ResourceKind) {
        let i = kind.index();
        self.live[i].set(self.live[i].get().saturating_add(1));
        self.opened[i].set(self.opened[i].get().saturating_add(1));
    }

    fn release(&self, kind: ResourceKind) {
        let i = kind.index();
        // A ticket is released exactly once (its Drop), so this never goes below zero; the
        // saturation only keeps a logic error from wrapping into a huge count.
        self.live[i].set(self.live[i].get().saturating_sub(1));
    }

    fn snapshot(&self) -> Counts {
        let mut c = Counts::default();
        for (slot, cell) in c.live.iter_mut().zip(&self.live) {
            *slot = cell.get();
        }
        c
    }
}

crate::local! {
    static LEDGER: Ledger = Ledger::default();
}

/// What is live right now on this thread.
pub fn counts() -> Counts {
    LEDGER.with(Ledger::snapshot)
}

/// How many resources of `kind` were ever opened on this thread (live or not).
pub fn opened(kind: ResourceKind) -> u64 {
    LEDGER.with(|l| l.opened[kind.index()].get())
}

/// Proof that one resource of a kind is live: counted in on creation, counted out on drop.
///
/// Guards hold a ticket next to the browser object they own, so the ledger and the browser agree
/// for as long as the guard lives.
///
/// ```
/// use vigil::runtime::ledger::{counts, ResourceKind, Ticket};
/// let before = counts().get(ResourceKind::Interval);
/// let ticket = Ticket::new(ResourceKind::Interval);
/// assert_eq!(counts().get(ResourceKind::Interval), before + 1);
/// drop(ticket);
/// assert_eq!(counts().get(ResourceKind::Interval), before);
/// ```
#[derive(Debug)]
#[must_use = "a resource is counted only while its ticket lives: store the ticket in the guard"]
pub struct Ticket {
    kind: ResourceKind,
}

impl Ticket {
    /// Counts one resource of `kind` in.
    pub fn new(kind: ResourceKind) -> Self {
        LEDGER.with(|l| l.acquire(kind));
        Self { kind }
    }

    /// The kind this ticket counts.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // `try_with`: a ticket dropped during thread teardown (native tests) must not panic.
        let _ = LEDGER.try_with(|l| l.release(self.kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn starts_at_zero() {
        assert!(counts().is_zero());
        assert_eq!(counts().total(), 0);
    }

    #[test]
    fn tickets_count_in_and_out_per_kind() {
        let a = Ticket::new(ResourceKind::Listener);
        let b = Ticket::new(ResourceKind::Listener);
        let c = Ticket::new(ResourceKind::Socket);
        let now = counts();
        assert_eq!(now.get(ResourceKind::Listener), 2);
        assert_eq!(now.get(ResourceKind::Socket), 1);
        assert_eq!(now.get(ResourceKind::Timeout), 0);
        assert_eq!(now.total(), 3);
        drop(b);
        assert_eq!(counts().get(ResourceKind::Listener), 1);
        drop((a, c));
        assert!(counts().is_zero());
        assert_eq!(opened(ResourceKind::Listener), 2);
        assert_eq!(opened(ResourceKind::Socket), 1);
    }

    #[test]
    fn many_tickets_return_to_zero() {
        let tickets: Vec<_> = (0..10_000)
            .map(|i| Ticket::new(ResourceKind::ALL[i % ResourceKind::ALL.len()]))
            .collect();
        assert_eq!(counts().total(), 10_000);
        drop(tickets);
        assert!(counts().is_zero());
    }

    #[test]
    fn js_names_are_unique_and_cover_the_contract() {
        let names: Vec<_> = ResourceKind::ALL.iter().map(|k| k.js_name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for required in [
            "listeners",
            "intervals",
            "timeouts",
            "observers",
            "sockets",
            "peerConnections",
            "dataChannels",
            "mediaTracks",
            "consolePatches",
            "services",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn iter_follows_all_order() {
        let _t = Ticket::new(ResourceKind::Service);
        let v: Vec<_> = counts().iter().collect();
        assert_eq!(v.len(), ResourceKind::ALL.len());
        assert_eq!(v.last(), Some(&(ResourceKind::Service, 1)));
    }
}
