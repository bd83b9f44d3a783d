//! Serde types that both halves of Vigil speak: the browser runtime (`vigil`) and the server
//! (`vigil-server`).
//!
//! Field names follow the wire contracts in `shared/specs`: the WebSocket envelope
//! (`{ type, payload, timestamp }`), the voice session answer (OpenAI Realtime's shape, snake_case),
//! and the read API the dashboard uses (camelCase).
//!
//! This crate has no I/O and no dependencies beyond `serde`, so the wasm bundle can use it without
//! pulling in `serde_json`.

#![no_std]

extern crate alloc;

use alloc::string::String;
use serde::{Deserialize, Serialize};

/// One WebSocket frame, in either direction: a JSON text frame
/// `{ "type": string, "payload": any, "timestamp": number }`.
///
/// `P` is the payload type; servers that route on `type` first use a raw value.
///
/// ```
/// use vigil_protocol::Envelope;
/// let frame: Envelope<u32> = Envelope::new("ping", 7, 1_700_000_000_000);
/// assert_eq!(frame.kind, "ping");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P> {
    /// What the message is: `welcome`, `ping`, `order:created`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The message body; `null` when a message has none.
    pub payload: P,
    /// Milliseconds since the Unix epoch, set by the sender.
    pub timestamp: u64,
}

impl<P> Envelope<P> {
    /// Builds an envelope of `kind` carrying `payload`, stamped `timestamp` (ms since the epoch).
    pub fn new(kind: impl Into<String>, payload: P, timestamp: u64) -> Self {
        Self {
            kind: kind.into(),
            payload,
            timestamp,
        }
    }
}

/// Message types of the `/ws` hub, so that neither side spells them by hand.
pub mod ws {
    use alloc::{string::String, vec::Vec};
    use serde::{Deserialize, Serialize};

    /// Sent by the server first on every connection.
    pub const WELCOME: &str = "welcome";
    /// Application-level heartbeat; answered by [`PONG`] with the same timestamp.
    pub const PING: &str = "ping";
    /// Answer to [`PING`].
    pub const PONG: &str = "pong";
    /// Client joins topics ([`Topics`]).
    pub const SUBSCRIBE: &str = "subscribe";
    /// Client leaves topics ([`Topics`]).
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// Server reports a malformed frame ([`ErrorPayload`]); the connection stays.
    pub const ERROR: &str = "error";

    /// Payload of [`WELCOME`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Welcome {
        /// The server's id for this connection.
        pub session_id: String,
        /// How often the server pings; a client may use it to size its own heartbeat.
        pub heartbeat_ms: u64,
    }

    /// Payload of [`PING`] and [`PONG`].
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub struct Heartbeat {
        /// The sender's clock when the ping left, echoed back unchanged.
        pub timestamp: f64,
    }

    /// Payload of [`SUBSCRIBE`] and [`UNSUBSCRIBE`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Topics {
        /// Topic names, e.g. `["orders"]`.
        pub topics: Vec<String>,
    }

    /// Payload of [`ERROR`].
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ErrorPayload {
        /// A stable machine-readable code, e.g. `bad_json`.
        pub code: String,
        /// What was wrong, for a person.
        pub message: String,
    }
}

/// The demo orders feed: `POST /api/orders`, topic `orders`, `orders:sync`.
pub mod orders {
    use alloc::{string::String, vec::Vec};
    use serde::{Deserialize, Serialize};

    /// The topic order messages go to.
    pub const TOPIC: &str = "orders";
    /// Broadcast when an order is stored; payload [`Order`].
    pub const CREATED: &str = "order:created";
    /// Broadcast when an order changes; payload [`Order`].
    pub const UPDATED: &str = "order:updated";
    /// Client asks for recent orders.
    pub const SYNC: &str = "orders:sync";
    /// Answer to [`SYNC`]; payload [`Snapshot`].
    pub const SNAPSHOT: &str = "orders:snapshot";

    /// One line of an order.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct OrderItem {
        /// What was ordered.
        pub name: String,
        /// How many.
        pub quantity: u32,
    }

    /// The body of `POST /api/orders`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct NewOrder {
        /// At least one item.
        pub items: Vec<OrderItem>,
    }

    /// A stored order.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Order {
        /// Server-assigned id.
        pub id: i64,
        /// The items.
        pub items: Vec<OrderItem>,
        /// RFC 3339, UTC.
        pub created_at: String,
    }

    /// Payload of [`SNAPSHOT`]: newest first.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Snapshot {
        /// Recent orders.
        pub orders: Vec<Order>,
    }
}

