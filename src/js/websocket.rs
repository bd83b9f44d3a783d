//! `WebSocketService`: converts and delegates to [`crate::ws::service`].

use crate::prelude::*;
use wasm_bindgen::prelude::*;

use super::handle::{alias_symbol_dispose, Handle};
use super::subscription::Subscription;
use crate::runtime::manager;
use crate::ws::machine::check_close;
use crate::ws::service::{self as ws_service, Inner as WsInner};

#[wasm_bindgen(typescript_custom_section)]
const TS_WS: &'static str = r#"
/** Options of `new WebSocketService(options)`. */
export interface WebSocketServiceOptions {
  /** `ws://`, `wss://`, or a URL relative to the page (http becomes ws). */
  url: string;
  protocols?: string | string[];
  /** App-level `{type:"ping"}` every interval while open. Default 30000. */
  heartbeatIntervalMs?: number;
  /** No message within this after a ping: the socket is dead and reconnects. Default 10000. */
  heartbeatTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** `false` never reconnects. */
  reconnect?: false | { initialDelayMs?: number; maxDelayMs?: number; factor?: number; jitter?: number; maxAttempts?: number };
  /** Messages sent while not open wait here, oldest dropped first. Default 1000. */
  maxQueuedMessages?: number;
}
export type WebSocketState = "idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed";
export interface WebSocketStats {
  messagesIn: number; messagesOut: number; reconnects: number; queued: number; dropped: number;
  lastRttMs: number | null;
  /** Frames that were not `{type, payload, timestamp}` JSON: counted and ignored. */
  invalidFrames: number;
}
"#;

/// A WebSocket client that never leaks and never gives up: heartbeat, backoff with jitter, a
/// bounded send queue, `online` and back/forward-cache aware. Owned by the cleanup manager.
#[wasm_bindgen]
#[derive(Debug)]
pub struct WebSocketService {
    handle: Handle<WsInner>,
}

#[wasm_bindgen]
impl WebSocketService {
    /// Creates the service; `connect()` opens it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "WebSocketServiceOptions")] options: JsValue,
    ) -> Result<WebSocketService, JsValue> {
        let (url, protocols, config) = ws_service::parse_options(&options)?;
        let service = ws_service::create(url, protocols, config);
        let weak = service.downgrade();
        let handle = Handle::register(manager::priority::NETWORK, service, weak)?;
        static ONCE: crate::runtime::local::Once = crate::runtime::local::Once::new();
        ONCE.call_once(|| {
            let probe = WebSocketService {
                handle: Handle::none(),
            };
            alias_symbol_dispose(&JsValue::from(probe), "dispose");
        });
        Ok(Self { handle })
    }
    fn live(&self) -> Result<ws_service::Shared, JsValue> {
        self.handle.live("this WebSocketService was disposed")
    }

    /// Opens the connection; resolves on the first open (with reconnect on, it keeps trying).
    pub fn connect(&self) -> Result<js_sys::Promise, JsValue> {
        Ok(ws_service::connect(&self.live()?))
    }

    /// Calls `handler(payload, message)` for every message of `type` (`"*"`: every message).
    /// Survives reconnects; ends with `unsubscribe()` or `dispose()`.
    pub fn subscribe(
        &self,
        #[wasm_bindgen(js_name = "type")] kind: String,
        handler: js_sys::Function,
    ) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = ws_service::subscribe(&s, Some(kind), handler)
            .map_err(|e| js_sys::Error::new(&e.message()))?;
        Ok(Subscription::ws(&s, id))
    }

    /// Calls `handler(state, { attempt })` on every state change.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(&self, handler: js_sys::Function) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = ws_service::subscribe(&s, None, handler)
            .map_err(|e| js_sys::Error::new(&e.message()))?;
        Ok(Subscription::ws(&s, id))
    }

    /// Sends `{type, payload, timestamp}`; queued while not open. False only when disposed.
    pub fn send(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "string")] kind: JsValue,
        payload: JsValue,
    ) -> Result<bool, JsValue> {
        match self.handle.upgrade() {
            Some(s) => ws_service::send(&s, &kind, &payload).map(|()| true),
            None => Ok(false),
        }
    }

    /// Closes on purpose: no reconnect, state `closed`. Final.
    pub fn disconnect(&self, code: Option<u16>, reason: Option<String>) -> Result<(), JsValue> {
        let code = code.unwrap_or(1000);
        let reason = reason.unwrap_or_default();
        check_close(code, &reason)?;
        ws_service::disconnect(&self.live()?, code, reason);
        Ok(())
    }

    /// Frees the socket, timers, listeners and subscriptions. Idempotent.
    pub fn dispose(&self) {
        self.handle.dispose();
    }

    /// `"idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed"` (`"closed"` once
    /// disposed).
    #[wasm_bindgen(getter, unchecked_return_type = "WebSocketState")]
    pub fn state(&self) -> JsValue {
        // A JS string made from the static name (no returned `String`, no deferred free).
        JsValue::from_str(
            self.handle
                .upgrade()
                .map_or("closed", |s| ws_service::state(&s).as_str()),
        )
    }

    /// Reconnect attempts since the last stable open.
    #[wasm_bindgen(getter, js_name = reconnectAttempts)]
    pub fn reconnect_attempts(&self) -> u32 {
        self.handle
            .upgrade()
            .map_or(0, |s| ws_service::attempts(&s))
    }

    /// `{ messagesIn, messagesOut, reconnects, queued, dropped, lastRttMs, invalidFrames }`.
    #[wasm_bindgen(unchecked_return_type = "WebSocketStats")]
    pub fn stats(&self) -> Result<js_sys::Object, JsValue> {
        let (st, invalid) = ws_service::stats(&self.live()?);
        let out = js_sys::Object::new();
        let set = |k: &str, v: f64| crate::runtime::set_number(&out, k, v);
        set("messagesIn", st.messages_in as f64);
        set("messagesOut", st.messages_out as f64);
        set("reconnects", st.reconnects as f64);
        set("queued", st.queued as f64);
        set("dropped", st.dropped as f64);
        match st.last_rtt_ms {
            Some(ms) => set("lastRttMs", ms),
            None => crate::runtime::set_own(&out, "lastRttMs", &JsValue::NULL),
        }
        set("invalidFrames", invalid as f64);
        Ok(out)
    }
}
