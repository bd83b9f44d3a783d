//! OTLP/HTTP JSON metrics into rows: gauges, sums and histograms (their mean), each data point
//! with its time and string attributes. The parser is `opentelemetry-proto`'s serde types.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;

/// The most points one request may carry.
pub const MAX_POINTS: usize = 10_000;

/// One data point to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Value.
    pub value: f64,
    /// Nanoseconds since the epoch (0: unknown, the server's clock is used).
    pub time_unix_nano: u64,
    /// String attributes (other kinds are written as their JSON).
    pub attributes: BTreeMap<String, String>,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// Not an OTLP JSON export request.
    #[error("not an OTLP/HTTP JSON metrics request: {0}")]
    Malformed(String),
    /// More than [`MAX_POINTS`].
    #[error("more than {MAX_POINTS} data points in one request")]
    TooManyPoints,
}

fn attributes(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|a| {
            let value = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                _ => String::new(),
            };
            (a.key.clone(), value)
        })
        .collect()
}

/// The resource attribute naming one export (written by the vigil runtime): a retried export
/// with an id already stored is acknowledged and not stored twice.
pub const EXPORT_ID: &str = "vigil.export_id";

/// The most characters of an export id kept.
pub const MAX_EXPORT_ID: usize = 128;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Export {
    /// The points.
    pub rows: Vec<Row>,
    /// The first resource's [`EXPORT_ID`], if any.
    pub export_id: Option<String>,
    /// The first resource's attributes (`service.instance.id` names a runtime instance).
    pub resource: BTreeMap<String, String>,
}

/// Parses a request body into rows.
pub fn parse(body: &[u8]) -> Result<Export, OtlpError> {
    // serde would also take a JSON array as the struct's fields in order; OTLP is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(OtlpError::Malformed("expected a JSON object".into()));
    }
    let request: ExportMetricsServiceRequest =
        serde_json::from_slice(body).map_err(|e| OtlpError::Malformed(e.to_string()))?;
    let resource = request
        .resource_metrics
        .first()
        .and_then(|rm| rm.resource.as_ref())
        .map(|r| attributes(&r.attributes))
        .unwrap_or_default();
    let export_id = resource
        .get(EXPORT_ID)
        .filter(|id| !id.is_empty() && id.len() <= MAX_EXPORT_ID)
        .cloned();
    let mut rows = Vec::new();
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let mut push = |value: f64, time: u64, attrs: &[KeyValue]| {
                    if value.is_finite() {
                        rows.push(Row {
                            name: metric.name.clone(),
                            unit: metric.unit.clone(),
                            value,
                            time_unix_nano: time,
                            attributes: attributes(attrs),
                        });
                    }
                };
                let number = |v: &Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsDouble(d)) => Some(*d),
                    Some(number_data_point::Value::AsInt(i)) => Some(*i as f64),
                    None => None,
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            if let Some(v) = number(&p.value) {
                                push(v, p.time_unix_nano, &p.attributes);
                            }
                        }
                    }
                    Some(Data::Sum(s)) => {
                        for p in &s.data_points {
                            if let Some(v) = number(&p.value) {
                                push(v, p.time_unix_nano, &p.attributes);
                            }
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            if p.count > 0 {
                                push(
                                    p.sum.unwrap_or(0.0) / p.count as f64,
                                    p.time_unix_nano,
                                    &p.attributes,
                                );
                            }
                        }
                    }
                    _ => {} // other kinds are accepted and not stored
                }
                if rows.len() > MAX_POINTS {
                    return Err(OtlpError::TooManyPoints);
                }
            }
        }
    }
    Ok(Export {
        rows,
        export_id,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_sums_and_histograms() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"k"}}]},
            "scopeMetrics":[{"scope":{"name":"vigil","version":"0.1.0"},"metrics":[
              {"name":"web_vitals.lcp","unit":"ms","gauge":{"dataPoints":[{"asDouble":1234.5,"timeUnixNano":"1795305600123000000","attributes":[{"key":"rating","value":{"stringValue":"good"}}]}]}},
              {"name":"clicks","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"7","timeUnixNano":"1"}]}},
              {"name":"lat","unit":"ms","histogram":{"aggregationTemporality":1,"dataPoints":[{"count":"4","sum":40,"timeUnixNano":"2"}]}},
              {"name":"bad","gauge":{"dataPoints":[{"timeUnixNano":"3"}]}}
            ]}]}]}"#;
        let Export {
            rows, export_id, ..
        } = parse(body).unwrap();
        assert_eq!(export_id, None);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].name, "web_vitals.lcp");
        assert_eq!(rows[0].value, 1234.5);
        assert_eq!(rows[0].time_unix_nano, 1_795_305_600_123_000_000);
        assert_eq!(rows[0].attributes["rating"], "good");
        assert_eq!((rows[1].name.as_str(), rows[1].value), ("clicks", 7.0));
        assert_eq!((rows[2].name.as_str(), rows[2].value), ("lat", 10.0));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for body in [&b""[..], b"[]", b"{\"resourceMetrics\":5}", b"\xff"] {
            assert!(
                matches!(parse(body), Err(OtlpError::Malformed(_))),
                "{body:?}"
            );
        }
        assert_eq!(
            parse(b"{}").unwrap(),
            Export::default(),
            "an empty request is fine"
        );
    }

    #[test]
    fn the_export_id_comes_from_the_resource() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"vigil.export_id","value":{"stringValue":"v1.3"}}]},"scopeMetrics":[]}]}"#;
        assert_eq!(parse(body).unwrap().export_id.as_deref(), Some("v1.3"));
    }
}