/// The web vitals both halves agree on: names, metric names and rating thresholds
/// (reference.md, the `web-vitals` library's values).
pub mod vitals {
    /// The five vitals.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Vital {
        /// Largest Contentful Paint (ms).
        Lcp,
        /// Cumulative Layout Shift (unitless).
        Cls,
        /// Interaction to Next Paint (ms).
        Inp,
        /// First Contentful Paint (ms).
        Fcp,
        /// Time to First Byte (ms).
        Ttfb,
    }

    impl Vital {
        /// Every vital.
        pub const ALL: [Vital; 5] = [Self::Lcp, Self::Cls, Self::Inp, Self::Fcp, Self::Ttfb];

        /// The key in `vitals()` and in `GET /api/{project}/vitals`.
        pub const fn name(self) -> &'static str {
            match self {
                Self::Lcp => "lcp",
                Self::Cls => "cls",
                Self::Inp => "inp",
                Self::Fcp => "fcp",
                Self::Ttfb => "ttfb",
            }
        }

        /// The OTLP metric name the monitor exports it as.
        pub const fn metric_name(self) -> &'static str {
            match self {
                Self::Lcp => "web_vitals.lcp",
                Self::Cls => "web_vitals.cls",
                Self::Inp => "web_vitals.inp",
                Self::Fcp => "web_vitals.fcp",
                Self::Ttfb => "web_vitals.ttfb",
            }
        }

        /// The UCUM unit it is exported with.
        pub const fn unit(self) -> &'static str {
            match self {
                Self::Cls => "1",
                _ => "ms",
            }
        }

        /// The metric description it is exported with.
        pub const fn description(self) -> &'static str {
            match self {
                Self::Lcp => "Largest Contentful Paint",
                Self::Cls => "Cumulative Layout Shift",
                Self::Inp => "Interaction to Next Paint",
                Self::Fcp => "First Contentful Paint",
                Self::Ttfb => "Time to First Byte",
            }
        }

        /// `(good, poor)` thresholds.
        pub const fn thresholds(self) -> (f64, f64) {
            match self {
                Self::Lcp => (2500.0, 4000.0),
                Self::Cls => (0.1, 0.25),
                Self::Inp => (200.0, 500.0),
                Self::Fcp => (1800.0, 3000.0),
                Self::Ttfb => (800.0, 1800.0),
            }
        }

        /// Above the second threshold poor, above the first needs-improvement, else good.
        pub fn rate(self, value: f64) -> Rating {
            let (good, poor) = self.thresholds();
            if value > poor {
                Rating::Poor
            } else if value > good {
                Rating::NeedsImprovement
            } else {
                Rating::Good
            }
        }
    }

    /// A vital's rating.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Rating {
        /// At or under the first threshold.
        Good,
        /// Between the thresholds.
        NeedsImprovement,
        /// Over the second threshold.
        Poor,
    }

    impl Rating {
        /// `"good" | "needs-improvement" | "poor"`.
        pub const fn as_str(self) -> &'static str {
            match self {
                Self::Good => "good",
                Self::NeedsImprovement => "needs-improvement",
                Self::Poor => "poor",
            }
        }
    }
}

/// The answer of `POST /voice/session`, in the OpenAI Realtime shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceSession {
    /// The single-use ephemeral key.
    pub client_secret: ClientSecret,
    /// Where the page posts its SDP offer, e.g. `/voice/realtime`.
    pub realtime_url: String,
}

/// An ephemeral key (`ek_…`) and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSecret {
    /// The key, sent back as `Authorization: Bearer …`.
    pub value: String,
    /// Unix seconds after which the key is refused.
    pub expires_at: u64,
}

/// One row of `GET /api/{project}/issues`: errors grouped by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueSummary {
    /// The grouping key.
    pub fingerprint: String,
    /// Exception type and value, or the message.
    pub title: String,
    /// Level of the latest event.
    pub level: String,
    /// Events in the group.
    pub count: u64,
    /// RFC 3339 time of the first event.
    pub first_seen: String,
    /// RFC 3339 time of the latest event.
    pub last_seen: String,
    /// Id of the latest event, for `GET /api/{project}/events/{eventId}`.
    pub last_event_id: String,
}

/// One web vital in `GET /api/{project}/vitals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VitalSummary {
    /// 75th percentile of the window, `null` when no point arrived.
    pub p75: Option<f64>,
    /// Points in the window.
    pub count: u64,
    /// Points rated good.
    pub good: u64,
    /// Points rated needs-improvement.
    pub needs_improvement: u64,
    /// Points rated poor.
    pub poor: u64,
}

/// One point in `GET /api/{project}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// RFC 3339 time of the point.
    pub time: String,
    /// The value.
    pub value: f64,
    /// The point's attributes, as a JSON object of strings.
    pub attributes: alloc::collections::BTreeMap<String, String>,
}

