//! The transport, shared by the error tracker and the performance monitor. Pure parts so far:
//! [`envelope`] (writing Sentry envelopes), [`machine`] (queue, retries, limits, flush) and
//! [`ratelimit`] (what `429`s and `X-Sentry-Rate-Limits` said). Backoff is [`crate::backoff`].

pub mod envelope;
pub mod machine;
pub mod ratelimit;
pub mod shell;
