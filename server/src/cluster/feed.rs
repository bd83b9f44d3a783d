//! *Pure.* Which orders this instance hands to its own hub, so each is delivered once.
//!
//! Orders reach an instance's subscribers three ways: posted here (delivered at once by the
//! handler), announced by another instance through `NOTIFY`, or found on the table after the
//! listener was disconnected (notifications sent while it was down are gone: PostgreSQL keeps
//! none for a session that is not listening, and sqlx's `PgListener` cannot return them). The
//! feed remembers the ids it delivered (the newest [`WINDOW`]) and, when the listener loses its
//! connection, the highest id seen so far: after the reconnect every stored order above that mark
//! and not yet delivered is delivered, oldest first.
//!
//! What it cannot see: an order committed while the listener was down whose id is below the mark
//! (ids are allocated before commit, so a slow transaction on another instance can commit a lower
//! id later), and orders pruned from the table (past the newest `max_orders`) before the catch-up
//! read them. Both are counted by what they leave behind only; the feed is a live view, the table
//! is the record.

use std::collections::{HashSet, VecDeque};

use vigil_protocol::orders::Order;

use super::notice::{self, Carried};

/// Order ids remembered as delivered.
pub const WINDOW: usize = 1024;

/// What to do with a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this order to the hub.
    Deliver(Order),
    /// Read order `id` from the table, then pass it to [`Feed::fetched`].
    Fetch(i64),
    /// Nothing (own, duplicate or malformed: counted).
    Skip,
}

/// What the feed counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Orders handed to the hub from notices, fetches and catch-ups (not the local ones).
    pub delivered: u64,
    /// Notices this instance sent itself.
    pub own: u64,
    /// Orders seen before (a notice after a catch-up delivered it, for example).
    pub duplicate: u64,
    /// Payloads that did not parse.
    pub malformed: u64,
    /// Orders delivered by a catch-up after a reconnect.
    pub caught_up: u64,
    /// Orders announced by id that were gone from the table when read.
    pub missing: u64,
}

/// The delivered-orders state of one instance.
#[derive(Debug)]
pub struct Feed {
    me: String,
    seen: HashSet<i64>,
    order: VecDeque<i64>,
    highest: Option<i64>,
    /// Set while disconnected: the highest id seen before the connection was lost.
    catch_up_above: Option<Option<i64>>,
    counts: Counts,
}

