//! Sentry envelopes of one event, written by the browser (`vigilEnvelope` in
//! `js/telemetry.js`): the header line (`event_id`, `sent_at`, `dsn`, `sdk`), the item header
//! with the payload's `length` in UTF-8 bytes, and the payload, each line ending in `\n`. The
//! event is encoded by `JSON.stringify` and the envelope never enters the wasm, so the bundle
//! carries no JSON writer and copies no body; the browser tests read envelopes back
//! (`tests/browser.rs`, "envelope").

use wasm_bindgen::prelude::*;

use super::shell::Body;

#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    /// `[body, bytes]`, or `undefined` when `JSON.stringify` throws on the event (a cycle, a
    /// `BigInt`) or encodes nothing.
    #[wasm_bindgen(js_name = vigilEnvelope)]
    fn js_envelope(
        event_id: &JsValue,
        dsn: &str,
        sdk_name: &str,
        version: &str,
        event: &JsValue,
    ) -> JsValue;
}

/// The envelope of `event` for `dsn`; `None` when the browser cannot encode the event.
pub fn event(event_id: &JsValue, dsn: &str, sdk_name: &str, event: &JsValue) -> Option<Body> {
    let pair = js_envelope(event_id, dsn, sdk_name, env!("CARGO_PKG_VERSION"), event);
    (!pair.is_undefined()).then(|| Body::from_js(pair))
}
