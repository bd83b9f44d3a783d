//! Ingestion: Sentry envelopes (`POST /api/{project}/envelope/`) and OTLP metrics
//! (`POST /v1/metrics`, health samples included), with the rules of server-api.md — auth by
//! public key, per-key rate limit, size limits, idempotence, and `200` only after the commit.
//!
//! Pure parts: [`envelope`] (the parser), [`event`] (id, title, grouping), [`auth`],
//! [`ratelimit`], [`otlp`]. [`Ingest`] ties them to the group-commit [`writer`] and the metrics,
//! with its own dependencies; [`routes`] are its handlers.

pub mod auth;
pub mod encoding;
pub mod envelope;
pub mod event;
pub mod gate;
pub mod otlp;
pub mod ratelimit;
pub mod routes;
pub mod writer;

pub use routes::routes;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;

use vigil_protocol::vitals::{Rating, Vital};
use vigil_protocol::VitalSummary;

use crate::config::ProjectKey;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::store::Store;

/// The largest request body and the largest item (server-api.md: 1 MiB each).
pub const MAX_BODY: usize = 1 << 20;

/// Decodes a body's `Content-Encoding` (gzip, deflate) within [`MAX_BODY`]: `413` for a body
/// (or a bomb) over it once decompressed, `400` for anything else wrong.
pub fn decode_body(encoding: Option<&str>, body: bytes::Bytes) -> Result<bytes::Bytes, AppError> {
    encoding::decode(encoding, body, MAX_BODY).map_err(|e| match e {
        encoding::EncodingError::TooLarge(_) => AppError::PayloadTooLarge(e.to_string()),
        _ => AppError::BadRequest(e.to_string()),
    })
}

/// Metric points one rate-limit token pays for.
pub const POINTS_PER_TOKEN: usize = 100;

/// How many keys the limiter tracks at once (least recently used evicted beyond).
pub const LIMITER_CAPACITY: usize = 10_000;

/// What ingestion is tuned by (part of [`crate::Tuning`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestConfig {
    /// Events per second (and per burst) one public key may send.
    pub rate: ratelimit::Rate,
    /// The group-commit writer's batch and queue.
    pub writer: writer::WriterConfig,
    /// How long events, issues and metric points are kept.
    pub retention: Duration,
    /// How long fleet health samples are kept.
    pub health_retention: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            rate: ratelimit::Rate {
                per_sec: 200.0,
                burst: 1000.0,
            },
            writer: writer::WriterConfig::default(),
            retention: Duration::from_secs(30 * 86_400),
            health_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Who may send telemetry: the projects with their public keys, and the origins (empty: any).
#[derive(Debug, Clone, Default)]
pub struct Senders {
    /// The configured projects.
    pub projects: Vec<ProjectKey>,
    /// Origins allowed to send telemetry from a browser (empty: any).
    pub allowed_origins: Vec<HeaderValue>,
}

/// Ingestion with its own dependencies: who may send, the rate limiter, the group-commit
/// writer, the store (for pruning) and the metrics it counts into.
#[derive(Debug)]
pub struct Ingest {
    senders: Senders,
    limiter: Mutex<ratelimit::Limiter>,
    writer: writer::Writer,
    store: Store,
    metrics: Metrics,
    retention: Duration,
    health_retention: Duration,
    started: Instant,
    /// When health samples were last pruned (ms since the epoch).
    last_prune: AtomicI64,
}

impl Ingest {
    /// Starts the writer task on `store`; every key is limited to `config.rate`.
    pub fn start(config: IngestConfig, senders: Senders, store: Store, metrics: Metrics) -> Self {
        let rate = ratelimit::Rate {
            per_sec: config.rate.per_sec.max(0.001),
            burst: config.rate.burst.max(1.0),
        };
        Self {
            senders,
            limiter: Mutex::new(ratelimit::Limiter::new(rate, LIMITER_CAPACITY)),
            writer: writer::Writer::start(store.clone(), config.writer),
            store,
            metrics,
            retention: config.retention,
            health_retention: config.health_retention,
            started: Instant::now(),
            last_prune: AtomicI64::new(0),
        }
    }

    /// Who may send.
    pub fn senders(&self) -> &Senders {
        &self.senders
    }

    /// The metrics ingestion counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The group-commit writer.
    pub fn writer(&self) -> &writer::Writer {
        &self.writer
    }

    /// Takes `n` tokens from `key`'s bucket, or answers how long to wait.
    fn check_n(&self, key: &str, n: usize) -> Result<(), AppError> {
        let now = self.started.elapsed().as_secs_f64();
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        let rate = limiter.rate();
        limiter.check_n(key, n as f64, now).map_err(|e| match e {
            ratelimit::Refusal::Wait(secs) => AppError::RateLimited(secs),
            // More than a burst at once never fits: the time a whole burst takes to come back.
            ratelimit::Refusal::OverBurst => {
                AppError::RateLimited(((rate.burst / rate.per_sec).ceil() as u64).max(1))
            }
        })
    }

    /// Ingests one OTLP/HTTP JSON request; returns how many points were stored.
    pub async fn metrics_export(
        &self,
        project: &ProjectKey,
        user_agent: &str,
        body: Result<bytes::Bytes, AppError>,
    ) -> Result<usize, AppError> {
        let result = match body {
            Ok(body) => self.ingest_metrics(project, user_agent, &body).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if let Some(reason) = e.reject_reason() {
                self.metrics
                    .metric_requests_rejected
                    .with_label_values(&[reason])
                    .inc();
            }
        }
        result
    }

