//! One RAII guard per kind of browser resource. Dropping a guard releases its resource; each guard
//! holds a ledger [`Ticket`], so [`super::ledger::counts`] is exactly what is live.
//!
//! **This file is the only place** allowed to touch the raw browser calls that can leak
//! (`addEventListener`, timers, `Closure`, patching `console`). Everything else in the crate holds
//! these guards, and the guards offer no `forget()`: a leak cannot be written with them.

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

use super::ledger::{ResourceKind, Ticket};
use crate::prelude::*;

/// How a [`Listener`] is added: passive, in the bubbling phase unless [`ListenerOptions::capture`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenerOptions {
    capture: bool,
}

impl ListenerOptions {
    /// Passive, in the capture phase (sees events whose propagation a page stops).
    pub fn capture() -> Self {
        Self { capture: true }
    }
}

/// An `addEventListener` undone on drop: the raw call inside [`Listener`] and [`Handlers`].
/// The event type is a JS string, so a page's `listen(target, type, …)` never copies it into
/// the wasm (which would bring wasm-bindgen's string-passing glue into `vigil/core`).
#[derive(Debug)]
struct RawListener {
    target: EventTarget,
    event_type: JsValue,
    capture: bool,
    callback: Tick,
}

/// The one closure type of the whole bundle, behind every guard that hands the browser a
/// callback ([`Listener`], [`Interval`], [`Timeout`], [`AnimationFrame`], [`Observer`],
/// [`ConsolePatch`], [`when_settled`]): each distinct closure type is an invoke shim in the wasm
/// and a wrapper in the glue. A callback that needs no argument ignores it (a timer's is
/// `undefined`); a one-shot callback is taken out of an `Option` on its first call.
type Tick = Closure<dyn FnMut(&JsValue)>;

/// What a [`Tick`] wraps. A listener's callback is wrapped once, where its type is known
/// (`move |e| f(e.unchecked_ref())`), so each listener is one allocation, not a box in a box.
type TickFn = Box<dyn FnMut(&JsValue)>;

/// A listener callback as a [`TickFn`]: the browser passes listeners an `Event`.
fn on_event<F: FnMut(&Event) + 'static>(mut callback: F) -> TickFn {
    Box::new(move |event: &JsValue| callback(event.unchecked_ref()))
}

impl RawListener {
    fn add(
        target: &EventTarget,
        event_type: JsValue,
        options: ListenerOptions,
        callback: TickFn,
    ) -> Self {
        let callback: Tick = Closure::wrap(callback);
        // A target that is not an `EventTarget` (a page's mistake) throws: nothing to undo.
        let _ = add_listener(
            target,
            &event_type,
            callback.as_ref().unchecked_ref(),
            options.capture,
        );
        Self {
            target: target.clone(),
            event_type,
            capture: options.capture,
            callback,
        }
    }
}

impl Drop for RawListener {
    fn drop(&mut self) {
        let _ = self.target.unchecked_ref::<Target>().remove_listener(
            &self.event_type,
            self.callback.as_ref().unchecked_ref(),
            self.capture,
        );
    }
}

// `observe` with any options object (web-sys's takes its typed init dictionary).
#[wasm_bindgen]
extern "C" {
    /// A `PerformanceObserver`, for the call below.
    type AnyObserver;
    #[wasm_bindgen(method, catch)]
    fn observe(this: &AnyObserver, options: &JsValue) -> Result<(), JsValue>;
}

// `addEventListener(type, callback, { capture, passive: true })` in one call (the options object
// made in JS, not by three web-sys imports).
#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = vigilListen)]
    fn add_listener(
        target: &EventTarget,
        event_type: &JsValue,
        callback: &js_sys::Function,
        capture: bool,
    ) -> Result<(), JsValue>;
}

// `removeEventListener` with the type as a JS value (web-sys's takes `&str`).
#[wasm_bindgen]
extern "C" {
    /// An `EventTarget`, for the call below.
    type Target;
    #[wasm_bindgen(method, catch, js_name = removeEventListener)]
    fn remove_listener(
        this: &Target,
        event_type: &JsValue,
        callback: &js_sys::Function,
        capture: bool,
    ) -> Result<(), JsValue>;
}

