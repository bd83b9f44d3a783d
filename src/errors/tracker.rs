//! The error tracker's browser shell: global handlers, console and navigation breadcrumbs, event
//! building, and delivery through the transport. Events are built as JS objects so `beforeSend`
//! receives an object and the browser's `JSON.stringify` encodes them (no serializer in wasm).

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::dedupe::{Dedupe, Signature};
use super::ring::{cut_message, Ring};
use super::stack::{self, Frame};
use crate::error::VigilError;
use crate::options::{type_name, Bag};
use crate::runtime::guards::{ConsolePatch, Listener};
use crate::runtime::manager::Service;
use crate::runtime::report;
use crate::runtime::telemetry::{at, num_at, page_state, random_js_id, Common};
use crate::transport::{envelope, machine::Category, shell as transport};

/// Linked `Error.cause` exceptions kept per event.
pub const MAX_CAUSES: usize = 5;
/// The SDK name in envelopes.
pub const SDK_NAME: &str = "vigil.javascript";

/// The levels events and breadcrumbs may have.
pub const LEVELS: [&str; 5] = ["fatal", "error", "warning", "info", "debug"];

/// The tracker's `Vigil.start` options, checked (the shared ones are [`Common`]).
#[derive(Debug)]
pub struct Settings {
    dsn_text: String,
    release: Option<String>,
    environment: String,
    sample_rate: f64,
    max_breadcrumbs: usize,
    capture_console: bool,
    capture_global_errors: bool,
    navigation_breadcrumbs: bool,
    before_send: Option<js_sys::Function>,
}

impl Settings {
    /// The tracker's options from the `Vigil.start` bag (checked by the reader).
    pub fn parse(o: &Bag, common: &Common) -> Self {
        let before_send = o.value(at::BEFORE_SEND);
        Self {
            dsn_text: common.dsn_text.clone(),
            release: common.release.clone(),
            environment: common.environment.clone(),
            sample_rate: o.number(at::SAMPLE_RATE),
            max_breadcrumbs: o.number(at::MAX_BREADCRUMBS) as usize,
            capture_console: o.flag(at::CAPTURE_CONSOLE),
            capture_global_errors: o.flag(at::CAPTURE_GLOBAL_ERRORS),
            navigation_breadcrumbs: o.flag(at::NAVIGATION_BREADCRUMBS),
            before_send: before_send.dyn_into().ok(),
        }
    }
}

/// Counters kept by the tracker itself (the transport keeps its own).
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    captured: u64,
    sampled_out: u64,
    dropped: u64,
}

/// Everything one tracker holds.
#[derive(Debug)]
pub struct Inner {
    settings: Settings,
    ring: Ring<JsValue>,
    dedupe: Dedupe,
    user: JsValue,
    tags: js_sys::Object,
    contexts: js_sys::Object,
    transport: transport::Shared,
    listeners: Vec<Listener>,
    patches: Vec<ConsolePatch>,
    counters: Counters,
}

/// Shared tracker state.
pub type Shared = Rc<RefCell<Inner>>;

/// The tracker as the cleanup manager owns it.
#[derive(Debug)]
pub struct TrackerService {
    shared: Shared,
}

impl TrackerService {
    /// A weak handle for the JS wrapper.
    pub fn downgrade(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.shared)
    }
}

/// The transport is flushed by its own service ([`crate::runtime::telemetry::TransportService`]).
impl Service for TrackerService {}

impl Drop for TrackerService {
    fn drop(&mut self) {
        report::set_sink(None);
        let (listeners, patches) = {
            let mut i = self.shared.borrow_mut();
            (
                core::mem::take(&mut i.listeners),
                core::mem::take(&mut i.patches),
            )
        };
        drop((listeners, patches)); // console restored, handlers removed
    }
}

/// Sets a fixed key on an object the tracker made (so it cannot throw).
fn set(target: &JsValue, key: &str, value: &JsValue) {
    crate::runtime::set_own(target, key, value);
}

fn get(target: &JsValue, key: &str) -> JsValue {
    crate::runtime::read(target, key)
}

