//! What `Vigil.start` shares between the error tracker, the performance monitor and the fleet
//! health sampler: the common options (DSN, release, environment, endpoints, queue bound,
//! `health`), the transport built from them and owned by [`TransportService`] (so the tracker
//! and the monitor each compile without the other), and the health sampler's shell: an
//! `Interval` guard that exports a sample (the gauges [`super::health`] builds), and a final
//! sample when the page is hidden for good (the manager's flush, before the transport's final
//! flush). Every closure holds a `Weak` reference.

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::guards::Interval;
use super::health::{self, HealthOption, Sample};
use super::ledger;
use super::manager::Service;
use crate::error::VigilError;
use crate::options::Bag;
use crate::transport::dsn::Dsn;
use crate::transport::otlp::{self, Resource};
use crate::transport::{machine, machine::Category, shell as transport};

/// The options every part of `Vigil.start` shares, checked.
#[derive(Debug, Clone)]
pub struct Common {
    /// The DSN as given (the envelope header repeats it).
    pub dsn_text: String,
    /// The parsed DSN.
    pub dsn: Dsn,
    /// `release`.
    pub release: Option<String>,
    /// `environment`, default `production`.
    pub environment: String,
    /// `metricsUrl`, when given.
    pub metrics_url: Option<String>,
    /// `maxQueuedEvents`: the transport's bound.
    pub max_queued_events: usize,
    /// `health`: the sample interval, `None` when off.
    pub health_interval_ms: Option<u32>,
}

#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = vigilStartOptions)]
    fn read_start_options(options: &JsValue) -> Result<js_sys::Array, JsValue>;
}

/// Positions in the `Vigil.start` options bag (`vigilStartOptions` in `src/js/options.js`).
pub mod at {
    /// `dsn` (a string).
    pub const DSN: u32 = 0;
    /// `release`.
    pub const RELEASE: u32 = 1;
    /// `environment`.
    pub const ENVIRONMENT: u32 = 2;
    /// `metricsUrl`.
    pub const METRICS_URL: u32 = 3;
    /// `maxQueuedEvents`.
    pub const MAX_QUEUED_EVENTS: u32 = 4;
    /// `health`, as given.
    pub const HEALTH: u32 = 5;
    /// `sampleRate`.
    pub const SAMPLE_RATE: u32 = 6;
    /// `maxBreadcrumbs`.
    pub const MAX_BREADCRUMBS: u32 = 7;
    /// `captureConsole`.
    pub const CAPTURE_CONSOLE: u32 = 8;
    /// `captureGlobalErrors`.
    pub const CAPTURE_GLOBAL_ERRORS: u32 = 9;
    /// `navigationBreadcrumbs`.
    pub const NAVIGATION_BREADCRUMBS: u32 = 10;
    /// `beforeSend`.
    pub const BEFORE_SEND: u32 = 11;
    /// `flushIntervalMs`.
    pub const FLUSH_INTERVAL_MS: u32 = 12;
}

/// Reads and checks the `Vigil.start` options in JS; errors are `TypeError`s naming the option.
pub fn read_options(options: &JsValue) -> Result<Bag, JsValue> {
    Ok(Bag(read_start_options(options)?))
}

impl Common {
    /// The shared options; a DSN that does not parse is an `Error` naming the problem.
    pub fn parse(o: &Bag) -> Result<Self, JsValue> {
        let dsn_text = o.text(at::DSN).unwrap_or_default();
        let dsn = Dsn::parse(&dsn_text).map_err(|e| js_sys::Error::new(&e.message()))?;
        Ok(Self {
            dsn_text,
            dsn,
            release: o.text(at::RELEASE),
            environment: o.text(at::ENVIRONMENT).unwrap_or_default(),
            metrics_url: o.text(at::METRICS_URL),
            max_queued_events: o.number(at::MAX_QUEUED_EVENTS) as usize,
            health_interval_ms: read_health_option(o.value(at::HEALTH))?,
        })
    }

