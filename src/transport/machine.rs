//! The transport's decisions, sans IO: a bounded queue of encoded envelopes, one request at a
//! time (more on a page-hide flush, within the `keepalive` budget), retries with backoff on
//! network errors and 5xx, `429` limits held per category, `413` and other 4xx dropped, nothing
//! sent while offline. The shell does the `fetch`, the timer and the persistent copy.
//!
//! Delivery is at least once: a request whose answer never came is sent again (from the
//! persistent copy after a reload); the server dedupes by `event_id`.

use super::ratelimit::RateLimits;
use crate::backoff::{Backoff, Jitter};
use crate::prelude::*;

/// Browsers refuse `keepalive` requests beyond 64 KiB in flight; stay under it as Sentry does.
pub const KEEPALIVE_BUDGET: usize = 60_000;

/// Sends in a row that failed without an answer (network error, CORS, a CSP block) before the
/// transport stops retrying by itself; it tries again on the next envelope, `online`, `flush()`,
/// a page-hide flush or the next page load (what waits stays queued and in `localStorage`).
pub const MAX_FAILED_SENDS: u32 = 4;

/// What an envelope carries: its rate-limit category (`X-Sentry-Rate-Limits`) and, in the shell,
/// its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Error events (Sentry envelopes).
    Error,
    /// Metric exports (OTLP), counted apart in [`Stats::metrics_sent`].
    Metric,
}

impl Category {
    /// The rate-limit category's name, also the name kept in the persistent copy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Metric => "metric",
        }
    }

    /// Its code in the shell's persistence calls (`js/telemetry.js` maps it to [`Self::as_str`]
    /// in the stored copy).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The category of a code; `None` for one this version never gives (`-1` from the loader:
    /// a name it never writes).
    pub fn from_code(code: f64) -> Option<Self> {
        [Self::Error, Self::Metric]
            .into_iter()
            .find(|c| c.code() as f64 == code)
    }
}

/// Settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Envelopes held (queued and in flight); the oldest queued one is dropped beyond it.
    pub max_queued: usize,
    /// Retry schedule for network errors and 5xx.
    pub backoff: Backoff,
    /// Seed of the jitter.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_queued: 100,
            backoff: Backoff {
                initial_delay_ms: 1000.0,
                max_delay_ms: 60_000.0,
                factor: 2.0,
                jitter: 0.25,
                max_attempts: None,
            },
            seed: 0x7a11,
        }
    }
}

/// What the machine needs of an encoded body: its size in bytes (the keepalive budget). The
/// browser shell's body is a JS string it never copies into the wasm
/// ([`super::shell::Body`]); the native tests use `String`.
pub trait Body: Clone {
    /// UTF-8 bytes, as the request sends them.
    fn bytes(&self) -> usize;
}

impl Body for String {
    fn bytes(&self) -> usize {
        self.len()
    }
}

