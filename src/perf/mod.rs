//! The performance monitor. Pure: [`vitals`] (LCP, CLS, INP, FCP, TTFB and their ratings,
//! computed as the `web-vitals` library does), [`monitor`] (the state fed by performance entries,
//! and what each export carries), [`aggregate`] (custom points between exports, bounded) and
//! [`otlp`] (the OTLP/HTTP JSON body). Shell: [`shell`] (the observer, listeners, the export
//! interval, all guards).

pub mod aggregate;
pub mod monitor;
pub mod otlp;
pub mod shell;
pub mod vitals;
