//! The performance monitor's state, sans IO: performance entries, page visibility and
//! back/forward-cache restores in; current vitals and the points of the next export out. The
//! browser shell (`perf::shell`) reads entries from `PerformanceObserver`s and feeds them here.
//!
//! What is exported when follows `web-vitals` without `reportAllChanges`: FCP and TTFB once
//! known, LCP once final (first input, or hidden), CLS and INP when the page is hidden; each
//! vital again only when its value changed. Long tasks, resource timing and custom metrics go
//! with every export that has something new; navigation timing goes once.

use super::aggregate::Aggregator;
use super::vitals::{self, Cls, Inp, Lcp, Rating, Vital};
use crate::prelude::*;
use crate::transport::otlp::Points;

/// The point attribute naming the page view a vital belongs to.
pub const VIEW_ID: &str = "page.view_id";

/// The navigation timing of the page (from the `navigation` entry), in ms since time origin.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Navigation {
    /// `activationStart` (prerendered pages), 0 otherwise.
    pub activation_start: f64,
    /// `domainLookupStart`.
    pub domain_lookup_start: f64,
    /// `domainLookupEnd`.
    pub domain_lookup_end: f64,
    /// `connectStart`.
    pub connect_start: f64,
    /// `connectEnd`.
    pub connect_end: f64,
    /// `requestStart`.
    pub request_start: f64,
    /// `responseStart`.
    pub response_start: f64,
    /// `responseEnd`.
    pub response_end: f64,
    /// `domInteractive`.
    pub dom_interactive: f64,
    /// `domContentLoadedEventEnd`.
    pub dom_content_loaded: f64,
    /// `loadEventEnd`.
    pub load_event_end: f64,
}

/// One performance entry, as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `largest-contentful-paint`.
    Lcp {
        /// `startTime`.
        start_time: f64,
    },
    /// `layout-shift`.
    LayoutShift {
        /// `startTime`.
        start_time: f64,
        /// `value`.
        value: f64,
        /// `hadRecentInput`.
        had_recent_input: bool,
    },
    /// `event` or `first-input`.
    Interaction {
        /// `interactionId` (0: not an interaction).
        interaction_id: u64,
        /// `duration`.
        duration: f64,
    },
    /// `paint` named `first-contentful-paint`.
    Fcp {
        /// `startTime`.
        start_time: f64,
    },
    /// The `navigation` entry, read after `load`.
    Navigation(Navigation),
    /// `longtask`.
    LongTask {
        /// `duration`.
        duration: f64,
    },
    /// `resource`.
    Resource {
        /// `name` (the URL).
        name: String,
        /// `duration`.
        duration: f64,
        /// `transferSize` (0 from cache or without `Timing-Allow-Origin`).
        transfer_size: f64,
    },
}

/// Long tasks so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LongTasks {
    /// How many.
    pub count: u64,
    /// Their total duration (ms).
    pub total: f64,
    /// The longest (ms).
    pub max: f64,
}

/// Resource timing so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Resources fetched.
    pub count: u64,
    /// Bytes transferred.
    pub transfer_size: f64,
    /// The slowest one's duration (ms) and URL.
    pub slowest: Option<(f64, String)>,
}

/// A vital's current value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Which.
    pub vital: Vital,
    /// The value (ms, or unitless for CLS).
    pub value: f64,
    /// Its rating.
    pub rating: Rating,
}

/// Interaction ids seen, for estimating the interaction count where the browser has no
/// `performance.interactionCount` (as `web-vitals` does: ids grow by 7 per interaction).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct IdRange {
    min: u64,
    max: u64,
}

impl IdRange {
    fn see(&mut self, id: u64) {
        if self.min == 0 || id < self.min {
            self.min = id;
        }
        self.max = self.max.max(id);
    }

    fn estimate(&self) -> u64 {
        if self.max == 0 {
            0
        } else {
            (self.max - self.min) / 7 + 1
        }
    }
}

/// The monitor.
#[derive(Debug)]
pub struct Monitor {
    view_id: String,
    activation_start: f64,
    first_hidden: f64,
    lcp: Lcp,
    cls: Cls,
    inp: Inp,
    fcp: Option<f64>,
    ttfb: Option<f64>,
    ids: IdRange,
    /// The interaction count when the current measurement started (bfcache restores).
    interactions_before: u64,
    /// Measuring since a back/forward-cache restore.
    restored: bool,
    hidden: bool,
    navigation: Option<Navigation>,
    navigation_sent: bool,
    long_tasks: LongTasks,
    long_tasks_sent: LongTasks,
    resources: Resources,
    resources_sent: u64,
    sent: [Option<f64>; 5],
    custom: Aggregator,
}

