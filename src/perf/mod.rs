//! The performance monitor. Pure: [`vitals`] (LCP, CLS, INP, FCP, TTFB and their ratings,
//! computed as the `web-vitals` library does), [`monitor`] (the state fed by performance entries,
//! and what each export carries) and [`aggregate`] (custom points between exports, bounded); the
//! OTLP body is [`crate::transport::otlp`]. Shell: [`shell`] (the observer, listeners, the export
//! interval, all guards).

pub mod aggregate;
pub mod monitor;
pub mod shell;
pub mod vitals;
