//! The transport, shared by the error tracker and the performance monitor. Pure parts so far:
//! [`envelope`] (writing Sentry envelopes) and [`ratelimit`] (what `429`s and
//! `X-Sentry-Rate-Limits` said). Backoff is [`crate::backoff`].

pub mod envelope;
pub mod ratelimit;
