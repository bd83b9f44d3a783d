//! Vigil: a browser runtime for web apps and kiosk pages that watches itself without leaking.
//!
//! This file is the `#[wasm_bindgen]` surface only: it converts JS values and delegates to the
//! modules. See `ARCHITECTURE.md` for the map, and `shared/specs/js-api.md` for the contract.
//!
//! Rust users get the same guarantees with RAII: dropping a guard or a
//! [`runtime::manager::Registration`] releases what it holds.

pub mod backoff;
pub mod error;
pub mod errors;
pub mod options;
pub mod perf;
pub mod runtime;
pub mod transport;
pub mod voice;
pub mod ws;

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;

use error::{millis, VigilError};
use errors::tracker::{self, Inner as TrackerInner};
use options::Options;
use perf::shell::{self as perf_shell, Inner as MonitorInner};
use runtime::guards::{Interval, Listener, Timeout};
use runtime::manager::{self, Service};
use runtime::registry::EntryId;
use runtime::{ledger, report, telemetry};
use voice::connection::{self as voice_conn, Inner as VoiceInner};
use ws::machine::{Backoff, Config as WsConfig};
use ws::service::{self as ws_service, Inner as WsInner};

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

/// Runs once when the module is instantiated: installs the panic hook and the
/// `Subscription[Symbol.dispose]` fix.
#[wasm_bindgen(start)]
pub fn start() {
    runtime::panic::install();
    Subscription::fix_symbol_dispose();
}

/// The crate version, e.g. `"0.1.0"`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// What is live right now, counted by the guards themselves.
#[wasm_bindgen(unchecked_return_type = "ResourceCounts")]
pub fn resources() -> js_sys::Object {
    let counts = ledger::counts();
    let out = js_sys::Object::new();
    for (kind, live) in counts.iter() {
        // Setting a data property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&out, &kind.js_name().into(), &live.into());
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
#[wasm_bindgen(js_name = onDispose)]
pub fn on_dispose(
    callback: js_sys::Function,
    priority: Option<i32>,
) -> Result<Subscription, JsValue> {
    let registration = manager::on_dispose(priority.unwrap_or(0), move || {
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
    #[wasm_bindgen(js_name = "type")] event_type: String,
    callback: js_sys::Function,
) -> Result<Subscription, JsValue> {
    let this = JsValue::from(target.clone());
    let listener = Listener::new(target, event_type, move |event| {
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
    if let Target::Entry(id) = sub.target {
        own_id.set(Some(id));
    }
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
    Ws(Weak<RefCell<WsInner>>, u64),
    Voice(Weak<RefCell<VoiceInner>>, u64),
}

impl Subscription {
    fn owned_by_manager(registration: manager::Registration) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Entry(registration.hand_over()),
        }
    }

    fn ws(service: &ws_service::Shared, id: u64) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Ws(Rc::downgrade(service), id),
        }
    }

    fn voice(service: &voice_conn::Shared, id: u64) -> Self {
        Self::fix_symbol_dispose();
        Self {
            target: Target::Voice(Rc::downgrade(service), id),
        }
    }

    fn fix_symbol_dispose() {
        static ONCE: std::sync::Once = std::sync::Once::new();
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
            Target::Ws(service, id) => {
                if let Some(s) = service.upgrade() {
                    ws_service::unsubscribe(&s, *id);
                }
            }
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
            Target::Ws(service, id) => service
                .upgrade()
                .is_some_and(|s| ws_service::has_subscription(&s, *id)),
            Target::Voice(service, id) => service
                .upgrade()
                .is_some_and(|s| voice_conn::has_subscription(&s, *id)),
        }
    }
}

/// wasm-bindgen makes `[Symbol.dispose]` an alias of `free()`, which only frees the JS wrapper;
/// ownership rule 3 says that must not end anything. For `using x = …` to end the object, point
/// `[Symbol.dispose]` of its class at `method` (`unsubscribe` / `dispose`). `probe` is any
/// instance of the class.
fn alias_symbol_dispose(probe: &JsValue, method: &str) {
    let proto = js_sys::Object::get_prototype_of(probe);
    let symbol = js_sys::Reflect::get(&js_sys::global(), &"Symbol".into())
        .and_then(|symbol| js_sys::Reflect::get(&symbol, &"dispose".into()));
    let target = js_sys::Reflect::get(&proto, &method.into());
    if let (Ok(symbol), Ok(target)) = (symbol, target) {
        if !symbol.is_undefined() {
            let _ = js_sys::Reflect::set(&proto, &symbol, &target);
        }
    }
}

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
    service: Weak<RefCell<WsInner>>,
    entry: EntryId,
}

