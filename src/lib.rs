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

#![no_std]

extern crate alloc;
// Natively (the unit tests) and with the `std` feature (the browser tests).
#[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
#[cfg_attr(test, macro_use)]
extern crate std;

pub mod backoff;
pub mod error;
#[cfg(feature = "errors")]
pub mod errors;
pub mod js;
pub mod options;
#[cfg(feature = "perf")]
pub mod perf;
pub mod prelude;
pub mod runtime;
pub mod text;
#[cfg(feature = "telemetry")]
pub mod transport;
#[cfg(feature = "voice")]
pub mod voice;
#[cfg(feature = "ws")]
pub mod ws;

pub use js::*;

/// The allocator in the browser: a free list with coalescing (lol_alloc), a few hundred bytes
/// instead of dlmalloc's ~8 KB. The lock is a spin lock that a single-threaded page never
/// contends.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
