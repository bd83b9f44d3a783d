//! Leak verdicts from health samples: pure code on plain data (server-api.md, "Fleet health").
//!
//! A runtime exports a sample every `health.intervalMs`; the fleet route reads an instance's
//! samples in the window into at most [`BUCKETS`] time buckets (each keeps the *minimum* of every
//! series: the JS heap's floor after GC, the resource count it never fell below), then judges
//! each series:
//!
//! - **Robust slope:** Theil–Sen, the median of the pairwise slopes, so one outlier or one GC
//!   does not move it.
//! - **Growth that keeps going:** the buckets are split into [`SEGMENTS`] consecutive runs and
//!   the runs' medians must rise from each run to the next. One step (wasm memory grows in 64 KiB
//!   pages and never shrinks) raises one of them, not all; a spike raises none.
//! - **Above the noise:** the rise across the window must be over [`NOISE_FACTOR`] times the
//!   median absolute deviation around the slope's line (a count that comes and goes does not
//!   rise by chance), and for the heap and wasm memory the slope must be over
//!   [`MEMORY_BYTES_PER_DAY`] (the contract's 1 MB per day).
//! - **Memory needs time or a GC:** a heap judged over two seconds only shows garbage not yet
//!   collected, so memory is judged over [`MIN_MEMORY_SPAN_MS`] or once the series fell twice.
//!   Resource counts are exact (no GC behind them): they are judged at any time scale.
//!
//! The rules scale with the window: buckets and segments are positions in the instance's own
//! samples, not fixed times, so a window of seconds (tests) is judged as one of days (the field).

/// Buckets an instance's samples are reduced to before judging.
pub const BUCKETS: usize = 48;

/// Consecutive runs whose medians must all rise for a series to count as growing.
pub const SEGMENTS: usize = 4;

/// Fewer samples than this: no verdict.
pub const MIN_SAMPLES: u64 = 10;

/// Heap or wasm growth above this is a leak (server-api.md: faster than 1 MB per day).
pub const MEMORY_BYTES_PER_DAY: f64 = 1_000_000.0;

/// Memory is judged over at least this span, or once the series fell twice (a GC was seen):
/// before that, a heap that rose may hold garbage not yet collected rather than a leak.
pub const MIN_MEMORY_SPAN_MS: i64 = 10 * 60 * 1000;

/// The rise must exceed this many median absolute deviations of the residuals.
pub const NOISE_FACTOR: f64 = 3.0;

/// The resource kinds a runtime reports (js-api.md, `resources()`), in the order shown.
pub const KINDS: [&str; 10] = [
    "listeners",
    "intervals",
    "timeouts",
    "observers",
    "sockets",
    "peerConnections",
    "dataChannels",
    "mediaTracks",
    "consolePatches",
    "services",
];

/// One series' values over time: `(time in ms since the epoch, value)`, oldest first.
pub type Series = Vec<(i64, f64)>;

/// Which series a verdict is about; decides the threshold and how the reason reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `vigil.memory.js_heap`, bytes.
    Heap,
    /// `vigil.memory.wasm`, bytes.
    Wasm,
    /// One resource count, by its `kind` name.
    Resource(&'a str),
}

/// What was judged of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The robust slope, per hour (bytes for memory, a count for resources).
    pub per_hour: f64,
    /// Whether the series keeps growing past the thresholds.
    pub growing: bool,
}

const HOUR_MS: f64 = 3_600_000.0;

/// Maps times in `[t0, t1]` to `n` equal buckets (times outside are clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    t0: i64,
    span: u128,
    n: usize,
}

impl Buckets {
    /// `n` buckets (at least one) over `t0..=t1`.
    pub fn new(t0: i64, t1: i64, n: usize) -> Self {
        Self {
            t0,
            span: (t1 - t0).max(0) as u128,
            n: n.max(1),
        }
    }

    /// The bucket of time `t`.
    pub fn of(&self, t: i64) -> usize {
        if self.span == 0 {
            return 0;
        }
        let offset = ((t - self.t0).max(0) as u128).min(self.span);
        ((offset * (self.n as u128 - 1)) / self.span) as usize
    }

    /// How many buckets.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never: there is at least one bucket.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One series being bucketed: per bucket the first time and the minimum value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinSeries {
    slots: Vec<Option<(i64, f64)>>,
}

impl MinSeries {
    /// Adds a value at time `t`, in bucket `b` of `buckets`.
    pub fn push(&mut self, buckets: &Buckets, t: i64, v: f64) {
        self.set(buckets, buckets.of(t), t, v);
    }