// The global timer functions (a page's and a worker's), as gloo-timers binds them.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(handler: &js_sys::Function, millis: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(id: &JsValue);
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, millis: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_name = requestAnimationFrame)]
    fn request_animation_frame(callback: &js_sys::Function) -> JsValue;
    #[wasm_bindgen(js_name = cancelAnimationFrame)]
    fn cancel_animation_frame(id: &JsValue);
}

/// Milliseconds as the timer functions take them (a longer delay waits as long as they allow).
fn timer_millis(millis: u32) -> i32 {
    i32::try_from(millis).unwrap_or(i32::MAX)
}

/// An event listener, removed when the guard is dropped.
///
/// ```no_run
/// use vigil::runtime::guards::Listener;
/// let window = vigil::runtime::window().unwrap();
/// let online = Listener::new(&window, "online", |_event| { /* reconnect */ });
/// drop(online); // removeEventListener: the callback never runs again
/// ```
#[derive(Debug)]
#[must_use = "the listener is removed as soon as this guard is dropped: keep it for as long as you want events"]
pub struct Listener {
    _inner: RawListener,
    _ticket: Ticket,
}

impl Listener {
    /// Listens for `event_type` on `target` (passive, bubbling phase).
    pub fn new<F>(target: &EventTarget, event_type: &str, callback: F) -> Self
    where
        F: FnMut(&Event) + 'static,
    {
        Self::new_with_options(target, event_type, ListenerOptions::default(), callback)
    }

    /// Listens with explicit options (the capture phase).
    pub fn new_with_options<F>(
        target: &EventTarget,
        event_type: &str,
        options: ListenerOptions,
        callback: F,
    ) -> Self
    where
        F: FnMut(&Event) + 'static,
    {
        Self::boxed(target, event_type, options, on_event(callback))
    }

    /// Listens for a type given as a JS string (the page's `listen(target, type, …)`), passive,
    /// in the bubbling phase.
    pub fn for_js_type<F>(target: &EventTarget, event_type: JsValue, callback: F) -> Self
    where
        F: FnMut(&Event) + 'static,
    {
        Self::boxed_js(
            target,
            event_type,
            ListenerOptions::default(),
            on_event(callback),
        )
    }

    // Every call site boxes its closure and shares this one body: ~300 bytes of wasm less per
    // listener site.
    #[inline(never)]
    fn boxed(
        target: &EventTarget,
        event_type: &str,
        options: ListenerOptions,
        callback: TickFn,
    ) -> Self {
        Self::boxed_js(target, JsValue::from_str(event_type), options, callback)
    }

    #[inline(never)]
    fn boxed_js(
        target: &EventTarget,
        event_type: JsValue,
        options: ListenerOptions,
        callback: TickFn,
    ) -> Self {
        Self {
            _inner: RawListener::add(target, event_type, options, callback),
            _ticket: Ticket::new(ResourceKind::Listener),
        }
    }
}

/// Calls `callback` once with what `promise` settles to: a promise reaction instead of a Rust
/// future (no executor in the bundle). The promise owns the callback until it settles, so the
/// callback must hold its owner by `Weak` and do nothing once the owner is gone. Meant for
/// promises that never reject (the JS helpers answer `[ok, value]`-style arrays); should one
/// reject, the callback gets the reason instead, and no unhandled rejection is left.
///
/// ```no_run
/// use vigil::runtime::guards::when_settled;
/// let answer: js_sys::Promise = js_sys::Promise::resolve(&wasm_bindgen::JsValue::from(42));
/// when_settled(&answer, |value| assert_eq!(value.as_f64(), Some(42.0)));
/// ```
pub fn when_settled<F>(promise: &js_sys::Promise, callback: F)
where
    F: FnOnce(JsValue) + 'static,
{
    when_settled_boxed(promise, Box::new(callback));
}

