//! The cleanup manager: one per page, it owns every live service and every dispose callback, and
//! drops them highest priority first on `disposeAll()` or a final `pagehide`.
//!
//! The decisions (order, lifecycle phases) are made by [`super::registry`]; this file only holds
//! the entries, listens to `pagehide` / `pageshow` while it holds anything, and runs the actions.
//! No `RefCell` borrow is held while a service or callback runs, so a callback may register,
//! unregister or call `disposeAll()` again without a panic.

use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use super::guards::Listener;
use super::ledger::{ResourceKind, Ticket};
use super::registry::{Action, EntryId, Lifecycle, PageEvent, Registry, RegistryFull};

/// Dispose priorities: higher goes first. Network services close before the telemetry that
/// would report their failures.
pub mod priority {
    /// WebSocket services and voice connections.
    pub const NETWORK: i32 = 50;
    /// The fleet health sampler: its last sample is queued before the monitor's final export
    /// and the transport's final flush.
    pub const HEALTH: i32 = 20;
    /// The performance monitor.
    pub const MONITOR: i32 = 10;
    /// Page callbacks (`onDispose` default) and the error tracker.
    pub const DEFAULT: i32 = 0;
    /// The transport the tracker, the monitor and the sampler share: flushed and closed last.
    pub const TRANSPORT: i32 = -10;
}

/// The most entries the manager holds at once; more is refused with [`RegistryFull`].
pub const MAX_ENTRIES: usize = 4096;

/// Something the cleanup manager owns. Dropping it disposes it; the hooks are for the page
/// lifecycle. Every method has a default that does nothing.
pub trait Service {
    /// Send what is buffered with a request that survives the page (`keepalive` / beacon).
    fn flush(&self) {}
    /// The page enters the back/forward cache: close sockets and peer connections.
    fn suspend(&self) {}
    /// The page came back from the back/forward cache: reopen what [`Service::suspend`] closed.
    fn resume(&self) {}
}

enum Held {
    Service(Rc<dyn Service>),
    OnDispose(Box<dyn FnOnce()>),
}

struct Entry {
    held: Held,
    _ticket: Ticket,
}

struct Manager {
    registry: Registry<Entry>,
    lifecycle: Lifecycle,
    /// `pagehide` and `pageshow`, attached while the registry holds anything.
    listeners: Option<(Listener, Listener)>,
}

crate::local! {
    static MANAGER: RefCell<Manager> = RefCell::new(Manager {
        registry: Registry::new(MAX_ENTRIES),
        lifecycle: Lifecycle::default(),
        listeners: None,
    });
}

/// An entry owned through Rust: dropping the registration disposes the entry at once (RAII).
/// The JS layer calls [`Registration::hand_over`] so that the manager alone owns the entry and a
/// garbage-collected JS wrapper never ends it.
#[derive(Debug)]
#[must_use = "dropping a Registration disposes the service at once; call hand_over() to let the cleanup manager own it"]
pub struct Registration {
    id: EntryId,
    /// Cleared by [`Registration::hand_over`]: then dropping ends nothing. (A flag, not an
    /// `Option` taken with `expect`: its panic message is formatted with `core::fmt`'s string
    /// padding, which would be the only use of it in `vigil/core`.)
    owns: bool,
}

impl Registration {
    /// The entry's id.
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// Gives up the right to end the entry by dropping; it now ends only on [`remove`] or
    /// [`dispose_all`].
    pub fn hand_over(mut self) -> EntryId {
        self.owns = false;
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.owns {
            remove(self.id);
        }
    }
}

/// Registers a service at `priority` (higher is disposed first).
pub fn register(priority: i32, service: Rc<dyn Service>) -> Result<Registration, RegistryFull> {
    insert(priority, Held::Service(service))
}

/// Runs `callback` when everything is disposed (not when the entry is removed by hand).
pub fn on_dispose(
    priority: i32,
    callback: impl FnOnce() + 'static,
) -> Result<Registration, RegistryFull> {
    insert(priority, Held::OnDispose(Box::new(callback)))
}

