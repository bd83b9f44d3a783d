//! The browser shell of the WebSocket service: it owns the socket and timer guards and does what
//! the [`Machine`]'s effects say. It holds no logic of its own beyond converting frames.
//!
//! Closures given to the browser hold a `Weak` reference to the service, never an `Rc`: the
//! socket guard lives inside the service, so an `Rc` there would be a cycle that never drops.

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::machine::{Backoff, Config, Effect, Event, Machine, State, Stats, Timer};
use crate::options::Bag;
use crate::runtime::guards::{network_listeners, Listener, Socket, Timeout};
use crate::runtime::manager::Service;
use crate::runtime::report;
use crate::runtime::subscribers::{Subscribers, TooManySubscriptions};
use crate::runtime::waiters::Waiters;

/// A shared handle on one service's state.
pub type Shared = Rc<RefCell<Inner>>;

/// Everything one `WebSocketService` holds. Dropping it releases every guard.
#[derive(Debug)]
pub struct Inner {
    machine: Machine<JsValue>,
    url: String,
    protocols: Vec<String>,
    socket: Option<Socket>,
    timers: [Option<Timeout>; 5],
    subs: Subscribers,
    pending: Waiters,
    invalid_frames: u64,
    network: Option<(Listener, Listener)>,
}

fn timer_slot(t: Timer) -> usize {
    match t {
        Timer::Connect => 0,
        Timer::Reconnect => 1,
        Timer::Heartbeat => 2,
        Timer::HeartbeatDeadline => 3,
        Timer::Stable => 4,
    }
}

/// The service as the cleanup manager owns it: dropping it drops [`Inner`]'s guards.
#[derive(Debug)]
pub struct WsService {
    shared: Shared,
}

impl Service for WsService {
    fn suspend(&self) {
        feed(&self.shared, Event::Suspend);
    }

    fn resume(&self) {
        feed(&self.shared, Event::Resume);
    }
}

impl Drop for WsService {
    fn drop(&mut self) {
        // Take everything out first, drop it after the borrow ends: guards' drops may run code.
        let (socket, timers, network, pending, subs) = {
            let mut i = self.shared.borrow_mut();
            (
                i.socket.take(),
                core::mem::take(&mut i.timers),
                i.network.take(),
                i.pending.take(),
                i.subs.take(),
            )
        };
        if let Some(mut s) = socket {
            s.set_close(1000, "disposed");
        }
        drop((timers, network, subs));
        pending.reject(&js_sys::Error::new("the WebSocketService was disposed"));
    }
}

/// Creates the service (not connected yet) and its `online`/`offline` listeners.
pub fn create(url: String, protocols: Vec<String>, config: super::machine::Config) -> WsService {
    let online = crate::runtime::window()
        .map(|w| w.navigator().on_line())
        .unwrap_or(true);
    let shared: Shared = Rc::new(RefCell::new(Inner {
        machine: Machine::new(config, online),
        url,
        protocols,
        socket: None,
        timers: Default::default(),
        subs: Subscribers::new("WebSocketService"),
        pending: Waiters::default(),
        invalid_frames: 0,
        network: None,
    }));
    let pair = network_listeners(Rc::downgrade(&shared), |s, online| {
        feed(
            s,
            if online {
                Event::Online
            } else {
                Event::Offline
            },
        );
    });
    shared.borrow_mut().network = pair;
    WsService { shared }
}

impl WsService {
    /// A weak handle for the JS wrapper (which must not keep the service alive).
    pub fn downgrade(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.shared)
    }
}

/// `connect()`: a promise that resolves on the first open.
pub fn connect(shared: &Shared) -> js_sys::Promise {
    let promise = shared.borrow_mut().pending.wait("connect()");
    feed(shared, Event::Connect);
    promise
}

/// `send(type, payload)`: encodes the envelope with the browser's JSON and hands it over (the
/// page's `type` and payload never enter the wasm).
pub fn send(shared: &Shared, kind: &JsValue, payload: &JsValue) -> Result<(), JsValue> {
    let frame = js_sys::Object::new();
    crate::runtime::set_own(&frame, "type", kind);
    let null = JsValue::NULL;
    let payload = if payload.is_undefined() {
        &null
    } else {
        payload
    };
    crate::runtime::set_own(&frame, "payload", payload);
    crate::runtime::set_number(&frame, "timestamp", js_sys::Date::now());
    let text = js_sys::JSON::stringify(&frame)
        .map_err(|_| js_sys::TypeError::new("payload: cannot be serialized as JSON"))?;
    feed(shared, Event::Send(text.into()));
    Ok(())
}

