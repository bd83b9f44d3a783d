//! The performance monitor's browser shell: one `PerformanceObserver` guard for every entry type
//! the browser supports, the listeners that end LCP (first input) and report on hide, the export
//! `Interval` guard, and the export itself through the transport the error tracker shares.
//! Entries are read into plain numbers by a small JS function and handed to [`Monitor`].
//! Every closure holds a `Weak` reference.

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::monitor::{Entry, Monitor, Navigation};
use crate::runtime::guards::{AnimationFrame, Interval, Listener, Observer, Timeout};
use crate::runtime::manager::Service;
use crate::runtime::telemetry::{self, num_at, page_state};
use crate::transport::otlp::{self, Resource};
use crate::transport::{machine::Category, shell as transport};

#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    /// `observe()` options (`{ type, buffered, durationThreshold? }`) for each entry type.
    #[wasm_bindgen(js_name = vigilPerfTypes)]
    fn supported_types() -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilPerfRead)]
    fn read_entries(list: &JsValue) -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilPerfNavigation)]
    fn navigation_entry() -> JsValue;
    #[wasm_bindgen(js_name = vigilPerfFirstHidden)]
    fn first_hidden(activation_start: f64) -> f64;
    #[wasm_bindgen(js_name = vigilPerfAttributes)]
    fn js_attributes(attributes: &JsValue) -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilPerfMark, catch)]
    fn mark_js(name: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = vigilPerfMeasure, catch)]
    fn measure_js(name: &str, start: &JsValue, end: &JsValue) -> Result<f64, JsValue>;
}

/// What the monitor exports under.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name`: the release, or `vigil-page`.
    pub service_name: String,
    /// `deployment.environment`.
    pub environment: String,
    /// Export interval.
    pub flush_interval_ms: u32,
    /// The page view id (`page.view_id` on vitals, and the export ids).
    pub view_id: String,
}

/// Everything one monitor holds; dropping it disconnects the observer and clears the interval.
#[derive(Debug)]
pub struct Inner {
    monitor: Monitor,
    settings: Settings,
    transport: transport::Shared,
    observer: Option<Observer>,
    listeners: Vec<Listener>,
    /// `keydown` and `click`: removed after the first input (LCP is final then).
    inputs: Vec<Listener>,
    /// `load`: removed once the navigation entry was read.
    load: Option<Listener>,
    /// Removes the input listeners after the first input (not from inside their own call).
    retire: Option<Timeout>,
    interval: Option<Interval>,
    /// Reads the navigation entry once `load` has ended.
    after_load: Option<Timeout>,
    /// The double animation frame after a back/forward-cache restore.
    frame: Option<AnimationFrame>,
    exports: u64,
    /// Bytes of the last export body (for `stats`).
    last_export_bytes: usize,
}

/// Shared monitor state.
pub type Shared = Rc<RefCell<Inner>>;

/// The monitor as the cleanup manager owns it.
#[derive(Debug)]
pub struct MonitorService {
    shared: Shared,
}

impl MonitorService {
    /// A weak handle for the JS wrapper.
    pub fn downgrade(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.shared)
    }
}

impl Service for MonitorService {
    /// The page is going away or into the back/forward cache: final values go now.
    fn flush(&self) {
        hidden(&self.shared);
    }

    /// Back from the back/forward cache: new measurements, LCP and FCP from the next frames.
    fn resume(&self) {
        restored(&self.shared);
    }
}

