//! `Subscription`: the handle `listen`, `every`, `after`, `onDispose` and the services'
//! `subscribe`/`on`/`onState` return.

#[cfg(any(feature = "ws", feature = "voice"))]
use alloc::rc::{Rc, Weak};
#[cfg(any(feature = "ws", feature = "voice"))]
use core::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::handle::alias_symbol_dispose;
use crate::runtime::manager;
use crate::runtime::registry::EntryId;
#[cfg(feature = "voice")]
use crate::voice::connection::{self as voice_conn, Inner as VoiceInner};
#[cfg(feature = "ws")]
use crate::ws::service::{self as ws_service, Inner as WsInner};

/// A handle on something the runtime owns: a listener, timer or dispose callback held by the
/// cleanup manager, or a `WebSocketService` subscription. Letting it be garbage-collected does
/// **not** end what it refers to; `unsubscribe()` (or `dispose()` / `disposeAll()`) does.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Subscription {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Entry(EntryId),
    #[cfg(feature = "ws")]
    Ws(Weak<RefCell<WsInner>>, u64),
    #[cfg(feature = "voice")]
    Voice(Weak<RefCell<VoiceInner>>, u64),
}

impl Subscription {
    /// A listener, timer or callback the manager holds.
    pub(crate) fn owned_by_manager(registration: manager::Registration) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Entry(registration.hand_over()),
        }
    }

    /// The entry id, for something the manager holds.
    pub(crate) fn entry(&self) -> Option<EntryId> {
        match self.target {
            Target::Entry(id) => Some(id),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A `WebSocketService` subscription.
    #[cfg(feature = "ws")]
    pub(crate) fn ws(service: &ws_service::Shared, id: u64) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Ws(Rc::downgrade(service), id),
        }
    }

    /// A `VoiceConnection` subscription.
    #[cfg(feature = "voice")]
    pub(crate) fn voice(service: &voice_conn::Shared, id: u64) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Voice(Rc::downgrade(service), id),
        }
    }

    /// Points `Subscription.prototype[Symbol.dispose]` at `unsubscribe`, once.
    pub(crate) fn fix_symbol_dispose() {
        static ONCE: crate::runtime::local::Once = crate::runtime::local::Once::new();
        ONCE.call_once(|| {
            let probe = Subscription {
                target: Target::Entry(EntryId::from_raw(0)),
            };
            alias_symbol_dispose(&JsValue::from(probe), "unsubscribe");
        });
    }
}

#[wasm_bindgen]
impl Subscription {
    /// Ends the subscription now. Idempotent.
    pub fn unsubscribe(&self) {
        match &self.target {
            Target::Entry(id) => {
                manager::remove(*id);
            }
            #[cfg(feature = "ws")]
            Target::Ws(service, id) => {
                if let Some(s) = service.upgrade() {
                    ws_service::unsubscribe(&s, *id);
                }
            }
            #[cfg(feature = "voice")]
            Target::Voice(service, id) => {
                if let Some(s) = service.upgrade() {
                    voice_conn::unsubscribe(&s, *id);
                }
            }
        }
    }

    /// True until unsubscribed or disposed (or, for `after`, until it has fired).
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> bool {
        match &self.target {
            Target::Entry(id) => manager::contains(*id),
            #[cfg(feature = "ws")]
            Target::Ws(service, id) => service
                .upgrade()
                .is_some_and(|s| ws_service::has_subscription(&s, *id)),
            #[cfg(feature = "voice")]
            Target::Voice(service, id) => service
                .upgrade()
                .is_some_and(|s| voice_conn::has_subscription(&s, *id)),
        }
    }
}