fn insert(priority: i32, held: Held) -> Result<Registration, RegistryFull> {
    let entry = Entry {
        held,
        _ticket: Ticket::new(ResourceKind::Service),
    };
    let id = MANAGER.with(|m| m.borrow_mut().registry.insert(priority, entry))?;
    ensure_listening();
    Ok(Registration { id, owns: true })
}

/// Disposes one entry now (a dispose callback is dropped without running). Returns false when it
/// was gone already.
pub fn remove(id: EntryId) -> bool {
    let (entry, idle) = MANAGER.with(|m| {
        let mut m = m.borrow_mut();
        let entry = m.registry.remove(id);
        let idle = if m.registry.is_empty() {
            m.listeners.take()
        } else {
            None
        };
        (entry, idle)
    });
    let found = entry.is_some();
    drop(entry); // outside the borrow: the service's Drop may call back into the manager
    drop(idle);
    found
}

/// True while `id` is held.
pub fn contains(id: EntryId) -> bool {
    MANAGER.with(|m| m.borrow().registry.contains(id))
}

/// How many entries are held.
pub fn len() -> usize {
    MANAGER.with(|m| m.borrow().registry.len())
}

/// What a final `pagehide` does: flush, then dispose everything, highest priority first.
/// Idempotent; afterwards the manager holds nothing and listens to nothing.
pub fn dispose_all() {
    handle(PageEvent::DisposeAll);
}

/// Feeds one page event to the lifecycle and runs the resulting actions.
pub fn handle(event: PageEvent) {
    let actions = MANAGER.with(|m| m.borrow_mut().lifecycle.on(event));
    for action in actions {
        match action {
            Action::Flush => each_service(|s| s.flush()),
            Action::Suspend => each_service(|s| s.suspend()),
            Action::Resume => each_service(|s| s.resume()),
            Action::DisposeAll => {
                let (entries, listeners) = MANAGER.with(|m| {
                    let mut m = m.borrow_mut();
                    (m.registry.drain_in_order(), m.listeners.take())
                });
                for entry in entries {
                    match entry.held {
                        Held::OnDispose(callback) => callback(),
                        Held::Service(service) => drop(service),
                    }
                }
                drop(listeners);
            }
        }
    }
}

fn each_service(mut f: impl FnMut(&dyn Service)) {
    let services: Vec<Rc<dyn Service>> = MANAGER.with(|m| {
        m.borrow()
            .registry
            .iter_in_order()
            .filter_map(|e| match &e.held {
                Held::Service(s) => Some(Rc::clone(s)),
                Held::OnDispose(_) => None,
            })
            .collect()
    });
    for s in services {
        f(&*s);
    }
}

fn ensure_listening() {
    let needed = MANAGER.with(|m| m.borrow().listeners.is_none());
    if !needed || cfg!(not(target_arch = "wasm32")) {
        return; // native tests have no page to listen to
    }
    let Some(window) = crate::runtime::window() else {
        return; // not in a page (a worker, or native code): nothing to listen to
    };
    let on = |name: &'static str, hide: bool| {
        Listener::new(&window, name, move |event| {
            // `event.persisted`, read without web-sys's `instanceof PageTransitionEvent` check
            // and getter import. The browser's own event cannot throw here; a page that
            // dispatches a `pagehide` of its own with a throwing `persisted` getter gets the
            // throw back before anything is borrowed, as with web-sys's getter.
            let persisted = crate::runtime::get_own(event, "persisted").is_truthy();
            handle(if hide {
                PageEvent::PageHide { persisted }
            } else {
                PageEvent::PageShow { persisted }
            });
        })
    };
    let pair = (on("pagehide", true), on("pageshow", false));
    MANAGER.with(|m| {
        let mut m = m.borrow_mut();
        if m.listeners.is_none() {
            m.listeners = Some(pair);
        }
    });
}

#[cfg(test)]
mod tests {
    //! The manager natively, with Rust services: the browser listeners are skipped off-wasm.
    use super::*;
    use crate::runtime::ledger::counts;
    use core::cell::Cell;

    type Log = Rc<RefCell<Vec<String>>>;