#[inline(never)]
fn when_settled_boxed(promise: &js_sys::Promise, callback: Box<dyn FnOnce(JsValue)>) {
    // A `Tick` like the other guards' (one closure type fewer in the bundle than wasm-bindgen's
    // self-freeing once-closure). It runs at most once, and its callback, with everything the
    // callback holds, is freed on that first call.
    let mut callback = Some(callback);
    let reaction: Tick = Closure::wrap(Box::new(move |value: &JsValue| {
        if let Some(callback) = callback.take() {
            callback(value.clone());
        }
    }));
    // Cannot leak: the promise is the only holder of the JS function (the runtime keeps no
    // reference), so once it settles and is collected, wasm-bindgen frees the small closure
    // left (an empty `Option`); a promise that never settles keeps it as it keeps any reaction.
    let reaction = reaction.into_js_value();
    let reaction: &js_sys::Function = reaction.unchecked_ref();
    // One function for both outcomes: it runs exactly once either way.
    let _ = promise.unchecked_ref::<Thenable>().then(reaction, reaction);
}

#[wasm_bindgen]
extern "C" {
    /// A promise, for `then` with a plain function (js-sys's takes a `Closure` it does not own).
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(
        this: &Thenable,
        on_fulfilled: &js_sys::Function,
        on_rejected: &js_sys::Function,
    ) -> JsValue;
}

/// `online` and `offline` on the window, calling `on_change(&owner, true | false)` while `owner`
/// is alive (a `Weak`: the owner holds the pair, so an `Rc` here would be a cycle). `None`
/// outside a page. Services that wait for the network hold the pair.
pub fn network_listeners<T: 'static>(
    owner: alloc::rc::Weak<T>,
    on_change: fn(&Rc<T>, bool),
) -> Option<(Listener, Listener)> {
    let window = crate::runtime::window()?;
    let on = |name: &'static str, online: bool| {
        let owner = alloc::rc::Weak::clone(&owner);
        Listener::new(&window, name, move |_| {
            if let Some(o) = owner.upgrade() {
                on_change(&o, online);
            }
        })
    };
    Some((on("online", true), on("offline", false)))
}

/// A repeating timer (`setInterval`), cleared when the guard is dropped.
///
/// ```no_run
/// use vigil::runtime::guards::Interval;
/// let tick = Interval::new(1_000, || { /* export metrics */ });
/// drop(tick); // clearInterval
/// ```
#[derive(Debug)]
#[must_use = "the interval is cleared as soon as this guard is dropped: keep it for as long as it should tick"]
pub struct Interval {
    id: JsValue,
    _callback: Tick,
    _ticket: Ticket,
}

impl Interval {
    /// Calls `callback` every `millis` milliseconds.
    pub fn new<F>(millis: u32, mut callback: F) -> Self
    where
        F: FnMut() + 'static,
    {
        Self::boxed(millis, Box::new(move |_: &JsValue| callback()))
    }

    #[inline(never)]
    fn boxed(millis: u32, callback: TickFn) -> Self {
        let callback: Tick = Closure::wrap(callback);
        Self {
            id: set_interval(callback.as_ref().unchecked_ref(), timer_millis(millis)),
            _callback: callback,
            _ticket: Ticket::new(ResourceKind::Interval),
        }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        clear_interval(&self.id);
    }
}

/// A one-shot timer (`setTimeout`), cleared when the guard is dropped before it fires.
///
/// The ledger counts it until it fires or is dropped, whichever comes first.
///
/// ```no_run
/// use vigil::runtime::guards::Timeout;
/// let give_up = Timeout::new(10_000, || { /* connect timed out */ });
/// drop(give_up); // clearTimeout: it will not fire
/// ```
#[must_use = "the timeout is cleared as soon as this guard is dropped: keep it until it fires"]
pub struct Timeout {
    id: JsValue,
    _callback: Tick,
    ticket: Rc<Cell<Option<Ticket>>>,
}

impl core::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Timeout")
            .field("pending", &self.is_pending())
            .finish()
    }
}

impl Timeout {
    /// Calls `callback` once after `millis` milliseconds.
    pub fn new<F>(millis: u32, callback: F) -> Self
    where
        F: FnOnce() + 'static,
    {
        Self::boxed(millis, Box::new(callback))
    }

