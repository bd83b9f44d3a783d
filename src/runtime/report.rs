//! Where the runtime reports a problem it survived (a dispose callback that threw, a subscriber
//! that threw, a panic). Today the report goes to the browser console; the error tracker installs
//! itself as the sink when it runs.

use alloc::rc::Rc;
use core::cell::RefCell;

use wasm_bindgen::JsValue;

/// A report sink: `(what the runtime was doing, the value that was thrown)`.
pub type Sink = Rc<dyn Fn(&str, &JsValue)>;

crate::local! {
    static SINK: RefCell<Option<Sink>> = RefCell::new(None);
}

/// Routes later reports to `sink` (the error tracker); `None` routes them back to the console.
pub fn set_sink(sink: Option<Sink>) {
    SINK.with(|s| *s.borrow_mut() = sink);
}

/// Reports `error`, thrown while the runtime was doing `context`.
pub fn report(context: &str, error: &JsValue) {
    if !forward(context, error) {
        console_error(&crate::text::concat(&["[vigil] ", context, ":"]), error);
    }
}

/// Hands `error` to the sink if one is set; returns false when there is none.
pub fn forward(context: &str, error: &JsValue) -> bool {
    let sink = SINK.with(|s| s.borrow().clone());
    match sink {
        Some(sink) => {
            sink(context, error);
            true
        }
        None => false,
    }
}

/// `console.error(label, value)`, or nothing outside a browser.
pub(crate) fn console_error(label: &str, value: &JsValue) {
    if cfg!(target_arch = "wasm32") {
        web_sys::console::error_2(&JsValue::from_str(label), value);
    }
}