    struct Probe {
        name: &'static str,
        log: Log,
    }

    impl Service for Probe {
        fn flush(&self) {
            self.log.borrow_mut().push(format!("flush {}", self.name));
        }
        fn suspend(&self) {
            self.log.borrow_mut().push(format!("suspend {}", self.name));
        }
        fn resume(&self) {
            self.log.borrow_mut().push(format!("resume {}", self.name));
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.log.borrow_mut().push(format!("drop {}", self.name));
        }
    }

    fn probe(log: &Log, name: &'static str, priority: i32) -> EntryId {
        register(
            priority,
            Rc::new(Probe {
                name,
                log: Rc::clone(log),
            }),
        )
        .unwrap()
        .hand_over()
    }

    #[test]
    fn dispose_all_flushes_then_drops_by_priority_once() {
        let log = Log::default();
        probe(&log, "low", 0);
        probe(&log, "high", 10);
        let l = Rc::clone(&log);
        let _cb = on_dispose(5, move || l.borrow_mut().push("callback".into()))
            .unwrap()
            .hand_over();
        assert_eq!(counts().get(ResourceKind::Service), 3);
        dispose_all();
        assert_eq!(
            *log.borrow(),
            [
                "flush high",
                "flush low",
                "drop high",
                "callback",
                "drop low"
            ]
        );
        assert!(counts().is_zero());
        dispose_all();
        assert_eq!(log.borrow().len(), 5, "a second disposeAll does nothing");
    }

    #[test]
    fn bfcache_suspends_and_resumes_without_dropping() {
        let log = Log::default();
        probe(&log, "ws", 0);
        handle(PageEvent::PageShow { persisted: false });
        handle(PageEvent::PageHide { persisted: true });
        handle(PageEvent::PageShow { persisted: true });
        assert_eq!(*log.borrow(), ["flush ws", "suspend ws", "resume ws"]);
        assert_eq!(len(), 1);
        handle(PageEvent::PageHide { persisted: false });
        assert_eq!(log.borrow().last().unwrap(), "drop ws");
        assert_eq!(len(), 0);
    }

    #[test]
    fn dropping_a_registration_disposes_at_once() {
        let log = Log::default();
        let reg = register(
            0,
            Rc::new(Probe {
                name: "rust",
                log: Rc::clone(&log),
            }),
        )
        .unwrap();
        let id = reg.id();
        assert!(contains(id));
        drop(reg);
        assert!(!contains(id));
        assert_eq!(*log.borrow(), ["drop rust"]);
        assert!(!remove(id), "already gone");
    }

    #[test]
    fn removed_dispose_callback_never_runs() {
        let ran = Rc::new(Cell::new(false));
        let r = Rc::clone(&ran);
        let id = on_dispose(0, move || r.set(true)).unwrap().hand_over();
        assert!(remove(id));
        dispose_all();
        assert!(!ran.get());
        assert!(counts().is_zero());
    }

    #[test]
    fn callbacks_may_reenter_the_manager() {
        let log = Log::default();
        let l = Rc::clone(&log);
        on_dispose(1, move || {
            // Re-entrant calls while disposing: no borrow panic, and the late entry survives.
            dispose_all();
            let l2 = Rc::clone(&l);
            on_dispose(0, move || l2.borrow_mut().push("late".into()))
                .unwrap()
                .hand_over();
            l.borrow_mut().push("first".into());
        })
        .unwrap()
        .hand_over();
        dispose_all();
        assert_eq!(*log.borrow(), ["first"]);
        assert_eq!(len(), 1);
        dispose_all();
        assert_eq!(*log.borrow(), ["first", "late"]);
        assert_eq!(len(), 0);
    }

    #[test]
    fn the_manager_is_bounded() {
        let ids: Vec<_> = (0..MAX_ENTRIES)
            .map(|_| on_dispose(0, || {}).unwrap().hand_over())
            .collect();
        assert!(on_dispose(0, || {}).is_err());
        for id in ids {
            remove(id);
        }
        assert!(counts().is_zero());
    }
}
