//! The crate's error type, and how it crosses into JS: a `TypeError` for bad arguments, an `Error`
//! for everything else, each with a message that names what went wrong.

use crate::prelude::*;
use thiserror::Error;
use wasm_bindgen::JsValue;

use crate::runtime::registry::RegistryFull;

/// Everything the public API can refuse.
#[derive(Debug, Error)]
pub enum VigilError {
    /// An argument or option had the wrong value.
    #[error("{name}: expected {expected}, got {got}")]
    BadArgument {
        /// The option or argument, as the page spells it.
        name: &'static str,
        /// What would have been accepted.
        expected: &'static str,
        /// What was given, described without formatting floats (that code costs bundle size).
        got: &'static str,
    },
    /// The cleanup manager is full.
    #[error(transparent)]
    Full(#[from] RegistryFull),
}

impl VigilError {
    /// The same text as `Display`, built without `core::fmt`.
    pub fn message(&self) -> String {
        match self {
            Self::BadArgument {
                name,
                expected,
                got,
            } => crate::text::concat(&[name, ": expected ", expected, ", got ", got]),
            Self::Full(full) => full.message(),
        }
    }
}

impl From<VigilError> for JsValue {
    fn from(e: VigilError) -> Self {
        let message = e.message();
        match e {
            VigilError::BadArgument { .. } => js_sys::TypeError::new(&message).into(),
            VigilError::Full(_) => js_sys::Error::new(&message).into(),
        }
    }
}

/// Checks a duration in milliseconds from JS: finite, not negative, at most `u32::MAX`.
pub fn millis(name: &'static str, value: f64) -> Result<u32, VigilError> {
    if value.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&value) {
        // In range and finite, so the cast cannot saturate; sub-millisecond parts are dropped.
        Ok(value as u32)
    } else {
        let got = if value.is_nan() {
            "NaN"
        } else if value.is_infinite() {
            "an infinite number"
        } else if value < 0.0 {
            "a negative number"
        } else {
            "a number over 4294967295"
        };
        Err(VigilError::BadArgument {
            name,
            expected: "a number of milliseconds between 0 and 4294967295",
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_accepts_the_range_and_names_the_option() {
        assert_eq!(millis("ms", 0.0).unwrap(), 0);
        assert_eq!(millis("ms", 1500.7).unwrap(), 1500);
        assert_eq!(millis("ms", f64::from(u32::MAX)).unwrap(), u32::MAX);
        for bad in [-1.0, f64::NAN, f64::INFINITY, 5e9] {
            let e = millis("flushIntervalMs", bad).unwrap_err().to_string();
            assert!(e.starts_with("flushIntervalMs: expected"), "{e}");
            assert!(e.contains(", got "), "{e}");
        }
        let full = VigilError::Full(RegistryFull { limit: 4096 });
        let bad = millis("ms", -1.0).unwrap_err();
        for e in [full, bad] {
            assert_eq!(e.message(), e.to_string());
        }
    }
}