/// `disconnect(code, reason)`.
pub fn disconnect(shared: &Shared, code: u16, reason: String) {
    feed(shared, Event::Disconnect(code, reason));
}

/// Adds a message (`Some(type)`) or state (`None`) subscription; returns its id.
pub fn subscribe(
    shared: &Shared,
    kind: Option<String>,
    handler: js_sys::Function,
) -> Result<u64, TooManySubscriptions> {
    shared.borrow_mut().subs.add(kind, handler)
}

/// Ends a subscription; false when it was gone already.
pub fn unsubscribe(shared: &Shared, id: u64) -> bool {
    let removed = shared.borrow_mut().subs.remove(id);
    removed
}

/// True while subscription `id` is held.
pub fn has_subscription(shared: &Shared, id: u64) -> bool {
    shared.borrow().subs.contains(id)
}

/// The current state.
pub fn state(shared: &Shared) -> State {
    shared.borrow().machine.state()
}

/// Reconnect attempts since the last stable open.
pub fn attempts(shared: &Shared) -> u32 {
    shared.borrow().machine.attempts()
}

/// `stats()` counters and the count of frames that were not JSON envelopes.
pub fn stats(shared: &Shared) -> (Stats, u64) {
    let i = shared.borrow();
    (i.machine.stats(), i.invalid_frames)
}

/// Feeds one event to the machine and applies the effects. No borrow is held while page code
/// (subscribers, promise callbacks) runs, so that code may call back into the service.
fn feed(shared: &Shared, event: Event<JsValue>) {
    let effects = shared
        .borrow_mut()
        .machine
        .handle(js_sys::Date::now(), event);
    for effect in effects {
        apply(shared, effect);
    }
}

fn apply(shared: &Shared, effect: Effect<JsValue>) {
    match effect {
        Effect::Open { generation } => open(shared, generation),
        Effect::Close { code, reason } => {
            let socket = shared.borrow_mut().socket.take();
            if let Some(mut s) = socket {
                s.set_close(code, reason);
                drop(s); // handlers detached, then close()
            }
        }
        Effect::Send(text) => {
            let sent = shared
                .borrow()
                .socket
                .as_ref()
                .map(|s| s.raw().unchecked_ref::<TextSocket>().send(&text));
            if let Some(Err(e)) = sent {
                report::report("WebSocket send failed", &e);
            }
        }
        Effect::Arm(timer, ms) => {
            let weak = Rc::downgrade(shared);
            let t = Timeout::new(ms, move || {
                if let Some(s) = weak.upgrade() {
                    feed(&s, Event::Fired(timer));
                }
            });
            let old = shared.borrow_mut().timers[timer_slot(timer)].replace(t);
            drop(old);
        }
        Effect::Disarm(timer) => {
            let old = shared.borrow_mut().timers[timer_slot(timer)].take();
            drop(old);
        }
        Effect::State(state) => {
            let (handlers, attempt) = {
                let i = shared.borrow();
                (i.subs.for_state(), i.machine.attempts())
            };
            let info = js_sys::Object::new();
            crate::runtime::set_own(&info, "attempt", &attempt.into());
            let name = JsValue::from_str(state.as_str());
            for h in handlers {
                if let Err(e) = h.call2(&JsValue::UNDEFINED, &name, &info) {
                    report::report("a WebSocketService onState handler threw", &e);
                }
            }
        }
        Effect::Resolve => {
            let pending = shared.borrow_mut().pending.take();
            pending.resolve();
        }
        Effect::Reject(reason) => {
            let pending = shared.borrow_mut().pending.take();
            pending.reject(&js_sys::Error::new(reason));
        }
    }
}

