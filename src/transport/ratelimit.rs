//! What the server said about sending less: `X-Sentry-Rate-Limits`, `Retry-After`, or a bare
//! `429` (60 s). Sending in a limited category waits until the limit ends.

use crate::prelude::*;
use crate::text::split;

/// A bare `429` holds everything this long.
pub const DEFAULT_RETRY_MS: f64 = 60_000.0;
/// The most categories remembered (Sentry has a handful).
pub const MAX_CATEGORIES: usize = 16;

/// Seconds as servers send them (`60`, `2.5`), without `f64::from_str` (~4 KB of wasm).
fn seconds(text: &str) -> Option<f64> {
    let text = text.trim_ascii();
    let (whole, frac) = crate::text::split_once(text, ".").unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 12 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut secs = whole
        .bytes()
        .fold(0.0, |n, b| n * 10.0 + f64::from(b - b'0'));
    let mut scale = 0.1;
    for b in frac.bytes().take(3) {
        secs += f64::from(b - b'0') * scale;
        scale /= 10.0;
    }
    Some(secs)
}

/// Limits per category, in milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimits {
    all_until: f64,
    categories: Vec<(String, f64)>,
}

impl RateLimits {
    /// Reads one response at `now_ms`.
    pub fn update(
        &mut self,
        now_ms: f64,
        status: u16,
        sentry_limits: Option<&str>,
        retry_after: Option<&str>,
    ) {
        if let Some(header) = sentry_limits.filter(|h| !h.trim_ascii().is_empty()) {
            for limit in split(header, b',') {
                let mut parts = split(limit.trim_ascii(), b':');
                let Some(secs) = parts.next().and_then(seconds) else {
                    continue;
                };
                let until = now_ms + secs * 1000.0;
                let categories = parts.next().unwrap_or("");
                if categories.trim_ascii().is_empty() {
                    self.all_until = self.all_until.max(until);
                } else {
                    for c in split(categories, b';')
                        .map(str::trim_ascii)
                        .filter(|c| !c.is_empty())
                    {
                        self.limit(c, until);
                    }
                }
            }
            return;
        }
        if status == 429 {
            let secs = retry_after.and_then(seconds);
            let wait = secs.map_or(DEFAULT_RETRY_MS, |s| s * 1000.0);
            self.all_until = self.all_until.max(now_ms + wait);
        }
    }

    fn limit(&mut self, category: &str, until: f64) {
        if let Some(entry) = self.categories.iter_mut().find(|(c, _)| c == category) {
            entry.1 = entry.1.max(until);
        } else if self.categories.len() < MAX_CATEGORIES {
            self.categories.push((category.to_owned(), until));
        } else {
            // Unknown flood of categories: treat it as a limit on everything.
            self.all_until = self.all_until.max(until);
        }
    }

    /// When sending `category` is allowed again, if it is limited at `now_ms`.
    pub fn limited_until(&self, category: &str, now_ms: f64) -> Option<f64> {
        let specific = self
            .categories
            .iter()
            .find(|(c, _)| c == category)
            .map_or(0.0, |(_, u)| *u);
        let until = self.all_until.max(specific);
        (until > now_ms).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentry_header_limits_categories() {
        let mut r = RateLimits::default();
        r.update(
            1000.0,
            429,
            Some("60:error;transaction:key, 10::organization"),
            Some("5"),
        );
        assert_eq!(r.limited_until("error", 1000.0), Some(61_000.0));
        assert_eq!(r.limited_until("transaction", 1000.0), Some(61_000.0));
        assert_eq!(
            r.limited_until("metric", 1000.0),
            Some(11_000.0),
            "empty = all"
        );
        assert_eq!(r.limited_until("metric", 11_000.0), None);
        assert_eq!(r.limited_until("error", 61_000.0), None);
    }

    #[test]
    fn retry_after_and_bare_429() {
        let mut r = RateLimits::default();
        r.update(0.0, 429, None, Some("7"));
        assert_eq!(r.limited_until("error", 0.0), Some(7000.0));
        let mut r = RateLimits::default();
        r.update(0.0, 429, None, None);
        assert_eq!(r.limited_until("error", 0.0), Some(60_000.0));
        let mut r = RateLimits::default();
        r.update(0.0, 429, None, Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(
            r.limited_until("error", 0.0),
            Some(60_000.0),
            "an HTTP date: the default"
        );
        let mut r = RateLimits::default();
        r.update(0.0, 200, None, Some("7"));
        assert_eq!(
            r.limited_until("error", 0.0),
            None,
            "Retry-After only counts on 429"
        );
    }

    #[test]
    fn seconds_parse_without_float_parsing() {
        assert_eq!(seconds("60"), Some(60.0));
        assert_eq!(seconds(" 2.5 "), Some(2.5));
        assert_eq!(seconds("0"), Some(0.0));
        for bad in ["", "-1", "1e3", "x", ".5", "1.x", "NaN"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_is_ignored_and_categories_are_bounded() {
        let mut r = RateLimits::default();
        r.update(0.0, 200, Some("x:error, -5:error, NaN:error, :::"), None);
        assert_eq!(r.limited_until("error", 0.0), None);
        let many: Vec<String> = (0..40).map(|i| format!("1:c{i}")).collect();
        r.update(0.0, 200, Some(&many.join(",")), None);
        assert!(r.categories.len() <= MAX_CATEGORIES);
        assert_eq!(r.limited_until("anything", 0.0), Some(1000.0));
    }
}