impl Feed {
    /// The feed of instance `me` (its notices are skipped).
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_owned(),
            seen: HashSet::with_capacity(WINDOW),
            order: VecDeque::with_capacity(WINDOW),
            highest: None,
            catch_up_above: None,
            counts: Counts::default(),
        }
    }

    /// What was counted so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether a catch-up is due (the connection was lost and not yet caught up).
    pub fn needs_catch_up(&self) -> bool {
        self.catch_up_above.is_some()
    }

    /// An order stored and delivered by this instance.
    pub fn local(&mut self, id: i64) {
        self.remember(id);
    }

    /// A `NOTIFY` payload arrived.
    pub fn notice(&mut self, payload: &str) -> Action {
        let notice = match notice::decode(payload) {
            Ok(n) => n,
            Err(_) => {
                self.counts.malformed += 1;
                return Action::Skip;
            }
        };
        if notice.from == self.me {
            self.counts.own += 1;
            // Delivered by the handler already; remembered there too.
            return Action::Skip;
        }
        if self.seen.contains(&notice.order.id()) {
            self.counts.duplicate += 1;
            return Action::Skip;
        }
        match notice.order {
            Carried::Inline(order) => {
                self.remember(order.id);
                self.counts.delivered += 1;
                Action::Deliver(order)
            }
            Carried::ById(id) => Action::Fetch(id),
        }
    }

    /// The answer to [`Action::Fetch`]`(id)`: the order, or `None` when it was not on the table.
    pub fn fetched(&mut self, id: i64, order: Option<Order>) -> Option<Order> {
        match order {
            Some(o) if o.id == id => {
                if !self.remember(id) {
                    self.counts.duplicate += 1;
                    return None;
                }
                self.counts.delivered += 1;
                Some(o)
            }
            _ => {
                self.counts.missing += 1;
                None
            }
        }
    }

    /// The listener lost its connection: orders announced from now on are missed until the
    /// catch-up. A second loss before a catch-up keeps the first mark.
    pub fn lost(&mut self) {
        if self.catch_up_above.is_none() {
            self.catch_up_above = Some(self.highest);
        }
    }

    /// After the reconnect, with the newest orders on the table (any order): the ones to deliver,
    /// oldest first. Clears the catch-up. With no mark (nothing was seen before the loss),
    /// nothing is delivered: a fresh instance does not replay the table's history.
    pub fn catch_up(&mut self, recent: Vec<Order>) -> Vec<Order> {
        let Some(mark) = self.catch_up_above.take() else {
            return Vec::new();
        };
        let Some(mark) = mark else {
            // Nothing seen before the loss: remember what is there, deliver nothing.
            for o in &recent {
                self.remember(o.id);
            }
            return Vec::new();
        };
        let mut due: Vec<Order> = recent
            .into_iter()
            .filter(|o| o.id > mark && !self.seen.contains(&o.id))
            .collect();
        due.sort_by_key(|o| o.id);
        due.dedup_by_key(|o| o.id);
        for o in &due {
            self.remember(o.id);
        }
        self.counts.caught_up += due.len() as u64;
        self.counts.delivered += due.len() as u64;
        due
    }

    /// Records `id` as delivered; false when it was already.
    fn remember(&mut self, id: i64) -> bool {
        self.highest = Some(self.highest.map_or(id, |h| h.max(id)));
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::notice::encode;
    use vigil_protocol::orders::OrderItem;

    fn order(id: i64) -> Order {
        Order {
            id,
            items: vec![OrderItem {
                name: "tea".into(),
                quantity: 1,
            }],
            created_at: "2026-12-01T21:00:00.000Z".into(),
        }
    }

    #[test]
    fn another_instances_order_is_delivered_once_and_own_notices_are_skipped() {
        let mut feed = Feed::new("a");
        feed.local(1);
        assert_eq!(feed.notice(&encode("a", &order(1))), Action::Skip);
        assert_eq!(
            feed.notice(&encode("b", &order(2))),
            Action::Deliver(order(2))
        );
        assert_eq!(feed.notice(&encode("b", &order(2))), Action::Skip);
        assert_eq!(feed.notice("not json"), Action::Skip);
        assert_eq!(
            feed.counts(),
            Counts {
                delivered: 1,
                own: 1,
                duplicate: 1,
                malformed: 1,
                caught_up: 0,
                missing: 0
            }
        );
    }

    #[test]
    fn an_order_by_id_is_fetched_then_delivered_once() {
        let mut big = order(5);
        big.items = (0..100)
            .map(|i| OrderItem {
                name: format!("{i}{}", "x".repeat(190)),
                quantity: 1,
            })
            .collect();
        let mut feed = Feed::new("a");
        assert_eq!(feed.notice(&encode("b", &big)), Action::Fetch(5));
        assert_eq!(feed.fetched(5, Some(big.clone())), Some(big.clone()));
        assert_eq!(feed.fetched(5, Some(big.clone())), None);
        assert_eq!(feed.notice(&encode("b", &big)), Action::Skip);
        // Pruned before it was read, or a wrong row: counted as missing.
        assert_eq!(feed.fetched(6, None), None);
        assert_eq!(feed.fetched(7, Some(order(8))), None);
        let c = feed.counts();
        assert_eq!((c.delivered, c.duplicate, c.missing), (1, 2, 2));
    }

    #[test]
    fn after_a_loss_the_catch_up_delivers_what_was_missed_oldest_first() {
        let mut feed = Feed::new("a");
        feed.local(10);
        assert!(matches!(
            feed.notice(&encode("b", &order(11))),
            Action::Deliver(_)
        ));
        assert!(!feed.needs_catch_up());
        feed.lost();
        feed.lost(); // a second failed reconnect keeps the first mark
        assert!(feed.needs_catch_up());
        // While down, this instance posted 13 itself (delivered locally); 12 and 14 were missed.
        feed.local(13);
        let recent = vec![
            order(14),
            order(13),
            order(12),
            order(11),
            order(10),
            order(9),
        ];
        let due = feed.catch_up(recent);
        assert_eq!(due.iter().map(|o| o.id).collect::<Vec<_>>(), [12, 14]);
        assert!(!feed.needs_catch_up());
        assert_eq!(feed.counts().caught_up, 2);
        // Their notices arriving late change nothing.
        assert_eq!(feed.notice(&encode("b", &order(12))), Action::Skip);
        // A catch-up without a loss does nothing.
        assert!(feed.catch_up(vec![order(20)]).is_empty());
    }

    #[test]
    fn a_fresh_instance_does_not_replay_history() {
        let mut feed = Feed::new("a");
        feed.lost();
        assert!(feed.catch_up(vec![order(1), order(2)]).is_empty());
        feed.lost();
        let due = feed.catch_up(vec![order(3), order(2), order(1)]);
        assert_eq!(due, [order(3)]);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut feed = Feed::new("a");
        for id in 0..(WINDOW as i64 * 3) {
            feed.local(id);
        }
        assert_eq!(feed.seen.len(), WINDOW);
        assert_eq!(feed.order.len(), WINDOW);
        // The oldest were forgotten, the newest are known.
        assert!(!feed.seen.contains(&0));
        assert!(feed.seen.contains(&(WINDOW as i64 * 3 - 1)));
    }
}
