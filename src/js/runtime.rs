//! The lifecycle core's functions: `version`, `resources`, `disposeAll`, `onDispose`, `listen`,
//! `every`, `after`, and the start-up hook.

use alloc::rc::Rc;
use core::cell::Cell;

use wasm_bindgen::prelude::*;

use super::subscription::Subscription;
use crate::error::{millis, VigilError};
use crate::runtime::guards::{Interval, Listener, Timeout};
use crate::runtime::manager::{self, Service};
use crate::runtime::registry::EntryId;
use crate::runtime::{ledger, report};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Live browser resources, counted by the guards that hold them. All zero after `disposeAll()`. */
export interface ResourceCounts {
  listeners: number;
  intervals: number;
  timeouts: number;
  observers: number;
  sockets: number;
  peerConnections: number;
  dataChannels: number;
  mediaTracks: number;
  consolePatches: number;
  /** DOM elements the runtime created (e.g. a voice connection's <audio>). */
  elements: number;
  /** Entries held by the cleanup manager: services and dispose callbacks. */
  services: number;
}
"#;

/// Runs once when the module is instantiated: installs the panic hook. (The
/// `Subscription[Symbol.dispose]` fix runs when the first `Subscription` is made.)
#[wasm_bindgen(start)]
pub fn start() {
    crate::runtime::panic::install();
}

/// Panics on purpose (feature `panic-probe`, for the end-to-end test of the panic handler; never
/// in a package variant): with a plain message, or with a formatted one when `formatted`.
#[cfg(feature = "panic-probe")]
#[wasm_bindgen(js_name = panicProbe)]
pub fn panic_probe(formatted: bool) {
    if formatted {
        panic!("vigil panic probe, formatted: {}", u32::from(formatted));
    }
    panic!("vigil panic probe");
}

/// The crate version, e.g. `"0.1.0"`.
#[wasm_bindgen(unchecked_return_type = "string")]
pub fn version() -> JsValue {
    // A JS string made from the static text: no Rust `String` crosses, so no deferred free.
    JsValue::from_str(env!("CARGO_PKG_VERSION"))
}

/// What is live right now, counted by the guards themselves.
#[wasm_bindgen(unchecked_return_type = "ResourceCounts")]
pub fn resources() -> js_sys::Object {
    let counts = ledger::counts();
    let out = js_sys::Object::new();
    for (kind, live) in counts.iter() {
        crate::runtime::set_number(&out, kind.js_name(), live.into());
    }
    out
}

/// Flush, then dispose every service, highest priority first: what a final `pagehide` does.
/// Idempotent; afterwards `resources()` is all zeros.
#[wasm_bindgen(js_name = disposeAll)]
pub fn dispose_all() {
    manager::dispose_all();
}

/// Runs `callback` when the page's services are disposed; higher `priority` first. A callback
/// that throws is reported, and the others still run.
///
/// `priority` is a plain `i32`: JS converts a missing one (`undefined` or `null`) to `0`, the
/// default, on the way in, so no `Option` check is needed on either side.
#[wasm_bindgen(js_name = onDispose)]
pub fn on_dispose(
    callback: js_sys::Function,
    #[wasm_bindgen(unchecked_optional_param_type = "number | null")] priority: i32,
) -> Result<Subscription, JsValue> {
    let registration = manager::on_dispose(priority, move || {
        if let Err(e) = callback.call0(&JsValue::UNDEFINED) {
            report::report("an onDispose callback threw", &e);
        }
    })
    .map_err(VigilError::from)?;
    Ok(Subscription::owned_by_manager(registration))
}

/// Listens for `type` on `target` until unsubscribed or disposed; the listener is counted in
/// `resources()` and removed by `disposeAll()` and a final `pagehide`.
#[wasm_bindgen]
pub fn listen(
    target: &web_sys::EventTarget,
    #[wasm_bindgen(js_name = "type", unchecked_param_type = "string")] event_type: JsValue,
    callback: js_sys::Function,
) -> Result<Subscription, JsValue> {
    if !event_type.is_string() {
        return Err(VigilError::BadArgument {
            name: "type",
            expected: "a string",
            // Not `options::type_name`: its number check brings glue `vigil/core` has no other
            // use for.
            got: if event_type.is_undefined() {
                "undefined"
            } else if event_type.is_null() {
                "null"
            } else {
                "a value of another type"
            },
        }
        .into());
    }
    let this = JsValue::from(target.clone());
    let listener = Listener::for_js_type(target, event_type, move |event| {
        if let Err(e) = callback.call1(&this, event) {
            report::report("a listen() callback threw", &e);
        }
    });
    hold(listener)
}

/// Calls `callback` every `ms` milliseconds until unsubscribed or disposed (a managed
/// `setInterval` whose handle cannot be lost).
#[wasm_bindgen]
pub fn every(ms: f64, callback: js_sys::Function) -> Result<Subscription, JsValue> {
    let ms = millis("ms", ms)?;
    let interval = Interval::new(ms, move || {
        if let Err(e) = callback.call0(&JsValue::UNDEFINED) {
            report::report("an every() callback threw", &e);
        }
    });
    hold(interval)
}

/// Calls `callback` once after `ms` milliseconds unless unsubscribed or disposed first (a managed
/// `setTimeout`). The subscription ends by itself when the callback has run.
#[wasm_bindgen]
pub fn after(ms: f64, callback: js_sys::Function) -> Result<Subscription, JsValue> {
    let ms = millis("ms", ms)?;
    let own_id: Rc<Cell<Option<EntryId>>> = Rc::default();
    let id_slot = Rc::clone(&own_id);
    let timeout = Timeout::new(ms, move || {
        if let Err(e) = callback.call0(&JsValue::UNDEFINED) {
            report::report("an after() callback threw", &e);
        }
        if let Some(id) = id_slot.take() {
            manager::remove(id);
        }
    });
    let sub = hold(timeout)?;
    own_id.set(sub.entry());
    Ok(sub)
}

/// A guard held for the page by the cleanup manager: dropping the service drops the guard.
struct Held<G> {
    _guard: G,
}

impl<G> Service for Held<G> {}

fn hold<G: 'static>(guard: G) -> Result<Subscription, JsValue> {
    let registration =
        manager::register(0, Rc::new(Held { _guard: guard })).map_err(VigilError::from)?;
    Ok(Subscription::owned_by_manager(registration))
}
