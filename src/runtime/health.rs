//! Fleet health, sans IO (server-api.md, "Fleet health"): the `health` option, the instance id
//! decision, and the gauges of one health sample. The browser shell is
//! [`super::telemetry`]: an `Interval` guard, memory reads, the export through the transport.

use crate::error::VigilError;
use crate::prelude::*;
use crate::runtime::ledger::Counts;
use crate::transport::otlp::Points;

/// Sample interval when `health` is missing or `true`.
pub const DEFAULT_INTERVAL_MS: u32 = 60_000;
/// The shortest accepted `health.intervalMs`.
pub const MIN_INTERVAL_MS: u32 = 100;
/// The longest accepted `health.intervalMs` (a day).
pub const MAX_INTERVAL_MS: u32 = 86_400_000;
/// The `localStorage` key of the instance id.
pub const INSTANCE_KEY: &str = "vigil.instance";

/// Gauge names.
pub const RESOURCES: &str = "vigil.resources";
/// JS heap bytes, where the browser tells them.
pub const JS_HEAP: &str = "vigil.memory.js_heap";
/// Bytes of the runtime's linear memory.
pub const WASM: &str = "vigil.memory.wasm";
/// Seconds since the runtime started.
pub const UPTIME: &str = "vigil.uptime";

/// The `health` option as the shell read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HealthOption {
    /// Missing, `undefined` or `true`; or an object without `intervalMs`.
    Default,
    /// `false`.
    Off,
    /// `{ intervalMs: n }`. (What is neither a boolean nor such an object, and an `intervalMs`
    /// that is not a number, are refused by name in JS, `js/options.js`, like every option type.)
    IntervalMs(f64),
}

/// The sample interval, or `None` when health samples are off.
pub fn interval(option: HealthOption) -> Result<Option<u32>, VigilError> {
    const EXPECTED: &str = "a number of milliseconds from 100 to 86400000";
    let bad = |got| VigilError::BadArgument {
        name: "health.intervalMs",
        expected: EXPECTED,
        got,
    };
    match option {
        HealthOption::Default => Ok(Some(DEFAULT_INTERVAL_MS)),
        HealthOption::Off => Ok(None),
        HealthOption::IntervalMs(ms) => {
            if ms.is_nan() {
                Err(bad("NaN"))
            } else if (f64::from(MIN_INTERVAL_MS)..=f64::from(MAX_INTERVAL_MS)).contains(&ms) {
                Ok(Some(ms as u32)) // in range: the cast drops sub-millisecond parts only
            } else {
                Err(bad("a number out of range"))
            }
        }
    }
}