fn open(shared: &Shared, generation: u64) {
    let (url, protocols) = {
        let i = shared.borrow();
        (i.url.clone(), i.protocols.clone())
    };
    let mut socket = match Socket::open(&url, &protocols) {
        Ok(s) => s,
        Err(e) => {
            // The URL was checked when the service was created, so this is rare (a CSP block,
            // say); the machine's connect timeout turns it into a reconnect.
            report::report("cannot open the WebSocket", &e);
            return;
        }
    };
    let weak = Rc::downgrade(shared);
    let handler = |f: fn(&Shared, u64, &web_sys::Event)| {
        let weak = Weak::clone(&weak);
        move |event: &web_sys::Event| {
            if let Some(s) = weak.upgrade() {
                f(&s, generation, event);
            }
        }
    };
    socket.on("open", handler(|s, g, _| feed(s, Event::Opened(g))));
    socket.on(
        "close",
        handler(|s, g, e| {
            let code = e
                .dyn_ref::<web_sys::CloseEvent>()
                .map_or(1006, web_sys::CloseEvent::code);
            feed(s, Event::Closed(g, code));
        }),
    );
    socket.on("error", handler(|s, g, _| feed(s, Event::Errored(g))));
    socket.on("message", handler(on_message));
    let old = shared.borrow_mut().socket.replace(socket);
    drop(old);
}

fn on_message(shared: &Shared, generation: u64, event: &web_sys::Event) {
    let parsed = event
        .dyn_ref::<web_sys::MessageEvent>()
        .map(web_sys::MessageEvent::data)
        .filter(JsValue::is_string)
        .and_then(|text| json_parse(&text).ok())
        .filter(JsValue::is_object);
    let kind = parsed
        .as_ref()
        .map(|m| crate::runtime::read(m, "type"))
        .and_then(|t| t.as_string());
    let (Some(message), Some(kind)) = (parsed, kind) else {
        shared.borrow_mut().invalid_frames += 1;
        feed(
            shared,
            Event::Message {
                generation,
                pong: None,
            },
        );
        return;
    };
    let payload = crate::runtime::read(&message, "payload");
    let pong = (kind == "pong")
        .then(|| crate::runtime::read(&payload, "timestamp"))
        .and_then(|t| t.as_f64());
    feed(shared, Event::Message { generation, pong });

    let handlers = shared.borrow().subs.for_message(&kind);
    for h in handlers {
        if let Err(e) = h.call2(&JsValue::UNDEFINED, &payload, &message) {
            report::report("a WebSocketService subscriber threw", &e);
        }
    }
}

// Frames stay the browser's strings: `send` and `JSON.parse` take them as they are, so a frame
// is never copied into the wasm and back.
#[wasm_bindgen]
extern "C" {
    /// A `WebSocket`, for a `send` that takes any string.
    type TextSocket;
    /// `socket.send(text)`.
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send(this: &TextSocket, text: &JsValue) -> Result<(), JsValue>;
    /// `JSON.parse(text)`.
    #[wasm_bindgen(catch, js_namespace = JSON, js_name = parse)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = vigilWsOptions)]
    fn read_options(options: &JsValue) -> Result<js_sys::Array, JsValue>;
}

/// Reads and checks `new WebSocketService(options)` (in `src/js/options.js`): `(url, protocols,
/// config)`; errors are `TypeError`s that name the option.
pub fn parse_options(options: &JsValue) -> Result<(String, Vec<String>, Config), JsValue> {
    let o = Bag(read_options(options)?);
    let protocols = o
        .value(1)
        .unchecked_into::<js_sys::Array>() // the reader made it an array of strings
        .iter()
        .filter_map(|p| p.as_string())
        .collect();
    let r = o.value(5);
    let reconnect = (!r.is_null()).then(|| {
        let r = Bag(r.unchecked_into());
        let max = r.number(4);
        Backoff {
            initial_delay_ms: r.number(0),
            max_delay_ms: r.number(1),
            factor: r.number(2),
            jitter: r.number(3),
            max_attempts: max.is_finite().then_some(max as u32),
        }
    });
    let config = Config {
        heartbeat_interval_ms: o.millis(2),
        heartbeat_timeout_ms: o.millis(3),
        connect_timeout_ms: o.millis(4),
        reconnect,
        max_queued_messages: o.number(6) as usize,
        seed: (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
    };
    Ok((o.text(0).unwrap_or_default(), protocols, config))
}
