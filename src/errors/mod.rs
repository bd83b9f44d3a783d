//! The error tracker. Pure parts so far: [`dsn`] (the DSN), [`stack`] (stack traces of every
//! engine), [`ring`] (the bounded breadcrumb ring) and [`dedupe`]. The browser shell (`Vigil`)
//! builds on them.

pub mod dedupe;
pub mod dsn;
pub mod ring;
pub mod stack;
