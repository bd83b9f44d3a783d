//! The handle pattern every exported class shares. The cleanup manager owns the service; the JS
//! object holds its entry id and a `Weak`, so its garbage collection ends nothing, `dispose()`
//! removes the entry, and `[Symbol.dispose]` is `dispose` (or `unsubscribe`), not wasm-bindgen's
//! `free`.

use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::JsValue;

use crate::error::VigilError;
use crate::runtime::manager::{self, Service};
use crate::runtime::registry::EntryId;

/// A service the manager owns, seen from its JS wrapper.
#[derive(Debug)]
pub struct Handle<T> {
    service: Weak<RefCell<T>>,
    entry: EntryId,
}

impl<T> Handle<T> {
    /// Registers `service` at `priority`; `weak` reaches its state.
    pub fn register(
        priority: i32,
        service: impl Service + 'static,
        weak: Weak<RefCell<T>>,
    ) -> Result<Self, JsValue> {
        let entry = manager::register(priority, Rc::new(service))
            .map_err(VigilError::from)?
            .hand_over();
        Ok(Self {
            service: weak,
            entry,
        })
    }

    /// A handle on nothing (the probe that finds a class's prototype).
    pub fn none() -> Self {
        Self {
            service: Weak::new(),
            entry: EntryId::from_raw(0),
        }
    }

    /// The state, while the service lives.
    pub fn upgrade(&self) -> Option<Rc<RefCell<T>>> {
        self.service.upgrade()
    }

    /// The state, or an `Error` with `disposed` as its message.
    pub fn live(&self, disposed: &'static str) -> Result<Rc<RefCell<T>>, JsValue> {
        self.upgrade()
            .ok_or_else(|| js_sys::Error::new(disposed).into())
    }

    /// Ends the service. Idempotent.
    pub fn dispose(&self) {
        manager::remove(self.entry);
    }
}

/// wasm-bindgen makes `[Symbol.dispose]` an alias of `free()`, which only frees the JS wrapper;
/// ownership rule 3 says that must not end anything. For `using x = …` to end the object, point
/// `[Symbol.dispose]` of its class at `method` (`unsubscribe` / `dispose`). `probe` is any
/// instance of the class.
pub fn alias_symbol_dispose(probe: &JsValue, method: &str) {
    let Some(symbol) = SYMBOL_DISPOSE.with(Clone::clone) else {
        return; // a browser without explicit resource management
    };
    let proto = js_sys::Object::get_prototype_of(probe);
    let target = crate::runtime::get_own(&proto, method);
    crate::runtime::set_own_key(&proto, &symbol, &target);
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `Symbol.dispose`, when the browser has it.
    #[wasm_bindgen(thread_local_v2, js_namespace = Symbol, js_name = dispose)]
    static SYMBOL_DISPOSE: Option<JsValue>;
}