#[wasm_bindgen]
impl WebSocketService {
    /// Creates the service; `connect()` opens it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "WebSocketServiceOptions")] options: JsValue,
    ) -> Result<WebSocketService, JsValue> {
        let o = Options(&options);
        let url = ws_url(&o.string("url", "a ws:// or wss:// URL")?)?;
        let protocols = match o.get("protocols") {
            None => Vec::new(),
            Some(v) if v.is_string() => vec![v.as_string().unwrap_or_default()],
            Some(v) if js_sys::Array::is_array(&v) => js_sys::Array::from(&v)
                .iter()
                .map(|p| p.as_string())
                .collect::<Option<Vec<_>>>()
                .ok_or(VigilError::BadArgument {
                    name: "protocols",
                    expected: "a string or an array of strings",
                    got: "an array with a non-string",
                })?,
            Some(v) => {
                return Err(VigilError::BadArgument {
                    name: "protocols",
                    expected: "a string or an array of strings",
                    got: options::type_name(&v),
                }
                .into())
            }
        };
        let reconnect = match o.get("reconnect") {
            None => Some(Backoff::default()),
            Some(v) if v.as_bool() == Some(false) => None,
            Some(v) if v.as_bool() == Some(true) => Some(Backoff::default()),
            Some(v) if v.is_object() => {
                let r = Options(&v);
                let max = r.number(
                    "maxAttempts",
                    f64::INFINITY,
                    0.0..=f64::INFINITY,
                    "a number of attempts (or Infinity)",
                )?;
                Some(Backoff {
                    initial_delay_ms: f64::from(r.millis("initialDelayMs", 1000, 0)?),
                    max_delay_ms: f64::from(r.millis("maxDelayMs", 30_000, 0)?),
                    factor: r.number("factor", 2.0, 1.0..=100.0, "a factor between 1 and 100")?,
                    jitter: r.number("jitter", 0.25, 0.0..=1.0, "a jitter between 0 and 1")?,
                    max_attempts: max.is_finite().then_some(max as u32),
                })
            }
            Some(v) => {
                return Err(VigilError::BadArgument {
                    name: "reconnect",
                    expected: "false or an object",
                    got: options::type_name(&v),
                }
                .into())
            }
        };
        let config = WsConfig {
            heartbeat_interval_ms: o.millis("heartbeatIntervalMs", 30_000, 1)?,
            heartbeat_timeout_ms: o.millis("heartbeatTimeoutMs", 10_000, 1)?,
            connect_timeout_ms: o.millis("connectTimeoutMs", 10_000, 1)?,
            reconnect,
            max_queued_messages: o.number(
                "maxQueuedMessages",
                1000.0,
                0.0..=1_000_000.0,
                "a number of messages between 0 and 1000000",
            )? as usize,
            seed: (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
        };
        let service = ws_service::create(url, protocols, config);
        let weak = service.downgrade();
        let entry = manager::register(manager::priority::NETWORK, Rc::new(service))
            .map_err(VigilError::from)?
            .hand_over();
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let probe = WebSocketService {
                service: Weak::new(),
                entry: EntryId::from_raw(0),
            };
            alias_symbol_dispose(&JsValue::from(probe), "dispose");
        });
        Ok(Self {
            service: weak,
            entry,
        })
    }

    fn live(&self) -> Result<ws_service::Shared, JsValue> {
        self.service
            .upgrade()
            .ok_or_else(|| js_sys::Error::new("this WebSocketService was disposed").into())
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
            .map_err(|e| js_sys::Error::new(&e.to_string()))?;
        Ok(Subscription::ws(&s, id))
    }

    /// Calls `handler(state, { attempt })` on every state change.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(&self, handler: js_sys::Function) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = ws_service::subscribe(&s, None, handler)
            .map_err(|e| js_sys::Error::new(&e.to_string()))?;
        Ok(Subscription::ws(&s, id))
    }

    /// Sends `{type, payload, timestamp}`; queued while not open. False only when disposed.
    pub fn send(
        &self,
        #[wasm_bindgen(js_name = "type")] kind: &str,
        payload: JsValue,
    ) -> Result<bool, JsValue> {
        match self.service.upgrade() {
            Some(s) => ws_service::send(&s, kind, &payload).map(|()| true),
            None => Ok(false),
        }
    }

    /// Closes on purpose: no reconnect, state `closed`. Final.
    pub fn disconnect(&self, code: Option<u16>, reason: Option<String>) -> Result<(), JsValue> {
        let code = code.unwrap_or(1000);
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(VigilError::BadArgument {
                name: "code",
                expected: "1000 or a code from 3000 to 4999",
                got: "another code",
            }
            .into());
        }
        let reason = reason.unwrap_or_default();
        if reason.len() > 123 {
            return Err(VigilError::BadArgument {
                name: "reason",
                expected: "at most 123 bytes of UTF-8",
                got: "a longer string",
            }
            .into());
        }
        ws_service::disconnect(&self.live()?, code, reason);
        Ok(())
    }

    /// Frees the socket, timers, listeners and subscriptions. Idempotent.
    pub fn dispose(&self) {
        manager::remove(self.entry);
    }

    /// `"idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed"` (`"closed"` once
    /// disposed).
    #[wasm_bindgen(getter, unchecked_return_type = "WebSocketState")]
    pub fn state(&self) -> String {
        self.service
            .upgrade()
            .map_or("closed", |s| ws_service::state(&s).as_str())
            .to_owned()
    }

    /// Reconnect attempts since the last stable open.
    #[wasm_bindgen(getter, js_name = reconnectAttempts)]
    pub fn reconnect_attempts(&self) -> u32 {
        self.service
            .upgrade()
            .map_or(0, |s| ws_service::attempts(&s))
    }

    /// `{ messagesIn, messagesOut, reconnects, queued, dropped, lastRttMs, invalidFrames }`.
    #[wasm_bindgen(unchecked_return_type = "WebSocketStats")]
    pub fn stats(&self) -> Result<js_sys::Object, JsValue> {
        let (st, invalid) = ws_service::stats(&self.live()?);
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(drop);
        set("messagesIn", (st.messages_in as f64).into())?;
        set("messagesOut", (st.messages_out as f64).into())?;
        set("reconnects", (st.reconnects as f64).into())?;
        set("queued", (st.queued as f64).into())?;
        set("dropped", (st.dropped as f64).into())?;
        set(
            "lastRttMs",
            st.last_rtt_ms.map_or(JsValue::NULL, JsValue::from),
        )?;
        set("invalidFrames", (invalid as f64).into())?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// VoiceConnection (issue #6)
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen(typescript_custom_section)]
const TS_VOICE: &'static str = r#"
/** Options of `new VoiceConnection(options)`. */
export interface VoiceConnectionOptions {
  /** POST → `{ client_secret: { value, expires_at }, realtime_url }`. Default "/voice/session". */
  sessionUrl?: string;
  /** An <audio> to play into; when absent one is created (autoplay, in <body>) and removed on disconnect. */
  audioElement?: HTMLAudioElement;
  /** Default "oai-events". */
  dataChannelLabel?: string;
  /** Sent as `{type: "session.update", session: {type: "realtime", ...session}}` when the channel opens. */
  session?: Record<string, unknown>;
  /** `getUserMedia` audio constraints; `false`: receive only. Default true. */
  audio?: boolean | MediaTrackConstraints;
  /** `connect()` rejects after this. Default 15000. */
  connectTimeoutMs?: number;
}
export type VoiceState = "idle" | "connecting" | "connected" | "disconnected" | "failed";
export interface VoiceStats {
  packetsSent: number; packetsReceived: number; bytesSent: number; bytesReceived: number;
  /** The nominated candidate pair's `currentRoundTripTime`, in ms; null before one exists. */
  roundTripTimeMs: number | null;
  /** Data channel events dispatched, `sendEvent` calls sent, and messages that were not JSON events. */
  eventsIn: number; eventsOut: number; invalidEvents: number;
}
"#;

