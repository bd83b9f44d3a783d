//! Promises waiting for one outcome, such as `connect()` calls waiting for an open socket or
//! channel: bounded, settled all together. The owner takes them out of its `RefCell` before
//! settling them (settling runs no page code at once, but the owner's borrow must still end).

use crate::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    /// `[promise, resolve, reject]`.
    #[wasm_bindgen(js_name = vigilWaiter)]
    fn js_waiter() -> js_sys::Array;
}

/// The most promises one [`Waiters`] holds; more are rejected at once.
pub const MAX_WAITERS: usize = 64;

/// Pending promises: `(resolve, reject)` pairs.
#[derive(Debug, Default)]
pub struct Waiters(Vec<(js_sys::Function, js_sys::Function)>);

/// What [`Waiters::take`] hands over, to settle after the owner's borrow ended.
#[derive(Debug)]
#[must_use = "taken waiters stay pending forever unless resolved or rejected"]
pub struct Taken(Vec<(js_sys::Function, js_sys::Function)>);

impl Waiters {
    /// A new promise waiting here. Past [`MAX_WAITERS`] it is rejected at once, with an `Error`
    /// saying `too many {what} calls are waiting`.
    pub fn wait(&mut self, what: &str) -> js_sys::Promise {
        // Made in JS: no borrowed executor closure (a closure type besides `guards::Tick`).
        let parts = js_waiter();
        let (resolve, reject): (js_sys::Function, js_sys::Function) =
            (parts.get(1).unchecked_into(), parts.get(2).unchecked_into());
        if self.0.len() >= MAX_WAITERS {
            let e = js_sys::Error::new(&crate::text::concat(&[
                "too many ",
                what,
                " calls are waiting",
            ]));
            let _ = reject.call1(&JsValue::UNDEFINED, &e);
        } else {
            self.0.push((resolve, reject));
        }
        parts.get(0).unchecked_into()
    }

    /// Takes every waiting promise out.
    pub fn take(&mut self) -> Taken {
        Taken(core::mem::take(&mut self.0))
    }
}

impl Taken {
    /// True when nobody was waiting.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Resolves every promise with `undefined`.
    pub fn resolve(self) {
        for (resolve, _) in self.0 {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    /// Rejects every promise with `error`.
    pub fn reject(self, error: &JsValue) {
        for (_, reject) in self.0 {
            let _ = reject.call1(&JsValue::UNDEFINED, error);
        }
    }
}