    #[inline(never)]
    fn boxed(millis: u32, callback: Box<dyn FnOnce()>) -> Self {
        let ticket = Rc::new(Cell::new(Some(Ticket::new(ResourceKind::Timeout))));
        let fired = Rc::clone(&ticket);
        let mut callback = Some(callback);
        let callback: Tick = Closure::wrap(Box::new(move |_: &JsValue| {
            // Count it out before the callback runs: the timer is no longer pending.
            drop(fired.take());
            if let Some(callback) = callback.take() {
                callback();
            }
        }));
        Self {
            id: set_timeout(callback.as_ref().unchecked_ref(), timer_millis(millis)),
            _callback: callback,
            ticket,
        }
    }

    /// True until the timer fires.
    pub fn is_pending(&self) -> bool {
        let t = self.ticket.take();
        let pending = t.is_some();
        self.ticket.set(t);
        pending
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// An animation frame callback (`requestAnimationFrame`), cancelled when the guard is dropped
/// before the frame. Counted as a pending timeout until it runs or is dropped.
///
/// ```no_run
/// use vigil::runtime::guards::AnimationFrame;
/// let frame = AnimationFrame::new(|_time| { /* the next frame is about to paint */ });
/// drop(frame); // cancelAnimationFrame: it will not run
/// ```
#[must_use = "the frame callback is cancelled as soon as this guard is dropped: keep it until it runs"]
pub struct AnimationFrame {
    id: JsValue,
    _callback: Tick,
    ticket: Rc<Cell<Option<Ticket>>>,
}

impl core::fmt::Debug for AnimationFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let t = self.ticket.take();
        let pending = t.is_some();
        self.ticket.set(t);
        f.debug_struct("AnimationFrame")
            .field("pending", &pending)
            .finish()
    }
}

impl AnimationFrame {
    /// Calls `callback` with the frame time before the next repaint.
    pub fn new<F>(callback: F) -> Self
    where
        F: FnOnce(f64) + 'static,
    {
        Self::boxed(Box::new(callback))
    }

    #[inline(never)]
    fn boxed(callback: Box<dyn FnOnce(f64)>) -> Self {
        let ticket = Rc::new(Cell::new(Some(Ticket::new(ResourceKind::Timeout))));
        let ran = Rc::clone(&ticket);
        let mut callback = Some(callback);
        let callback: Tick = Closure::wrap(Box::new(move |time: &JsValue| {
            drop(ran.take());
            if let Some(callback) = callback.take() {
                callback(time.as_f64().unwrap_or_default());
            }
        }));
        Self {
            id: request_animation_frame(callback.as_ref().unchecked_ref()),
            _callback: callback,
            ticket,
        }
    }
}

impl Drop for AnimationFrame {
    fn drop(&mut self) {
        cancel_animation_frame(&self.id);
    }
}

/// Event handlers attached to one target, all removed when dropped. Used inside the guards for
/// objects that emit events (sockets, peer connections, data channels); the owning guard counts
/// the object, not each handler.
#[derive(Debug, Default)]
struct Handlers(Vec<RawListener>);

impl Handlers {
    fn add<F>(&mut self, target: &EventTarget, event_type: &'static str, callback: F)
    where
        F: FnMut(&Event) + 'static,
    {
        self.0.push(RawListener::add(
            target,
            JsValue::from_str(event_type),
            ListenerOptions::default(),
            on_event(callback),
        ));
    }
}

/// A `PerformanceObserver` that observes until the guard is dropped (then `disconnect()`).
#[derive(Debug)]
#[must_use = "the observer disconnects as soon as this guard is dropped"]
pub struct Observer {
    observer: web_sys::PerformanceObserver,
    _callback: Tick,
    _ticket: Ticket,
}

impl Observer {
    /// Creates an observer whose callback gets the `PerformanceObserverEntryList`; call
    /// [`Observer::observe`] to start it.
    pub fn new<F>(callback: F) -> Result<Self, JsValue>
    where
        F: FnMut(&JsValue) + 'static,
    {
        let callback: Tick = Closure::wrap(Box::new(callback));
        let observer = web_sys::PerformanceObserver::new(callback.as_ref().unchecked_ref())?;
        Ok(Self {
            observer,
            _callback: callback,
            _ticket: Ticket::new(ResourceKind::Observer),
        })
    }