    /// Keeps `v` at time `t` in bucket `index` (already computed), the minimum if one is there.
    pub fn set(&mut self, buckets: &Buckets, index: usize, t: i64, v: f64) {
        if !v.is_finite() || index >= buckets.len() {
            return;
        }
        if self.slots.len() < buckets.len() {
            self.slots.resize(buckets.len(), None);
        }
        let slot = &mut self.slots[index];
        *slot = Some(match *slot {
            Some((t0, m)) => (t0.min(t), m.min(v)),
            None => (t, v),
        });
    }

    /// The non-empty buckets, oldest first.
    pub fn finish(&self) -> Series {
        self.slots.iter().flatten().copied().collect()
    }
}

/// Reduces samples (sorted by time) to at most `buckets` time buckets over their own span,
/// keeping the minimum value and the first time of each non-empty bucket.
pub fn bucket_min(samples: &[(i64, f64)], buckets: usize) -> Series {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    let b = Buckets::new(first.0, last.0, buckets);
    let mut s = MinSeries::default();
    for &(t, v) in samples {
        s.push(&b, t, v);
    }
    s.finish()
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if !values.len().is_multiple_of(2) {
        upper
    } else {
        let lower = values[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// The Theil–Sen slope of `series` in value per hour (0 with fewer than two distinct times).
pub fn theil_sen_per_hour(series: &[(i64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(series.len() * series.len().saturating_sub(1) / 2);
    for (i, a) in series.iter().enumerate() {
        for b in &series[i + 1..] {
            if b.0 != a.0 {
                slopes.push((b.1 - a.1) / ((b.0 - a.0) as f64 / HOUR_MS));
            }
        }
    }
    median(&mut slopes)
}

/// Whether the medians of [`SEGMENTS`] consecutive runs of `series` rise from each to the next.
fn keeps_rising(series: &[(i64, f64)]) -> bool {
    if series.len() < SEGMENTS {
        return false;
    }
    let mut previous = f64::NEG_INFINITY;
    for s in 0..SEGMENTS {
        let from = s * series.len() / SEGMENTS;
        let to = (s + 1) * series.len() / SEGMENTS;
        let mut run: Vec<f64> = series[from..to].iter().map(|p| p.1).collect();
        let m = median(&mut run);
        if m <= previous {
            return false;
        }
        previous = m;
    }
    true
}

/// Judges one bucketed series.
pub fn trend(kind: Kind<'_>, series: &[(i64, f64)]) -> Trend {
    let per_hour = theil_sen_per_hour(series);
    let mut growing = per_hour > 0.0 && keeps_rising(series);
    if growing {
        let (t0, y0) = series[0];
        let mut residuals: Vec<f64> = series
            .iter()
            .map(|&(t, y)| y - (y0 + per_hour * (t - t0) as f64 / HOUR_MS))
            .collect();
        let centre = median(&mut residuals);
        let mut deviations: Vec<f64> = residuals.iter().map(|r| (r - centre).abs()).collect();
        let mad = median(&mut deviations);
        let span_hours = (series[series.len() - 1].0 - t0) as f64 / HOUR_MS;
        let rise = per_hour * span_hours;
        growing = rise > NOISE_FACTOR * mad;
        if matches!(kind, Kind::Heap | Kind::Wasm) {
            let drops = series.windows(2).filter(|w| w[1].1 < w[0].1).count();
            let span_ms = series[series.len() - 1].0 - t0;
            growing &= per_hour * 24.0 > MEMORY_BYTES_PER_DAY
                && (span_ms >= MIN_MEMORY_SPAN_MS || drops >= 2);
        }
    }
    Trend { per_hour, growing }
}

/// The sentence a person reads for a growing series, e.g. `listeners +120/h`.
pub fn reason(kind: Kind<'_>, per_hour: f64) -> String {
    match kind {
        Kind::Heap => format!("JS heap +{}/day", megabytes(per_hour * 24.0)),
        Kind::Wasm => format!("wasm memory +{}/day", megabytes(per_hour * 24.0)),
        Kind::Resource(name) => format!("{name} +{}/h", rounded(per_hour)),
    }
}

fn megabytes(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1_000_000.0)
}

fn rounded(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// An instance's bucketed series, read by the fleet query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceSeries {
    /// How many samples the window holds (before bucketing).
    pub samples: u64,
    /// The JS heap, when the browser tells it.
    pub heap: Series,
    /// The runtime's linear memory.
    pub wasm: Series,
    /// One series per resource kind, in [`KINDS`] order.
    pub resources: [Series; KINDS.len()],
}

/// The verdict on one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether there were enough samples to judge ([`MIN_SAMPLES`]).
    pub judged: bool,
    /// Leaking: some series keeps growing.
    pub leaking: bool,
    /// One sentence per growing series.
    pub reasons: Vec<String>,
    /// The heap's slope in bytes per hour.
    pub heap_per_hour: f64,
    /// Wasm memory's slope in bytes per hour.
    pub wasm_per_hour: f64,
    /// Each resource kind's slope per hour, in [`KINDS`] order.
    pub resources_per_hour: [f64; KINDS.len()],
}

/// Judges an instance from its bucketed series.
pub fn judge(series: &InstanceSeries) -> Verdict {
    let judged = series.samples >= MIN_SAMPLES;
    let mut reasons = Vec::new();
    let mut check = |kind: Kind<'_>, s: &Series| {
        let t = trend(kind, s);
        if judged && t.growing {
            reasons.push(reason(kind, t.per_hour));
        }
        t.per_hour
    };
    let mut resources_per_hour = [0.0; KINDS.len()];
    for (i, kind) in KINDS.iter().enumerate() {
        resources_per_hour[i] = check(Kind::Resource(kind), &series.resources[i]);
    }
    let heap_per_hour = check(Kind::Heap, &series.heap);
    let wasm_per_hour = check(Kind::Wasm, &series.wasm);
    Verdict {
        judged,
        leaking: !reasons.is_empty(),
        reasons,
        heap_per_hour,
        wasm_per_hour,
        resources_per_hour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [-1, 1] (no test depends on a seed file).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn instance(resource: Series, heap: Series, wasm: Series, samples: u64) -> InstanceSeries {
        let mut resources: [Series; KINDS.len()] = Default::default();
        resources[0] = resource;
        InstanceSeries {
            samples,
            heap,
            wasm,
            resources,
        }
    }

    /// `n` samples `step_ms` apart.
    fn series(n: usize, step_ms: i64, f: impl Fn(usize) -> f64) -> Series {
        (0..n).map(|i| (i as i64 * step_ms, f(i))).collect()
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let mut s = series(20, HOUR_MS as i64, |i| 10.0 + 2.0 * i as f64);
        s[7].1 = 10_000.0;
        assert!((theil_sen_per_hour(&s) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn flat_with_noise_is_not_leaking_at_any_scale() {
        for (seed, step) in [(1, 200), (2, 60_000), (3, 3_600_000)] {
            let n = noise(200, seed);
            let heap = series(200, step, |i| 20e6 + 2e6 * n[i]);
            let counts = series(200, step, |i| 12.0 + (n[i] * 2.0).round());
            let v = judge(&instance(
                bucket_min(&counts, BUCKETS),
                bucket_min(&heap, BUCKETS),
                series(200, step, |_| 1_114_112.0),
                200,
            ));
            assert!(!v.leaking, "step {step}: {:?}", v.reasons);
        }
    }

    #[test]
    fn a_slow_steady_climb_is_leaking() {
        // One listener every 30 s for a day (+120/h), sampled every minute.
        let counts = series(1440, 60_000, |i| 8.0 + 2.0 * i as f64);
        // 5 MB/day of heap under ±1 MB of GC saw-tooth.
        let n = noise(1440, 9);
        let heap = series(1440, 60_000, |i| {
            30e6 + 5e6 * i as f64 / 1440.0 + 1e6 * n[i].abs()
        });
        let v = judge(&instance(
            bucket_min(&counts, BUCKETS),
            bucket_min(&heap, BUCKETS),
            series(1440, 60_000, |_| 1_114_112.0),
            1440,
        ));
        assert!(v.leaking);
        assert!((v.resources_per_hour[0] - 120.0).abs() < 5.0, "{v:?}");
        assert!(
            v.reasons.iter().any(|r| r.starts_with("listeners +1")),
            "{v:?}"
        );
        assert!(
            v.reasons.iter().any(|r| r.starts_with("JS heap +")),
            "{v:?}"
        );
        assert!(!v.reasons.iter().any(|r| r.starts_with("wasm")), "{v:?}");
    }

    #[test]
    fn the_same_leak_over_seconds_is_leaking() {
        // The e2e shape: a sample every 200 ms, five more listeners each time.
        let counts = series(12, 200, |i| 3.0 + 5.0 * i as f64);
        let v = judge(&instance(
            bucket_min(&counts, BUCKETS),
            vec![],
            series(12, 200, |_| 1_114_112.0),
            12,
        ));
        assert!(v.leaking);
        assert_eq!(v.reasons.len(), 1);
        assert!(v.reasons[0].starts_with("listeners +"), "{:?}", v.reasons);
    }

    #[test]
    fn one_spike_is_not_leaking() {
        let counts = series(100, 60_000, |i| if i == 50 { 500.0 } else { 7.0 });
        let heap = series(100, 60_000, |i| if i == 60 { 900e6 } else { 25e6 });
        let v = judge(&instance(
            bucket_min(&counts, BUCKETS),
            bucket_min(&heap, BUCKETS),
            vec![],
            100,
        ));
        assert!(!v.leaking, "{:?}", v.reasons);
    }

    #[test]
    fn one_wasm_step_is_not_leaking_but_steady_steps_are() {
        let page = 65_536.0;
        let one_step = series(
            100,
            1000,
            |i| {
                if i < 40 {
                    17.0 * page
                } else {
                    18.0 * page
                }
            },
        );
        let v = judge(&instance(
            vec![],
            vec![],
            bucket_min(&one_step, BUCKETS),
            100,
        ));
        assert!(!v.leaking, "{:?}", v.reasons);
        // A page every 10 samples, all window long: it keeps growing.
        let climbing = series(100, 60_000, |i| (17 + i / 10) as f64 * page);
        let v = judge(&instance(
            vec![],
            vec![],
            bucket_min(&climbing, BUCKETS),
            100,
        ));
        assert!(v.leaking);
        assert!(v.reasons[0].starts_with("wasm memory +"), "{:?}", v.reasons);
    }

    #[test]
    fn slow_memory_growth_under_a_megabyte_a_day_is_not_leaking() {
        let heap = series(1440, 60_000, |i| 30e6 + 500e3 * i as f64 / 1440.0);
        let v = judge(&instance(vec![], bucket_min(&heap, BUCKETS), vec![], 1440));
        assert!(!v.leaking, "{:?}", v.reasons);
        assert!((v.heap_per_hour * 24.0 - 500e3).abs() < 5e3);
    }

    #[test]
    fn memory_growth_over_seconds_without_a_gc_is_not_judged() {
        // A fresh page's heap over two seconds: rising garbage, no collection yet.
        let heap = series(10, 200, |i| 1.12e6 + 25e3 * i as f64);
        let v = judge(&instance(vec![], bucket_min(&heap, BUCKETS), vec![], 10));
        assert!(!v.leaking, "{:?}", v.reasons);
        // The same floor rising through two collections is judged.
        let sawtooth = series(12, 200, |i| {
            1.12e6 + 40e3 * i as f64 - if i % 4 == 3 { 60e3 } else { 0.0 }
        });
        let v = judge(&instance(
            vec![],
            bucket_min(&sawtooth, BUCKETS),
            vec![],
            12,
        ));
        assert!(v.leaking, "{:?}", v.reasons);
    }

    #[test]
    fn fewer_than_ten_samples_give_no_verdict() {
        let counts = series(9, 200, |i| 3.0 + 50.0 * i as f64);
        let v = judge(&instance(counts, vec![], vec![], 9));
        assert!(!v.judged);
        assert!(!v.leaking);
        assert!(v.reasons.is_empty());
        assert!(v.resources_per_hour[0] > 0.0, "the rate is still given");
    }

    #[test]
    fn buckets_keep_the_minimum_and_the_span() {
        let s = series(10, 1000, |i| {
            [5.0, 3.0, 9.0, 1.0, 4.0, 4.0, 8.0, 2.0, 6.0, 7.0][i]
        });
        assert_eq!(
            bucket_min(&s, 100),
            s,
            "fewer samples than buckets: all kept"
        );
        let b = bucket_min(&s, 2);
        assert_eq!(b, vec![(0, 1.0), (9000, 7.0)]);
        assert_eq!(bucket_min(&[], 4), vec![]);
        assert_eq!(bucket_min(&[(5, 1.0), (5, 0.5)], 4), vec![(5, 0.5)]);
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(
            reason(Kind::Resource("listeners"), 120.4),
            "listeners +120/h"
        );
        assert_eq!(reason(Kind::Resource("sockets"), 2.25), "sockets +2.2/h");
        assert_eq!(reason(Kind::Heap, 250_000.0), "JS heap +6.0 MB/day");
        assert_eq!(reason(Kind::Wasm, 65_536.0), "wasm memory +1.6 MB/day");
    }
}
