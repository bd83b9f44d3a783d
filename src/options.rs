//! Reading JS option objects: each getter names the option in its error.

use crate::prelude::*;
use wasm_bindgen::JsValue;

use crate::error::VigilError;

/// An options object (or `undefined`, which reads as all defaults).
#[derive(Debug)]
pub struct Options<'a>(pub &'a JsValue);

impl Options<'_> {
    /// The raw value of `name`, `None` when missing or `undefined`.
    pub fn get(&self, name: &str) -> Option<JsValue> {
        if !self.0.is_object() {
            return None;
        }
        js_sys::Reflect::get(self.0, &name.into())
            .ok()
            .filter(|v| !v.is_undefined())
    }

    /// A number of milliseconds, `default` when missing; `min` is the smallest accepted.
    pub fn millis(&self, name: &'static str, default: u32, min: u32) -> Result<u32, VigilError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                let n = v.as_f64().ok_or(VigilError::BadArgument {
                    name,
                    expected: "a number of milliseconds",
                    got: type_name(&v),
                })?;
                let ms = crate::error::millis(name, n)?;
                if ms < min {
                    return Err(VigilError::BadArgument {
                        name,
                        expected: "a positive number of milliseconds",
                        got: "0",
                    });
                }
                Ok(ms)
            }
        }
    }

    /// A finite number in `range`, `default` when missing.
    pub fn number(
        &self,
        name: &'static str,
        default: f64,
        range: core::ops::RangeInclusive<f64>,
        expected: &'static str,
    ) -> Result<f64, VigilError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(n) if range.contains(&n) => Ok(n),
                Some(_) => Err(VigilError::BadArgument {
                    name,
                    expected,
                    got: "a number out of range",
                }),
                None => Err(VigilError::BadArgument {
                    name,
                    expected,
                    got: type_name(&v),
                }),
            },
        }
    }

    /// A required string.
    pub fn string(&self, name: &'static str, expected: &'static str) -> Result<String, VigilError> {
        let v = self.get(name).ok_or(VigilError::BadArgument {
            name,
            expected,
            got: "nothing",
        })?;
        v.as_string().ok_or(VigilError::BadArgument {
            name,
            expected,
            got: type_name(&v),
        })
    }
}

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

/// `String(value)` as JS does it (`undefined`, `null`, numbers, objects…).
pub fn text(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    String::from(js_sys::Array::of1(value).join(""))
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
