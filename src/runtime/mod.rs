//! The lifecycle core: the resource ledger, one guard per browser resource, the cleanup manager
//! that owns every service, the panic hook and the report sink.
//!
//! Pure parts (no browser): [`ledger`], [`registry`], [`health`]. Browser shell: [`guards`],
//! [`manager`], [`panic`](mod@panic), [`report`], [`subscribers`], [`waiters`], [`telemetry`]
//! (the health sampler), [`window`]. Per-page statics: [`local`].

pub mod guards;
#[cfg(feature = "telemetry")]
pub mod health;
pub mod ledger;
pub mod local;
pub mod manager;
pub mod panic;
pub mod registry;
pub mod report;
pub mod subscribers;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod waiters;

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    /// `window`, read once (`typeof window` checked): a direct binding instead of web-sys's
    /// `window()`, which looks through `globalThis`, `global`, `window` and `self` (four imports
    /// and their glue in every variant).
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
}

/// The page's `window`; `None` outside a page (a worker).
pub fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}
