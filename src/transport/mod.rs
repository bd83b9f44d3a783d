//! The transport, shared by the error tracker, the performance monitor and the health sampler.
//! Pure parts: [`dsn`] (the DSN and the URLs it gives), [`envelope`] (writing Sentry envelopes),
//! [`otlp`] (the OTLP/HTTP JSON metrics body), [`machine`] (queue, retries, limits, flush) and
//! [`ratelimit`] (what `429`s and `X-Sentry-Rate-Limits` said). Backoff is [`crate::backoff`].
//! Built by [`crate::runtime::telemetry`].

pub mod dsn;
pub mod envelope;
pub mod machine;
pub mod otlp;
pub mod ratelimit;
pub mod shell;