    /// `service.name` of metrics: the release, or `vigil-page`.
    pub fn service_name(&self) -> String {
        self.release.clone().unwrap_or_else(|| "vigil-page".into())
    }
}

#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    /// `list[at]` when it is a number, else 0: the numbers of the arrays `js/telemetry.js` answers,
    /// read without a `JsValue` (no handle made and dropped per number).
    #[wasm_bindgen(js_name = vigilNum)]
    pub fn num_at(list: &js_sys::Array, at: u32) -> f64;
    /// `[interactionCount or -1, usedJSHeapSize or -1, hidden (1 or 0), performance.now(),
    /// document.readyState is "complete" (1 or 0), location.href, navigator.onLine (1 or 0)]`:
    /// the page as the transport, the monitor and the tracker read it, in one call.
    #[wasm_bindgen(js_name = vigilPageState)]
    pub fn page_state() -> js_sys::Array;
}

/// `navigator.onLine`; true when the browser does not say.
pub fn online() -> bool {
    num_at(&page_state(), 6) > 0.0
}

/// The page's URL (`location.href`), "" outside a page.
pub fn page_url() -> String {
    page_state().get(5).as_string().unwrap_or_default()
}

/// 32 lowercase hex characters (a v4 UUID without dashes), as a JS string: event ids, which
/// Rust only hands on (to the event, the envelope and the page).
pub fn random_js_id() -> JsValue {
    js_random_id()
}

/// [`random_js_id`] as Rust text: view ids and instance ids, which Rust writes into others.
pub fn random_id() -> String {
    js_random_id().as_string().unwrap_or_default()
}

/// Builds the shared transport: envelopes to the DSN's envelope URL, metrics to `metricsUrl`
/// (default: the DSN's origin + `/v1/metrics?key=…`), what the last page left undelivered
/// restored from `localStorage`.
pub fn create_transport(common: &Common) -> transport::Shared {
    let dsn = &common.dsn;
    let origin = dsn.origin();
    let mut storage_key = String::from("vigil:envelopes:");
    for part in [dsn.public_key.as_str(), "@", &origin, "/", &dsn.project_id] {
        storage_key.push_str(part);
    }
    let url = dsn.envelope_url(concat!("vigil/", env!("CARGO_PKG_VERSION")));
    // Metrics go to the OTLP endpoint: ours takes the key in the query and `text/plain` (no
    // preflight, so the export survives the page); another collector gets JSON as OTLP says.
    let metrics = match &common.metrics_url {
        Some(u) => (u.clone(), "application/json"),
        None => {
            let mut u = dsn.metrics_url();
            u.push_str("?key=");
            u.push_str(&dsn.public_key);
            (u, transport::TEXT)
        }
    };
    transport::create(
        url,
        metrics,
        storage_key,
        machine::Config {
            max_queued: common.max_queued_events,
            seed: (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
            ..machine::Config::default()
        },
    )
}

/// The transport as the cleanup manager owns it, at `priority::TRANSPORT` (below everything that
/// sends through it): a flush sends what is queued with `keepalive`; dropping it stops the
/// transport (what is undelivered stays in `localStorage` for the next page).
#[derive(Debug)]
pub struct TransportService {
    shared: transport::Shared,
}

impl TransportService {
    /// Owns `shared`.
    pub fn new(shared: transport::Shared) -> Self {
        Self { shared }
    }

    /// A weak handle for the JS wrapper.
    pub fn downgrade(&self) -> Weak<RefCell<transport::Inner>> {
        Rc::downgrade(&self.shared)
    }
}

impl Service for TransportService {
    fn flush(&self) {
        transport::flush_now(&self.shared);
    }
}

impl Drop for TransportService {
    fn drop(&mut self) {
        transport::close(&self.shared);
    }
}

/// The transport's part of `stats()`: `eventsSent`, `eventsDropped`, `eventsQueued`,
/// `metricsQueued`, `metricsSent`, `sendFailures`, `rateLimitedUntil`; the tracker adds its own counters.
pub fn stats(shared: &transport::Shared) -> js_sys::Object {
    let ts = transport::stats(shared);
    let o = js_sys::Object::new();
    let set = |k: &str, v: f64| crate::runtime::set_number(&o, k, v);
    set("eventsCaptured", 0.0);
    set("eventsSent", ts.sent as f64);
    set("eventsDropped", ts.dropped as f64);
    set("eventsQueued", ts.queued as f64);
    set("metricsQueued", ts.metrics_queued as f64);
    set("eventsSampledOut", 0.0);
    set("metricsSent", ts.metrics_sent as f64);
    set("sendFailures", ts.send_failures as f64);
    if ts.rate_limited_until > 0.0 {
        set("rateLimitedUntil", ts.rate_limited_until);
    } else {
        crate::runtime::set_own(&o, "rateLimitedUntil", &JsValue::NULL);
    }
    o
}

#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilHealth)]
    fn read_health() -> js_sys::Array;
    #[wasm_bindgen(js_name = vigilRandomId)]
    fn js_random_id() -> JsValue;
    /// `localStorage.getItem`, `None` when storage is missing or refuses.
    #[wasm_bindgen(js_name = vigilLoad)]
    fn js_load(key: &str) -> Option<String>;
    /// `localStorage.setItem`, nothing when storage is missing or refuses.
    #[wasm_bindgen(js_name = vigilSave)]
    fn js_save(key: &str, value: &str);
}

