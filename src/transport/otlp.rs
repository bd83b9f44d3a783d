//! OTLP/HTTP JSON for metrics (reference.md): lowerCamelCase keys, 64-bit integers as decimal
//! strings. Numbers are written by a function the caller passes in: the browser shell hands them
//! to JS (`Number.prototype.toString`), so Rust's float formatting (~10 KB) stays out of the wasm
//! bundle; native tests use Rust's.

use crate::prelude::*;
use crate::transport::envelope::quote;

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

fn attributes(pairs: &[(&str, &str)], out: &mut String) {
    out.push('[');
    pairs_into(pairs, out);
    out.push(']');
}

fn pairs_into(pairs: &[(&str, &str)], out: &mut String) {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        quote(k, out);
        out.push_str(",\"value\":{\"stringValue\":");
        quote(v, out);
        out.push_str("}}");
    }
}

/// The request body for `POST /v1/metrics`.
pub fn encode(
    resource: &Resource<'_>,
    scope: (&str, &str),
    gauges: &[Gauge],
    number: &dyn Fn(f64, &mut String),
) -> String {
    let mut out = String::from("{\"resourceMetrics\":[{\"resource\":{\"attributes\":[");
    pairs_into(
        &[
            ("service.name", resource.service_name),
            ("deployment.environment", resource.environment),
            ("url.full", resource.page_url),
            ("vigil.export_id", resource.export_id),
        ],
        &mut out,
    );
    if !resource.extra.is_empty() {
        out.push(',');
        pairs_into(resource.extra, &mut out);
    }
    out.push_str("]},\"scopeMetrics\":[{\"scope\":{\"name\":");
    quote(scope.0, &mut out);
    out.push_str(",\"version\":");
    quote(scope.1, &mut out);
    out.push_str("},\"metrics\":[");
    for (i, g) in gauges.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        quote(&g.name, &mut out);
        out.push_str(",\"unit\":");
        quote(&g.unit, &mut out);
        out.push_str(",\"description\":");
        quote(&g.description, &mut out);
        out.push_str(",\"gauge\":{\"dataPoints\":[");
        for (j, p) in g.points.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"asDouble\":");
            if p.value.is_finite() {
                number(p.value, &mut out);
            } else {
                out.push('0'); // JSON has no NaN or Infinity
            }
            out.push_str(",\"timeUnixNano\":\"");
            crate::text::push_uint(&mut out, p.time_unix_nano);
            out.push_str("\",\"attributes\":");
            let pairs: Vec<(&str, &str)> = p
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            attributes(&pairs, &mut out);
            out.push('}');
        }
        out.push_str("]}}");
    }
    out.push_str("]}]}]}");
    out
}

// Native only: the independent parser (opentelemetry-proto) is not built for wasm.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;

    fn rust_number(v: f64, out: &mut String) {
        out.push_str(&v.to_string());
    }

    #[test]
    fn opentelemetry_proto_reads_what_we_write() {
        let gauges = vec![
            Gauge {
                name: "web_vitals.lcp".into(),
                unit: "ms".into(),
                description: "Largest Contentful Paint".into(),
                points: vec![Point {
                    value: 1234.5,
                    time_unix_nano: 1_795_305_600_123_000_000,
                    attributes: vec![("rating".into(), "good".into())],
                }],
            },
            Gauge {
                name: "checkout \"time\"".into(),
                unit: "1".into(),
                description: String::new(),
                points: vec![
                    Point {
                        value: 3.0,
                        time_unix_nano: 1,
                        attributes: vec![],
                    },
                    Point {
                        value: f64::NAN,
                        time_unix_nano: 2,
                        attributes: vec![],
                    },
                ],
            },
        ];
        let body = encode(
            &Resource {
                service_name: "kiosk@1.4.0",
                environment: "production",
                page_url: "http://k/lobby?a=1",
                export_id: "view.1",
                extra: &[("service.instance.id", "0123456789abcdef0123456789abcdef")],
            },
            ("vigil", "0.1.0"),
            &gauges,
            &rust_number,
        );
        let req: ExportMetricsServiceRequest = serde_json::from_str(&body).expect(&body);
        let rm = &req.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs[0].key, "service.name");
        assert_eq!(attrs[3].key, "vigil.export_id");
        assert_eq!(attrs[4].key, "service.instance.id");
        assert_eq!(attrs.len(), 5);
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(AnyValue::StringValue("kiosk@1.4.0".into()))
        );
        let sm = &rm.scope_metrics[0];
        assert_eq!(sm.scope.as_ref().unwrap().version, "0.1.0");
        assert_eq!(sm.metrics.len(), 2);
        assert_eq!(sm.metrics[1].name, "checkout \"time\"");
        let Some(Data::Gauge(g)) = &sm.metrics[0].data else {
            panic!("a gauge")
        };
        assert_eq!(g.data_points[0].value, Some(Value::AsDouble(1234.5)));
        assert_eq!(g.data_points[0].time_unix_nano, 1_795_305_600_123_000_000);
        assert_eq!(g.data_points[0].attributes[0].key, "rating");
        let Some(Data::Gauge(g)) = &sm.metrics[1].data else {
            panic!("a gauge")
        };
        assert_eq!(
            g.data_points[1].value,
            Some(Value::AsDouble(0.0)),
            "NaN written as 0"
        );
    }
}
