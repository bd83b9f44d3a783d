//! Page callbacks subscribed to a service (the WebSocket service's messages, the voice
//! connection's events, and both services' state changes): bounded, each with an id for its
//! `Subscription`, matched by message type. Handlers are cloned out before they are called, so
//! the owner's `RefCell` borrow ends first and a handler may call back into the service.

use crate::prelude::*;
/// The most subscriptions one service holds; more are refused.
pub const MAX_SUBSCRIBERS: usize = 1024;

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {0} holds at most {MAX_SUBSCRIBERS} subscriptions")]
pub struct TooManySubscriptions(pub &'static str);

impl TooManySubscriptions {
    /// The same text as `Display`, built without `core::fmt`.
    pub fn message(&self) -> String {
        crate::text::concat(&[
            "a ",
            self.0,
            " holds at most ",
            &crate::text::uint(MAX_SUBSCRIBERS as u64),
            " subscriptions",
        ])
    }
}

#[cfg(test)]
#[test]
fn the_message_is_the_display() {
    let e = TooManySubscriptions("WebSocketService");
    assert_eq!(e.message(), e.to_string());
}

#[derive(Debug)]
struct Sub {
    id: u64,
    /// `Some(type)` (or `"*"`) for messages, `None` for state changes.
    kind: Option<String>,
    handler: js_sys::Function,
}

/// One service's subscriptions.
#[derive(Debug)]
pub struct Subscribers {
    owner: &'static str,
    list: Vec<Sub>,
    next_id: u64,
}

impl Subscribers {
    /// Subscriptions of a service named `owner` (in the error past the bound).
    pub fn new(owner: &'static str) -> Self {
        Self {
            owner,
            list: Vec::new(),
            next_id: 1,
        }
    }

    /// Adds a message (`Some(type)`, `"*"` for all) or state (`None`) subscription.
    pub fn add(
        &mut self,
        kind: Option<String>,
        handler: js_sys::Function,
    ) -> Result<u64, TooManySubscriptions> {
        if self.list.len() >= MAX_SUBSCRIBERS {
            return Err(TooManySubscriptions(self.owner));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.list.push(Sub { id, kind, handler });
        Ok(id)
    }

    /// Ends subscription `id`; false when it was gone already.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|s| s.id != id);
        before != self.list.len()
    }

    /// True while subscription `id` is held.
    pub fn contains(&self, id: u64) -> bool {
        self.list.iter().any(|s| s.id == id)
    }

    /// The handlers of messages of type `kind` (subscribed to it, or to `"*"`).
    pub fn for_message(&self, kind: &str) -> Vec<js_sys::Function> {
        self.matching(|k| k.is_some_and(|k| k == kind || k == "*"))
    }

    /// The handlers of state changes.
    pub fn for_state(&self) -> Vec<js_sys::Function> {
        self.matching(|k| k.is_none())
    }

    fn matching(&self, keep: impl Fn(Option<&str>) -> bool) -> Vec<js_sys::Function> {
        self.list
            .iter()
            .filter(|s| keep(s.kind.as_deref()))
            .map(|s| s.handler.clone())
            .collect()
    }

    /// Takes every subscription out (to drop after the owner's borrow ended).
    pub fn take(&mut self) -> Self {
        Self {
            owner: self.owner,
            list: core::mem::take(&mut self.list),
            next_id: self.next_id,
        }
    }
}
