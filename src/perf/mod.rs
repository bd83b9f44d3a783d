//! The performance monitor. Pure so far: [`vitals`] (LCP, CLS, INP, FCP, TTFB and their ratings,
//! computed as the `web-vitals` library does). The observer shell and the OTLP export are next.

pub mod vitals;