/// One encoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<B = String> {
    /// Request id, for matching the answer.
    pub id: u64,
    /// What it carries.
    pub category: Category,
    /// The body.
    pub body: B,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<B = String> {
    /// Queue an envelope.
    Enqueue {
        /// What it carries.
        category: Category,
        /// Encoded body.
        body: B,
    },
    /// The server answered request `id`.
    Answered {
        /// Request id.
        id: u64,
        /// HTTP status.
        status: u16,
        /// `X-Sentry-Rate-Limits`.
        sentry_limits: Option<String>,
        /// `Retry-After`.
        retry_after: Option<String>,
    },
    /// Request `id` failed without an answer (network error, CORS, a CSP block, abort).
    Failed(u64),
    /// Request `id` could not be made at all (a malformed URL, a `fetch` that threw): it never
    /// can be, so it is dropped, not retried.
    Refused(u64),
    /// The retry timer fired.
    Fired,
    /// `online`.
    Online,
    /// `offline`.
    Offline,
    /// The page is being hidden or closed: send what fits with `keepalive` now.
    Flush,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<B = String> {
    /// `fetch(url, { method: "POST", body, keepalive })`, answering with `Answered`/`Failed`.
    Send {
        /// Request id.
        id: u64,
        /// What it carries: the shell picks the endpoint by it.
        category: Category,
        /// Body.
        body: B,
        /// Use `keepalive` (the request survives the page).
        keepalive: bool,
    },
    /// The set of undelivered envelopes changed: write the persistent copy.
    Persist,
    /// Arm the (single) retry timer.
    Arm(u32),
    /// Cancel it.
    Disarm,
    /// Nothing queued and nothing in flight: resolve `flush()` waiters with true.
    Settled,
    /// Report the failure just fed (once per transport) through the report sink.
    Report,
}

/// Counters for `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Envelopes the server acknowledged (every category but `metric`).
    pub sent: u64,
    /// Metric exports the server acknowledged.
    pub metrics_sent: u64,
    /// Envelopes dropped: queue bound, 413, other 4xx.
    pub dropped: u64,
    /// Queued or in flight (every category but `metric`).
    pub queued: usize,
    /// Metric exports queued or in flight.
    pub metrics_queued: usize,
    /// Epoch ms until which something is rate limited (0 when nothing is).
    pub rate_limited_until: f64,
    /// Sends that failed without an answer or could not be made.
    pub send_failures: u64,
}

/// The transport state machine.
#[derive(Debug)]
pub struct Machine<B = String> {
    config: Config,
    /// Oldest first. A `Vec`, not a `VecDeque` (~1 KB of wasm): dropping the oldest at the
    /// bound shifts the rest, at most `maxQueuedEvents` (≤ 10,000) envelope headers.
    queue: Vec<Envelope<B>>,
    in_flight: Vec<Envelope<B>>,
    next_id: u64,
    online: bool,
    /// After a network error or 5xx: nothing is sent until the retry timer fires.
    backing_off: bool,
    /// When the (single) timer fires, if armed.
    timer_due: Option<f64>,
    attempts: u32,
    /// Sends in a row that failed without an answer.
    failures: u32,
    /// Stopped retrying by itself after [`MAX_FAILED_SENDS`] failures.
    parked: bool,
    /// A failure was reported already.
    reported: bool,
    limits: RateLimits,
    stats: Stats,
    rng: Jitter,
}

impl<B: Body> Machine<B> {
    /// An empty transport; `online` is `navigator.onLine`.
    pub fn new(config: Config, online: bool) -> Self {
        let rng = Jitter::new(config.seed);
        Self {
            config,
            queue: Vec::new(),
            in_flight: Vec::new(),
            next_id: 1,
            online,
            backing_off: false,
            timer_due: None,
            attempts: 0,
            failures: 0,
            parked: false,
            reported: false,
            limits: RateLimits::default(),
            stats: Stats::default(),
            rng,
        }
    }

    /// Counters.
    pub fn stats(&self, now_ms: f64) -> Stats {
        let until = [Category::Error, Category::Metric]
            .iter()
            .filter_map(|c| self.limits.limited_until(c.as_str(), now_ms))
            .fold(0.0, f64::max);
        let metrics_queued = self
            .undelivered()
            .filter(|e| e.category == Category::Metric)
            .count();
        Stats {
            queued: self.queue.len() + self.in_flight.len() - metrics_queued,
            metrics_queued,
            rate_limited_until: until,
            ..self.stats
        }
    }

    /// Every undelivered envelope (in flight first, then queued), for the persistent copy.
    pub fn undelivered(&self) -> impl Iterator<Item = &Envelope<B>> {
        self.in_flight.iter().chain(self.queue.iter())
    }

