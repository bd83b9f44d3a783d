//! The lifecycle core: the resource ledger, one guard per browser resource, the cleanup manager
//! that owns every service, the panic hook and the report sink.
//!
//! Pure parts (no browser): [`ledger`], [`registry`], [`health`]. Browser shell: [`guards`],
//! [`manager`], [`panic`], [`report`], [`subscribers`], [`waiters`], [`telemetry`] (the health
//! sampler).

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