/// Starts a tracker sending through `t`; the caller registers the returned service with the
/// cleanup manager.
pub fn start(settings: Settings, t: transport::Shared) -> TrackerService {
    let shared: Shared = Rc::new(RefCell::new(Inner {
        ring: Ring::new(settings.max_breadcrumbs),
        settings,
        dedupe: Dedupe::default(),
        user: JsValue::UNDEFINED,
        tags: js_sys::Object::new(),
        contexts: js_sys::Object::new(),
        transport: t,
        listeners: Vec::new(),
        patches: Vec::new(),
        counters: Counters::default(),
    }));
    attach(&shared);
    let weak = Rc::downgrade(&shared);
    report::set_sink(Some(Rc::new(move |context: &str, error: &JsValue| {
        if let Some(s) = weak.upgrade() {
            let (mechanism, handled, level) = if context == "panic" {
                ("panic", false, "fatal")
            } else {
                ("vigil", true, "error")
            };
            let hint = js_sys::Object::new();
            set(&hint, "level", &level.into());
            let tags = js_sys::Object::new();
            set(&tags, "vigil.context", &context.into());
            set(&hint, "tags", &tags);
            capture_exception(&s, error, (mechanism, handled), Some(&hint));
        }
    })));
    TrackerService { shared }
}

fn attach(shared: &Shared) {
    let Some(window) = crate::runtime::window() else {
        return;
    };
    let (globals, navigation, console) = {
        let s = &shared.borrow().settings;
        (
            s.capture_global_errors,
            s.navigation_breadcrumbs,
            s.capture_console,
        )
    };
    let weak = Rc::downgrade(shared);
    let mut listeners = Vec::new();
    if globals {
        let w = Weak::clone(&weak);
        listeners.push(Listener::new(&window, "error", move |e| {
            let Some(s) = w.upgrade() else { return };
            // An `ErrorEvent` always has a string `message`; a resource load error (a plain
            // `Event`) has none and is not a script error.
            let message = get(e, "message");
            if !message.is_string() {
                return;
            }
            let error = get(e, "error");
            let value = if error.is_undefined() || error.is_null() {
                message // cross-origin "Script error."
            } else {
                error
            };
            capture_exception(&s, &value, ("onerror", false), None);
        }));
        let w = Weak::clone(&weak);
        listeners.push(Listener::new(&window, "unhandledrejection", move |e| {
            let Some(s) = w.upgrade() else { return };
            capture_exception(&s, &get(e, "reason"), ("onunhandledrejection", false), None);
        }));
    }
    // Hidden pages may never come back: send what is queued with keepalive.
    let w = Weak::clone(&weak);
    listeners.push(Listener::new(&window, "visibilitychange", move |_| {
        let Some(s) = w.upgrade() else { return };
        let hidden = num_at(&page_state(), 2) > 0.0;
        if navigation {
            let message = if hidden { "hidden" } else { "visible" };
            crumb(&s, "navigation", message, "info");
        }
        if hidden {
            let t = Rc::clone(&s.borrow().transport);
            transport::flush_now(&t);
        }
    }));
    if navigation {
        for (name, category) in [
            ("popstate", "navigation"),
            ("focus", "ui"),
            ("blur", "ui"),
            ("online", "network"),
            ("offline", "network"),
        ] {
            let w = Weak::clone(&weak);
            listeners.push(Listener::new(&window, name, move |_| {
                if let Some(s) = w.upgrade() {
                    let message = if name == "popstate" {
                        crate::runtime::telemetry::page_url()
                    } else {
                        name.to_owned()
                    };
                    crumb(&s, category, &message, "info");
                }
            }));
        }
    }
    let mut patches = Vec::new();
    if console {
        for (method, level) in [("error", "error"), ("warn", "warning")] {
            let w = Weak::clone(&weak);
            let patch = ConsolePatch::install(method, move |args: &js_sys::Array| {
                if let Some(s) = w.upgrade() {
                    crumb(&s, "console", &js_line(args), level);
                }
            });
            // A patch refused means another live tracker holds it: a second `start` disposes
            // the first before attaching, so this only happens to a Rust user with two.
            if let Ok(p) = patch {
                patches.push(p);
            }
        }
    }
    let mut i = shared.borrow_mut();
    i.listeners = listeners;
    i.patches = patches;
}