fn index(vital: Vital) -> usize {
    match vital {
        Vital::Lcp => 0,
        Vital::Cls => 1,
        Vital::Inp => 2,
        Vital::Fcp => 3,
        Vital::Ttfb => 4,
    }
}

impl Monitor {
    /// A monitor for page view `view_id`. `activation_start` comes from the navigation entry;
    /// `first_hidden` is when the page was first hidden (0 when it loaded in the background,
    /// infinity when it has always been visible): nothing painted after it counts, as in
    /// `web-vitals`.
    pub fn new(view_id: String, activation_start: f64, first_hidden: f64) -> Self {
        let hidden_at_start = first_hidden <= 0.0;
        Self {
            view_id,
            activation_start,
            first_hidden,
            restored: false,
            lcp: Lcp::default(),
            cls: Cls::started(),
            inp: Inp::default(),
            fcp: None,
            ttfb: None,
            ids: IdRange::default(),
            interactions_before: 0,
            hidden: hidden_at_start,
            navigation: None,
            navigation_sent: false,
            long_tasks: LongTasks::default(),
            long_tasks_sent: LongTasks::default(),
            resources: Resources::default(),
            resources_sent: 0,
            sent: [None; 5],
            custom: Aggregator::default(),
        }
    }

    /// One entry.
    pub fn entry(&mut self, entry: Entry) {
        match entry {
            Entry::Lcp { start_time } => {
                self.lcp
                    .entry(start_time, self.activation_start, self.first_hidden);
            }
            Entry::LayoutShift {
                start_time,
                value,
                had_recent_input,
            } => self.cls.entry(start_time, value, had_recent_input),
            Entry::Interaction {
                interaction_id,
                duration,
            } => {
                if interaction_id != 0 {
                    self.ids.see(interaction_id);
                }
                self.inp.entry(interaction_id, duration);
            }
            Entry::Fcp { start_time } => {
                if self.fcp.is_none() {
                    self.fcp = vitals::fcp(start_time, self.activation_start, self.first_hidden);
                }
            }
            Entry::Navigation(n) => {
                if self.ttfb.is_none() {
                    self.ttfb = Some(vitals::ttfb(n.response_start, n.activation_start));
                }
                self.navigation = Some(n);
            }
            Entry::LongTask { duration } => {
                let t = &mut self.long_tasks;
                t.count += 1;
                t.total += duration;
                t.max = t.max.max(duration);
            }
            Entry::Resource {
                name,
                duration,
                transfer_size,
            } => {
                let r = &mut self.resources;
                r.count += 1;
                if transfer_size.is_finite() && transfer_size > 0.0 {
                    r.transfer_size += transfer_size;
                }
                if r.slowest.as_ref().is_none_or(|(d, _)| duration > *d) {
                    r.slowest = Some((duration, name));
                }
            }
        }
    }

    /// The first `keydown` or `click`: LCP is final.
    pub fn input(&mut self) {
        self.lcp.finalize();
    }

    /// The page is hidden (or going away) at `now`: LCP is final; CLS and INP are reported.
    pub fn hidden(&mut self, now: f64) {
        self.first_hidden = self.first_hidden.min(now);
        self.lcp.finalize();
        self.hidden = true;
    }

    /// The page is visible again (without a restore): later exports wait for the next hide.
    pub fn visible(&mut self) {
        self.hidden = false;
    }

    /// Restored from the back/forward cache: new measurements start. `interaction_count` is the
    /// browser's count now; `paint_ms` is how long after the `pageshow` the next frames painted
    /// (the new LCP and FCP, as `web-vitals` measures them); TTFB is 0.
    pub fn restored(&mut self, interaction_count: Option<u64>, paint_ms: f64) {
        self.interactions_before = interaction_count.unwrap_or_else(|| self.ids.estimate());
        self.first_hidden = f64::INFINITY;
        self.hidden = false;
        self.restored = true;
        self.lcp = Lcp::default();
        self.lcp.entry(paint_ms, 0.0, f64::INFINITY);
        self.lcp.finalize();
        self.fcp = Some(paint_ms.max(0.0));
        self.ttfb = Some(0.0);
        self.cls = Cls::started();
        self.inp = Inp::default();
        self.sent = [None; 5];
    }

    fn interactions(&self, browser_count: Option<u64>) -> u64 {
        browser_count
            .unwrap_or_else(|| self.ids.estimate())
            .saturating_sub(self.interactions_before)
    }

