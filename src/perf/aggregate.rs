//! Points between two exports, aggregated per series (metric name + attributes) so the payload
//! stays small: the last value of each series, how many points it summarized, and its min and
//! max. Bounded: beyond [`MAX_SERIES`] new series are dropped and counted.

use crate::prelude::*;
/// The most series held between two exports.
pub const MAX_SERIES: usize = 256;
/// The most attributes a point keeps (the first ones given).
pub const MAX_ATTRIBUTES: usize = 16;

/// One series between two exports.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Attributes, sorted by key.
    pub attributes: Vec<(String, String)>,
    /// The last value recorded.
    pub last: f64,
    /// Smallest value recorded.
    pub min: f64,
    /// Largest value recorded.
    pub max: f64,
    /// Points recorded.
    pub count: u64,
    /// When the last value was recorded (ms since the epoch).
    pub time_ms: f64,
}

/// Sorts a few attributes by insertion (no slice-sort code in the wasm bundle).
fn sort_small(v: &mut [(String, String)]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The aggregator.
#[derive(Debug, Default)]
pub struct Aggregator {
    series: Vec<Series>,
    dropped: u64,
}

impl Aggregator {
    /// Records one point.
    pub fn record(
        &mut self,
        name: &str,
        unit: &str,
        value: f64,
        mut attributes: Vec<(String, String)>,
        time_ms: f64,
    ) {
        if !value.is_finite() {
            self.dropped += 1;
            return;
        }
        attributes.truncate(MAX_ATTRIBUTES);
        sort_small(&mut attributes);
        if let Some(s) = self
            .series
            .iter_mut()
            .find(|s| s.name == name && s.attributes == attributes)
        {
            s.last = value;
            s.min = s.min.min(value);
            s.max = s.max.max(value);
            s.count += 1;
            s.time_ms = time_ms;
            return;
        }
        if self.series.len() >= MAX_SERIES {
            self.dropped += 1;
            return;
        }
        self.series.push(Series {
            name: name.to_owned(),
            unit: unit.to_owned(),
            attributes,
            last: value,
            min: value,
            max: value,
            count: 1,
            time_ms,
        });
    }

    /// Takes every series (for an export) and starts over.
    pub fn drain(&mut self) -> Vec<Series> {
        core::mem::take(&mut self.series)
    }

    /// True when nothing waits for an export.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Points dropped (not finite, or beyond [`MAX_SERIES`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn one_series_per_name_and_attributes() {
        let mut a = Aggregator::default();
        a.record("x", "ms", 5.0, attrs(&[("b", "2"), ("a", "1")]), 1.0);
        a.record("x", "ms", 3.0, attrs(&[("a", "1"), ("b", "2")]), 2.0);
        a.record("x", "ms", 9.0, attrs(&[("a", "other")]), 3.0);
        let s = a.drain();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].last, s[0].min, s[0].max, s[0].count),
            (3.0, 3.0, 5.0, 2)
        );
        assert_eq!(s[0].time_ms, 2.0);
        assert!(a.is_empty());
    }

    #[test]
    fn bounded_and_counts_what_it_drops() {
        let mut a = Aggregator::default();
        for i in 0..(MAX_SERIES + 10) {
            a.record(&format!("m{i}"), "1", 1.0, vec![], 0.0);
        }
        a.record("nan", "1", f64::NAN, vec![], 0.0);
        assert_eq!(a.drain().len(), MAX_SERIES);
        assert_eq!(a.dropped(), 11);
    }
}