/// The OpenAI Realtime WebRTC flow (session key, peer connection, microphone, SDP exchange,
/// `oai-events` data channel) with every resource in a guard. Owned by the cleanup manager.
#[wasm_bindgen]
#[derive(Debug)]
pub struct VoiceConnection {
    service: Weak<RefCell<VoiceInner>>,
    entry: EntryId,
}

#[wasm_bindgen]
impl VoiceConnection {
    /// Creates the connection; nothing is acquired until `connect()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "VoiceConnectionOptions")] options: JsValue,
    ) -> Result<VoiceConnection, JsValue> {
        let o = Options(&options);
        let string = |name: &'static str, default: &str| -> Result<String, JsValue> {
            match o.get(name) {
                None => Ok(default.to_owned()),
                Some(v) => v.as_string().ok_or_else(|| {
                    VigilError::BadArgument {
                        name,
                        expected: "a string",
                        got: options::type_name(&v),
                    }
                    .into()
                }),
            }
        };
        let session_url =
            page_url(&string("sessionUrl", "/voice/session")?).ok_or(VigilError::BadArgument {
                name: "sessionUrl",
                expected: "an http(s) URL (or one relative to the page)",
                got: "something else",
            })?;
        let label = string("dataChannelLabel", "oai-events")?;
        let audio_element = match o.get("audioElement") {
            None => None,
            Some(v) => Some(v.dyn_into::<web_sys::HtmlMediaElement>().map_err(|v| {
                VigilError::BadArgument {
                    name: "audioElement",
                    expected: "an <audio> element",
                    got: options::type_name(&v),
                }
            })?),
        };
        let session = match o.get("session") {
            None => None,
            Some(v) if v.is_object() && !js_sys::Array::is_array(&v) => Some(v.unchecked_into()),
            Some(v) => {
                return Err(VigilError::BadArgument {
                    name: "session",
                    expected: "an object",
                    got: options::type_name(&v),
                }
                .into())
            }
        };
        let audio = o.get("audio").unwrap_or(JsValue::TRUE);
        if !(audio.as_bool().is_some() || audio.is_object()) {
            return Err(VigilError::BadArgument {
                name: "audio",
                expected: "a boolean or MediaTrackConstraints",
                got: options::type_name(&audio),
            }
            .into());
        }
        let config = voice_conn::Config {
            connect_timeout_ms: o.millis("connectTimeoutMs", 15_000, 1)?,
            microphone: audio.as_bool() != Some(false),
        };
        let service = voice_conn::create(voice_conn::Settings {
            session_url,
            audio_element,
            label,
            session,
            audio,
            config,
        });
        let weak = service.downgrade();
        let entry = manager::register(manager::priority::NETWORK, Rc::new(service))
            .map_err(VigilError::from)?
            .hand_over();
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let probe = VoiceConnection {
                service: Weak::new(),
                entry: EntryId::from_raw(0),
            };
            alias_symbol_dispose(&JsValue::from(probe), "dispose");
        });
        Ok(Self {
            service: weak,
            entry,
        })
    }

    fn live(&self) -> Result<voice_conn::Shared, JsValue> {
        self.service
            .upgrade()
            .ok_or_else(|| js_sys::Error::new("this VoiceConnection was disposed").into())
    }

    /// Runs the connect steps; resolves when the data channel is open. A failure rejects with an
    /// `Error` naming the step (also in its `step` property) and leaves nothing behind.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(&self) -> Result<js_sys::Promise, JsValue> {
        Ok(voice_conn::connect(&self.live()?))
    }

    /// Calls `handler(event)` for every server event of `type` (`"*"`: every event).
    pub fn on(
        &self,
        #[wasm_bindgen(js_name = "type")] kind: String,
        #[wasm_bindgen(unchecked_param_type = "(event: any) => void")] handler: js_sys::Function,
    ) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = voice_conn::subscribe(&s, Some(kind), handler)
            .map_err(|e| js_sys::Error::new(&e.to_string()))?;
        Ok(Subscription::voice(&s, id))
    }

    /// Calls `handler(state)` on every state change.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(state: VoiceState) => void")]
        handler: js_sys::Function,
    ) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = voice_conn::subscribe(&s, None, handler)
            .map_err(|e| js_sys::Error::new(&e.to_string()))?;
        Ok(Subscription::voice(&s, id))
    }

    /// Sends a client event as JSON on the data channel; false when not connected (or disposed).
    #[wasm_bindgen(js_name = sendEvent)]
    pub fn send_event(&self, event: JsValue) -> Result<bool, JsValue> {
        match self.service.upgrade() {
            Some(s) => voice_conn::send_event(&s, &event),
            None => Ok(false),
        }
    }

    /// Mutes (or unmutes) the microphone: `track.enabled = !muted`.
    #[wasm_bindgen(js_name = setMuted)]
    pub fn set_muted(&self, muted: bool) -> Result<(), JsValue> {
        voice_conn::set_muted(&self.live()?, muted);
        Ok(())
    }

    /// `"idle" | "connecting" | "connected" | "disconnected" | "failed"` (`"disconnected"` once
    /// disposed).
    #[wasm_bindgen(getter, unchecked_return_type = "VoiceState")]
    pub fn state(&self) -> String {
        self.service
            .upgrade()
            .map_or("disconnected", |s| voice_conn::state(&s).as_str())
            .to_owned()
    }

    /// Audio packet and byte counts and the round trip from `getStats()`, plus event counters.
    #[wasm_bindgen(unchecked_return_type = "Promise<VoiceStats>")]
    pub fn stats(&self) -> Result<js_sys::Promise, JsValue> {
        Ok(voice_conn::stats(&self.live()?))
    }

    /// Closes the data channel and the peer connection (handlers detached), stops the
    /// microphone, pauses and empties the audio element (removed if created). State
    /// `disconnected`; `connect()` may be called again.
    pub fn disconnect(&self) -> Result<(), JsValue> {
        voice_conn::disconnect(&self.live()?);
        Ok(())
    }

    /// Disconnects and frees the subscriptions. Idempotent.
    pub fn dispose(&self) {
        manager::remove(self.entry);
    }
}

