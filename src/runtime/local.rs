//! Per-page statics without `std` (the crate is `#![no_std]`; see `lib.rs`).
//!
//! [`local!`](crate::local) declares a static used as `std::thread_local!`'s are
//! (`NAME.with(|value| …)`). In the browser it is wasm-bindgen's thread-local cell (the one its
//! own `thread_local_v2` statics use, on a target without threads), built on first use and never
//! dropped; natively (the unit tests, which run on many threads) it is `std::thread_local!`.
//! [`Once`] replaces `std::sync::Once` for the one-time set-up of a JS class.

use core::sync::atomic::{AtomicBool, Ordering};

#[cfg(target_feature = "atomics")]
compile_error!("vigil's statics are per page: it is not built for shared-memory wasm threads");

/// Declares per-page statics: `local! { static NAME: Type = init; }`, read with
/// `NAME.with(|value| …)`.
#[macro_export]
#[doc(hidden)]
macro_rules! local {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;)+) => {$(
        #[cfg(target_arch = "wasm32")]
        $(#[$attr])*
        static $name: $crate::runtime::local::Local<$t> =
            $crate::runtime::local::Local::new(|| $init);
        #[cfg(not(target_arch = "wasm32"))]
        ::std::thread_local! { $(#[$attr])* static $name: $t = $init; }
    )+};
}

/// A static built on first use, for one page (see [`local!`](crate::local)).
#[cfg(target_arch = "wasm32")]
pub struct Local<T: 'static>(wasm_bindgen::__rt::LazyCell<T>);

#[cfg(target_arch = "wasm32")]
impl<T: 'static> Local<T> {
    /// A static that `init` builds when it is first read.
    pub const fn new(init: fn() -> T) -> Self {
        Self(wasm_bindgen::__rt::LazyCell::new(init))
    }

    /// Calls `f` with the value (built now if this is the first read).
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0)
    }

    /// As [`Local::with`]; never fails (there is no thread teardown in a page). For code that
    /// calls `std`'s `LocalKey::try_with` natively.
    pub fn try_with<R>(
        &'static self,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, core::convert::Infallible> {
        Ok(f(&self.0))
    }
}

#[cfg(target_arch = "wasm32")]
impl<T: 'static> core::fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Local")
    }
}

/// Runs a set-up once per page (`std::sync::Once` without `std`).
#[derive(Debug)]
pub struct Once(AtomicBool);

impl Once {
    /// Not run yet.
    pub const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// Runs `f` the first time only.
    pub fn call_once(&self, f: impl FnOnce()) {
        if !self.0.swap(true, Ordering::Relaxed) {
            f();
        }
    }
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    crate::local! {
        static COUNT: Cell<u32> = Cell::new(7);
    }

    #[test]
    fn a_local_starts_from_its_initialiser_and_keeps_what_is_set() {
        assert_eq!(COUNT.with(Cell::get), 7);
        COUNT.with(|c| c.set(8));
        assert_eq!(COUNT.with(Cell::get), 8);
    }

    #[test]
    fn once_runs_its_set_up_the_first_time_only() {
        let once = Once::new();
        let runs = Cell::new(0);
        once.call_once(|| runs.set(runs.get() + 1));
        once.call_once(|| runs.set(runs.get() + 1));
        assert_eq!(runs.get(), 1);
    }
}
