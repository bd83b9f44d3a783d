//! The error tracker. Pure parts: [`dsn`] (the DSN), [`stack`] (stack traces of every
//! engine), [`ring`] (the bounded breadcrumb ring) and [`dedupe`]. The browser shell is
//! [`tracker`] (`Vigil` in the JS API).

pub mod dedupe;
pub mod dsn;
pub mod ring;
pub mod stack;
pub mod tracker;
