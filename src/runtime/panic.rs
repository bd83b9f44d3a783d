//! The panic hook: installed once, it logs a panic readably (message, file and line, the JS stack)
//! and hands it to the report sink, so the error tracker sees it before the page does.

use std::sync::Once;

use wasm_bindgen::JsValue;

static INSTALL: Once = Once::new();

/// Installs the hook; later calls do nothing.
pub fn install() {
    INSTALL.call_once(|| std::panic::set_hook(Box::new(hook)));
}

fn hook(info: &std::panic::PanicHookInfo<'_>) {
    let text = describe(info);
    let error = js_sys::Error::new(&text);
    error.set_name("VigilPanic");
    super::report::console_error(
        "[vigil] a panic: this is a bug in vigil, please report it.",
        &error,
    );
    super::report::forward("panic", &JsValue::from(error));
}

/// `"<message> at <file>:<line>:<col>"`.
pub fn describe(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = info
        .payload_as_str()
        .unwrap_or("panic with a non-string payload");
    match info.location() {
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
    use std::cell::RefCell;

    thread_local! {
        static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn describe_names_the_message_and_the_place() {
        // Natively the real hook would call the browser; install one that only describes.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            SEEN.with(|s| s.borrow_mut().push(describe(info)))
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
        assert!(
            seen[1].starts_with("panic with a non-string payload at "),
            "{}",
            seen[1]
        );
    }
}