/// A stored instance id is kept only when it is one we wrote: 32 lowercase hex characters.
pub fn stored_instance_id(stored: Option<String>) -> Option<String> {
    stored.filter(|s| {
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What one sample measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// `resources()`.
    pub counts: Counts,
    /// JS heap bytes; `None` when the browser tells nothing.
    pub js_heap: Option<f64>,
    /// Bytes of linear memory.
    pub wasm_bytes: f64,
    /// Seconds since the runtime started.
    pub uptime_s: f64,
    /// When, in ms since the epoch.
    pub now_ms: f64,
}

/// Hands `out` the points of one health export: `vigil.resources` (one point per kind, attribute
/// `kind`), `vigil.memory.js_heap` (only when known), `vigil.memory.wasm`, `vigil.uptime`.
pub fn gauges(sample: &Sample, out: &mut impl Points) {
    let now = (sample.now_ms.max(0.0) * 1e6) as u64;
    let description = "Live browser resources held by the runtime";
    for (kind, live) in sample.counts.iter() {
        out.attr("kind", kind.js_name());
        out.point(RESOURCES, "1", description, f64::from(live), now);
    }
    if let Some(heap) = sample.js_heap {
        out.point(JS_HEAP, "By", "JS heap in use", heap, now);
    }
    let description = "Linear memory of the runtime";
    out.point(WASM, "By", description, sample.wasm_bytes, now);
    let description = "Time since the runtime started";
    out.point(UPTIME, "s", description, sample.uptime_s, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ledger::{counts, ResourceKind, Ticket};
    use crate::transport::otlp::collect::{Gauge, Gauges};

    /// The gauges one sample hands its sink.
    fn gauges(sample: &Sample) -> Vec<Gauge> {
        let mut out = Gauges::default();
        super::gauges(sample, &mut out);
        out.gauges
    }

    #[test]
    fn the_health_option_is_checked_by_name() {
        assert_eq!(interval(HealthOption::Default).unwrap(), Some(60_000));
        assert_eq!(interval(HealthOption::Off).unwrap(), None);
        assert_eq!(
            interval(HealthOption::IntervalMs(100.0)).unwrap(),
            Some(100)
        );
        assert_eq!(
            interval(HealthOption::IntervalMs(86_400_000.0)).unwrap(),
            Some(86_400_000)
        );
        assert_eq!(
            interval(HealthOption::IntervalMs(1500.9)).unwrap(),
            Some(1500)
        );
        for bad in [
            HealthOption::IntervalMs(99.0),
            HealthOption::IntervalMs(86_400_001.0),
            HealthOption::IntervalMs(f64::NAN),
            HealthOption::IntervalMs(f64::INFINITY),
            HealthOption::IntervalMs(-1.0),
        ] {
            let e = interval(bad).unwrap_err().to_string();
            assert!(e.starts_with("health.intervalMs: expected"), "{e}");
        }
    }

    #[test]
    fn only_ids_we_wrote_are_kept() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(stored_instance_id(Some(id.into())).as_deref(), Some(id));
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdefa",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(stored_instance_id(Some(bad.into())), None, "{bad}");
        }
        assert_eq!(stored_instance_id(None), None);
    }

    fn names(gauges: &[Gauge]) -> Vec<&str> {
        gauges.iter().map(|g| g.name.as_str()).collect()
    }

    #[test]
    fn a_sample_has_a_point_per_resource_kind_and_the_memory_it_knows() {
        let _a = Ticket::new(ResourceKind::Listener);
        let _b = Ticket::new(ResourceKind::Listener);
        let _c = Ticket::new(ResourceKind::Service);
        let sample = Sample {
            counts: counts(),
            js_heap: Some(2_000_000.0),
            wasm_bytes: 1_114_112.0,
            uptime_s: 12.5,
            now_ms: 1_795_305_600_000.0,
        };
        let g = gauges(&sample);
        assert_eq!(names(&g), [RESOURCES, JS_HEAP, WASM, UPTIME]);
        let kinds: Vec<(&str, f64)> = g[0]
            .points
            .iter()
            .map(|p| {
                assert_eq!(p.attributes.len(), 1);
                assert_eq!(p.attributes[0].0, "kind");
                (p.attributes[0].1.as_str(), p.value)
            })
            .collect();
        assert_eq!(kinds.len(), ResourceKind::ALL.len());
        for kind in ResourceKind::ALL {
            assert!(kinds.iter().any(|(k, _)| *k == kind.js_name()), "{kind:?}");
        }
        assert!(kinds.contains(&("listeners", 2.0)));
        assert!(kinds.contains(&("services", 1.0)));
        assert!(
            kinds.contains(&("intervals", 0.0)),
            "zeros are exported too"
        );
        assert_eq!(g[1].unit, "By");
        assert_eq!(g[1].points[0].value, 2_000_000.0);
        assert_eq!(g[2].points[0].value, 1_114_112.0);
        assert_eq!(g[3].unit, "s");
        assert_eq!(g[3].points[0].value, 12.5);
        assert!(g
            .iter()
            .flat_map(|g| &g.points)
            .all(|p| p.time_unix_nano == 1_795_305_600_000_000_000));
        // The browser tells nothing about its heap: no js_heap gauge (not a zero).
        let g = gauges(&Sample {
            js_heap: None,
            ..sample
        });
        assert_eq!(names(&g), [RESOURCES, WASM, UPTIME]);
    }
}