#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    /// `String(value)` as JS does it (`undefined`, `null`, numbers, symbols, objects…), never
    /// throwing: a value whose conversion throws (its own `toString`, a revoked proxy) reads as
    /// "a value that cannot be read".
    #[wasm_bindgen(js_name = vigilText)]
    fn text(value: &JsValue) -> String;
    /// A console call's arguments as `text` writes each, one space apart.
    #[wasm_bindgen(js_name = vigilLine)]
    fn js_line(args: &js_sys::Array) -> String;
    /// `setTag` (`as_text`) and `setContext` on `target`, never throwing: `undefined` or `null`
    /// removes the entry.
    #[wasm_bindgen(js_name = vigilSetEntry)]
    fn js_set_entry(target: &js_sys::Object, key: &JsValue, value: &JsValue, as_text: bool);
    /// `[type, value, stack]` of a thrown value, never throwing: an `Error`'s `name`, `message`
    /// and `stack` (`""` when it has none); a string as an `Error`'s message; another object
    /// as "Object captured as exception with keys: " and its first ten keys; anything else as
    /// `String(value)`.
    #[wasm_bindgen(js_name = vigilDescribe)]
    fn js_describe(value: &JsValue) -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilCrumb)]
    fn js_crumb(category: &str, message: &str, level: &str) -> JsValue;
    #[wasm_bindgen(js_name = vigilCopyCrumb)]
    fn js_copy_crumb(crumb: &JsValue, message: Option<&str>) -> JsValue;
    #[wasm_bindgen(js_name = vigilFrame)]
    fn js_frame(
        filename: &str,
        function: Option<&str>,
        lineno: Option<u32>,
        colno: Option<u32>,
        in_app: bool,
        addr: Option<&str>,
    ) -> JsValue;
    #[wasm_bindgen(js_name = vigilException)]
    fn js_exception(
        kind: &str,
        value: &str,
        mechanism: &str,
        handled: bool,
        frames: js_sys::Array,
    ) -> JsValue;
    #[wasm_bindgen(js_name = vigilEvent)]
    fn js_event(
        id: &JsValue,
        level: &JsValue,
        environment: &str,
        release: Option<&str>,
        version: &str,
        tags: &js_sys::Object,
        contexts: &js_sys::Object,
        user: &JsValue,
        hint: &JsValue,
        crumbs: js_sys::Array,
    ) -> JsValue;
}

fn crumb(shared: &Shared, category: &str, message: &str, level: &str) {
    let b = js_crumb(category, cut_message(message), level);
    shared.borrow_mut().ring.push(b);
}

/// `addBreadcrumb({ category, message, level, data, type })`: timestamped now.
pub fn add_breadcrumb(shared: &Shared, crumb: &JsValue) -> Result<(), JsValue> {
    if !crumb.is_object() {
        return Err(VigilError::BadArgument {
            name: "breadcrumb",
            expected: "an object",
            got: type_name(crumb),
        }
        .into());
    }
    let message = get(crumb, "message").as_string();
    let b = js_copy_crumb(crumb, message.as_deref().map(cut_message));
    shared.borrow_mut().ring.push(b);
    Ok(())
}

/// The breadcrumbs, oldest first.
pub fn breadcrumbs(shared: &Shared) -> js_sys::Array {
    shared.borrow().ring.iter().cloned().collect()
}

/// `setUser`, `setTag`, `setContext`.
pub fn set_user(shared: &Shared, user: JsValue) {
    shared.borrow_mut().user = user;
}

/// Sets (or with `undefined` or `null`, removes) a tag: the value's text.
pub fn set_tag(shared: &Shared, key: &JsValue, value: &JsValue) {
    let tags = shared.borrow().tags.clone();
    js_set_entry(&tags, key, value, true);
}

/// Sets (or with `undefined` or `null`, removes) a named context.
pub fn set_context(shared: &Shared, name: &JsValue, value: &JsValue) {
    let contexts = shared.borrow().contexts.clone();
    js_set_entry(&contexts, name, value, false);
}

fn js_frames(frames: &[Frame]) -> js_sys::Array {
    frames
        .iter()
        .map(|f| {
            js_frame(
                f.filename,
                f.function,
                f.lineno,
                f.colno,
                f.in_app,
                f.instruction_addr,
            )
        })
        .collect()
}

/// Type, value and `Error.stack` text of one thrown value (`vigilDescribe` reads it).
fn describe(value: &JsValue) -> [String; 3] {
    let read = js_describe(value);
    let field = |at| read.get(at).as_string().unwrap_or_default();
    [field(0), field(1), field(2)]
}

/// The frames of a stack; the package's own glue and wasm are not the app's code.
fn frames(stack: &str) -> Vec<Frame<'_>> {
    let mut frames = stack::parse(stack, &[]);
    for f in &mut frames {
        if f.filename.ends_with("/vigil.js") || f.filename.ends_with("vigil_bg.wasm") {
            f.in_app = false;
        }
    }
    frames
}

