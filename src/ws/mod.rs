//! The WebSocket service: a client that never leaks and never gives up.
//!
//! Pure part: [`machine`] (state machine, backoff, heartbeat bookkeeping, send queue).

pub mod machine;
