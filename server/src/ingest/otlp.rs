//! OTLP/HTTP JSON metrics into rows: gauges, sums and histograms (their mean), each data point
//! with its time and string attributes. The parser is `opentelemetry-proto`'s serde types.

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;

/// The most points one request may carry.
pub const MAX_POINTS: usize = 10_000;

/// The longest metric name kept (bytes).
pub const MAX_NAME: usize = 255;

/// The longest unit kept (bytes).
pub const MAX_UNIT: usize = 63;

/// The most attributes on one point or resource.
pub const MAX_ATTRIBUTES: usize = 32;

/// The longest attribute key (bytes).
pub const MAX_KEY: usize = 128;

/// The longest attribute value (bytes, as stored).
pub const MAX_VALUE: usize = 1024;

/// One data point to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Metric name, shared by every point of its metric (not copied per point).
    pub name: Arc<str>,
    /// Unit, shared likewise.
    pub unit: Arc<str>,
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
    /// A name, unit, attribute key or value over its limit.
    #[error("{what} is longer than {max} bytes")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its limit.
        max: usize,
    },
    /// More than [`MAX_ATTRIBUTES`] attributes on one point or resource.
    #[error("more than {MAX_ATTRIBUTES} attributes on one {0}")]
    TooManyAttributes(&'static str),
}

fn check_len(value: &str, what: &'static str, max: usize) -> Result<(), OtlpError> {
    if value.len() > max {
        Err(OtlpError::TooLong { what, max })
    } else {
        Ok(())
    }
}

/// Checks attributes against the limits (before anything is copied out of them).
fn check_attributes(kv: &[KeyValue], on: &'static str) -> Result<(), OtlpError> {
    if kv.len() > MAX_ATTRIBUTES {
        return Err(OtlpError::TooManyAttributes(on));
    }
    for a in kv {
        check_len(&a.key, "an attribute key", MAX_KEY)?;
        if let Some(any_value::Value::StringValue(v)) =
            a.value.as_ref().and_then(|v| v.value.as_ref())
        {
            check_len(v, "an attribute value", MAX_VALUE)?;
        }
    }
    Ok(())
}

fn attributes(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .take(MAX_ATTRIBUTES)
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
    for rm in &request.resource_metrics {
        if let Some(r) = &rm.resource {
            check_attributes(&r.attributes, "resource")?;
        }
    }
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
                check_len(&metric.name, "a metric name", MAX_NAME)?;
                check_len(&metric.unit, "a unit", MAX_UNIT)?;
                // The point limit before any point is read: nothing is built past it.
                let points = match &metric.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    _ => 0,
                };
                if rows.len() + points > MAX_POINTS {
                    return Err(OtlpError::TooManyPoints);
                }
                let name: Arc<str> = Arc::from(metric.name.as_str());
                let unit: Arc<str> = Arc::from(metric.unit.as_str());
                let mut checked: Result<(), OtlpError> = Ok(());
                let mut push = |value: f64, time: u64, attrs: &[KeyValue]| {
                    if let Err(e) = check_attributes(attrs, "point") {
                        checked = Err(e);
                        return;
                    }
                    if value.is_finite() {
                        rows.push(Row {
                            name: Arc::clone(&name),
                            unit: Arc::clone(&unit),
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
                checked?;
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
        assert_eq!(&*rows[0].name, "web_vitals.lcp");
        assert_eq!(rows[0].value, 1234.5);
        assert_eq!(rows[0].time_unix_nano, 1_795_305_600_123_000_000);
        assert_eq!(rows[0].attributes["rating"], "good");
        assert_eq!((&*rows[1].name, rows[1].value), ("clicks", 7.0));
        assert_eq!((&*rows[2].name, rows[2].value), ("lat", 10.0));
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
