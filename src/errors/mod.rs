//! The error tracker. Pure parts: [`stack`] (stack traces of every engine), [`ring`] (the
//! bounded breadcrumb ring) and [`dedupe`]. The browser shell is [`tracker`] (the error half of
//! `Vigil` in the JS API). The DSN is [`crate::transport::dsn`].

pub mod dedupe;
pub mod ring;
pub mod stack;
pub mod tracker;
