//! End-to-end tests: the real server binary and the built package in headless Chromium.
//! Helpers are in `util.rs` (the `vigil_e2e` library). Run by `./dev.sh test`, after the
//! package is built.

mod cluster;
mod dashboard;
mod demo;
mod hardening;
mod page_close;
mod panic;
mod perf;
mod server_process;
mod soak;
mod tracker;
mod transport_failures;
mod vite_example;
mod voice;
mod voice_peer;
mod websocket;
