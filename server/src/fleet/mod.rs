//! Fleet health (server-api.md, "Fleet health"): health samples from the runtimes' OTLP exports,
//! stored per instance, and `GET /api/{project}/fleet` with a leak verdict per instance.
//!
//! [`verdict`] is the pure part (robust slopes, the verdict); this file turns OTLP rows into
//! samples and a window's stored samples into fleet rows.
//!
//! Architecture Invariant: the fleet route reads each instance's samples reduced by the store to
//! at most [`verdict::BUCKETS`] buckets per series (by the same rule as [`verdict::Buckets`]): its
//! memory and its rows are bounded by the number of instances ([`MAX_INSTANCES`]), not by the
//! number of samples.

pub mod verdict;

use std::collections::BTreeMap;

use vigil_protocol::health::{
    CountTrend, FleetInstance, MemoryTrend, TrendLines, INSTANCE_ID, JS_HEAP, KIND, RESOURCES,
    UPTIME, WASM,
};

use crate::ingest::otlp::Row;
use verdict::{Buckets, InstanceSeries, MinSeries, KINDS};

/// The most instances one fleet answer considers (the most recently seen).
pub const MAX_INSTANCES: u32 = 10_000;

/// The most characters of an instance id, release or user agent kept.
pub const MAX_FIELD: usize = 256;

/// One health sample of one instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Ms since the epoch (the latest point time of the sample; 0: the server's clock).
    pub time_ms: i64,
    /// `vigil.memory.js_heap`.
    pub heap: Option<f64>,
    /// `vigil.memory.wasm`.
    pub wasm: Option<f64>,
    /// `vigil.uptime`.
    pub uptime: Option<f64>,
    /// `vigil.resources` per kind, in [`KINDS`] order.
    pub resources: [Option<f64>; KINDS.len()],
}

impl Sample {
    /// The sample as the JSON kept as an instance's latest facts.
    pub fn to_json(&self) -> serde_json::Value {
        let resources: serde_json::Map<String, serde_json::Value> = KINDS
            .iter()
            .zip(&self.resources)
            .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v.into())))
            .collect();
        serde_json::json!({
            "timeMs": self.time_ms,
            "heap": self.heap,
            "wasm": self.wasm,
            "uptime": self.uptime,
            "resources": resources,
        })
    }

    fn slot(&mut self, row: &Row) -> Option<&mut Option<f64>> {
        match &*row.name {
            JS_HEAP => Some(&mut self.heap),
            WASM => Some(&mut self.wasm),
            UPTIME => Some(&mut self.uptime),
            RESOURCES => {
                let kind = row.attributes.get(KIND)?;
                let i = KINDS.iter().position(|k| k == kind)?;
                Some(&mut self.resources[i])
            }
            _ => None,
        }
    }
}

/// Whether a metric name is one of the health gauges.
pub fn is_health(name: &str) -> bool {
    matches!(name, RESOURCES | JS_HEAP | WASM | UPTIME)
}

/// An export's health part: who sent it and its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthBatch {
    /// `service.instance.id`.
    pub instance_id: String,
    /// `service.version`, else `service.name`.
    pub release: String,
    /// The request's `User-Agent`.
    pub user_agent: String,
    /// Oldest first.
    pub samples: Vec<Sample>,
}

/// Splits an export's rows into its health batch (when the resource names an instance) and the
/// other points. Points are grouped into samples in time order: a series seen again starts the
/// next sample, so one export may carry several samples and one sample's points may differ by
/// a few ms. Health points of unknown kinds are dropped.
pub fn split(
    rows: Vec<Row>,
    resource: &BTreeMap<String, String>,
    user_agent: &str,
) -> (Option<HealthBatch>, Vec<Row>) {
    let Some(instance_id) = resource
        .get(INSTANCE_ID)
        .filter(|id| !id.is_empty() && id.len() <= MAX_FIELD)
    else {
        return (None, rows);
    };
    let (mut health, other): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|r| is_health(&r.name));
    if health.is_empty() {
        return (None, other);
    }
    health.sort_by_key(|r| r.time_unix_nano);
    let mut samples = Vec::new();
    let mut current = Sample::default();
    let mut started = false;
    for row in &health {
        let time_ms = i64::try_from(row.time_unix_nano / 1_000_000).unwrap_or(0);
        if current.slot(row).is_some_and(|s| s.is_some()) {
            samples.push(std::mem::take(&mut current));
        }
        if let Some(slot) = current.slot(row) {
            *slot = Some(row.value);
            current.time_ms = current.time_ms.max(time_ms);
            started = true;
        }
    }
    if started {
        samples.push(current);
    }
    let release = resource
        .get("service.version")
        .or_else(|| resource.get("service.name"))
        .cloned()
        .unwrap_or_default();
    let batch = HealthBatch {
        instance_id: instance_id.clone(),
        release: truncate(release),
        user_agent: truncate(user_agent.to_owned()),
        samples,
    };
    (Some(batch).filter(|b| !b.samples.is_empty()), other)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut end = MAX_FIELD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// One time bucket of one instance, reduced by the store (see
