//! Panics. A panic is a bug: it is logged readably (message, file and line, the JS stack) and
//! handed to the report sink, so the error tracker sees it before the page does; then the wasm
//! traps, as `panic = "abort"` does.
//!
//! The package links no `std` (the crate is `#![no_std]`), so the `#[panic_handler]` below is
//! the hook: it keeps a panic's message when it is a plain string, and does not format one
//! (`panic!("… {}", x)`), which would bring `core::fmt` back into the bundle. With the `std`
//! feature (the browser tests, whose harness links `std`), [`install`] sets `std`'s panic hook
//! to do the same report instead.

use crate::prelude::*;

use wasm_bindgen::JsValue;

/// Installs `std`'s panic hook when `std` is linked; later calls do nothing. Without `std` the
/// `#[panic_handler]` below is always in place.
pub fn install() {
    #[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
    {
        static INSTALL: super::local::Once = super::local::Once::new();
        INSTALL.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                report(&describe(info.payload_as_str(), info.location()))
            }))
        });
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn on_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    // A panic while reporting one (the tracker's state was borrowed, say) only traps.
    static REPORTING: AtomicBool = AtomicBool::new(false);
    if !REPORTING.swap(true, Ordering::Relaxed) {
        report(&describe(info.message().as_str(), info.location()));
        REPORTING.store(false, Ordering::Relaxed);
    }
    core::arch::wasm32::unreachable()
}

fn report(text: &str) {
    let error = js_sys::Error::new(text);
    error.set_name("VigilPanic");
    super::report::console_error(
        "[vigil] a panic: this is a bug in vigil, please report it.",
        &error,
    );
    super::report::forward("panic", &JsValue::from(error));
}

/// `"<message> at <file>:<line>:<col>"`; a message that is not a plain string (a formatted
/// one in the package build, or a non-string payload) reads "a panic".
pub fn describe(message: Option<&str>, location: Option<&core::panic::Location<'_>>) -> String {
    let message = message.unwrap_or("a panic");
    match location {
        Some(l) => crate::text::concat(&[
            message,
            " at ",
            l.file(),
            ":",
            &crate::text::uint(l.line().into()),
            ":",
            &crate::text::uint(l.column().into()),
        ]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;

    std::thread_local! {
        static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn describe_names_the_message_and_the_place() {
        // Natively the real hook would call the browser; install one that only describes.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            SEEN.with(|s| {
                s.borrow_mut()
                    .push(describe(info.payload_as_str(), info.location()))
            })
        }));
        let line = line!() + 1;
        let _ = std::panic::catch_unwind(|| panic!("ledger went below zero: {}", 3));
        let _ = std::panic::catch_unwind(|| std::panic::panic_any(42_u8));
        std::panic::set_hook(previous);
        let seen = SEEN.with(|s| s.take());
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            seen[0].starts_with(&format!(
                "ledger went below zero: 3 at src/runtime/panic.rs:{line}:"
            )),
            "{}",
            seen[0]
        );
        assert!(seen[1].starts_with("a panic at "), "{}", seen[1]);
    }

    #[test]
    fn describe_without_a_message_or_a_place() {
        assert_eq!(describe(None, None), "a panic");
        assert_eq!(
            describe(Some("index out of range"), None),
            "index out of range"
        );
        let here = core::panic::Location::caller();
        let text = describe(Some("x"), Some(here));
        assert!(text.starts_with("x at src/runtime/panic.rs:"), "{text}");
    }
}
