//! The Prometheus metrics `GET /metrics` exposes (names fixed by server-api.md).

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The reasons `vigil_events_rejected_total` is labelled with, shown at zero from the start.
pub const REJECT_REASONS: [&str; 5] = [
    "malformed",
    "unauthorized",
    "too_large",
    "rate_limited",
    "duplicate",
];

/// The `route` and `reason` pairs of `vigil_requests_refused_total`, shown at zero from the start.
pub const REFUSALS: [(&str, &str); 5] = [
    ("orders", "rate_limited"),
    ("voice_session", "rate_limited"),
    ("voice_session", "keys_full"),
    ("voice_realtime", "rate_limited"),
    ("voice_realtime", "too_many_calls"),
];

/// Every metric the server keeps, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events stored by the envelope endpoint.
    pub events_ingested: IntCounter,
    /// Events refused, by `reason`.
    pub events_rejected: IntCounterVec,
    /// Live WebSocket sessions.
    pub ws_connections: IntGauge,
    /// WebSocket messages, by `direction` (`in` / `out`).
    pub ws_messages: IntCounterVec,
    /// Live voice peers.
    pub voice_sessions: IntGauge,
    /// Voice calls ended, by `reason` (channel_closed, ice_disconnected, stopped, …).
    pub voice_sessions_ended: IntCounterVec,
    /// Voice keys dropped unspent, by `reason` (expired).
    pub voice_keys_dropped: IntCounterVec,
    /// Metric points stored by the OTLP endpoint.
    pub metric_points_ingested: IntCounter,
    /// Health samples deleted past their retention.
    pub health_samples_pruned: IntCounter,
    /// Rows deleted past their retention, by `table` (events, metric_points).
    pub rows_pruned: IntCounterVec,
    /// Connections closed on arrival, by `reason` (max_connections, max_per_ip).
    pub connections_refused: IntCounterVec,
    /// Requests whose handler panicked (answered 500).
    pub panics: IntCounter,
    /// OTLP requests refused, by `reason`.
    pub metric_requests_rejected: IntCounterVec,
    /// WebSocket sessions ended, by `reason` (client_closed, dropped, slow_reader, …).
    pub ws_sessions_ended: IntCounterVec,
    /// HTTP requests answered, by status class.
    pub http_requests: IntCounterVec,
    /// Orders deleted to keep only the newest.
    pub orders_pruned: IntCounter,
    /// Requests to the routes any page may call refused to protect the server, by `route`
    /// (orders, voice_session, voice_realtime) and `reason` (rate_limited, keys_full,
    /// too_many_calls).
    pub requests_refused: IntCounterVec,
    /// Orders seen by the cluster listener (PostgreSQL), by `outcome` (delivered, own, duplicate,
    /// malformed, caught_up, missing, publish_failed).
    pub cluster_orders: IntCounterVec,
    /// 1 while the cluster listener is connected and listening, else 0.
    pub cluster_listening: IntGauge,
    /// Times the cluster listener connected again after a loss.
    pub cluster_reconnects: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            events_ingested: IntCounter::new("vigil_events_ingested_total", "Error events stored")
                .expect("valid metric"),
            events_rejected: IntCounterVec::new(
                Opts::new("vigil_events_rejected_total", "Events refused, by reason"),
                &["reason"],
            )
            .expect("valid metric"),
            ws_connections: IntGauge::new("vigil_ws_connections", "Live WebSocket sessions")
                .expect("valid metric"),
            ws_messages: IntCounterVec::new(
                Opts::new(
                    "vigil_ws_messages_total",
                    "WebSocket messages, by direction",
                ),
                &["direction"],
            )
            .expect("valid metric"),
            voice_sessions: IntGauge::new("vigil_voice_sessions", "Live voice peers")
                .expect("valid metric"),
            voice_sessions_ended: IntCounterVec::new(
                Opts::new(
                    "vigil_voice_sessions_ended_total",
                    "Voice calls ended, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            voice_keys_dropped: IntCounterVec::new(
                Opts::new(
                    "vigil_voice_keys_dropped_total",
                    "Voice keys dropped unspent, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            metric_points_ingested: IntCounter::new(
                "vigil_metric_points_ingested_total",
                "OTLP metric points stored",
            )
            .expect("valid metric"),
            rows_pruned: IntCounterVec::new(
                Opts::new(
                    "vigil_rows_pruned_total",
                    "Rows deleted past their retention, by table",
                ),
                &["table"],
            )
            .expect("valid metric"),
            connections_refused: IntCounterVec::new(
                Opts::new(
                    "vigil_connections_refused_total",
                    "Connections closed on arrival, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            panics: IntCounter::new(
                "vigil_handler_panics_total",
                "Requests whose handler panicked (answered 500)",
            )
            .expect("valid metric"),
            health_samples_pruned: IntCounter::new(
                "vigil_health_samples_pruned_total",
                "Health samples deleted past their retention",
            )
            .expect("valid metric"),
            metric_requests_rejected: IntCounterVec::new(
                Opts::new(
                    "vigil_metric_requests_rejected_total",
                    "OTLP metric requests refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            ws_sessions_ended: IntCounterVec::new(
                Opts::new(
                    "vigil_ws_sessions_ended_total",
                    "WebSocket sessions ended, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            http_requests: IntCounterVec::new(
                Opts::new(
                    "vigil_http_requests_total",
                    "HTTP requests answered, by status class",
                ),
                &["class"],
            )
            .expect("valid metric"),
            orders_pruned: IntCounter::new(
                "vigil_orders_pruned_total",
                "Demo orders deleted to keep only the newest",
            )
            .expect("valid metric"),
            requests_refused: IntCounterVec::new(
                Opts::new(
                    "vigil_requests_refused_total",
                    "Requests to routes any page may call refused, by route and reason",
                ),
                &["route", "reason"],
            )
            .expect("valid metric"),
            cluster_orders: IntCounterVec::new(
                Opts::new(
                    "vigil_cluster_orders_total",
                    "Orders seen by the cluster listener, by outcome",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            cluster_listening: IntGauge::new(
                "vigil_cluster_listening",
                "1 while the cluster listener is connected to PostgreSQL",
            )
            .expect("valid metric"),
            cluster_reconnects: IntCounter::new(
                "vigil_cluster_reconnects_total",
                "Times the cluster listener reconnected after a loss",
            )
            .expect("valid metric"),
            registry,
        };
        for c in [
            Box::new(m.events_ingested.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.events_rejected.clone()),
            Box::new(m.ws_connections.clone()),
            Box::new(m.ws_messages.clone()),
            Box::new(m.voice_sessions.clone()),
            Box::new(m.voice_sessions_ended.clone()),
            Box::new(m.voice_keys_dropped.clone()),
            Box::new(m.metric_points_ingested.clone()),
            Box::new(m.health_samples_pruned.clone()),
            Box::new(m.connections_refused.clone()),
            Box::new(m.rows_pruned.clone()),
            Box::new(m.panics.clone()),
            Box::new(m.ws_sessions_ended.clone()),
            Box::new(m.metric_requests_rejected.clone()),
            Box::new(m.http_requests.clone()),
            Box::new(m.orders_pruned.clone()),
            Box::new(m.requests_refused.clone()),
            Box::new(m.cluster_orders.clone()),
            Box::new(m.cluster_listening.clone()),
            Box::new(m.cluster_reconnects.clone()),
        ] {
            m.registry.register(c).expect("metric names are unique");
        }
        // Labelled series appear only once touched; make the known ones visible at zero.
        for d in ["in", "out"] {
            m.ws_messages.with_label_values(&[d]);
        }
        for end in crate::hub::session::End::ALL {
            m.ws_sessions_ended.with_label_values(&[end.reason()]);
        }
        for end in crate::voice::peer::End::ALL {
            m.voice_sessions_ended.with_label_values(&[end.reason()]);
        }
        m.voice_keys_dropped.with_label_values(&["expired"]);
        for (route, reason) in REFUSALS {
            m.requests_refused.with_label_values(&[route, reason]);
        }
        for r in REJECT_REASONS {
            m.events_rejected.with_label_values(&[r]);
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding into a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_contract_name() {
        let m = Metrics::new();
        m.events_rejected.with_label_values(&["rate_limited"]).inc();
        let text = m.render();
        for name in [
            "vigil_events_ingested_total 0",
            "vigil_events_rejected_total{reason=\"rate_limited\"} 1",
            "vigil_ws_connections 0",
            "vigil_ws_messages_total{direction=\"in\"} 0",
            "vigil_voice_sessions 0",
            "vigil_voice_sessions_ended_total{reason=\"stopped\"} 0",
            "vigil_voice_keys_dropped_total{reason=\"expired\"} 0",
            "vigil_orders_pruned_total 0",
            "vigil_requests_refused_total{reason=\"keys_full\",route=\"voice_session\"} 0",
            "vigil_metric_points_ingested_total 0",
            "# TYPE vigil_ws_connections gauge",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