/// The JSON body of every 4xx/5xx answer of the server: `{ "error": "…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a person.
    pub error: String,
}

/// Fleet health (server-api.md, "Fleet health"): what the runtime exports and the fleet route
/// answers.
pub mod health {
    use alloc::collections::BTreeMap;
    use alloc::{string::String, vec::Vec};

    use serde::{Deserialize, Serialize};

    /// Gauge: one point per `resources()` key, attribute [`KIND`].
    pub const RESOURCES: &str = "vigil.resources";
    /// Gauge: bytes of JS heap, where the browser tells it.
    pub const JS_HEAP: &str = "vigil.memory.js_heap";
    /// Gauge: bytes of the runtime's wasm linear memory.
    pub const WASM: &str = "vigil.memory.wasm";
    /// Gauge: seconds since the runtime started.
    pub const UPTIME: &str = "vigil.uptime";
    /// The point attribute naming the resource kind.
    pub const KIND: &str = "kind";
    /// The resource attribute naming the runtime instance (kept in `localStorage`).
    pub const INSTANCE_ID: &str = "service.instance.id";

    /// A memory series in a fleet row.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct MemoryTrend {
        /// The latest sample, bytes (`null` when never reported).
        pub last: Option<f64>,
        /// Robust growth rate over the window.
        pub bytes_per_hour: f64,
    }

    /// A resource count in a fleet row.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CountTrend {
        /// The latest sample.
        pub last: f64,
        /// Robust growth rate over the window.
        pub per_hour: f64,
    }

    /// The bucketed series behind a row's trend lines (times in ms since the epoch; `null` where
    /// a bucket has no value).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TrendLines {
        /// Bucket times.
        pub time: Vec<i64>,
        /// JS heap bytes.
        pub heap: Vec<Option<f64>>,
        /// Wasm memory bytes.
        pub wasm: Vec<Option<f64>>,
        /// The sum of every resource count.
        pub resources: Vec<Option<f64>>,
    }

    /// One row of `GET /api/{project}/fleet`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct FleetInstance {
        /// `service.instance.id`.
        pub instance_id: String,
        /// The release the runtime reported (`service.version`, else `service.name`).
        pub release: String,
        /// The browser's `User-Agent`.
        pub user_agent: String,
        /// RFC 3339.
        pub first_seen: String,
        /// RFC 3339.
        pub last_seen: String,
        /// Samples in the window.
        pub samples: u64,
        /// JS heap.
        pub heap: MemoryTrend,
        /// Wasm linear memory.
        pub wasm: MemoryTrend,
        /// Per `resources()` kind.
        pub resources: BTreeMap<String, CountTrend>,
        /// Whether some series keeps growing (false with fewer than 10 samples).
        pub leaking: bool,
        /// Why, in words: `listeners +120/h`.
        pub reasons: Vec<String>,
        /// Whether there were enough samples (10) to judge.
        pub judged: bool,
        /// The series behind the trend lines (an addition to the contract).
        pub trend: TrendLines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_uses_the_wire_names() {
        let e = Envelope::new(
            ws::WELCOME,
            ws::Welcome {
                session_id: "s1".into(),
                heartbeat_ms: 30_000,
            },
            5,
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"type":"welcome","payload":{"sessionId":"s1","heartbeatMs":30000},"timestamp":5})
        );
        let back: Envelope<ws::Welcome> = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn envelope_with_raw_payload_parses_any_body() {
        let e: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"type":"orders:sync","payload":{"full":true},"timestamp":1}"#)
                .unwrap();
        assert_eq!(e.kind, "orders:sync");
        assert_eq!(e.payload["full"], true);
    }

    #[test]
    fn voice_session_is_the_realtime_shape() {
        let s = VoiceSession {
            client_secret: ClientSecret {
                value: "ek_abc".into(),
                expires_at: 60,
            },
            realtime_url: "/voice/realtime".into(),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"client_secret":{"value":"ek_abc","expires_at":60},"realtime_url":"/voice/realtime"})
        );
    }

    #[test]
    fn dashboard_rows_are_camel_case() {
        let v = serde_json::to_value(VitalSummary {
            p75: Some(1.5),
            count: 3,
            good: 1,
            needs_improvement: 1,
            poor: 1,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"p75":1.5,"count":3,"good":1,"needsImprovement":1,"poor":1})
        );
        let i = serde_json::to_value(IssueSummary {
            fingerprint: "f".into(),
            title: "TypeError: x".into(),
            level: "error".into(),
            count: 2,
            first_seen: "a".into(),
            last_seen: "b".into(),
            last_event_id: "e".into(),
        })
        .unwrap();
        assert!(i.get("firstSeen").is_some() && i.get("lastEventId").is_some());
    }
}
