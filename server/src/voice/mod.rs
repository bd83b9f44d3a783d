//! The voice peer (`/voice/*`): a realtime-compatible WebRTC peer for development and tests.
//!
//! - [`keys`] (pure): single-use `ek_…` keys with expiry, bounded.
//! - [`vad`] (pure): the speech detector over RFC 6464 audio levels.
//! - [`events`] (pure): the `oai-events` data channel types and what to answer.

pub mod events;
pub mod keys;
pub mod vad;