/// The `health` option as `vigilStartOptions` checked it (`undefined` for the default, `false`
/// for off, else the interval): the interval, `None` when off.
fn read_health_option(v: JsValue) -> Result<Option<u32>, VigilError> {
    health::interval(match v.as_f64() {
        Some(ms) => HealthOption::IntervalMs(ms),
        None if v.is_undefined() => HealthOption::Default,
        None => HealthOption::Off,
    })
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

crate::local! {
    /// The id used when `localStorage` keeps nothing: one per page.
    static PAGE_ID: String = random_id();
}

/// The instance id kept in `localStorage` (written the first time), else one per page.
fn instance_id() -> String {
    if let Some(id) = health::stored_instance_id(js_load(health::INSTANCE_KEY)) {
        return id;
    }
    let id = PAGE_ID.with(String::clone);
    js_save(health::INSTANCE_KEY, &id); // quota or privacy mode: one per page
    id
}

/// Bytes of the runtime's linear memory: its size in 64 KiB pages, read by the `memory.size`
/// instruction (what `memory.buffer.byteLength` says, without three imports); 0 natively.
pub fn wasm_memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size(0);
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0usize;
    pages as f64 * 65_536.0
}

fn sample(shared: &Rc<RefCell<Inner>>) {
    let read = read_health();
    let heap = num_at(&read, 0);
    let mut points = otlp::Encoder::default();
    let sample = Sample {
        counts: ledger::counts(),
        js_heap: (heap >= 0.0).then_some(heap),
        wasm_bytes: wasm_memory_bytes(),
        uptime_s: num_at(&read, 1),
        now_ms: js_sys::Date::now(),
    };
    health::gauges(&sample, &mut points);
    let (body, t) = {
        let mut i = shared.borrow_mut();
        i.exports += 1;
        let mut export_id = i.settings.view_id.clone();
        export_id.push_str(".health.");
        crate::text::push_uint(&mut export_id, i.exports);
        let page_url = page_url();
        let s = &i.settings;
        let mut extra = vec![("service.instance.id", i.instance_id.as_str())];
        if let Some(r) = &s.release {
            extra.push(("service.version", r));
        }
        let body = points.finish(&Resource {
            service_name: &s.service_name,
            environment: &s.environment,
            page_url: &page_url,
            export_id: &export_id,
            extra: &extra,
        });
        (body, Rc::clone(&i.transport))
    };
    transport::send(&t, Category::Metric, body);
}