    /// True when nothing is queued or in flight.
    pub fn is_settled(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Feeds one event at `now_ms`.
    pub fn handle(&mut self, now_ms: f64, event: Event<B>) -> Vec<Effect<B>> {
        let mut fx = Vec::new();
        match event {
            Event::Enqueue { category, body } => {
                if self.config.max_queued == 0 {
                    self.stats.dropped += 1;
                    return fx;
                }
                while self.queue.len() + self.in_flight.len() >= self.config.max_queued {
                    if self.queue.is_empty() {
                        break; // everything is in flight; let this one wait behind them
                    }
                    self.queue.remove(0);
                    self.stats.dropped += 1;
                }
                let id = self.take_id();
                self.queue.push(Envelope { id, category, body });
                fx.push(Effect::Persist);
                self.parked = false; // new data: one more try
                self.pump(now_ms, &mut fx, false);
            }
            Event::Answered {
                id,
                status,
                sentry_limits,
                retry_after,
            } => {
                let Some(at) = self.in_flight.iter().position(|e| e.id == id) else {
                    return fx;
                };
                let envelope = self.in_flight.remove(at);
                self.failures = 0; // the network works
                self.limits.update(
                    now_ms,
                    status,
                    sentry_limits.as_deref(),
                    retry_after.as_deref(),
                );
                match status {
                    200..=299 => {
                        if envelope.category == Category::Metric {
                            self.stats.metrics_sent += 1;
                        } else {
                            self.stats.sent += 1;
                        }
                        self.attempts = 0;
                        fx.push(Effect::Persist);
                    }
                    429 => self.queue.insert(0, envelope), // held until the limit ends
                    408 | 500..=599 => self.retry_later(now_ms, envelope, &mut fx),
                    _ => {
                        // 413 (too large), 400 (never retried), 401/403 (bad key): drop.
                        self.stats.dropped += 1;
                        fx.push(Effect::Persist);
                    }
                }
                self.pump(now_ms, &mut fx, false);
            }
            Event::Failed(id) => {
                if let Some(at) = self.in_flight.iter().position(|e| e.id == id) {
                    let envelope = self.in_flight.remove(at);
                    self.stats.send_failures += 1;
                    self.failures += 1;
                    if self.failures >= MAX_FAILED_SENDS {
                        // Not retried forever: parked until something new happens.
                        self.queue.insert(0, envelope);
                        self.parked = true;
                        self.backing_off = false;
                        if self.timer_due.take().is_some() {
                            fx.push(Effect::Disarm);
                        }
                        self.report_once(&mut fx);
                    } else {
                        self.retry_later(now_ms, envelope, &mut fx);
                    }
                    self.pump(now_ms, &mut fx, false);
                }
            }
            Event::Refused(id) => {
                if let Some(at) = self.in_flight.iter().position(|e| e.id == id) {
                    self.in_flight.remove(at);
                    self.stats.send_failures += 1;
                    self.stats.dropped += 1;
                    fx.push(Effect::Persist);
                    self.report_once(&mut fx);
                    self.pump(now_ms, &mut fx, false);
                }
            }
            Event::Fired => {
                self.timer_due = None;
                self.backing_off = false;
                self.parked = false;
                self.pump(now_ms, &mut fx, false);
            }
            Event::Online => {
                self.online = true;
                if self.timer_due.take().is_some() {
                    fx.push(Effect::Disarm);
                }
                self.backing_off = false;
                self.parked = false;
                self.attempts = 0;
                self.failures = 0;
                self.pump(now_ms, &mut fx, false);
            }
            Event::Offline => self.online = false,
            Event::Flush => self.pump(now_ms, &mut fx, true),
        }
        if self.is_settled() {
            fx.push(Effect::Settled);
        }
        // Last: reporting captures an event, which comes back here as an `Enqueue`.
        if let Some(at) = fx.iter().position(|e| matches!(e, Effect::Report)) {
            let report = fx.remove(at);
            fx.push(report);
        }
        fx
    }

    fn report_once(&mut self, fx: &mut Vec<Effect<B>>) {
        if !self.reported {
            self.reported = true;
            fx.push(Effect::Report);
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn retry_later(&mut self, now_ms: f64, envelope: Envelope<B>, fx: &mut Vec<Effect<B>>) {
        self.queue.insert(0, envelope);
        self.attempts += 1;
        self.backing_off = true;
        let unit = self.rng.next_unit();
        let delay = self.config.backoff.delay_ms(self.attempts, unit);
        // The backoff replaces any earlier timer: nothing may go before it ends.
        self.timer_due = None;
        self.arm(now_ms, now_ms + delay, fx);
    }

    /// Arms the single timer for `due`, unless it already fires earlier.
    fn arm(&mut self, now_ms: f64, due: f64, fx: &mut Vec<Effect<B>>) {
        if self.timer_due.is_some_and(|d| d <= due) {
            return;
        }
        self.timer_due = Some(due);
        fx.push(Effect::Arm(ceil_u32(due - now_ms)));
    }

    /// Sends what may go now. Normally one request at a time, and none while backing off; a
    /// flush sends everything that fits in the keepalive budget.
    fn pump(&mut self, now_ms: f64, fx: &mut Vec<Effect<B>>, flush: bool) {
        if !self.online || ((self.backing_off || self.parked) && !flush) {
            return;
        }
        let mut budget = KEEPALIVE_BUDGET
            .saturating_sub(self.in_flight.iter().map(|e| e.body.bytes()).sum::<usize>());
        let mut i = 0;
        let mut earliest_limit: Option<f64> = None;
        while i < self.queue.len() {
            if !flush && !self.in_flight.is_empty() {
                break;
            }
            let category = self.queue[i].category;
            if let Some(until) = self.limits.limited_until(category.as_str(), now_ms) {
                earliest_limit = Some(earliest_limit.map_or(until, |e: f64| e.min(until)));
                i += 1;
                continue;
            }
            let len = self.queue[i].body.bytes();
            let keepalive = len <= budget;
            if flush && !keepalive {
                i += 1; // cannot survive the page: stays in the persistent copy
                continue;
            }
            let envelope = self.queue.remove(i);
            if keepalive {
                budget -= len;
            }
            fx.push(Effect::Send {
                id: envelope.id,
                category: envelope.category,
                body: envelope.body.clone(),
                keepalive,
            });
            self.in_flight.push(envelope);
        }
        if let Some(until) = earliest_limit {
            self.arm(now_ms, until, fx); // wake up when the earliest limit ends
        }
    }
}

/// `ms` rounded up, within `0..=u32::MAX` (`f64::ceil` needs `std`).
fn ceil_u32(ms: f64) -> u32 {
    let ms = ms.clamp(0.0, f64::from(u32::MAX));
    let whole = ms as u32;
    if f64::from(whole) < ms {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_read_back_what_they_write_and_nothing_else() {
        for c in [Category::Error, Category::Metric] {
            assert_eq!(Category::from_code(f64::from(c.code())), Some(c));
        }
        // The codes `js/telemetry.js` maps to and from the stored names, in its order.
        assert_eq!((Category::Error.code(), Category::Metric.code()), (0, 1));
        for other in [-1.0, 2.0, 0.5, f64::NAN] {
            assert_eq!(Category::from_code(other), None, "{other:?}");
        }
    }

    #[test]
    fn ceil_u32_is_ceil_within_u32() {
        for ms in [
            -5.0_f64,
            0.0,
            0.2,
            1.0,
            1.5,
            999.999,
            4_294_967_294.5,
            4_294_967_295.0,
            1e12,
        ] {
            let want = ms.clamp(0.0, f64::from(u32::MAX)).ceil() as u32;
            assert_eq!(ceil_u32(ms), want, "{ms}");
        }
        assert_eq!(ceil_u32(f64::NAN), 0);
    }

    fn enqueue(body: &str) -> Event {
        Event::Enqueue {
            category: Category::Error,
            body: body.into(),
        }
    }

    fn answered(id: u64, status: u16) -> Event {
        Event::Answered {
            id,
            status,
            sentry_limits: None,
            retry_after: None,
        }
    }

    fn sends(fx: &[Effect]) -> Vec<(u64, String, bool)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send {
                    id,
                    body,
                    keepalive,
                    ..
                } => Some((*id, body.clone(), *keepalive)),
                _ => None,
            })
            .collect()
    }

    fn armed(fx: &[Effect]) -> Option<u32> {
        fx.iter().find_map(|e| match e {
            Effect::Arm(ms) => Some(*ms),
            _ => None,
        })
    }

    #[test]
    fn one_at_a_time_in_order_then_settled() {
        let mut m = Machine::new(Config::default(), true);
        let fx = m.handle(0.0, enqueue("a"));
        assert_eq!(sends(&fx), [(1, "a".into(), true)]);
        assert!(fx.contains(&Effect::Persist));
        assert!(
            sends(&m.handle(0.0, enqueue("b"))).is_empty(),
            "one in flight"
        );
        let fx = m.handle(1.0, answered(1, 200));
        assert_eq!(sends(&fx), [(2, "b".into(), true)]);
        assert!(!fx.contains(&Effect::Settled));
        let fx = m.handle(2.0, answered(2, 200));
        assert!(fx.contains(&Effect::Settled));
        assert_eq!(m.stats(2.0).sent, 2);
        assert_eq!(m.stats(2.0).queued, 0);
    }

    #[test]
    fn network_errors_and_5xx_back_off_then_retry() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        let fx = m.handle(0.0, Event::Failed(1));
        let d1 = armed(&fx).unwrap();
        assert!((750..=1250).contains(&d1), "{d1}");
        assert!(
            sends(&m.handle(0.0, enqueue("b"))).is_empty(),
            "backing off"
        );
        let fx = m.handle(1000.0, Event::Fired);
        assert_eq!(sends(&fx)[0].1, "a", "the failed one goes first");
        let fx = m.handle(1000.0, answered(sends(&fx)[0].0, 503));
        let d2 = armed(&fx).unwrap();
        assert!((1500..=2500).contains(&d2), "{d2}");
        assert_eq!(m.stats(0.0).queued, 2);
        assert_eq!(m.stats(0.0).dropped, 0, "nothing lost");
    }