/// [`crate::store::Store::each_health_bucket`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Which of the instance's [`verdict::BUCKETS`].
    pub index: usize,
    /// The first sample's time in it.
    pub time_ms: i64,
    /// Samples in it.
    pub samples: u64,
    /// Minimum JS heap.
    pub heap: Option<f64>,
    /// Minimum wasm memory.
    pub wasm: Option<f64>,
    /// Minimum of each resource kind, in [`KINDS`] order.
    pub resources: [Option<f64>; KINDS.len()],
    /// Minimum of the sum of every kind.
    pub total: Option<f64>,
}

/// An instance row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// `service.instance.id`.
    pub instance_id: String,
    /// The release.
    pub release: String,
    /// The `User-Agent`.
    pub user_agent: String,
    /// Ms since the epoch.
    pub first_seen_ms: i64,
    /// Ms since the epoch.
    pub last_seen_ms: i64,
    /// JSON of the latest sample ([`Sample::to_json`]).
    pub last: String,
}

/// One instance's samples being read, bucketed as they stream by.
#[derive(Debug, Clone)]
pub struct Accumulator {
    buckets: Buckets,
    samples: u64,
    heap: MinSeries,
    wasm: MinSeries,
    resources: [MinSeries; KINDS.len()],
    total: MinSeries,
}

impl Accumulator {
    /// For samples between `t0` and `t1` (ms).
    pub fn new(t0: i64, t1: i64) -> Self {
        Self {
            buckets: Buckets::new(t0, t1, verdict::BUCKETS),
            samples: 0,
            heap: MinSeries::default(),
            wasm: MinSeries::default(),
            resources: Default::default(),
            total: MinSeries::default(),
        }
    }

    /// Adds one stored sample.
    pub fn push(&mut self, s: &Sample) {
        let b = &self.buckets;
        self.samples += 1;
        if let Some(v) = s.heap {
            self.heap.push(b, s.time_ms, v);
        }
        if let Some(v) = s.wasm {
            self.wasm.push(b, s.time_ms, v);
        }
        let mut total = None;
        for (series, v) in self.resources.iter_mut().zip(&s.resources) {
            if let Some(v) = *v {
                series.push(b, s.time_ms, v);
                total = Some(total.unwrap_or(0.0) + v);
            }
        }
        if let Some(t) = total {
            self.total.push(b, s.time_ms, t);
        }
    }

    /// Adds one bucket the store reduced already.
    pub fn push_bucket(&mut self, b: &Bucket) {
        self.samples += b.samples;
        let set = |series: &mut MinSeries, v: Option<f64>| {
            if let Some(v) = v {
                series.set(&self.buckets, b.index, b.time_ms, v);
            }
        };
        set(&mut self.heap, b.heap);
        set(&mut self.wasm, b.wasm);
        for (series, v) in self.resources.iter_mut().zip(&b.resources) {
            set(series, *v);
        }
        set(&mut self.total, b.total);
    }

