//! Vigil: a browser runtime for web apps and kiosk pages that watches itself without leaking.
//!
//! The crate root: the module list and the feature gates. The `#[wasm_bindgen]` surface is
//! [`js`] (re-exported here). See `ARCHITECTURE.md` for the map, and `shared/specs/js-api.md`
//! for the contract.
//!
//! Cargo features (default: all): `errors` (the error tracker), `perf` (the performance
//! monitor), both of which bring the shared transport and `Vigil` (the internal `telemetry`
//! feature), `ws` (`WebSocketService`) and `voice` (`VoiceConnection`). Without any, the
//! lifecycle core alone: `resources`, `disposeAll`, `onDispose`, `listen`, `every`, `after`.
//!
//! Rust users get the same guarantees with RAII: dropping a guard or a
//! [`runtime::manager::Registration`] releases what it holds.

pub mod backoff;
pub mod error;
#[cfg(feature = "errors")]
pub mod errors;
pub mod js;
pub mod options;
#[cfg(feature = "perf")]
pub mod perf;
pub mod runtime;
#[cfg(feature = "telemetry")]
pub mod transport;
#[cfg(feature = "voice")]
pub mod voice;
#[cfg(feature = "ws")]
pub mod ws;

pub use js::*;
