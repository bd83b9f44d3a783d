//! Web vitals as Google's `web-vitals` library computes them (reference.md), over plain numbers
//! taken from performance entries. The observer shell feeds entries in; nothing here touches the
//! browser.

use crate::prelude::*;
pub use vigil_protocol::vitals::{Rating, Vital};

/// LCP: the last `largest-contentful-paint` entry's `startTime - activationStart`, counting only
/// entries rendered before the page was first hidden, and none after the first input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lcp {
    value: Option<f64>,
    final_: bool,
}

impl Lcp {
    /// One entry. `first_hidden` is when the page was first hidden (infinity if never).
    pub fn entry(&mut self, start_time: f64, activation_start: f64, first_hidden: f64) {
        if !self.final_ && start_time < first_hidden {
            self.value = Some((start_time - activation_start).max(0.0));
        }
    }

    /// A first input or a hide: later entries no longer count.
    pub fn finalize(&mut self) {
        self.final_ = true;
    }

    /// The current value.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// True after the first input or hide.
    pub fn is_final(&self) -> bool {
        self.final_
    }
}

/// CLS: the largest session window of layout shifts without recent input; a window holds shifts
/// less than 1 s apart and spans at most 5 s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cls {
    value: Option<f64>,
    session_value: f64,
    session_first: f64,
    session_last: f64,
}

impl Cls {
    /// Observing started: the value is 0 until something shifts.
    pub fn started() -> Self {
        Self {
            value: Some(0.0),
            ..Self::default()
        }
    }

    /// One `layout-shift` entry.
    pub fn entry(&mut self, start_time: f64, value: f64, had_recent_input: bool) {
        if had_recent_input {
            return;
        }
        if self.session_value > 0.0
            && start_time - self.session_last < 1000.0
            && start_time - self.session_first < 5000.0
        {
            self.session_value += value;
        } else {
            self.session_value = value;
            self.session_first = start_time;
        }
        self.session_last = start_time;
        if self.value.is_none_or(|v| self.session_value > v) {
            self.value = Some(self.session_value);
        }
    }

    /// The current value (0 once observing started and nothing shifted).
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// The longest interactions kept for INP.
pub const INP_KEEP: usize = 10;

/// INP: interactions grouped by `interactionId`, the 10 longest kept; the value is the one at
/// index `min(9, floor(interactionCount / 50))` of the list sorted longest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inp {
    /// `(interactionId, latency)`, longest first, at most [`INP_KEEP`].
    longest: Vec<(u64, f64)>,
}

impl Inp {
    /// One `event` or `first-input` entry; entries without an interaction id are ignored.
    pub fn entry(&mut self, interaction_id: u64, duration: f64) {
        if interaction_id == 0 {
            return;
        }
        let latency = match self
            .longest
            .iter()
            .position(|(id, _)| *id == interaction_id)
        {
            Some(at) => {
                let (_, old) = self.longest.remove(at);
                old.max(duration)
            }
            None if self.longest.len() < INP_KEEP
                || self.longest.last().is_some_and(|(_, l)| duration > *l) =>
            {
                duration
            }
            None => return,
        };
        // Kept longest first by inserting in place (at most 10 entries; no sort code in wasm).
        let at = self
            .longest
            .iter()
            .position(|(_, l)| latency > *l)
            .unwrap_or(self.longest.len());
        self.longest.insert(at, (interaction_id, latency));
        self.longest.truncate(INP_KEEP);
    }

    /// The value for a page with `interaction_count` interactions so far.
    pub fn value(&self, interaction_count: u64) -> Option<f64> {
        let at = usize::try_from(interaction_count / 50)
            .unwrap_or(usize::MAX)
            .min(INP_KEEP - 1);
        let at = at.min(self.longest.len().checked_sub(1)?);
        Some(self.longest[at].1)
    }
}

/// FCP: `startTime - activationStart` of `first-contentful-paint`, if painted before the page
/// was first hidden.
pub fn fcp(start_time: f64, activation_start: f64, first_hidden: f64) -> Option<f64> {
    (start_time < first_hidden).then(|| (start_time - activation_start).max(0.0))
}