/// Resolves `url` against the page; only `http:` and `https:` URLs.
fn page_url(url: &str) -> Option<String> {
    let base = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let parsed = if base.is_empty() {
        web_sys::Url::new(url)
    } else {
        web_sys::Url::new_with_base(url, &base)
    }
    .ok()?;
    matches!(parsed.protocol().as_str(), "http:" | "https:").then(|| parsed.href())
}

#[wasm_bindgen(typescript_custom_section)]
const TS_VIGIL: &'static str = r#"
/** Options of `Vigil.start(options)`. */
export interface VigilOptions {
  /** `{scheme}://{publicKey}@{host}[:port]{path}/{projectId}` */
  dsn: string;
  release?: string;
  /** Default "production". */
  environment?: string;
  /** Error events kept, 0..1. Default 1. */
  sampleRate?: number;
  /** Breadcrumb ring bound. Default 100. */
  maxBreadcrumbs?: number;
  captureConsole?: boolean;
  captureGlobalErrors?: boolean;
  navigationBreadcrumbs?: boolean;
  /** OTLP/HTTP JSON endpoint. Default: the DSN's origin + "/v1/metrics" (key in the query). */
  metricsUrl?: string;
  /** Metrics export interval. Default 10000. */
  flushIntervalMs?: number;
  /** Fleet health samples (resource counts, JS heap, wasm memory, uptime) exported through the
   * metrics transport every `intervalMs` (100..86400000, default 60000) and when the page is
   * left; `false` turns them off. */
  health?: boolean | { intervalMs?: number };
  /** Offline queue bound (persisted across reloads). Default 100. */
  maxQueuedEvents?: number;
  /** Return null to drop; if it throws, the event is sent unchanged and a breadcrumb says so. */
  beforeSend?: (event: any) => any;
}
export type VigilLevel = "fatal" | "error" | "warning" | "info" | "debug";
export interface VigilStats {
  eventsCaptured: number; eventsSent: number; eventsDropped: number; eventsQueued: number;
  eventsSampledOut: number; metricsSent: number; rateLimitedUntil: number | null;
  metricsQueued: number; metricExports: number; lastExportBytes: number; metricsDropped: number;
}
export type VitalRating = "good" | "needs-improvement" | "poor";
export interface Vitals {
  lcp?: { value: number; rating: VitalRating };
  cls?: { value: number; rating: VitalRating };
  inp?: { value: number; rating: VitalRating };
  fcp?: { value: number; rating: VitalRating };
  ttfb?: { value: number; rating: VitalRating };
}
"#;