    /// The fleet row: the instance's facts, its latest sample, its verdict and trend lines.
    pub fn finish(self, row: &InstanceRow) -> FleetInstance {
        let series = InstanceSeries {
            samples: self.samples,
            heap: self.heap.finish(),
            wasm: self.wasm.finish(),
            resources: self.resources.each_ref().map(MinSeries::finish),
        };
        let v = verdict::judge(&series);
        let last: serde_json::Value = serde_json::from_str(&row.last).unwrap_or_default();
        let number = |v: &serde_json::Value| v.as_f64();
        let mut resources = BTreeMap::new();
        for (i, kind) in KINDS.iter().enumerate() {
            if let Some(l) = last["resources"].get(*kind).and_then(number) {
                resources.insert(
                    (*kind).to_owned(),
                    CountTrend {
                        last: l,
                        per_hour: v.resources_per_hour[i],
                    },
                );
            }
        }
        FleetInstance {
            instance_id: row.instance_id.clone(),
            release: row.release.clone(),
            user_agent: row.user_agent.clone(),
            first_seen: rfc3339(row.first_seen_ms),
            last_seen: rfc3339(row.last_seen_ms),
            samples: self.samples,
            heap: MemoryTrend {
                last: number(&last["heap"]),
                bytes_per_hour: v.heap_per_hour,
            },
            wasm: MemoryTrend {
                last: number(&last["wasm"]),
                bytes_per_hour: v.wasm_per_hour,
            },
            resources,
            leaking: v.leaking,
            reasons: v.reasons,
            judged: v.judged,
            trend: trend_lines(&series, &self.total.finish()),
        }
    }
}

/// The three trend lines on one time axis (the union of their bucket times).
fn trend_lines(series: &InstanceSeries, total: &[(i64, f64)]) -> TrendLines {
    let mut times: Vec<i64> = series
        .heap
        .iter()
        .chain(&series.wasm)
        .chain(total)
        .map(|p| p.0)
        .collect();
    times.sort_unstable();
    times.dedup();
    let at = |s: &[(i64, f64)]| -> Vec<Option<f64>> {
        times
            .iter()
            .map(|t| s.iter().find(|p| p.0 == *t).map(|p| p.1))
            .collect()
    };
    TrendLines {
        heap: at(&series.heap),
        wasm: at(&series.wasm),
        resources: at(total),
        time: times,
    }
}

/// Leaking instances first, then the most recently seen.
pub fn order(rows: &mut [FleetInstance]) {
    rows.sort_by(|a, b| {
        b.leaking
            .cmp(&a.leaking)
            .then_with(|| b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.instance_id.cmp(&b.instance_id))
    });
}

