//! The WebSocket service: a client that never leaks and never gives up.
//!
//! Pure part: [`machine`] (state machine, backoff, heartbeat bookkeeping, send queue).
//! Browser shell: [`service`] (socket and timer guards, JSON frames, subscribers).

pub mod machine;
pub mod service;
