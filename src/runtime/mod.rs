//! The lifecycle core: the resource ledger, one guard per browser resource, the cleanup manager
//! that owns every service, the panic hook and the report sink.
//!
//! Pure parts (no browser): [`ledger`], [`registry`], [`health`]. Browser shell: [`guards`],
//! [`manager`], [`panic`](mod@panic), [`report`], [`subscribers`], [`waiters`], [`telemetry`]
//! (the health sampler), [`window`]. Per-page statics: [`local`].

pub mod guards;
#[cfg(feature = "telemetry")]
pub mod health;
pub mod ledger;
pub mod local;
pub mod manager;
pub mod panic;
pub mod registry;
pub mod report;
pub mod subscribers;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod waiters;

use wasm_bindgen::prelude::{wasm_bindgen, JsValue};

#[wasm_bindgen]
extern "C" {
    /// `window`, read once (`typeof window` checked): a direct binding instead of web-sys's
    /// `window()`, which looks through `globalThis`, `global`, `window` and `self` (four imports
    /// and their glue in every variant).
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
}

#[wasm_bindgen]
extern "C" {
    /// `Reflect.set` without `catch`, for a data property on a plain object the runtime made
    /// itself (or a class prototype): that cannot throw. js-sys's binding catches, which costs
    /// an exception check in the wasm and a wrapper in the glue at every use. The key crosses as
    /// a `&str` (pointer and length, decoded in the glue), so no `JsValue` is made for it.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &str, value: &JsValue) -> bool;
    /// The same with a number value, which crosses as an `f64`.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set_number(target: &JsValue, key: &str, value: f64) -> bool;
    /// The same with any key (a symbol).
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set_key(target: &JsValue, key: &JsValue, value: &JsValue) -> bool;
    /// `Reflect.get` without `catch`, for the same kind of object (no getter to throw).
    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    fn reflect_get(target: &JsValue, key: &str) -> JsValue;
    /// `Reflect.get` with `catch`, for a page's value (a getter or a proxy may throw, and a
    /// primitive throws).
    #[wasm_bindgen(catch, js_namespace = Reflect, js_name = get)]
    fn reflect_read(target: &JsValue, key: &str) -> Result<JsValue, JsValue>;
    /// `Reflect.set` with `catch`, for a page's key or value (`__proto__` with a cyclic value
    /// throws).
    #[wasm_bindgen(catch, js_namespace = Reflect, js_name = set)]
    fn reflect_write(target: &JsValue, key: &str, value: &JsValue) -> Result<bool, JsValue>;
}

/// `target[key]` of a page's value; `undefined` when reading it throws (or it is not an object).
pub fn read(target: &JsValue, key: &str) -> JsValue {
    reflect_read(target, key).unwrap_or(JsValue::UNDEFINED)
}

/// Sets a page's key or value on `target`; false when that throws.
pub fn write(target: &JsValue, key: &str, value: &JsValue) -> bool {
    reflect_write(target, key, value).unwrap_or(false)
}

/// Sets `key` on `target`, an object the runtime made (never a page's object: a page's proxy
/// or setter could throw, and a throw must not unwind through the wasm).
pub fn set_own(target: &JsValue, key: &str, value: &JsValue) {
    reflect_set(target, key, value);
}

/// [`set_own`] for a number.
pub fn set_number(target: &JsValue, key: &str, value: f64) {
    reflect_set_number(target, key, value);
}

/// [`set_own`] for any key (a symbol).
pub fn set_own_key(target: &JsValue, key: &JsValue, value: &JsValue) {
    reflect_set_key(target, key, value);
}

/// Reads `key` from `target`, an object the runtime made or a class prototype of its own.
pub fn get_own(target: &JsValue, key: &str) -> JsValue {
    reflect_get(target, key)
}

/// The page's `window`; `None` outside a page (a worker).
pub fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}
