//! OTLP/HTTP JSON for metrics (reference.md). The monitor and the health sampler hand their
//! points to a [`Points`] sink as they decide them, with borrowed names and attributes: in the
//! browser the [`Encoder`], whose points go straight to `vigilOtlp*` in `js/telemetry.js`, which
//! groups them into gauges by name and writes the JSON (lowerCamelCase keys, `timeUnixNano` as a
//! decimal string, numbers as `JSON.stringify` writes them, NaN and infinities as 0); in native
//! tests a `collect::Gauges` list (test-only). The wasm keeps no copy of a name, builds no intermediate
//! list, carries neither a JSON writer nor float formatting, and never copies the body.

use wasm_bindgen::prelude::*;

use super::shell::Body;

/// Where metric points go. Attributes given with [`Points::attr`] belong to the next point.
pub trait Points {
    /// One attribute of the next point.
    fn attr(&mut self, key: &str, value: &str);
    /// One point of the gauge `name` (points of one name make one gauge, in the order first seen).
    fn point(&mut self, name: &str, unit: &str, description: &str, value: f64, time_unix_nano: u64);
}

/// Resource attributes of every export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    /// `service.name`: the release, or `vigil-page`.
    pub service_name: &'a str,
    /// `deployment.environment`.
    pub environment: &'a str,
    /// `url.full` of the page.
    pub page_url: &'a str,
    /// `vigil.export_id`: unique per export, so a server can store a retried export once.
    pub export_id: &'a str,
    /// More resource attributes after these (health: `service.instance.id`, `service.version`).
    pub extra: &'a [(&'a str, &'a str)],
}

// The body is built call by call in JS: attributes wait for what comes next, a point (its
// attributes) or the body (the resource's).
#[wasm_bindgen(module = "/src/js/telemetry.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilOtlpAttr)]
    fn js_attr(acc: &js_sys::Object, key: &str, value: &str);
    #[wasm_bindgen(js_name = vigilOtlpPoint)]
    fn js_point(
        acc: &js_sys::Object,
        name: &str,
        unit: &str,
        description: &str,
        value: f64,
        time_unix_nano: f64,
    );
    /// `[body, bytes]`.
    #[wasm_bindgen(js_name = vigilOtlp)]
    fn js_otlp(acc: &js_sys::Object, version: &str) -> JsValue;
}

/// One export being written by the browser: points in, then [`Encoder::finish`].
#[derive(Debug)]
pub struct Encoder {
    acc: js_sys::Object,
    points: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            acc: js_sys::Object::new(),
            points: 0,
        }
    }
}

impl Points for Encoder {
    fn attr(&mut self, key: &str, value: &str) {
        js_attr(&self.acc, key, value);
    }

    fn point(
        &mut self,
        name: &str,
        unit: &str,
        description: &str,
        value: f64,
        time_unix_nano: u64,
    ) {
        self.points += 1;
        // Exact: every time is an `f64` of nanoseconds truncated to an integer.
        js_point(
            &self.acc,
            name,
            unit,
            description,
            value,
            time_unix_nano as f64,
        );
    }
}

impl Encoder {
    /// Points given so far.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The request body for `POST /v1/metrics`: scope `vigil` at this package's version.
    pub fn finish(self, resource: &Resource<'_>) -> Body {
        let fixed = [
            ("service.name", resource.service_name),
            ("deployment.environment", resource.environment),
            ("url.full", resource.page_url),
            ("vigil.export_id", resource.export_id),
        ];
        for (k, v) in fixed.iter().chain(resource.extra) {
            js_attr(&self.acc, k, v);
        }
        Body::from_js(js_otlp(&self.acc, env!("CARGO_PKG_VERSION")))
    }
}

/// Points collected into gauges, as the browser groups them: what the native tests read.
#[cfg(test)]
pub mod collect {
    use crate::prelude::*;

    /// One data point.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Point {
        /// The value.
        pub value: f64,
        /// When, in nanoseconds since the epoch.
        pub time_unix_nano: u64,
        /// String attributes.
        pub attributes: Vec<(String, String)>,
    }

    /// One gauge metric with its points.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Gauge {
        /// Metric name, e.g. `web_vitals.lcp`.
        pub name: String,
        /// UCUM unit, e.g. `ms` or `1`.
        pub unit: String,
        /// What it measures.
        pub description: String,
        /// Its points, in order.
        pub points: Vec<Point>,
    }

    /// A [`super::Points`] sink that keeps everything.
    #[derive(Debug, Default)]
    pub struct Gauges {
        pending: Vec<(String, String)>,
        /// The gauges, in the order their names were first seen.
        pub gauges: Vec<Gauge>,
    }

    impl super::Points for Gauges {
        fn attr(&mut self, key: &str, value: &str) {
            self.pending.push((key.into(), value.into()));
        }

        fn point(&mut self, name: &str, unit: &str, description: &str, value: f64, time: u64) {
            let point = Point {
                value,
                time_unix_nano: time,
                attributes: core::mem::take(&mut self.pending),
            };
            match self.gauges.iter_mut().find(|g| g.name == name) {
                Some(g) => g.points.push(point),
                None => self.gauges.push(Gauge {
                    name: name.into(),
                    unit: unit.into(),
                    description: description.into(),
                    points: vec![point],
                }),
            }
        }
    }
}