    /// `observer.observe(options)`, e.g. `{ type: "layout-shift", buffered: true }`.
    pub fn observe(&self, options: &JsValue) -> Result<(), JsValue> {
        self.observer
            .unchecked_ref::<AnyObserver>()
            .observe(options)
    }

    /// The observer, for `takeRecords()`.
    pub fn raw(&self) -> &web_sys::PerformanceObserver {
        &self.observer
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}

/// A `WebSocket` and its handlers: dropping the guard detaches every handler, then closes the
/// socket (code 1000 unless [`Socket::set_close`] said otherwise).
#[derive(Debug)]
#[must_use = "the socket closes as soon as this guard is dropped"]
pub struct Socket {
    socket: web_sys::WebSocket,
    handlers: Handlers,
    close: (u16, String),
    _ticket: Ticket,
}

impl Socket {
    /// Opens a socket to `url` with optional sub-protocols.
    pub fn open(url: &str, protocols: &[String]) -> Result<Self, JsValue> {
        let socket = if protocols.is_empty() {
            web_sys::WebSocket::new(url)?
        } else {
            let list: js_sys::Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
            web_sys::WebSocket::new_with_str_sequence(url, &list)?
        };
        Ok(Self {
            socket,
            handlers: Handlers::default(),
            close: (1000, String::new()),
            _ticket: Ticket::new(ResourceKind::Socket),
        })
    }

    /// Handles `open`, `message`, `error` or `close` until the guard drops.
    pub fn on<F>(&mut self, event_type: &'static str, callback: F)
    where
        F: FnMut(&Event) + 'static,
    {
        self.handlers.add(&self.socket, event_type, callback);
    }

    /// The close code and reason used when the guard drops (1001 "going away" for the bfcache).
    pub fn set_close(&mut self, code: u16, reason: impl Into<String>) {
        self.close = (code, reason.into());
    }

    /// The socket, for `send` and `readyState`.
    pub fn raw(&self) -> &web_sys::WebSocket {
        &self.socket
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.handlers.0.clear();
        let state = self.socket.ready_state();
        if state == web_sys::WebSocket::CONNECTING || state == web_sys::WebSocket::OPEN {
            let (code, reason) = &self.close;
            let _ = self.socket.close_with_code_and_reason(*code, reason);
        }
    }
}

/// An `RTCPeerConnection` and its handlers: dropping detaches every handler and closes it.
#[derive(Debug)]
#[must_use = "the peer connection closes as soon as this guard is dropped"]
pub struct PeerConnection {
    pc: web_sys::RtcPeerConnection,
    handlers: Handlers,
    _ticket: Ticket,
}

impl PeerConnection {
    /// Takes ownership of a fresh peer connection.
    pub fn new(pc: web_sys::RtcPeerConnection) -> Self {
        Self {
            pc,
            handlers: Handlers::default(),
            _ticket: Ticket::new(ResourceKind::PeerConnection),
        }
    }

    /// Handles `track`, `iceconnectionstatechange`, `connectionstatechange`, … until the guard drops.
    pub fn on<F>(&mut self, event_type: &'static str, callback: F)
    where
        F: FnMut(&Event) + 'static,
    {
        self.handlers.add(&self.pc, event_type, callback);
    }

    /// The peer connection.
    pub fn raw(&self) -> &web_sys::RtcPeerConnection {
        &self.pc
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        self.handlers.0.clear();
        self.pc.close();
    }
}

/// An `RTCDataChannel` and its handlers: dropping detaches every handler and closes it.
#[derive(Debug)]
#[must_use = "the data channel closes as soon as this guard is dropped"]
pub struct DataChannel {
    channel: web_sys::RtcDataChannel,
    handlers: Handlers,
    _ticket: Ticket,
}

impl DataChannel {
    /// Takes ownership of a data channel.
    pub fn new(channel: web_sys::RtcDataChannel) -> Self {
        Self {
            channel,
            handlers: Handlers::default(),
            _ticket: Ticket::new(ResourceKind::DataChannel),
        }
    }