thread_local! {
    static CURRENT: RefCell<Option<Vigil>> = const { RefCell::new(None) };
}

/// The error tracker, the performance monitor and the fleet health sampler of this page, sharing
/// one transport. All are owned by the cleanup manager (the sampler and the monitor at higher
/// priorities, so their final exports are queued before the transport flushes); a second `start`
/// disposes the first.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct Vigil {
    tracker: Weak<RefCell<TrackerInner>>,
    monitor: Weak<RefCell<MonitorInner>>,
    /// The tracker, the monitor and the health sampler (when on).
    entries: (EntryId, EntryId, Option<EntryId>),
}

#[wasm_bindgen]
impl Vigil {
    /// Starts the runtime; a DSN that does not parse throws an `Error` naming the problem.
    pub fn start(
        #[wasm_bindgen(unchecked_param_type = "VigilOptions")] options: JsValue,
    ) -> Result<Vigil, JsValue> {
        let settings = tracker::Settings::parse(&options)?;
        let health_interval = telemetry::read_option(&options)?;
        if let Some(old) = CURRENT.with(|c| c.borrow_mut().take()) {
            old.dispose(); // listeners, observers and console patches never double
        }
        let (service_name, environment, flush_interval_ms) = settings.perf();
        let release = settings.release();
        let view_id = tracker::new_event_id();
        let service = tracker::start(settings);
        let transport = service.transport();
        let weak = service.downgrade();
        let tracker_entry = manager::register(manager::priority::DEFAULT, Rc::new(service))
            .map_err(VigilError::from)?
            .hand_over();
        let health = health_interval.map(|interval_ms| {
            telemetry::start(
                telemetry::Settings {
                    service_name: service_name.clone(),
                    environment: environment.clone(),
                    release,
                    view_id: view_id.clone(),
                    interval_ms,
                },
                Rc::clone(&transport),
            )
        });
        let monitor = perf_shell::start(
            perf_shell::Settings {
                service_name,
                environment,
                flush_interval_ms,
                view_id,
            },
            transport,
        );
        let monitor_weak = monitor.downgrade();
        let monitor_entry = match manager::register(manager::priority::MONITOR, Rc::new(monitor)) {
            Ok(r) => r.hand_over(),
            Err(e) => {
                manager::remove(tracker_entry);
                return Err(VigilError::from(e).into());
            }
        };
        let health_entry = match health
            .map(|h| manager::register(manager::priority::HEALTH, Rc::new(h)))
            .transpose()
        {
            Ok(r) => r.map(manager::Registration::hand_over),
            Err(e) => {
                manager::remove(monitor_entry);
                manager::remove(tracker_entry);
                return Err(VigilError::from(e).into());
            }
        };
        let vigil = Vigil {
            tracker: weak,
            monitor: monitor_weak,
            entries: (tracker_entry, monitor_entry, health_entry),
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(vigil.clone()));
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let probe = Vigil {
                tracker: Weak::new(),
                monitor: Weak::new(),
                entries: (EntryId::from_raw(0), EntryId::from_raw(0), None),
            };
            alias_symbol_dispose(&JsValue::from(probe), "dispose");
        });
        Ok(vigil)
    }

    /// The live runtime, or `undefined`.
    pub fn current() -> Option<Vigil> {
        CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|v| v.tracker.strong_count() > 0)
                .cloned()
        })
    }

    fn live(&self) -> Result<tracker::Shared, JsValue> {
        self.tracker.upgrade().ok_or_else(disposed)
    }

    fn perf(&self) -> Result<perf_shell::Shared, JsValue> {
        self.monitor.upgrade().ok_or_else(disposed)
    }

    /// Captures any value (an `Error`, a string, an object, `undefined`); returns the event id.
    /// `hint` = `{ level?, tags?, extra?, fingerprint? }`.
    #[wasm_bindgen(js_name = captureException)]
    pub fn capture_exception(&self, error: JsValue, hint: JsValue) -> Result<String, JsValue> {
        let s = self.live()?;
        if let Some(level) = get_prop(&hint, "level") {
            check_level(&level)?;
        }
        let hint = hint.is_object().then_some(&hint);
        Ok(tracker::capture_exception(
            &s,
            &error,
            ("generic", true),
            hint,
        ))
    }

    /// Captures a message at `level` (default `info`); returns the event id.
    #[wasm_bindgen(js_name = captureMessage)]
    pub fn capture_message(
        &self,
        message: String,
        #[wasm_bindgen(unchecked_param_type = "VigilLevel")] level: JsValue,
    ) -> Result<String, JsValue> {
        let s = self.live()?;
        let level = if level.is_undefined() {
            "info".to_owned()
        } else {
            check_level(&level)?
        };
        Ok(tracker::capture_message(&s, &message, &level))
    }

    /// Adds a breadcrumb `{ category?, message?, level?, data? }`, timestamped now.
    #[wasm_bindgen(js_name = addBreadcrumb)]
    pub fn add_breadcrumb(&self, breadcrumb: JsValue) -> Result<(), JsValue> {
        tracker::add_breadcrumb(&self.live()?, &breadcrumb)
    }

    /// The breadcrumbs, oldest first.
    pub fn breadcrumbs(&self) -> Result<js_sys::Array, JsValue> {
        Ok(tracker::breadcrumbs(&self.live()?))
    }

    /// Attached to later events; `null` clears.
    #[wasm_bindgen(js_name = setUser)]
    pub fn set_user(&self, user: JsValue) -> Result<(), JsValue> {
        tracker::set_user(&self.live()?, user);
        Ok(())
    }

    /// Attached to later events.
    #[wasm_bindgen(js_name = setTag)]
    pub fn set_tag(&self, key: String, value: JsValue) -> Result<(), JsValue> {
        tracker::set_tag(&self.live()?, &key, &value);
        Ok(())
    }

    /// Attached to later events; `null` removes it.
    #[wasm_bindgen(js_name = setContext)]
    pub fn set_context(&self, name: String, context: JsValue) -> Result<(), JsValue> {
        tracker::set_context(&self.live()?, &name, &context);
        Ok(())
    }

    /// Adds a User Timing mark.
    pub fn mark(&self, name: String) -> Result<(), JsValue> {
        self.perf()?;
        perf_shell::mark(&name)
    }

    /// Adds a User Timing measure (from `startMark`, or the time origin, to `endMark`, or now)
    /// and returns its duration; it is also recorded as `user_timing.measure{measure.name}`.
    pub fn measure(
        &self,
        name: String,
        start_mark: Option<String>,
        end_mark: Option<String>,
    ) -> Result<f64, JsValue> {
        let opt = |m: Option<String>| m.map_or(JsValue::UNDEFINED, JsValue::from);
        perf_shell::measure(&self.perf()?, &name, &opt(start_mark), &opt(end_mark))
    }

    /// Records a custom gauge point; exported with the next metrics export (the last value of
    /// each series between two exports).
    #[wasm_bindgen(js_name = recordMetric)]
    pub fn record_metric(
        &self,
        name: String,
        value: f64,
        unit: Option<String>,
        attributes: JsValue,
    ) -> Result<(), JsValue> {
        let m = self.perf()?;
        if name.is_empty() {
            return Err(VigilError::BadArgument {
                name: "name",
                expected: "a non-empty string",
                got: "an empty string",
            }
            .into());
        }
        if !value.is_finite() {
            return Err(VigilError::BadArgument {
                name: "value",
                expected: "a finite number",
                got: "a number that is not finite",
            }
            .into());
        }
        let mut attrs = Vec::new();
        if attributes.is_object() {
            for pair in js_sys::Object::entries(attributes.unchecked_ref()).iter() {
                let pair = js_sys::Array::from(&pair);
                if let Some(k) = pair.get(0).as_string() {
                    attrs.push((k, tracker::text(&pair.get(1))));
                }
            }
        }
        perf_shell::record(&m, &name, value, unit.as_deref().unwrap_or("1"), attrs);
        Ok(())
    }

    /// `{ lcp?, cls?, inp?, fcp?, ttfb? }`, each `{ value, rating }`: the values measured so far.
    #[wasm_bindgen(unchecked_return_type = "Vitals")]
    pub fn vitals(&self) -> Result<js_sys::Object, JsValue> {
        Ok(perf_shell::vitals(&self.perf()?))
    }

    /// Exports the metrics measured so far, then resolves `true` once every queued event and
    /// metric reached the server, `false` after `timeoutMs` (default 2000).
    pub fn flush(&self, timeout_ms: Option<f64>) -> Result<js_sys::Promise, JsValue> {
        let ms = millis("timeoutMs", timeout_ms.unwrap_or(2000.0))?;
        self.live()?;
        Ok(perf_shell::flush(&self.perf()?, ms))
    }

    /// `{ eventsCaptured, eventsSent, eventsDropped, eventsQueued, eventsSampledOut,
    /// metricsSent, rateLimitedUntil }`, plus `metricsQueued`, `metricExports` (exports built),
    /// `lastExportBytes` and `metricsDropped` (custom points beyond the series bound).
    #[wasm_bindgen(unchecked_return_type = "VigilStats")]
    pub fn stats(&self) -> Result<js_sys::Object, JsValue> {
        let o = tracker::stats(&self.live()?);
        let (exports, bytes, dropped) = perf_shell::counters(&self.perf()?);
        let set = |k: &str, v: f64| js_sys::Reflect::set(&o, &k.into(), &v.into());
        set("metricExports", exports as f64)?;
        set("lastExportBytes", bytes as f64)?;
        set("metricsDropped", dropped as f64)?;
        Ok(o)
    }

    /// Disconnects the performance observer, clears the export interval, removes every
    /// listener, restores the console, stops the transport (what is undelivered stays queued
    /// for the next page load). Idempotent.
    pub fn dispose(&self) {
        if let Some(health) = self.entries.2 {
            manager::remove(health);
        }
        manager::remove(self.entries.1);
        manager::remove(self.entries.0);
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_some_and(|v| v.entries == self.entries) {
                *c = None;
            }
        });
    }
}

