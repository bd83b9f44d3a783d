//! The voice connection: the OpenAI Realtime WebRTC flow without leaks.
//!
//! Pure part: [`machine`] (the connect steps, which step failed, the timeout, what to release).
//! Browser shell: [`connection`] (peer connection, data channel, microphone, audio element and
//! timer guards; requests; subscribers).

pub mod connection;
pub mod machine;
