//! What is left of option reading in Rust: the flat arrays the readers in `src/js/options.js`
//! return ([`Bag`]), and how a value is named in an error ([`type_name`]).

use crate::prelude::*;
use wasm_bindgen::JsValue;

/// The flat array a reader in `src/js/options.js` returns: plain values by position.
#[derive(Debug)]
pub struct Bag(pub js_sys::Array);

impl Bag {
    /// The value at `i`.
    pub fn value(&self, i: u32) -> JsValue {
        self.0.get(i)
    }

    /// A number (0 when it is not one: the reader checked it).
    pub fn number(&self, i: u32) -> f64 {
        self.0.get(i).as_f64().unwrap_or(0.0)
    }

    /// A whole number of milliseconds (the reader checked the range).
    pub fn millis(&self, i: u32) -> u32 {
        self.number(i) as u32
    }

    /// A string, `None` when undefined.
    pub fn text(&self, i: u32) -> Option<String> {
        self.0.get(i).as_string()
    }

    /// A boolean.
    pub fn flag(&self, i: u32) -> bool {
        self.0.get(i).is_truthy()
    }
}

/// `typeof`-like description of a value, for error messages.
pub fn type_name(v: &JsValue) -> &'static str {
    if v.is_null() {
        "null"
    } else if v.is_undefined() {
        "undefined"
    } else if v.as_bool().is_some() {
        "a boolean"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.is_string() {
        "a string"
    } else if v.is_function() {
        "a function"
    } else if js_sys::Array::is_array(v) {
        "an array"
    } else {
        "an object"
    }
}
