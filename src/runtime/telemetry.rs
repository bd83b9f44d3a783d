//! The fleet health sampler's browser shell: an `Interval` guard that exports a health sample
//! (the gauges [`super::health`] builds) through the shared transport, and a final sample when
//! the page is hidden for good (the manager's flush, before the transport's final flush).
//! The closure holds a `Weak` reference.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::guards::Interval;
use super::health::{self, HealthOption, Sample};
use super::ledger;
use super::manager::Service;
use crate::options::{type_name, Options};
use crate::perf::otlp::{self, Resource};
use crate::transport::{machine::METRIC, shell as transport};

#[wasm_bindgen(inline_js = r#"
const t0 = performance.now();
let heap = -1, busy = false;
// [JS heap bytes or -1, seconds since the runtime started]
export function vigilHealth() {
  const m = performance.memory, p = performance;
  if (!m && !busy && globalThis.crossOriginIsolated && p.measureUserAgentSpecificMemory) {
    busy = true;
    p.measureUserAgentSpecificMemory().then((r) => { heap = r.bytes; }, () => {}).finally(() => { busy = false; });
  }
  return [m ? m.usedJSHeapSize : heap, (p.now() - t0) / 1000];
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = vigilHealth)]
    fn read_health() -> js_sys::Array;
}

/// Reads `health` from the `Vigil.start` options: the interval, `None` when off.
pub fn read_option(options: &JsValue) -> Result<Option<u32>, JsValue> {
    let option = match Options(options).get("health") {
        None => HealthOption::Default,
        Some(v) => match v.as_bool() {
            Some(true) => HealthOption::Default,
            Some(false) => HealthOption::Off,
            None if v.is_object() && !v.is_function() && !js_sys::Array::is_array(&v) => {
                match Options(&v).get("intervalMs") {
                    None => HealthOption::Default,
                    Some(ms) => ms.as_f64().map_or_else(
                        || HealthOption::BadIntervalMs(type_name(&ms)),
                        HealthOption::IntervalMs,
                    ),
                }
            }
            None => HealthOption::Bad(type_name(&v)),
        },
    };
    Ok(health::interval(option)?)
}

/// What health exports are sent under.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name`: the release, or `vigil-page`.
    pub service_name: String,
    /// `deployment.environment`.
    pub environment: String,
    /// `service.version`, when a release was given.
    pub release: Option<String>,
    /// The page view id (the export ids start with it).
    pub view_id: String,
    /// Sample interval.
    pub interval_ms: u32,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    instance_id: String,
    transport: transport::Shared,
    interval: Option<Interval>,
    exports: u64,
}

/// The sampler as the cleanup manager owns it; dropping it clears the interval.
#[derive(Debug)]
pub struct HealthService {
    shared: Rc<RefCell<Inner>>,
}

impl Service for HealthService {
    /// The page is going away: the last sample goes with the final flush.
    fn flush(&self) {
        sample(&self.shared);
    }
}

impl Drop for HealthService {
    fn drop(&mut self) {
        let interval = self.shared.borrow_mut().interval.take();
        drop(interval);
    }
}

/// Starts sampling; the caller registers the service at `priority::HEALTH`.
pub fn start(settings: Settings, transport: transport::Shared) -> HealthService {
    let interval_ms = settings.interval_ms;
    let shared = Rc::new(RefCell::new(Inner {
        settings,
        instance_id: instance_id(),
        transport,
        interval: None,
        exports: 0,
    }));
    let weak = Rc::downgrade(&shared);
    let interval = Interval::new(interval_ms, move || {
        if let Some(s) = weak.upgrade() {
            sample(&s);
        }
    });
    shared.borrow_mut().interval = Some(interval);
    HealthService { shared }
}

thread_local! {
    /// The id used when `localStorage` keeps nothing: one per page.
    static PAGE_ID: String = crate::errors::tracker::new_event_id();
}

/// The instance id kept in `localStorage` (written the first time), else one per page.
fn instance_id() -> String {
    let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    let stored = storage
        .as_ref()
        .and_then(|s| s.get_item(health::INSTANCE_KEY).ok().flatten());
    if let Some(id) = health::stored_instance_id(stored) {
        return id;
    }
    let id = PAGE_ID.with(String::clone);
    if let Some(s) = storage {
        let _ = s.set_item(health::INSTANCE_KEY, &id); // quota or privacy mode: per page
    }
    id
}

/// Bytes of the runtime's linear memory.
pub fn wasm_memory_bytes() -> f64 {
    f64::from(
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length(),
    )
}

/// Writes a number as JS does (`Number.prototype.toString`): no float formatting in wasm.
pub fn js_number(v: f64, out: &mut String) {
    out.push_str(&String::from(
        js_sys::Number::from(v)
            .to_string_with_radix(10)
            .unwrap_or_else(|_| "0".into()),
    ));
}

fn sample(shared: &Rc<RefCell<Inner>>) {
    let read = read_health();
    let heap = read.get(0).as_f64().unwrap_or(-1.0);
    let gauges = health::gauges(&Sample {
        counts: ledger::counts(),
        js_heap: (heap >= 0.0).then_some(heap),
        wasm_bytes: wasm_memory_bytes(),
        uptime_s: read.get(1).as_f64().unwrap_or(0.0),
        now_ms: js_sys::Date::now(),
    });
    let (body, t) = {
        let mut i = shared.borrow_mut();
        i.exports += 1;
        let mut export_id = i.settings.view_id.clone();
        export_id.push_str(".health.");
        js_number(i.exports as f64, &mut export_id);
        let page_url = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let s = &i.settings;
        let mut extra = vec![("service.instance.id", i.instance_id.as_str())];
        if let Some(r) = &s.release {
            extra.push(("service.version", r));
        }
        let body = otlp::encode(
            &Resource {
                service_name: &s.service_name,
                environment: &s.environment,
                page_url: &page_url,
                export_id: &export_id,
                extra: &extra,
            },
            ("vigil", env!("CARGO_PKG_VERSION")),
            &gauges,
            &js_number,
        );
        (body, Rc::clone(&i.transport))
    };
    transport::send(&t, METRIC, body);
}
