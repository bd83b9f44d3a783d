//! The performance monitor. Pure so far: [`vitals`] (LCP, CLS, INP, FCP, TTFB and their ratings,
//! computed as the `web-vitals` library does), [`aggregate`] (points between exports, bounded)
//! and [`otlp`] (the OTLP/HTTP JSON body). The observer shell and the export are next.

pub mod aggregate;
pub mod monitor;
pub mod otlp;
pub mod vitals;
