//! The transport's browser shell: `fetch` (with `keepalive` when the machine says so), one
//! `Timeout` guard for retries and limits, `online`/`offline` listeners, a `localStorage` copy of
//! what is undelivered (restored and sent on the next page load), and `flush(timeoutMs)` waiters.
//! Every closure holds a `Weak` reference.

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::machine::{self, Category, Config, Effect, Event, Machine, Stats};
use crate::runtime::guards::{network_listeners, when_settled, Listener, Timeout};
use crate::runtime::report;
use crate::runtime::telemetry::num_at;

/// At most this many `flush()` calls wait at once; more resolve `false` at once.
pub const MAX_FLUSH_WAITERS: usize = 64;

/// An encoded body as the browser made it: a JS string the wasm never copies (the JS encoders in
/// `js/telemetry.js` write envelopes and OTLP bodies, `fetch` sends them, `localStorage` keeps
/// them) and its size in UTF-8 bytes, which the machine's keepalive budget counts.
#[derive(Debug, Clone)]
pub struct Body {
    /// The string.
    pub text: JsValue,
    /// Its UTF-8 bytes.
    pub bytes: usize,
}

impl machine::Body for Body {
    fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Body {
    /// `[text, bytes]`, as the JS encoders answer.
    pub fn from_js(pair: JsValue) -> Self {
        let pair: js_sys::Array = pair.unchecked_into();
        Self {
            text: pair.get(0),
            bytes: num_at(&pair, 1) as usize,
        }
    }
}

/// Shared transport state.
pub type Shared = Rc<RefCell<Inner>>;

/// Everything one transport holds; dropping it releases every guard.
#[derive(Debug)]
pub struct Inner {
    machine: Machine<Body>,
    /// Where error envelopes go (as [`TEXT`]).
    url: String,
    /// Where metric exports go: `(url, content type)`.
    metrics: Route,
    storage_key: String,
    timer: Option<Timeout>,
    network: Option<(Listener, Listener)>,
    waiters: Vec<(u64, js_sys::Function, Timeout)>,
    next_waiter: u64,
    /// What the last failed send threw, for [`Effect::Report`].
    failure: JsValue,
}

/// An endpoint: `(url, content type)`.
pub type Route = (String, &'static str);

/// Creates the transport, restores what the last page left undelivered and starts sending it.
/// Error envelopes go to `url` as [`TEXT`], metric exports to `metrics`.
pub fn create(url: String, metrics: Route, storage_key: String, config: Config) -> Shared {
    let online = crate::runtime::telemetry::online();
    let shared: Shared = Rc::new(RefCell::new(Inner {
        machine: Machine::new(config, online),
        url,
        metrics,
        storage_key,
        timer: None,
        network: None,
        waiters: Vec::new(),
        next_waiter: 1,
        failure: JsValue::UNDEFINED,
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
    let key = shared.borrow().storage_key.clone(); // no borrow held while feeding
    for (category, body) in restore(&key) {
        feed(&shared, Event::Enqueue { category, body });
    }
    shared
}

/// Queues an encoded envelope.
pub fn send(shared: &Shared, category: Category, body: Body) {
    feed(shared, Event::Enqueue { category, body });
}

/// The page is going away: send what fits with `keepalive` now.
pub fn flush_now(shared: &Shared) {
    feed(shared, Event::Flush);
}

/// Counters.
pub fn stats(shared: &Shared) -> Stats {
    shared.borrow().machine.stats(js_sys::Date::now())
}

/// A promise of `true` once everything queued was acknowledged, `false` after `timeout_ms`.
pub fn flush(shared: &Shared, timeout_ms: u32) -> js_sys::Promise {
    // `[promise, resolve]` made in JS: no borrowed executor closure (the last closure type
    // besides `Tick` in the telemetry build).
    let pair = js_deferred();
    let promise: js_sys::Promise = pair.get(0).unchecked_into();
    let resolve: js_sys::Function = pair.get(1).unchecked_into();
    let settled = shared.borrow().machine.is_settled();
    if settled {
        let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::TRUE);
        return promise;
    }
    let too_many = shared.borrow().waiters.len() >= MAX_FLUSH_WAITERS;
    if too_many {
        let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::FALSE);
        return promise;
    }
    let id = {
        let mut i = shared.borrow_mut();
        let id = i.next_waiter;
        i.next_waiter += 1;
        id
    };
    let weak = Rc::downgrade(shared);
    // The waiter's own timeout: removed with the waiter, so no timer outlives the flush.
    let timeout = Timeout::new(timeout_ms, move || {
        let Some(s) = weak.upgrade() else { return };
        let waiter = {
            let mut i = s.borrow_mut();
            i.waiters
                .iter()
                .position(|w| w.0 == id)
                .map(|at| i.waiters.remove(at))
        };
        if let Some((_, resolve, timer)) = waiter {
            drop(timer);
            let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::FALSE);
        }
    });
    shared.borrow_mut().waiters.push((id, resolve, timeout));
    feed(shared, Event::Fired); // try now rather than after a pending retry delay
    promise
}

/// Releases the transport: timers, listeners; pending `flush()` promises resolve `false`.
/// What is undelivered stays in `localStorage` for the next page.
pub fn close(shared: &Shared) {
    let (timer, network, waiters) = {
        let mut i = shared.borrow_mut();
        (
            i.timer.take(),
            i.network.take(),
            core::mem::take(&mut i.waiters),
        )
    };
    drop((timer, network));
    for (_, resolve, timeout) in waiters {
        drop(timeout);
        let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::FALSE);
    }
}

fn feed(shared: &Shared, event: Event<Body>) {
    let effects = shared
        .borrow_mut()
        .machine
        .handle(js_sys::Date::now(), event);
    for effect in effects {
        match effect {
            Effect::Send {
                id,
                category,
                body,
                keepalive,
            } => post(shared, id, category, body, keepalive),
            Effect::Persist => persist(shared),
            Effect::Arm(ms) => {
                let weak = Rc::downgrade(shared);
                let t = Timeout::new(ms, move || {
                    if let Some(s) = weak.upgrade() {
                        feed(&s, Event::Fired);
                    }
                });
                let old = shared.borrow_mut().timer.replace(t);
                drop(old);
            }
            Effect::Disarm => {
                let old = shared.borrow_mut().timer.take();
                drop(old);
            }
            Effect::Report => {
                let failure = shared.borrow().failure.clone();
                report::report("transport", &failure);
            }
            Effect::Settled => {
                let waiters = core::mem::take(&mut shared.borrow_mut().waiters);
                for (_, resolve, timeout) in waiters {
                    drop(timeout);
                    let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::TRUE);
                }
            }
        }
    }
}

