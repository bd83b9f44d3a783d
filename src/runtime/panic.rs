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
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    match info.location() {
        Some(l) => format!("{message} at {}:{}:{}", l.file(), l.line(), l.column()),
        None => message,
    }
}