    /// A vital's current value. `interaction_count` is `performance.interactionCount` where the
    /// browser has it.
    pub fn value(&self, vital: Vital, interaction_count: Option<u64>) -> Option<f64> {
        match vital {
            Vital::Lcp => self.lcp.value(),
            Vital::Cls => self.cls.value(),
            Vital::Inp => {
                let count = self.interactions(interaction_count);
                // After a restore, interactions too short to be observed still give an INP of
                // 8 ms (one frame at the browser's granularity), as in `web-vitals`.
                self.inp
                    .value(count)
                    .or((self.restored && count > 0).then_some(8.0))
            }
            Vital::Fcp => self.fcp,
            Vital::Ttfb => self.ttfb,
        }
    }

    /// Every vital measured so far.
    pub fn vitals(&self, interaction_count: Option<u64>) -> Vec<Measured> {
        Vital::ALL
            .iter()
            .filter_map(|&vital| {
                let value = self.value(vital, interaction_count)?;
                Some(Measured {
                    vital,
                    value,
                    rating: vital.rate(value),
                })
            })
            .collect()
    }

    /// A custom gauge point (`recordMetric`, `measure`, memory).
    pub fn record(
        &mut self,
        name: &str,
        unit: &str,
        value: f64,
        attributes: Vec<(String, String)>,
        time_ms: f64,
    ) {
        self.custom.record(name, unit, value, attributes, time_ms);
    }

    /// Custom points dropped (not finite, or too many series).
    pub fn dropped(&self) -> u64 {
        self.custom.dropped()
    }

    fn ready(&self, vital: Vital) -> bool {
        match vital {
            Vital::Fcp | Vital::Ttfb => true,
            Vital::Lcp => self.lcp.is_final(),
            Vital::Cls | Vital::Inp => self.hidden,
        }
    }