fn post(shared: &Shared, id: u64, category: Category, body: Body, keepalive: bool) {
    let (url, content_type) = {
        let i = shared.borrow();
        match category {
            Category::Error => (i.url.clone(), TEXT),
            Category::Metric => i.metrics.clone(),
        }
    };
    let weak = Rc::downgrade(shared);
    let sent = js_post(&url, content_type, &body.text, keepalive);
    when_settled(&sent, move |outcome| {
        // A transport disposed meanwhile ignores the answer (its copy is in localStorage).
        let Some(s) = weak.upgrade() else { return };
        let outcome: js_sys::Array = outcome.unchecked_into(); // `vigilPost` answers an array
        let header = |at| outcome.get(at).as_string();
        let event = match outcome.get(0).as_f64() {
            Some(status) if status >= 1.0 => Event::Answered {
                id,
                status: status as u16,
                sentry_limits: header(1),
                retry_after: header(2),
            },
            kind => {
                s.borrow_mut().failure = outcome.get(1);
                if kind == Some(0.0) {
                    Event::Failed(id)
                } else {
                    Event::Refused(id)
                }
            }
        };
        feed(&s, event);
    });
}

/// A simple request's body type: no CORS preflight (the key travels in the query).
pub const TEXT: &str = "text/plain;charset=UTF-8";

// `fetch` as the page has it now, never throwing into the wasm: `[status, rate limits,
// retry-after]`, `[0, error]` for a send that failed without an answer (network, CORS, CSP),
// `[-1, error]` for one that cannot be made (a malformed URL, a `fetch` that throws).
#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilPost)]
    fn js_post(url: &str, content_type: &str, body: &JsValue, keepalive: bool) -> js_sys::Promise;
    /// `[promise, resolve]`: a promise and the function that settles it.
    #[wasm_bindgen(js_name = vigilDeferred)]
    fn js_deferred() -> js_sys::Array;
}

/// Writes `[[category, body], …]` of every undelivered envelope to `localStorage` (or removes
/// the key when nothing is left). Quota errors lose only the persistent copy; the in-memory queue
/// still sends.
fn persist(shared: &Shared) {
    let i = shared.borrow();
    let flat = js_sys::Array::new();
    for e in i.machine.undelivered() {
        flat.push(&JsValue::from(e.category.code()));
        flat.push(&e.body.text);
    }
    js_save_queue(&i.storage_key, &flat);
}

/// What the last page left undelivered: `(category, body)` pairs.
fn restore(key: &str) -> Vec<(Category, Body)> {
    let flat = js_load_queue(key);
    (0..flat.length() / 3)
        .filter_map(|n| {
            Some((
                Category::from_code(num_at(&flat, 3 * n))?,
                Body {
                    text: flat.get(3 * n + 1),
                    bytes: num_at(&flat, 3 * n + 2) as usize,
                },
            ))
        })
        .collect()
}

// The transport's copy in `localStorage`, never throwing (privacy modes, quotas): `flat` is
// `[category code, body, …]` (stored as `[[category name, body], …]`); loading answers
// `[category code, body, bytes, …]` (code -1 for a name this version never writes), or `[]`
// for anything unreadable.
#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilSaveQueue)]
    fn js_save_queue(key: &str, flat: &js_sys::Array);
    #[wasm_bindgen(js_name = vigilLoadQueue)]
    fn js_load_queue(key: &str) -> js_sys::Array;
}
