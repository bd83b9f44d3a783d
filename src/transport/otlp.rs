//! OTLP/HTTP JSON for metrics (reference.md): the model the monitor and the health sampler
//! fill ([`Gauge`], [`Point`], [`Resource`]), and its encoding, which the browser does
//! (`vigilOtlp` in `js/telemetry.js`: lowerCamelCase keys, `timeUnixNano` as a decimal string,
//! numbers as `JSON.stringify` writes them, NaN and infinities as 0). The wasm carries neither a
//! JSON writer nor float formatting, and the body is never copied into it.
use crate::prelude::*;
use wasm_bindgen::prelude::*;

use super::shell::Body;

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
    /// Points since the last export.
    pub points: Vec<Point>,
}

// An OTLP body built call by call in JS (`js/telemetry.js`): attributes wait for what comes next,
// a point (its attributes) or the body (the resource's); points of one name make one gauge.
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

/// The request body for `POST /v1/metrics`: scope `vigil` at this package's version.
pub fn encode(resource: &Resource<'_>, gauges: &[Gauge]) -> Body {
    let acc = js_sys::Object::new();
    for g in gauges {
        for p in &g.points {
            for (k, v) in &p.attributes {
                js_attr(&acc, k, v);
            }
            // Exact: every time is an `f64` of nanoseconds truncated to an integer.
            js_point(
                &acc,
                &g.name,
                &g.unit,
                &g.description,
                p.value,
                p.time_unix_nano as f64,
            );
        }
    }
    let fixed = [
        ("service.name", resource.service_name),
        ("deployment.environment", resource.environment),
        ("url.full", resource.page_url),
        ("vigil.export_id", resource.export_id),
    ];
    for (k, v) in fixed.iter().chain(resource.extra) {
        js_attr(&acc, k, v);
    }
    Body::from_js(js_otlp(&acc, env!("CARGO_PKG_VERSION")))
}