    /// Hands `out` the points of the next export at `now_ms` (epoch ms); none when nothing is
    /// new.
    pub fn export(&mut self, now_ms: f64, interaction_count: Option<u64>, out: &mut impl Points) {
        let now = (now_ms * 1e6) as u64;
        for vital in Vital::ALL {
            let Some(value) = self.value(vital, interaction_count) else {
                continue;
            };
            if !self.ready(vital) || self.sent[index(vital)] == Some(value) {
                continue;
            }
            self.sent[index(vital)] = Some(value);
            out.attr("rating", vital.rate(value).as_str());
            out.attr(VIEW_ID, &self.view_id);
            let (name, unit, description) =
                (vital.metric_name(), vital.unit(), vital.description());
            out.point(name, unit, description, value, now);
        }
        if let (Some(n), false) = (self.navigation, self.navigation_sent) {
            self.navigation_sent = true;
            for (name, value) in [
                (
                    "browser.navigation.dns",
                    n.domain_lookup_end - n.domain_lookup_start,
                ),
                (
                    "browser.navigation.connect",
                    n.connect_end - n.connect_start,
                ),
                (
                    "browser.navigation.request",
                    n.response_start - n.request_start,
                ),
                (
                    "browser.navigation.response",
                    n.response_end - n.response_start,
                ),
                (
                    "browser.navigation.dom_interactive",
                    n.dom_interactive - n.activation_start,
                ),
                (
                    "browser.navigation.dom_content_loaded",
                    n.dom_content_loaded - n.activation_start,
                ),
                (
                    "browser.navigation.load",
                    n.load_event_end - n.activation_start,
                ),
            ] {
                out.point(name, "ms", "Navigation timing", value.max(0.0), now);
            }
        }
        if self.long_tasks != self.long_tasks_sent {
            let t = self.long_tasks;
            self.long_tasks_sent = t;
            out.point(
                "browser.long_tasks.count",
                "1",
                "Long tasks",
                t.count as f64,
                now,
            );
            out.point(
                "browser.long_tasks.duration",
                "ms",
                "Long tasks, total",
                t.total,
                now,
            );
            out.point("browser.long_tasks.max", "ms", "Longest task", t.max, now);
        }
        if self.resources.count != self.resources_sent {
            self.resources_sent = self.resources.count;
            let r = &self.resources;
            out.point(
                "browser.resources.count",
                "1",
                "Resources fetched",
                r.count as f64,
                now,
            );
            let (name, description) = (
                "browser.resources.transfer_size",
                "Resource bytes transferred",
            );
            out.point(name, "By", description, r.transfer_size, now);
            if let Some((d, url)) = &r.slowest {
                out.attr("url.full", url);
                out.point(
                    "browser.resources.slowest",
                    "ms",
                    "Slowest resource",
                    *d,
                    now,
                );
            }
        }
        for s in self.custom.drain() {
            for (k, v) in &s.attributes {
                out.attr(k, v);
            }
            out.point(&s.name, &s.unit, "", s.last, (s.time_ms * 1e6) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::otlp::collect::{Gauge, Gauges};

    /// What one export hands its sink, as gauges.
    fn export(m: &mut Monitor, now_ms: f64, interaction_count: Option<u64>) -> Vec<Gauge> {
        let mut out = Gauges::default();
        m.export(now_ms, interaction_count, &mut out);
        out.gauges
    }

    fn names(g: &[Gauge]) -> Vec<&str> {
        g.iter().map(|g| g.name.as_str()).collect()
    }

    fn nav(response_start: f64) -> Entry {
        Entry::Navigation(Navigation {
            response_start,
            request_start: 20.0,
            response_end: response_start + 5.0,
            dom_interactive: 200.0,
            dom_content_loaded: 220.0,
            load_event_end: 300.0,
            ..Navigation::default()
        })
    }

    #[test]
    fn vitals_are_exported_as_web_vitals_reports_them() {
        let mut m = Monitor::new("v1".into(), 0.0, f64::INFINITY);
        m.entry(Entry::Fcp { start_time: 120.0 });
        m.entry(Entry::Lcp { start_time: 150.0 });
        m.entry(nav(80.0));
        m.entry(Entry::LayoutShift {
            start_time: 400.0,
            value: 0.2,
            had_recent_input: false,
        });
        let first = export(&mut m, 1000.0, None);
        assert_eq!(
            &names(&first)[..2],
            ["web_vitals.fcp", "web_vitals.ttfb"],
            "FCP and TTFB at once; LCP, CLS wait"
        );
        assert!(names(&first).contains(&"browser.navigation.load"));
        let fcp = &first[0].points[0];
        assert_eq!(fcp.value, 120.0);
        assert_eq!(fcp.time_unix_nano, 1_000_000_000);
        assert!(fcp.attributes.contains(&("rating".into(), "good".into())));
        assert!(fcp.attributes.contains(&(VIEW_ID.into(), "v1".into())));
        assert!(
            export(&mut m, 2000.0, None).is_empty(),
            "nothing new, nothing sent"
        );

        m.input();
        m.entry(Entry::Lcp { start_time: 900.0 }); // after the first input: ignored
        assert_eq!(names(&export(&mut m, 3000.0, None)), ["web_vitals.lcp"]);
        m.entry(Entry::Interaction {
            interaction_id: 7,
            duration: 260.0,
        });
        m.hidden(5000.0);
        let on_hide = export(&mut m, 5000.0, None);
        assert_eq!(names(&on_hide), ["web_vitals.cls", "web_vitals.inp"]);
        assert_eq!(on_hide[0].points[0].value, 0.2);
        assert_eq!(on_hide[1].points[0].value, 260.0);
        assert_eq!(
            on_hide[1].points[0].attributes[0],
            ("rating".into(), "needs-improvement".into())
        );
        m.visible();
        m.hidden(9000.0);
        assert!(
            export(&mut m, 9000.0, None).is_empty(),
            "unchanged: not again"
        );
    }

    #[test]
    fn cls_is_zero_when_nothing_shifted_and_hidden_loads_paint_nothing() {
        let mut m = Monitor::new("v".into(), 0.0, 0.0);
        m.entry(Entry::Fcp { start_time: 50.0 });
        m.entry(Entry::Lcp { start_time: 60.0 });
        assert_eq!(m.value(Vital::Fcp, None), None);
        assert_eq!(m.value(Vital::Lcp, None), None);
        assert_eq!(m.value(Vital::Cls, None), Some(0.0));
        let g = export(&mut m, 1.0, None);
        assert_eq!(names(&g), ["web_vitals.cls"]);
    }

    #[test]
    fn prerendered_pages_count_from_activation() {
        let mut m = Monitor::new("v".into(), 500.0, f64::INFINITY);
        m.entry(Entry::Fcp { start_time: 800.0 });
        m.entry(Entry::Lcp { start_time: 300.0 });
        let mut n = Navigation {
            activation_start: 500.0,
            response_start: 100.0,
            ..Navigation::default()
        };
        m.entry(Entry::Navigation(n));
        assert_eq!(m.value(Vital::Fcp, None), Some(300.0));
        assert_eq!(m.value(Vital::Lcp, None), Some(0.0));
        assert_eq!(m.value(Vital::Ttfb, None), Some(0.0));
        n.response_start = 900.0;
        m.entry(Entry::Navigation(n));
        assert_eq!(m.value(Vital::Ttfb, None), Some(0.0), "TTFB is taken once");
    }

    #[test]
    fn a_bfcache_restore_starts_new_measurements() {
        let mut m = Monitor::new("v".into(), 0.0, f64::INFINITY);
        m.entry(Entry::Fcp { start_time: 100.0 });
        m.entry(Entry::LayoutShift {
            start_time: 1.0,
            value: 0.3,
            had_recent_input: false,
        });
        for id in [10, 17, 24] {
            m.entry(Entry::Interaction {
                interaction_id: id,
                duration: 300.0,
            });
        }
        m.hidden(2000.0);
        assert_eq!(
            names(&export(&mut m, 2000.0, None)),
            ["web_vitals.cls", "web_vitals.inp", "web_vitals.fcp"]
        );
        m.restored(None, 16.0);
        assert_eq!(m.value(Vital::Cls, None), Some(0.0));
        assert_eq!(m.value(Vital::Inp, None), None);
        assert_eq!(m.value(Vital::Lcp, None), Some(16.0));
        assert_eq!(m.value(Vital::Ttfb, None), Some(0.0));
        m.entry(Entry::Interaction {
            interaction_id: 31,
            duration: 100.0,
        });
        assert_eq!(m.interactions(None), 1, "counted from the restore");
        assert_eq!(m.value(Vital::Inp, None), Some(100.0));
        m.restored(Some(5), 16.0);
        assert_eq!(m.value(Vital::Inp, Some(5)), None, "no interaction yet");
        assert_eq!(
            m.value(Vital::Inp, Some(6)),
            Some(8.0),
            "an interaction too short to observe"
        );
        m.restored(None, 16.0);
        m.entry(Entry::Interaction {
            interaction_id: 38,
            duration: 100.0,
        });
        let g = export(&mut m, 3000.0, None);
        assert_eq!(
            names(&g),
            ["web_vitals.lcp", "web_vitals.fcp", "web_vitals.ttfb"]
        );
    }

    #[test]
    fn inp_uses_the_browser_count_or_estimates_it() {
        let mut m = Monitor::new("v".into(), 0.0, f64::INFINITY);
        for i in 0..60u64 {
            m.entry(Entry::Interaction {
                interaction_id: 100 + i * 7,
                duration: 100.0 + i as f64,
            });
        }
        assert_eq!(m.interactions(None), 60);
        assert_eq!(
            m.value(Vital::Inp, None),
            Some(158.0),
            "60 interactions: the second longest"
        );
        assert_eq!(m.value(Vital::Inp, Some(10)), Some(159.0));
    }

    #[test]
    fn long_tasks_resources_and_custom_metrics() {
        let mut m = Monitor::new("v".into(), 0.0, f64::INFINITY);
        m.entry(Entry::LongTask { duration: 60.0 });
        m.entry(Entry::LongTask { duration: 120.0 });
        for (name, d, size) in [("/a.js", 30.0, 1000.0), ("/b.png", 80.0, 5000.0)] {
            m.entry(Entry::Resource {
                name: name.into(),
                duration: d,
                transfer_size: size,
            });
        }
        m.record("checkout", "ms", 5.0, vec![], 10.0);
        m.record("checkout", "ms", 7.0, vec![], 20.0);
        let g = export(&mut m, 100.0, None);
        let find = |n: &str| g.iter().find(|x| x.name == n).expect(n);
        assert_eq!(find("browser.long_tasks.count").points[0].value, 2.0);
        assert_eq!(find("browser.long_tasks.duration").points[0].value, 180.0);
        assert_eq!(find("browser.long_tasks.max").points[0].value, 120.0);
        assert_eq!(find("browser.resources.count").points[0].value, 2.0);
        assert_eq!(
            find("browser.resources.transfer_size").points[0].value,
            6000.0
        );
        let slowest = &find("browser.resources.slowest").points[0];
        assert_eq!(slowest.value, 80.0);
        assert_eq!(slowest.attributes[0].1, "/b.png");
        let custom = find("checkout");
        assert_eq!(custom.points.len(), 1, "aggregated between exports");
        assert_eq!(custom.points[0].value, 7.0);
        assert_eq!(custom.points[0].time_unix_nano, 20_000_000);
        assert!(export(&mut m, 200.0, None).is_empty());
    }
}