impl Drop for MonitorService {
    fn drop(&mut self) {
        let held = {
            let mut i = self.shared.borrow_mut();
            (
                i.observer.take(),
                core::mem::take(&mut i.listeners),
                core::mem::take(&mut i.inputs),
                i.load.take(),
                i.retire.take(),
                i.interval.take(),
                i.after_load.take(),
                i.frame.take(),
            )
        };
        drop(held);
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// What the monitor reads of [`page_state`]: the interaction count and the JS heap (when the
/// browser gives them), hidden, `performance.now()`.
fn state() -> (Option<u64>, Option<f64>, bool, f64) {
    let s = page_state();
    let count = num_at(&s, 0);
    let heap = num_at(&s, 1);
    (
        (count >= 0.0).then_some(count as u64),
        (heap >= 0.0).then_some(heap),
        num_at(&s, 2) > 0.0,
        num_at(&s, 3),
    )
}

fn to_entry(e: &JsValue) -> Option<Entry> {
    let a: &js_sys::Array = e.unchecked_ref();
    let f = |i: u32| num_at(a, i);
    Some(match f(0) as u32 {
        0 => Entry::Lcp { start_time: f(1) },
        1 => Entry::LayoutShift {
            start_time: f(1),
            value: f(2),
            had_recent_input: f(3) > 0.0,
        },
        2 => Entry::Interaction {
            interaction_id: f(3) as u64,
            duration: f(2),
        },
        4 => Entry::Fcp { start_time: f(1) },
        5 => Entry::Navigation(Navigation {
            activation_start: f(1),
            domain_lookup_start: f(2),
            domain_lookup_end: f(3),
            connect_start: f(4),
            connect_end: f(5),
            request_start: f(6),
            response_start: f(7),
            response_end: f(8),
            dom_interactive: f(9),
            dom_content_loaded: f(10),
            load_event_end: f(11),
        }),
        6 => Entry::LongTask { duration: f(2) },
        7 => Entry::Resource {
            name: a.get(4).as_string().unwrap_or_default(),
            duration: f(2),
            transfer_size: f(3),
        },
        _ => return None,
    })
}

fn feed(shared: &Shared, entries: &js_sys::Array) {
    let mut i = shared.borrow_mut();
    for e in entries.iter() {
        if let Some(entry) = to_entry(&e) {
            i.monitor.entry(entry);
        }
    }
}

/// Entries the observer holds but has not delivered yet (`takeRecords()`).
fn take_records(shared: &Shared) {
    let records = {
        let i = shared.borrow();
        let Some(o) = &i.observer else { return };
        read_entries(&o.raw().take_records())
    };
    feed(shared, &records);
}

/// Starts observing; the caller registers the returned service with the cleanup manager.
pub fn start(settings: Settings, transport: transport::Shared) -> MonitorService {
    let nav = navigation_entry();
    let activation_start = if nav.is_null() {
        0.0
    } else {
        num_at(nav.unchecked_ref(), 1)
    };
    let monitor = Monitor::new(
        settings.view_id.clone(),
        activation_start,
        first_hidden(activation_start),
    );
    let interval_ms = settings.flush_interval_ms;
    let shared: Shared = Rc::new(RefCell::new(Inner {
        monitor,
        settings,
        transport,
        observer: None,
        listeners: Vec::new(),
        inputs: Vec::new(),
        load: None,
        retire: None,
        interval: None,
        after_load: None,
        frame: None,
        exports: 0,
        last_export_bytes: 0,
    }));
    observe(&shared);
    listen(&shared);

    let weak = Rc::downgrade(&shared);
    let interval = Interval::new(interval_ms, move || {
        if let Some(s) = weak.upgrade() {
            export(&s);
        }
    });
    shared.borrow_mut().interval = Some(interval);
    MonitorService { shared }
}

fn observe(shared: &Shared) {
    let weak = Rc::downgrade(shared);
    let Ok(observer) = Observer::new(move |list: &JsValue| {
        if let Some(s) = weak.upgrade() {
            feed(&s, &read_entries(list));
        }
    }) else {
        return; // no PerformanceObserver: nothing to measure
    };
    for options in supported_types().iter() {
        let _ = observer.observe(&options);
    }
    shared.borrow_mut().observer = Some(observer);
}

fn listen(shared: &Shared) {
    let Some(window) = crate::runtime::window() else {
        return;
    };
    let mut listeners = Vec::new();
    let mut inputs = Vec::new();
    // The first input ends LCP (after the entries the observer still holds).
    for name in ["keydown", "click"] {
        let weak = Rc::downgrade(shared);
        inputs.push(Listener::new_with_options(
            &window,
            name,
            crate::runtime::guards::ListenerOptions::capture(),
            move |event| {
                if !event.is_trusted() {
                    return; // a script's synthetic click is not the user's first input
                }
                let Some(s) = weak.upgrade() else { return };
                if s.borrow().retire.is_some() {
                    return; // already final
                }
                take_records(&s);
                s.borrow_mut().monitor.input();
                let w = Rc::downgrade(&s);
                let retire = Timeout::new(0, move || {
                    let Some(s) = w.upgrade() else { return };
                    let inputs = core::mem::take(&mut s.borrow_mut().inputs);
                    drop(inputs);
                });
                s.borrow_mut().retire = Some(retire);
            },
        ));
    }
    // `visibilitychange` is fired at the document and bubbles to the window; listening on the
    // window in the capture phase sees it before any listener of the page can stop it.
    let weak = Rc::downgrade(shared);
    listeners.push(Listener::new_with_options(
        &window,
        "visibilitychange",
        crate::runtime::guards::ListenerOptions::capture(),
        move |_| {
            let Some(s) = weak.upgrade() else { return };
            let (_, _, is_hidden, _) = state();
            if is_hidden {
                hidden(&s);
            } else {
                s.borrow_mut().monitor.visible();
            }
        },
    ));
    // `document.readyState` is "complete": the navigation entry is final.
    if num_at(&page_state(), 4) > 0.0 {
        read_navigation(shared);
    } else {
        let weak = Rc::downgrade(shared);
        let load = Listener::new(&window, "load", move |_| {
            let Some(s) = weak.upgrade() else { return };
            // `loadEventEnd` is set once the load handlers have run.
            let w = Rc::downgrade(&s);
            let t = Timeout::new(0, move || {
                let Some(s) = w.upgrade() else { return };
                read_navigation(&s);
                let load = s.borrow_mut().load.take();
                drop(load);
            });
            s.borrow_mut().after_load = Some(t);
        });
        shared.borrow_mut().load = Some(load);
    }
    let mut i = shared.borrow_mut();
    i.listeners = listeners;
    i.inputs = inputs;
}

fn read_navigation(shared: &Shared) {
    let nav = navigation_entry();
    if nav.is_null() {
        return;
    }
    if let Some(entry) = to_entry(&nav) {
        shared.borrow_mut().monitor.entry(entry);
    }
}

/// Hidden or going away: take what the observer holds, report final values, send at once.
fn hidden(shared: &Shared) {
    take_records(shared);
    // Leaving before `load` ended: the navigation entry already has `responseStart`.
    let no_ttfb = shared
        .borrow()
        .monitor
        .value(super::vitals::Vital::Ttfb, None)
        .is_none();
    if no_ttfb {
        read_navigation(shared);
    }
    let (_, _, _, now) = state();
    shared.borrow_mut().monitor.hidden(now);
    export(shared);
    let t = Rc::clone(&shared.borrow().transport);
    transport::flush_now(&t);
}

fn restored(shared: &Shared) {
    let (count, _, _, shown_at) = state();
    let weak = Rc::downgrade(shared);
    // Two frames after the `pageshow`: the restored page has painted (as `web-vitals` measures).
    let first = AnimationFrame::new(move |_| {
        let Some(s) = weak.upgrade() else { return };
        let w = Rc::downgrade(&s);
        let second = AnimationFrame::new(move |_| {
            let Some(s) = w.upgrade() else { return };
            let (_, _, _, now) = state();
            s.borrow_mut().monitor.restored(count, now - shown_at);
            let f = s.borrow_mut().frame.take();
            drop(f);
        });
        s.borrow_mut().frame = Some(second);
    });
    shared.borrow_mut().frame = Some(first);
}

/// Builds and queues an export of what is new; nothing when nothing is.
pub fn export(shared: &Shared) {
    let (count, heap, _, _) = state();
    let body = {
        let mut i = shared.borrow_mut();
        let now = now_ms();
        if let Some(heap) = heap {
            i.monitor
                .record("browser.memory.js_heap_used", "By", heap, vec![], now);
        }
        let wasm = telemetry::wasm_memory_bytes();
        i.monitor
            .record("browser.memory.wasm", "By", wasm, vec![], now);
        let mut points = otlp::Encoder::default();
        i.monitor.export(now, count, &mut points);
        if points.points() == 0 {
            return;
        }
        i.exports += 1;
        let mut export_id = i.settings.view_id.clone();
        export_id.push('.');
        crate::text::push_uint(&mut export_id, i.exports);
        // A second `page_state` call this export (`state()` above made the first): measured, a
        // call every `flushIntervalMs` is cheaper than the 42 B that threading one read costs.
        let page_url = telemetry::page_url();
        let body = points.finish(&Resource {
            service_name: &i.settings.service_name,
            environment: &i.settings.environment,
            page_url: &page_url,
            export_id: &export_id,
            extra: &[],
        });
        i.last_export_bytes = body.bytes;
        body
    };
    let t = Rc::clone(&shared.borrow().transport);
    transport::send(&t, Category::Metric, body);
}

/// `vitals()`: `{ lcp?, cls?, inp?, fcp?, ttfb? }`, each `{ value, rating }`.
pub fn vitals(shared: &Shared) -> js_sys::Object {
    let (count, ..) = state();
    let out = js_sys::Object::new();
    for m in shared.borrow().monitor.vitals(count) {
        let v = js_sys::Object::new();
        crate::runtime::set_number(&v, "value", m.value);
        crate::runtime::set_own(&v, "rating", &m.rating.as_str().into());
        crate::runtime::set_own(&out, m.vital.name(), &v);
    }
    out
}

/// A page's `recordMetric` attributes as `(key, String(value))` pairs, in their order (read in JS,
/// which never throws: an object that cannot be read has none).
pub fn attributes(attributes: &JsValue) -> Vec<(String, String)> {
    let flat = js_attributes(attributes);
    let text = |at| flat.get(at).as_string().unwrap_or_default();
    (0..flat.length() / 2)
        .map(|n| (text(2 * n), text(2 * n + 1)))
        .collect()
}

/// `recordMetric(name, value, unit, attributes)`.
pub fn record(
    shared: &Shared,
    name: &str,
    value: f64,
    unit: &str,
    attributes: Vec<(String, String)>,
) {
    shared
        .borrow_mut()
        .monitor
        .record(name, unit, value, attributes, now_ms());
}

/// `measure(name, start?, end?)`: the User Timing measure, also recorded as
/// `user_timing.measure{measure.name}`.
pub fn measure(
    shared: &Shared,
    name: &str,
    start: &JsValue,
    end: &JsValue,
) -> Result<f64, JsValue> {
    let duration = measure_js(name, start, end)?;
    record(
        shared,
        "user_timing.measure",
        duration,
        "ms",
        vec![("measure.name".into(), name.into())],
    );
    Ok(duration)
}

/// `mark(name)`: a User Timing mark.
pub fn mark(name: &JsValue) -> Result<(), JsValue> {
    mark_js(name)
}

/// The monitor's part of `stats()`: `metricExports` (exports built), `lastExportBytes`,
/// `metricsDropped` (custom points beyond the series bound).
pub fn add_stats(shared: &Shared, o: &js_sys::Object) {
    let i = shared.borrow();
    let set = |k: &str, v: f64| {
        crate::runtime::set_number(o, k, v);
    };
    set("metricExports", i.exports as f64);
    set("lastExportBytes", i.last_export_bytes as f64);
    set("metricsDropped", i.monitor.dropped() as f64);
}

/// `flushIntervalMs` of the `Vigil.start` options bag: the export interval (default 10000).
pub fn flush_interval(o: &crate::options::Bag) -> u32 {
    o.millis(crate::runtime::telemetry::at::FLUSH_INTERVAL_MS)
}

/// `flush()`: export what is new now (not final values), then wait for the transport.
pub fn flush(shared: &Shared, timeout_ms: u32) -> js_sys::Promise {
    take_records(shared);
    export(shared);
    let t = Rc::clone(&shared.borrow().transport);
    transport::flush(&t, timeout_ms)
}