    #[test]
    fn failed_sends_are_not_retried_forever_and_reported_once() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        let mut now = 0.0;
        let mut reports = 0;
        for failure in 1..=MAX_FAILED_SENDS {
            let fx = m.handle(now, Event::Failed(1));
            reports += fx.iter().filter(|e| **e == Effect::Report).count();
            if failure < MAX_FAILED_SENDS {
                assert!(armed(&fx).is_some(), "retried after failure {failure}");
                assert_eq!(reports, 0);
                now += 60_000.0;
                let fx = m.handle(now, Event::Fired);
                assert_eq!(sends(&fx).len(), 1, "sent again");
            } else {
                assert_eq!(armed(&fx), None, "no timer: parked");
                assert_eq!(fx.last(), Some(&Effect::Report), "reported, last");
            }
        }
        let st = m.stats(now);
        assert_eq!((st.send_failures, st.queued, st.dropped), (4, 1, 0), "kept");
        // Parked: nothing goes by itself; a new envelope tries once (and fails: parked again,
        // not reported again).
        let fx = m.handle(now, enqueue("b"));
        let again = sends(&fx);
        assert_eq!(again.len(), 1, "{fx:?}");
        let fx = m.handle(now, Event::Failed(again[0].0));
        assert!(
            armed(&fx).is_none() && !fx.contains(&Effect::Report),
            "{fx:?}"
        );
        // The network returns: everything goes, in order.
        let fx = m.handle(now, Event::Online);
        assert_eq!(sends(&fx)[0].1, "a");
        assert_eq!(m.stats(now).send_failures, 5);
    }

    #[test]
    fn a_request_that_cannot_be_made_is_dropped_counted_and_reported_once() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        m.handle(0.0, enqueue("b"));
        let fx = m.handle(0.0, Event::Refused(1));
        assert_eq!(sends(&fx)[0].1, "b", "the next one goes at once");
        assert_eq!(fx.last(), Some(&Effect::Report));
        let fx = m.handle(0.0, Event::Refused(2));
        assert!(!fx.contains(&Effect::Report), "once");
        let st = m.stats(0.0);
        assert_eq!((st.send_failures, st.dropped, st.queued), (2, 2, 0));
        assert!(fx.contains(&Effect::Settled));
    }

    #[test]
    fn too_large_and_bad_requests_are_dropped_not_retried() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        m.handle(0.0, enqueue("b"));
        m.handle(0.0, enqueue("c"));
        let fx = m.handle(0.0, answered(1, 413));
        assert_eq!(sends(&fx)[0].1, "b");
        let fx = m.handle(0.0, answered(2, 400));
        assert_eq!(sends(&fx)[0].1, "c");
        assert_eq!(m.stats(0.0).dropped, 2);
        assert!(armed(&fx).is_none());
    }

    #[test]
    fn a_429_holds_the_category_until_it_ends() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        let fx = m.handle(
            0.0,
            Event::Answered {
                id: 1,
                status: 429,
                sentry_limits: Some("30:error:key".into()),
                retry_after: Some("30".into()),
            },
        );
        assert_eq!(armed(&fx), Some(30_000));
        assert!(sends(&fx).is_empty());
        assert_eq!(m.stats(0.0).rate_limited_until, 30_000.0);
        assert!(sends(&m.handle(10_000.0, enqueue("b"))).is_empty(), "held");
        let fx = m.handle(30_000.0, Event::Fired);
        assert_eq!(
            sends(&fx)[0].1,
            "a",
            "the held envelope is kept and goes first"
        );
        assert_eq!(m.stats(30_000.0).rate_limited_until, 0.0);
        // Another category is not held.
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        m.handle(
            0.0,
            Event::Answered {
                id: 1,
                status: 429,
                sentry_limits: Some("30:error:key".into()),
                retry_after: None,
            },
        );
        let fx = m.handle(
            1.0,
            Event::Enqueue {
                category: Category::Metric,
                body: "m".into(),
            },
        );
        assert_eq!(sends(&fx)[0].1, "m");
    }

    #[test]
    fn metric_exports_carry_their_category_and_are_counted_apart() {
        let mut m = Machine::new(Config::default(), true);
        let fx = m.handle(
            0.0,
            Event::Enqueue {
                category: Category::Metric,
                body: "m".into(),
            },
        );
        assert!(
            matches!(&fx[1], Effect::Send { category, .. } if *category == Category::Metric),
            "{fx:?}"
        );
        m.handle(
            1.0,
            Event::Answered {
                id: 1,
                status: 200,
                sentry_limits: None,
                retry_after: None,
            },
        );
        m.handle(2.0, enqueue("e"));
        m.handle(
            3.0,
            Event::Answered {
                id: 2,
                status: 200,
                sentry_limits: None,
                retry_after: None,
            },
        );
        let st = m.stats(4.0);
        assert_eq!((st.sent, st.metrics_sent), (1, 1));
        m.handle(
            5.0,
            Event::Enqueue {
                category: Category::Metric,
                body: "m2".into(),
            },
        );
        m.handle(5.0, enqueue("e2"));
        let st = m.stats(6.0);
        assert_eq!((st.queued, st.metrics_queued), (1, 1));
    }

    #[test]
    fn offline_holds_everything_and_online_sends_at_once() {
        let mut m = Machine::new(Config::default(), false);
        for b in ["a", "b"] {
            assert!(sends(&m.handle(0.0, enqueue(b))).is_empty());
        }
        let fx = m.handle(5.0, Event::Online);
        assert_eq!(sends(&fx)[0].1, "a");
        m.handle(6.0, Event::Offline);
        m.handle(7.0, Event::Failed(1));
        let fx = m.handle(8.0, Event::Online);
        assert!(fx.contains(&Effect::Disarm), "online cancels the backoff");
        assert_eq!(sends(&fx)[0].1, "a");
    }

    #[test]
    fn the_queue_is_bounded_and_drops_the_oldest() {
        let mut m = Machine::new(
            Config {
                max_queued: 3,
                ..Config::default()
            },
            false,
        );
        for b in ["a", "b", "c", "d", "e"] {
            m.handle(0.0, enqueue(b));
        }
        let kept: Vec<_> = m.undelivered().map(|e| e.body.as_str()).collect();
        assert_eq!(kept, ["c", "d", "e"]);
        assert_eq!(m.stats(0.0).dropped, 2);
        assert_eq!(m.stats(0.0).queued, 3);
    }

    #[test]
    fn flush_sends_everything_that_fits_the_keepalive_budget() {
        let mut m = Machine::new(Config::default(), false);
        let big = "x".repeat(40_000);
        for b in ["a", big.as_str(), big.as_str(), "d"] {
            m.handle(0.0, enqueue(b));
        }
        m.handle(0.0, Event::Online); // sends "a" (normal: one at a time)
        let fx = m.handle(0.0, Event::Flush);
        let sent: Vec<_> = sends(&fx)
            .into_iter()
            .map(|(_, b, k)| (b.len(), k))
            .collect();
        // 1 byte in flight + 40 000 fits; the second 40 000 would pass 60 000; "d" fits.
        assert_eq!(sent, [(40_000, true), (1, true)]);
        assert_eq!(m.stats(0.0).queued, 4, "all undelivered until acknowledged");
        // A normal send of an envelope over the budget goes without keepalive.
        let mut m = Machine::new(Config::default(), true);
        let huge = "y".repeat(KEEPALIVE_BUDGET + 1);
        assert!(
            !sends(&m.handle(0.0, enqueue(&huge)))[0].2,
            "over the budget: no keepalive"
        );
    }

    #[test]
    fn unknown_answers_change_nothing() {
        let mut m = Machine::new(Config::default(), true);
        m.handle(0.0, enqueue("a"));
        assert!(m.handle(0.0, answered(99, 200)).is_empty());
        assert!(m.handle(0.0, Event::Failed(99)).is_empty());
        assert_eq!(m.stats(0.0).queued, 1);
    }

    /// Whatever happens, every envelope is accounted for (sent, dropped or still held), nothing
    /// is sent while offline, and outside a flush at most one request is in flight.
    #[test]
    fn random_histories_lose_nothing_silently() {
        let mut seed = 0xdead_beef_cafe_f00d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for run in 0..200 {
            let mut m = Machine::new(
                Config {
                    max_queued: 5,
                    seed: run,
                    ..Config::default()
                },
                true,
            );
            let (mut enqueued, mut online, mut now) = (0u64, true, 0.0);
            let mut flying: Vec<u64> = Vec::new();
            for _ in 0..300 {
                now += (next() % 2000) as f64;
                let event = match next() % 9 {
                    0 | 1 => {
                        enqueued += 1;
                        enqueue("e")
                    }
                    2 | 3 if !flying.is_empty() => {
                        let id = flying.remove((next() % flying.len() as u64) as usize);
                        let status = [200, 200, 429, 413, 500, 400][(next() % 6) as usize];
                        Event::Answered {
                            id,
                            status,
                            sentry_limits: None,
                            retry_after: Some("1".into()),
                        }
                    }
                    4 if !flying.is_empty() => {
                        let id = flying.remove(0);
                        if next() % 4 == 0 {
                            Event::Refused(id)
                        } else {
                            Event::Failed(id)
                        }
                    }
                    5 => Event::Fired,
                    6 => {
                        online = true;
                        Event::Online
                    }
                    7 => {
                        online = false;
                        Event::Offline
                    }
                    _ => Event::Flush,
                };
                let flush = event == Event::Flush;
                let fx = m.handle(now, event);
                let sent_now = sends(&fx);
                assert!(online || sent_now.is_empty(), "sent while offline");
                flying.extend(sent_now.iter().map(|s| s.0));
                if !flush {
                    assert!(
                        flying.len() <= 1 || sent_now.is_empty(),
                        "two in flight without a flush"
                    );
                }
                let st = m.stats(now);
                assert_eq!(
                    st.sent + st.metrics_sent + st.dropped + (st.queued + st.metrics_queued) as u64,
                    enqueued,
                    "run {run}: {st:?}"
                );
            }
        }
    }
}