/// The fleet of `project` over the last `window_secs`: one row per instance seen in it, leaking
/// first. Reads each sample once, streamed (see the module's invariant).
pub async fn fleet(
    store: &crate::store::Store,
    project: &str,
    window_secs: u64,
) -> Result<Vec<FleetInstance>, crate::error::AppError> {
    let now = crate::store::now_ms();
    let since =
        now.saturating_sub(i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    let instances = store.instances(project, since).await?;
    let index: std::collections::HashMap<&str, usize> = instances
        .iter()
        .enumerate()
        .map(|(i, r)| (r.instance_id.as_str(), i))
        .collect();
    let mut accumulators: Vec<Option<Accumulator>> = instances
        .iter()
        .map(|r| Some(Accumulator::new(r.first_seen_ms.max(since), r.last_seen_ms)))
        .collect();
    store
        .each_health_bucket(project, since, |id, bucket| {
            if let Some(acc) = index.get(id).and_then(|&i| accumulators[i].as_mut()) {
                acc.push_bucket(bucket);
            }
        })
        .await?;
    let mut rows: Vec<FleetInstance> = accumulators
        .into_iter()
        .zip(&instances)
        .filter_map(|(acc, row)| acc.map(|a| a.finish(row)))
        .collect();
    order(&mut rows);
    Ok(rows)
}

/// Ms since the epoch as RFC 3339 UTC with milliseconds (`1970-01-01T00:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, value: f64, ms: u64, kind: Option<&str>) -> Row {
        Row {
            name: name.into(),
            unit: "".into(),
            value,
            time_unix_nano: ms * 1_000_000,
            attributes: kind
                .map(|k| [(KIND.to_owned(), k.to_owned())].into())
                .unwrap_or_default(),
        }
    }

    fn resource(id: &str) -> BTreeMap<String, String> {
        [
            (INSTANCE_ID.to_owned(), id.to_owned()),
            ("service.name".to_owned(), "kiosk@1".to_owned()),
        ]
        .into()
    }

    #[test]
    fn split_groups_points_into_samples_and_keeps_other_rows() {
        let rows = vec![
            row("web_vitals.lcp", 1200.0, 1000, None),
            row(RESOURCES, 3.0, 1000, Some("listeners")),
            row(RESOURCES, 1.0, 1001, Some("intervals")),
            row(JS_HEAP, 2e6, 1002, None),
            row(RESOURCES, 4.0, 1200, Some("listeners")),
            row(RESOURCES, 9.0, 1200, Some("unknownKind")),
            row(UPTIME, 1.2, 1200, None),
        ];
        let (batch, other) = split(rows, &resource("abc"), "Chrome");
        let batch = batch.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(&*other[0].name, "web_vitals.lcp");
        assert_eq!(batch.instance_id, "abc");
        assert_eq!(batch.release, "kiosk@1");
        assert_eq!(batch.user_agent, "Chrome");
        assert_eq!(batch.samples.len(), 2);
        assert_eq!(batch.samples[0].time_ms, 1002);
        assert_eq!(batch.samples[0].resources[0], Some(3.0));
        assert_eq!(batch.samples[0].resources[1], Some(1.0));
        assert_eq!(batch.samples[0].heap, Some(2e6));
        assert_eq!(batch.samples[1].resources[0], Some(4.0));
        assert_eq!(batch.samples[1].uptime, Some(1.2));
    }

    #[test]
    fn split_without_an_instance_id_stores_plain_points() {
        let rows = vec![row(JS_HEAP, 2e6, 1002, None)];
        let (batch, other) = split(rows.clone(), &BTreeMap::new(), "x");
        assert!(batch.is_none());
        assert_eq!(other, rows);
        let long = resource(&"x".repeat(MAX_FIELD + 1));
        assert!(split(rows, &long, "").0.is_none());
    }

    #[test]
    fn accumulator_judges_a_leaking_instance() {
        let info = InstanceRow {
            instance_id: "k1".into(),
            release: "r".into(),
            user_agent: "ua".into(),
            first_seen_ms: 0,
            last_seen_ms: 2200,
            last: Sample {
                time_ms: 2200,
                resources: [
                    Some(60.0),
                    Some(1.0),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ],
                wasm: Some(1_114_112.0),
                ..Sample::default()
            }
            .to_json()
            .to_string(),
        };
        let mut acc = Accumulator::new(0, 2200);
        for i in 0..12 {
            let mut s = Sample {
                time_ms: i * 200,
                wasm: Some(1_114_112.0),
                ..Sample::default()
            };
            s.resources[0] = Some(5.0 * i as f64);
            s.resources[1] = Some(1.0);
            acc.push(&s);
        }
        let f = acc.finish(&info);
        assert!(f.leaking && f.judged);
        assert_eq!(f.samples, 12);
        assert!(f.reasons[0].starts_with("listeners +"), "{:?}", f.reasons);
        assert_eq!(f.resources["listeners"].last, 60.0);
        assert!(f.resources["listeners"].per_hour > 80_000.0);
        assert_eq!(f.resources["intervals"].per_hour, 0.0);
        assert_eq!(f.wasm.last, Some(1_114_112.0));
        assert_eq!(f.heap.last, None);
        assert_eq!(f.trend.time.len(), 12);
        assert_eq!(f.trend.resources[11], Some(56.0));
        assert_eq!(f.first_seen, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn rfc3339_formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_157_296_789), "2026-12-01T20:34:56.789Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn leaking_first_then_newest() {
        let mk = |id: &str, leaking: bool, last: &str| FleetInstance {
            instance_id: id.into(),
            release: String::new(),
            user_agent: String::new(),
            first_seen: String::new(),
            last_seen: last.into(),
            samples: 0,
            heap: MemoryTrend {
                last: None,
                bytes_per_hour: 0.0,
            },
            wasm: MemoryTrend {
                last: None,
                bytes_per_hour: 0.0,
            },
            resources: BTreeMap::new(),
            leaking,
            reasons: vec![],
            judged: true,
            trend: TrendLines::default(),
        };
        let mut rows = vec![mk("a", false, "3"), mk("b", true, "1"), mk("c", false, "4")];
        order(&mut rows);
        let ids: Vec<_> = rows.iter().map(|r| r.instance_id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
    }
}