fn disposed() -> JsValue {
    js_sys::Error::new("this Vigil runtime was disposed").into()
}

fn get_prop(target: &JsValue, key: &str) -> Option<JsValue> {
    if !target.is_object() {
        return None;
    }
    js_sys::Reflect::get(target, &key.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

fn check_level(level: &JsValue) -> Result<String, JsValue> {
    match level.as_string() {
        Some(l) if tracker::LEVELS.contains(&l.as_str()) => Ok(l),
        _ => Err(VigilError::BadArgument {
            name: "level",
            expected: "fatal, error, warning, info or debug",
            got: options::type_name(level),
        }
        .into()),
    }
}

/// Resolves `url` against the page and checks it is a WebSocket URL (`http(s)` becomes `ws(s)`).
fn ws_url(url: &str) -> Result<String, JsValue> {
    let bad = || -> JsValue {
        VigilError::BadArgument {
            name: "url",
            expected: "a ws:// or wss:// URL (or one relative to the page)",
            got: "something else",
        }
        .into()
    };
    let base = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let parsed = if base.is_empty() {
        web_sys::Url::new(url)
    } else {
        web_sys::Url::new_with_base(url, &base)
    }
    .map_err(|_| bad())?;
    match parsed.protocol().as_str() {
        "ws:" | "wss:" => {}
        "http:" => parsed.set_protocol("ws:"),
        "https:" => parsed.set_protocol("wss:"),
        _ => return Err(bad()),
    }
    Ok(parsed.href())
}