    async fn ingest_metrics(
        &self,
        project: &ProjectKey,
        user_agent: &str,
        body: &[u8],
    ) -> Result<usize, AppError> {
        let export = otlp::parse(body).map_err(|e| AppError::BadRequest(e.to_string()))?;
        // The bucket pays per POINTS_PER_TOKEN points, so one request cannot carry a burst's
        // worth many times over.
        let cost = export.rows.len().div_ceil(POINTS_PER_TOKEN).max(1);
        self.check_n(&format!("metrics:{}", project.public_key), cost)?;
        let (health, rows) = crate::fleet::split(export.rows, &export.resource, user_agent);
        let stored = self
            .writer
            .insert_export(&project.id, export.export_id, rows, health)
            .await?;
        self.metrics.metric_points_ingested.inc_by(stored as u64);
        self.prune().await;
        Ok(stored)
    }

    /// Ingests one envelope for `project`; returns the id to acknowledge (the event's, or the
    /// envelope header's when it carries no event).
    pub async fn envelope(
        &self,
        project: &ProjectKey,
        body: Result<bytes::Bytes, AppError>,
    ) -> Result<Option<String>, AppError> {
        let result = match body {
            Ok(body) => self.ingest_envelope(project, &body).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if let Some(reason) = e.reject_reason() {
                self.metrics
                    .events_rejected
                    .with_label_values(&[reason])
                    .inc();
            }
        }
        result
    }

    async fn ingest_envelope(
        &self,
        project: &ProjectKey,
        body: &[u8],
    ) -> Result<Option<String>, AppError> {
        let parsed = envelope::parse(body, MAX_BODY).map_err(|e| match e {
            envelope::EnvelopeError::ItemTooLarge { .. } => {
                AppError::PayloadTooLarge(e.to_string())
            }
            _ => AppError::BadRequest(e.to_string()),
        })?;
        // The rate limit counts events, not requests: an envelope of 100 events costs 100.
        let events = parsed.items.iter().filter(|i| i.kind == "event").count();
        self.check_n(&project.public_key, events.max(1))?;
        let header_id = parsed.header.get("event_id").and_then(|v| v.as_str());
        let mut acknowledged = header_id.and_then(event::normalize_event_id);
        for item in parsed.items.iter().filter(|i| i.kind == "event") {
            // Stored as sent (re-serializing the parsed value cost a tenth of the ingest path).
            let (summary, payload) = event::summarize(item.payload, header_id)
                .map_err(|e| AppError::BadRequest(e.to_string()))?;
            let event_id = summary.event_id.clone();
            let stored = self
                .writer
                .insert(&project.id, summary, payload.to_owned())
                .await?;
            if stored {
                self.metrics.events_ingested.inc();
            } else {
                self.metrics
                    .events_rejected
                    .with_label_values(&["duplicate"])
                    .inc();
            }
            acknowledged = Some(event_id);
        }
        self.prune().await;
        Ok(acknowledged)
    }

    /// Deletes what is past its retention (health samples; events, issues and metric points),
    /// at most once a minute, amortized over ingest, and counts it.
    pub async fn prune(&self) {
        let now = crate::store::now_ms();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < 60_000
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .prune_health(now.saturating_sub(ms(self.health_retention)))
            .await
        {
            Ok(gone) => self.metrics.health_samples_pruned.inc_by(gone),
            Err(e) => tracing::warn!(error = ?e, "pruning health samples failed"),
        }
        let before = crate::fleet::rfc3339(now.saturating_sub(ms(self.retention)));
        match self.store.prune_telemetry(&before).await {
            Ok((events, points)) => {
                let m = &self.metrics.rows_pruned;
                m.with_label_values(&["events"]).inc_by(events);
                m.with_label_values(&["metric_points"]).inc_by(points);
            }
            Err(e) => tracing::warn!(error = ?e, "pruning events and metric points failed"),
        }
    }
}

/// The 75th percentile by nearest rank (sorts `values`); `None` when empty.
pub fn p75(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * 3).div_ceil(4);
    (rank > 0).then(|| values[rank - 1])
}

/// `1h`, `30m`, `7d`, `90s` as seconds; at most 30 days.
pub fn parse_window(window: Option<&str>) -> Result<u64, AppError> {
    let Some(w) = window.filter(|w| !w.is_empty()) else {
        return Ok(3600);
    };
    // Split at the last character's boundary, never at a byte inside it (`é` is two bytes).
    let cut = w.char_indices().last().map_or(0, |(i, _)| i);
    let (digits, unit) = w.split_at(cut);
    let n: u64 = digits.parse().map_err(|_| {
        AppError::BadRequest(format!("window: expected like 1h, 30m, 7d or 90s, got {w}"))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(AppError::BadRequest(format!(
                "window: expected like 1h, 30m, 7d or 90s, got {w}"
            )))
        }
    };
    if secs == 0 || secs > 30 * 86_400 {
        return Err(AppError::BadRequest("window: from 1s to 30d".into()));
    }
    Ok(secs)
}

/// p75 (nearest rank), count and the rating split of each vital over the window.
pub async fn vitals(
    store: &Store,
    project: &str,
    window_secs: u64,
) -> Result<BTreeMap<&'static str, VitalSummary>, AppError> {
    let mut out = BTreeMap::new();
    for vital in Vital::ALL {
        let mut values = store
            .metric_values(project, vital.metric_name(), window_secs)
            .await?;
        let mut summary = VitalSummary {
            p75: p75(&mut values),
            count: values.len() as u64,
            good: 0,
            needs_improvement: 0,
            poor: 0,
        };
        for v in &values {
            match vital.rate(*v) {
                Rating::Good => summary.good += 1,
                Rating::NeedsImprovement => summary.needs_improvement += 1,
                Rating::Poor => summary.poor += 1,
            }
        }
        out.insert(vital.name(), summary);
    }
    Ok(out)
}