/// TTFB: `responseStart - activationStart` of the navigation entry.
pub fn ttfb(response_start: f64, activation_start: f64) -> f64 {
    (response_start - activation_start).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_at_the_thresholds() {
        assert_eq!(Vital::Lcp.rate(2500.0), Rating::Good);
        assert_eq!(Vital::Lcp.rate(2500.1), Rating::NeedsImprovement);
        assert_eq!(Vital::Lcp.rate(4000.0), Rating::NeedsImprovement);
        assert_eq!(Vital::Lcp.rate(4000.1), Rating::Poor);
        assert_eq!(Vital::Cls.rate(0.1), Rating::Good);
        assert_eq!(Vital::Cls.rate(0.25), Rating::NeedsImprovement);
        assert_eq!(Vital::Cls.rate(0.26), Rating::Poor);
        assert_eq!(Vital::Inp.rate(200.0), Rating::Good);
        assert_eq!(Vital::Inp.rate(501.0), Rating::Poor);
        assert_eq!(Vital::Fcp.rate(1800.0), Rating::Good);
        assert_eq!(Vital::Ttfb.rate(1800.0), Rating::NeedsImprovement);
        assert_eq!(Rating::NeedsImprovement.as_str(), "needs-improvement");
    }

    #[test]
    fn lcp_takes_the_last_entry_before_input_or_hide() {
        let mut l = Lcp::default();
        l.entry(100.0, 0.0, f64::INFINITY);
        l.entry(900.0, 0.0, f64::INFINITY);
        assert_eq!(l.value(), Some(900.0));
        l.entry(2000.0, 0.0, 1500.0); // rendered after the page was hidden
        assert_eq!(l.value(), Some(900.0));
        l.finalize();
        l.entry(1200.0, 0.0, f64::INFINITY);
        assert_eq!(l.value(), Some(900.0), "nothing after the first input");
        let mut prerendered = Lcp::default();
        prerendered.entry(300.0, 500.0, f64::INFINITY);
        assert_eq!(
            prerendered.value(),
            Some(0.0),
            "activationStart, clamped at 0"
        );
    }

    #[test]
    fn cls_uses_the_largest_session_window() {
        let mut c = Cls::default();
        c.entry(0.0, 0.05, false);
        c.entry(500.0, 0.05, false); // same window: 0.10
        c.entry(900.0, 0.5, true); // recent input: ignored
        assert!((c.value().unwrap() - 0.10).abs() < 1e-12);
        c.entry(3000.0, 0.02, false); // gap over 1 s: a new window of 0.02
        assert!((c.value().unwrap() - 0.10).abs() < 1e-12);
        // A window spans at most 5 s: shifts every 900 ms from 10 s on.
        let mut w = Cls::default();
        for i in 0..8 {
            w.entry(10_000.0 + f64::from(i) * 900.0, 0.01, false);
        }
        // 10.0 .. 14.5 (6 shifts, < 5 s from the first) then a new window from 15.4.
        assert!((w.value().unwrap() - 0.06).abs() < 1e-12, "{:?}", w.value());
    }

    #[test]
    fn inp_picks_by_interaction_count() {
        let mut i = Inp::default();
        assert_eq!(i.value(0), None, "no interaction, no INP");
        i.entry(1, 40.0);
        i.entry(1, 120.0); // same interaction: the longest entry counts
        i.entry(2, 80.0);
        i.entry(0, 999.0); // not an interaction
        assert_eq!(i.value(2), Some(120.0));
        for id in 3..30 {
            i.entry(id, f64::from(id as u32) * 10.0);
        }
        assert_eq!(i.longest.len(), INP_KEEP);
        assert_eq!(
            i.value(10),
            Some(290.0),
            "under 50 interactions: the longest"
        );
        assert_eq!(i.value(120), Some(270.0), "120 interactions: index 2");
        assert_eq!(i.value(10_000), Some(200.0), "index at most 9");
    }

    #[test]
    fn fcp_and_ttfb() {
        assert_eq!(fcp(800.0, 100.0, f64::INFINITY), Some(700.0));
        assert_eq!(
            fcp(800.0, 0.0, 500.0),
            None,
            "painted after the page was hidden"
        );
        assert_eq!(ttfb(120.0, 0.0), 120.0);
        assert_eq!(ttfb(120.0, 200.0), 0.0);
    }
}