    /// Handles `open`, `message`, `close`, `error` until the guard drops.
    pub fn on<F>(&mut self, event_type: &'static str, callback: F)
    where
        F: FnMut(&Event) + 'static,
    {
        self.handlers.add(&self.channel, event_type, callback);
    }

    /// The channel, for `send`.
    pub fn raw(&self) -> &web_sys::RtcDataChannel {
        &self.channel
    }
}

impl Drop for DataChannel {
    fn drop(&mut self) {
        self.handlers.0.clear();
        self.channel.close();
    }
}

/// A `MediaStreamTrack` (a microphone), stopped when the guard is dropped.
#[derive(Debug)]
#[must_use = "the track stops as soon as this guard is dropped"]
pub struct MediaTrack {
    track: web_sys::MediaStreamTrack,
    _ticket: Ticket,
}

impl MediaTrack {
    /// Takes ownership of a live track.
    pub fn new(track: web_sys::MediaStreamTrack) -> Self {
        Self {
            track,
            _ticket: Ticket::new(ResourceKind::MediaTrack),
        }
    }

    /// The track, for `enabled` (mute).
    pub fn raw(&self) -> &web_sys::MediaStreamTrack {
        &self.track
    }
}

impl Drop for MediaTrack {
    fn drop(&mut self) {
        self.track.stop();
    }
}

/// A DOM element the runtime created; removed from the document when the guard is dropped.
#[derive(Debug)]
#[must_use = "the element is removed from the page as soon as this guard is dropped"]
pub struct OwnedElement {
    element: web_sys::Element,
    _ticket: Ticket,
}

impl OwnedElement {
    /// Takes ownership of an element we created (inserted or not).
    pub fn new(element: web_sys::Element) -> Self {
        Self {
            element,
            _ticket: Ticket::new(ResourceKind::Element),
        }
    }

    /// The element.
    pub fn raw(&self) -> &web_sys::Element {
        &self.element
    }
}

impl Drop for OwnedElement {
    fn drop(&mut self) {
        self.element.remove();
    }
}

// The error tracker is the patch's only user, so its JS lives in the telemetry snippet.
#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilPatchConsole)]
    fn patch_console(method: &str, hook: &Tick) -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilRestoreConsole)]
    fn restore_console(method: &str, original: &JsValue, patched: &JsValue);
}

/// Why a console patch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsolePatchError {
    /// The method is patched by this runtime already; patching twice would double every call.
    #[error("console.{0} is patched by vigil already")]
    AlreadyPatched(String),
}

crate::local! {
    static PATCHED: RefCell<Vec<String>> = RefCell::new(Vec::new());
}

/// `console[method]` wrapped so `hook` sees every call's arguments before the original runs;
/// the original is put back when the guard is dropped. A method is patched at most once at a time,
/// and a hook that logs through the console itself does not loop (re-entrant calls skip the hook).
#[derive(Debug)]
#[must_use = "the console is restored as soon as this guard is dropped"]
pub struct ConsolePatch {
    method: String,
    original: JsValue,
    patched: JsValue,
    _hook: Tick,
    _ticket: Ticket,
}

impl ConsolePatch {
    /// Wraps `console[method]` (`"error"`, `"warn"`, …).
    pub fn install<F>(method: &str, mut hook: F) -> Result<Self, ConsolePatchError>
    where
        F: FnMut(&js_sys::Array) + 'static,
    {
        let taken = PATCHED.with(|p| {
            let mut p = p.borrow_mut();
            if p.iter().any(|m| m == method) {
                true
            } else {
                p.push(method.to_owned());
                false
            }
        });
        if taken {
            return Err(ConsolePatchError::AlreadyPatched(method.to_owned()));
        }
        let hook: Tick = Closure::wrap(Box::new(move |args: &JsValue| hook(args.unchecked_ref())));
        let pair = patch_console(method, &hook);
        Ok(Self {
            method: method.to_owned(),
            original: pair.get(0),
            patched: pair.get(1),
            _hook: hook,
            _ticket: Ticket::new(ResourceKind::ConsolePatch),
        })
    }
}

impl Drop for ConsolePatch {
    fn drop(&mut self) {
        restore_console(&self.method, &self.original, &self.patched);
        let _ = PATCHED.try_with(|p| p.borrow_mut().retain(|m| *m != self.method));
    }
}