/// Captures any thrown value; returns the event id (a JS string).
pub fn capture_exception(
    shared: &Shared,
    value: &JsValue,
    mechanism: (&str, bool),
    hint: Option<&JsValue>,
) -> JsValue {
    let main = describe(value);
    let signature = Signature::exception(&main[0], &main[1], &main[2]);
    // The main exception last, its causes (oldest first) before it, as Sentry orders them.
    let mut chain = vec![main];
    let mut cause = get(value, "cause");
    while chain.len() <= MAX_CAUSES && !cause.is_undefined() && !cause.is_null() {
        chain.push(describe(&cause));
        cause = get(&cause, "cause");
    }
    let values: js_sys::Array = chain
        .iter()
        .rev()
        .enumerate()
        .map(|(i, [kind, text, stack])| {
            let main = i + 1 == chain.len();
            js_exception(
                kind,
                text,
                if main { mechanism.0 } else { "chained" },
                mechanism.1,
                js_frames(&frames(stack)),
            )
        })
        .collect();
    let exception = js_sys::Object::new();
    set(&exception, "values", &values);
    let level = hint
        .map(|h| get(h, "level"))
        .filter(JsValue::is_string)
        .unwrap_or_else(|| JsValue::from_str("error"));
    let (id, event) = base_event(shared, &level, hint);
    set(&event, "exception", &exception);
    finish(shared, id, event, signature)
}

/// Captures a message at `level`; returns the event id (a JS string).
pub fn capture_message(shared: &Shared, message: &str, level: &JsValue) -> JsValue {
    let (id, event) = base_event(shared, level, None);
    set(&event, "message", &message.into());
    finish(shared, id, event, Signature::message(message))
}

/// A new event id (a JS string) and the event object under it.
fn base_event(shared: &Shared, level: &JsValue, hint: Option<&JsValue>) -> (JsValue, JsValue) {
    let id = random_js_id();
    let i = shared.borrow();
    let event = js_event(
        &id,
        level,
        &i.settings.environment,
        i.settings.release.as_deref(),
        env!("CARGO_PKG_VERSION"),
        &i.tags,
        &i.contexts,
        &i.user,
        hint.unwrap_or(&JsValue::UNDEFINED),
        i.ring.iter().cloned().collect(),
    );
    (id, event)
}

/// Sampling, dedupe, `beforeSend`, encoding, hand-off to the transport.
fn finish(shared: &Shared, id: JsValue, event: JsValue, signature: Signature) -> JsValue {
    let (rate, before_send) = {
        let mut i = shared.borrow_mut();
        i.counters.captured += 1;
        (i.settings.sample_rate, i.settings.before_send.clone())
    };
    if rate < 1.0 && js_sys::Math::random() >= rate {
        shared.borrow_mut().counters.sampled_out += 1;
        return id;
    }
    if shared.borrow_mut().dedupe.is_repeat(signature) {
        shared.borrow_mut().counters.dropped += 1;
        return id;
    }
    let mut event = event;
    if let Some(f) = before_send {
        match f.call1(&JsValue::UNDEFINED, &event) {
            Ok(v) if v.is_null() || v.is_undefined() => {
                shared.borrow_mut().counters.dropped += 1;
                return id;
            }
            Ok(v) if v.is_object() => event = v,
            Ok(_) => {} // not an event: send ours unchanged
            Err(e) => {
                // The event must not be lost to a bug in the hook: send it unchanged.
                let message = crate::text::concat(&["beforeSend threw: ", &text(&e)]);
                crumb(shared, "vigil", &message, "error");
            }
        }
    }
    // No borrow held while the browser encodes: a `toJSON` may call back into the tracker.
    let (dsn, t) = {
        let i = shared.borrow();
        (i.settings.dsn_text.clone(), Rc::clone(&i.transport))
    };
    let Some(body) = envelope::event(&id, &dsn, SDK_NAME, &event) else {
        shared.borrow_mut().counters.dropped += 1;
        return id;
    };
    transport::send(&t, Category::Error, body);
    id
}

/// The tracker's part of `stats()`, added to the transport's ([`crate::runtime::telemetry::stats`]).
pub fn add_stats(shared: &Shared, o: &js_sys::Object) {
    let c = shared.borrow().counters;
    let dropped = crate::runtime::get_own(o, "eventsDropped")
        .as_f64()
        .unwrap_or(0.0);
    let set = |k: &str, v: f64| crate::runtime::set_number(o, k, v);
    set("eventsCaptured", c.captured as f64);
    set("eventsDropped", dropped + c.dropped as f64);
    set("eventsSampledOut", c.sampled_out as f64);
}
