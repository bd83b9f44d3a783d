//! The `#[wasm_bindgen]` surface, one file per exported class or function group; each method
//! converts its arguments and delegates to its module. [`handle`] is the pattern every class
//! shares: an id in the cleanup manager and a `Weak` to the service, never ownership.

pub mod handle;
mod runtime;
mod subscription;
#[cfg(feature = "telemetry")]
mod vigil;
#[cfg(feature = "voice")]
mod voice;
#[cfg(feature = "ws")]
mod websocket;

pub use runtime::{after, dispose_all, every, listen, on_dispose, resources, start, version};
pub use subscription::Subscription;
#[cfg(feature = "telemetry")]
pub use vigil::Vigil;
#[cfg(feature = "voice")]
pub use voice::VoiceConnection;
#[cfg(feature = "ws")]
pub use websocket::WebSocketService;
