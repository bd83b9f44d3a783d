//! `Vigil`: the error tracker, the performance monitor and the health sampler over one
//! transport; converts and delegates to [`crate::errors::tracker`], [`crate::perf::shell`] and
//! [`crate::runtime::telemetry`].

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::handle::alias_symbol_dispose;
use crate::error::{millis, VigilError};
#[cfg(feature = "errors")]
use crate::errors::tracker::{self, Inner as TrackerInner};
#[cfg(feature = "perf")]
use crate::perf::shell::{self as perf_shell, Inner as MonitorInner};
use crate::runtime::manager::{self, priority, Service};
use crate::runtime::registry::EntryId;
use crate::runtime::telemetry;
use crate::transport::shell as transport_shell;

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
  beforeSend?: (event: VigilEvent) => VigilEvent | null;
}
/** The Sentry-shaped event `beforeSend` receives (and may change). */
export interface VigilEvent {
  event_id: string;
  /** Seconds since the epoch. */
  timestamp: number;
  level: VigilLevel;
  environment: string;
  release?: string;
  message?: { formatted: string };
  exception?: { values: Array<{ type: string; value: string; stacktrace?: { frames: Array<Record<string, unknown>> } }> };
  tags: Record<string, unknown>;
  extra?: Record<string, unknown>;
  fingerprint?: string[];
  user?: VigilUser;
  contexts: Record<string, unknown>;
  breadcrumbs: { values: Breadcrumb[] };
  [key: string]: unknown;
}
/** `captureException(error, hint)`: added to that event only. */
export interface CaptureHint {
  level?: VigilLevel;
  tags?: Record<string, string | number | boolean>;
  extra?: Record<string, unknown>;
  fingerprint?: string[];
}
/** What `addBreadcrumb` takes; it is timestamped on entry. */
export interface BreadcrumbInput {
  category?: string;
  message?: string;
  level?: VigilLevel;
  type?: string;
  data?: Record<string, unknown>;
}
/** A stored breadcrumb; `timestamp` in seconds since the epoch. */
export interface Breadcrumb extends BreadcrumbInput {
  timestamp: number;
}
/** `setUser(user)`: Sentry's user fields, and any others. */
export interface VigilUser {
  id?: string | number;
  username?: string;
  email?: string;
  ip_address?: string;
  [key: string]: unknown;
}
export type VigilLevel = "fatal" | "error" | "warning" | "info" | "debug";
export interface VigilStats {
  eventsCaptured: number; eventsSent: number; eventsDropped: number; eventsQueued: number;
  eventsSampledOut: number; metricsSent: number; rateLimitedUntil: number | null;
  metricsQueued: number; metricExports: number; lastExportBytes: number; metricsDropped: number;
  /** Sends that failed without an answer (network, CORS, a CSP block) or could not be made (a
   * malformed URL, a `fetch` that throws; those are dropped). The first failure the transport
   * gives up on is reported once through the error tracker (tag `vigil.context: "transport"`). */
  sendFailures: number;
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

crate::local! {
    static CURRENT: RefCell<Option<Vigil>> = RefCell::new(None);
}

/// The error tracker, the performance monitor and the fleet health sampler of this page, sharing
/// one transport (each module only when its feature is built). All are owned by the cleanup
/// manager (the sampler and the monitor above the tracker, the transport last, so final exports
/// are queued before the transport flushes); a second `start` disposes the first.
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct Vigil {
    transport: Weak<RefCell<transport_shell::Inner>>,
    #[cfg(feature = "errors")]
    tracker: Weak<RefCell<TrackerInner>>,
    #[cfg(feature = "perf")]
    monitor: Weak<RefCell<MonitorInner>>,
    /// What `dispose()` removes, in this order: the sampler, the monitor, the tracker, the
    /// transport.
    entries: [Option<EntryId>; 4],
}

/// Registers `service`; on refusal removes what `entries` holds already.
fn register(
    entries: &mut [Option<EntryId>; 4],
    at: usize,
    priority: i32,
    service: impl Service + 'static,
) -> Result<(), JsValue> {
    match manager::register(priority, Rc::new(service)) {
        Ok(r) => {
            entries[at] = Some(r.hand_over());
            Ok(())
        }
        Err(e) => {
            remove_all(entries);
            Err(VigilError::from(e).into())
        }
    }
}

fn remove_all(entries: &[Option<EntryId>; 4]) {
    for id in entries.iter().flatten() {
        manager::remove(*id);
    }
}

#[wasm_bindgen]
impl Vigil {
    /// Starts the runtime; a DSN that does not parse throws an `Error` naming the problem.
    pub fn start(
        #[wasm_bindgen(unchecked_param_type = "VigilOptions")] options: JsValue,
    ) -> Result<Vigil, JsValue> {
        let bag = telemetry::read_options(&options)?;
        let common = telemetry::Common::parse(&bag)?;
        #[cfg(feature = "errors")]
        let tracker_settings = tracker::Settings::parse(&bag, &common);
        #[cfg(feature = "perf")]
        let flush_interval_ms = perf_shell::flush_interval(&bag);
        if let Some(old) = CURRENT.with(|c| c.borrow_mut().take()) {
            old.dispose(); // listeners, observers and console patches never double
        }
        let view_id = telemetry::random_id();
        let transport = telemetry::create_transport(&common);
        let service = telemetry::TransportService::new(Rc::clone(&transport));
        let mut vigil = Vigil {
            transport: service.downgrade(),
            #[cfg(feature = "errors")]
            tracker: Weak::new(),
            #[cfg(feature = "perf")]
            monitor: Weak::new(),
            entries: [None; 4],
        };
        register(&mut vigil.entries, 3, priority::TRANSPORT, service)?;
        #[cfg(feature = "errors")]
        {
            let service = tracker::start(tracker_settings, Rc::clone(&transport));
            vigil.tracker = service.downgrade();
            register(&mut vigil.entries, 2, priority::DEFAULT, service)?;
        }
        #[cfg(feature = "perf")]
        {
            let settings = perf_shell::Settings {
                service_name: common.service_name(),
                environment: common.environment.clone(),
                flush_interval_ms,
                view_id: view_id.clone(),
            };
            let service = perf_shell::start(settings, Rc::clone(&transport));
            vigil.monitor = service.downgrade();
            register(&mut vigil.entries, 1, priority::MONITOR, service)?;
        }
        if let Some(interval_ms) = common.health_interval_ms {
            let settings = telemetry::Settings {
                service_name: common.service_name(),
                environment: common.environment.clone(),
                release: common.release.clone(),
                view_id,
                interval_ms,
            };
            let service = telemetry::start(settings, transport);
            register(&mut vigil.entries, 0, priority::HEALTH, service)?;
        }
        CURRENT.with(|c| *c.borrow_mut() = Some(vigil.clone()));
        static ONCE: crate::runtime::local::Once = crate::runtime::local::Once::new();
        ONCE.call_once(|| {
            let probe = Vigil {
                transport: Weak::new(),
                #[cfg(feature = "errors")]
                tracker: Weak::new(),
                #[cfg(feature = "perf")]
                monitor: Weak::new(),
                entries: [None; 4],
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
                .filter(|v| v.transport.strong_count() > 0)
                .cloned()
        })
    }

    fn transport(&self) -> Result<transport_shell::Shared, JsValue> {
        self.transport.upgrade().ok_or_else(disposed)
    }

    /// Exports the metrics measured so far, then resolves `true` once every queued event and
    /// metric reached the server, `false` after `timeoutMs` (default 2000).
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn flush(&self, timeout_ms: Option<f64>) -> Result<js_sys::Promise, JsValue> {
        let ms = millis("timeoutMs", timeout_ms.unwrap_or(2000.0))?;
        let t = self.transport()?;
        #[cfg(feature = "perf")]
        if let Some(m) = self.monitor.upgrade() {
            return Ok(perf_shell::flush(&m, ms));
        }
        Ok(transport_shell::flush(&t, ms))
    }

    /// `{ eventsCaptured, eventsSent, eventsDropped, eventsQueued, eventsSampledOut,
    /// metricsSent, rateLimitedUntil }`, plus `metricsQueued`, `metricExports` (exports built),
    /// `lastExportBytes` and `metricsDropped` (custom points beyond the series bound).
    #[wasm_bindgen(unchecked_return_type = "VigilStats")]
    pub fn stats(&self) -> Result<js_sys::Object, JsValue> {
        let o = telemetry::stats(&self.transport()?);
        #[cfg(feature = "errors")]
        if let Some(t) = self.tracker.upgrade() {
            tracker::add_stats(&t, &o);
        }
        #[cfg(feature = "perf")]
        if let Some(m) = self.monitor.upgrade() {
            perf_shell::add_stats(&m, &o);
        }
        Ok(o)
    }

    /// Disconnects the performance observer, clears the export and health intervals, removes
    /// every listener, restores the console, stops the transport (what is undelivered stays
    /// queued for the next page load). Idempotent.
    pub fn dispose(&self) {
        remove_all(&self.entries);
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

/// The error tracker's methods (feature `errors`).
#[cfg(feature = "errors")]
#[wasm_bindgen]
impl Vigil {
    fn live(&self) -> Result<tracker::Shared, JsValue> {
        self.tracker.upgrade().ok_or_else(disposed)
    }
    /// Captures any value (an `Error`, a string, an object, `undefined`); returns the event id.
    /// `hint` = `{ level?, tags?, extra?, fingerprint? }`.
    ///
    /// The id is the JS string `crypto.randomUUID` gave (a returned `String` would be copied
    /// out again, with a deferred free in the glue per method); the same for `captureMessage`.
    #[wasm_bindgen(js_name = captureException, unchecked_return_type = "string")]
    pub fn capture_exception(
        &self,
        #[wasm_bindgen(unchecked_param_type = "unknown")] error: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CaptureHint")] hint: JsValue,
    ) -> Result<JsValue, JsValue> {
        let s = self.live()?;
        if let Some(level) = get_prop(&hint, "level") {
            check_level(level)?;
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
    #[wasm_bindgen(js_name = captureMessage, unchecked_return_type = "string")]
    pub fn capture_message(
        &self,
        message: String,
        #[wasm_bindgen(unchecked_optional_param_type = "VigilLevel")] level: JsValue,
    ) -> Result<JsValue, JsValue> {
        let s = self.live()?;
        let level = if level.is_undefined() {
            JsValue::from_str("info")
        } else {
            check_level(level)?
        };
        Ok(tracker::capture_message(&s, &message, &level))
    }

    /// Adds a breadcrumb `{ category?, message?, level?, data? }`, timestamped now.
    #[wasm_bindgen(js_name = addBreadcrumb)]
    pub fn add_breadcrumb(
        &self,
        #[wasm_bindgen(unchecked_param_type = "BreadcrumbInput")] breadcrumb: JsValue,
    ) -> Result<(), JsValue> {
        tracker::add_breadcrumb(&self.live()?, &breadcrumb)
    }

    /// The breadcrumbs, oldest first.
    #[wasm_bindgen(unchecked_return_type = "Breadcrumb[]")]
    pub fn breadcrumbs(&self) -> Result<js_sys::Array, JsValue> {
        Ok(tracker::breadcrumbs(&self.live()?))
    }

    /// Attached to later events; `null` clears.
    #[wasm_bindgen(js_name = setUser)]
    pub fn set_user(
        &self,
        #[wasm_bindgen(unchecked_param_type = "VigilUser | null")] user: JsValue,
    ) -> Result<(), JsValue> {
        tracker::set_user(&self.live()?, user);
        Ok(())
    }

    /// Attached to later events.
    #[wasm_bindgen(js_name = setTag)]
    pub fn set_tag(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | number | boolean")] value: JsValue,
    ) -> Result<(), JsValue> {
        tracker::set_tag(&self.live()?, &key, &value);
        Ok(())
    }

    /// Attached to later events; `null` removes it.
    #[wasm_bindgen(js_name = setContext)]
    pub fn set_context(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown> | null")] context: JsValue,
    ) -> Result<(), JsValue> {
        tracker::set_context(&self.live()?, &name, &context);
        Ok(())
    }
}

/// The performance monitor's methods (feature `perf`).
#[cfg(feature = "perf")]
#[wasm_bindgen]
impl Vigil {
    fn perf(&self) -> Result<perf_shell::Shared, JsValue> {
        self.monitor.upgrade().ok_or_else(disposed)
    }

    /// Adds a User Timing mark.
    pub fn mark(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] name: JsValue,
    ) -> Result<(), JsValue> {
        self.perf()?;
        perf_shell::mark(&name)
    }

    /// Adds a User Timing measure (from `startMark`, or the time origin, to `endMark`, or now)
    /// and returns its duration; it is also recorded as `user_timing.measure{measure.name}`.
    /// The marks go to the browser as the page gave them.
    pub fn measure(
        &self,
        name: String,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] start_mark: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] end_mark: JsValue,
    ) -> Result<f64, JsValue> {
        perf_shell::measure(&self.perf()?, &name, &start_mark, &end_mark)
    }

    /// Records a custom gauge point; exported with the next metrics export (the last value of
    /// each series between two exports).
    #[wasm_bindgen(js_name = recordMetric)]
    pub fn record_metric(
        &self,
        name: String,
        value: f64,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] unit: Option<String>,
        #[wasm_bindgen(
            unchecked_optional_param_type = "Record<string, string | number | boolean>"
        )]
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
        let attrs = perf_shell::attributes(&attributes);
        perf_shell::record(&m, &name, value, unit.as_deref().unwrap_or("1"), attrs);
        Ok(())
    }

    /// `{ lcp?, cls?, inp?, fcp?, ttfb? }`, each `{ value, rating }`: the values measured so far.
    #[wasm_bindgen(unchecked_return_type = "Vitals")]
    pub fn vitals(&self) -> Result<js_sys::Object, JsValue> {
        Ok(perf_shell::vitals(&self.perf()?))
    }
}

#[cfg(feature = "errors")]
fn get_prop(target: &JsValue, key: &str) -> Option<JsValue> {
    if !target.is_object() {
        return None;
    }
    Some(crate::runtime::read(target, key)).filter(|v| !v.is_undefined())
}

#[cfg(feature = "errors")]
/// `level` itself when it is one of [`tracker::LEVELS`].
fn check_level(level: JsValue) -> Result<JsValue, JsValue> {
    match level.as_string() {
        Some(l) if tracker::LEVELS.contains(&l.as_str()) => Ok(level),
        _ => Err(VigilError::BadArgument {
            name: "level",
            expected: "fatal, error, warning, info or debug",
            got: crate::options::type_name(&level),
        }
        .into()),
    }
}
