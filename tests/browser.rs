//! Browser tests: run by `wasm-pack test --headless --chrome` (see `./dev.sh test`), with the
//! Chrome flags in `webdriver.json`. Every test leaves `resources()` at zero, and checks it.
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use vigil::runtime::guards::{
    when_settled, ConsolePatch, DataChannel, Interval, Listener, MediaTrack, Observer,
    OwnedElement, PeerConnection, Socket, Timeout,
};
use vigil::runtime::ledger::counts;
use vigil::runtime::manager::{self, Service};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

fn document() -> web_sys::Document {
    window().document().expect("a document")
}

fn dispatch(target: &web_sys::EventTarget, name: &str) {
    let event = web_sys::Event::new(name).unwrap();
    target.dispatch_event(&event).unwrap();
}

fn page_transition(name: &str, persisted: bool) {
    let init = web_sys::PageTransitionEventInit::new();
    init.set_persisted(persisted);
    let event = web_sys::PageTransitionEvent::new_with_event_init_dict(name, &init).unwrap();
    window().dispatch_event(&event).unwrap();
}

/// `resources()` through the JS surface, as a page sees it.
fn js_resources() -> js_sys::Object {
    vigil::resources()
}

fn js_count(name: &str) -> f64 {
    js_sys::Reflect::get(&js_resources(), &name.into())
        .unwrap()
        .as_f64()
        .unwrap()
}

/// The message of the `Error` that `promise` rejects with (the test fails if it resolves).
async fn rejection(promise: js_sys::Promise) -> String {
    let err: js_sys::Error = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect_err("the promise rejects")
        .dyn_into()
        .expect("with an Error");
    err.message().into()
}

fn assert_all_zero() {
    assert!(counts().is_zero(), "resources left: {:?}", counts());
    let obj = js_resources();
    for key in js_sys::Object::keys(&obj).iter() {
        let v = js_sys::Reflect::get(&obj, &key).unwrap().as_f64().unwrap();
        assert_eq!(v, 0.0, "resources().{} is {}", key.as_string().unwrap(), v);
    }
}

/// Listeners are passive (a callback cannot cancel the event) and bubble unless asked to
/// capture; a capture listener on a parent hears the event before the child's own listeners,
/// and dropping it removes it from the capture phase.
#[wasm_bindgen_test]
fn listeners_are_passive_and_capture_ones_come_first() {
    let parent: web_sys::Element = document().create_element("div").unwrap();
    let child = document().create_element("span").unwrap();
    parent.append_child(&child).unwrap();
    // The page's own listener, added as a page adds it (no guard: this is the page's code, not
    // the runtime's). It holds no Rust closure, is removed at the end, and the detached element
    // goes with the test.
    let child_own: js_sys::Function = js_sys::Function::new_no_args("window.__order.push('child')");
    child
        .add_event_listener_with_callback("poke", &child_own)
        .unwrap();
    let log = |who: &'static str| {
        move |e: &web_sys::Event| {
            e.prevent_default(); // ignored: the listener is passive
            js_sys::eval(&format!("window.__order.push('{who}')")).unwrap();
        }
    };
    let bubbling = Listener::new(&parent, "poke", log("bubble"));
    let capturing = vigil::runtime::guards::Listener::new_with_options(
        &parent,
        "poke",
        vigil::runtime::guards::ListenerOptions::capture(),
        log("capture"),
    );
    // Dispatches a cancelable, bubbling `poke` on the child; the order the listeners heard it.
    let poke = || -> String {
        js_sys::eval("window.__order = []").unwrap();
        let init = web_sys::EventInit::new();
        init.set_bubbles(true);
        init.set_cancelable(true);
        let event = web_sys::Event::new_with_event_init_dict("poke", &init).unwrap();
        let not_cancelled = child.dispatch_event(&event).unwrap();
        assert!(not_cancelled && !event.default_prevented(), "passive");
        js_sys::eval("window.__order.join()")
            .unwrap()
            .as_string()
            .unwrap()
    };
    assert_eq!(poke(), "capture,child,bubble");
    drop(capturing);
    drop(bubbling);
    assert_eq!(poke(), "child");
    child
        .remove_event_listener_with_callback("poke", &child_own)
        .unwrap();
    assert_all_zero();
}

#[wasm_bindgen_test]
fn dropping_a_listener_removes_it() {
    let target: web_sys::EventTarget = document().create_element("div").unwrap().into();
    let hits = Rc::new(Cell::new(0));
    let h = Rc::clone(&hits);
    let listener = Listener::new(&target, "ping", move |_| h.set(h.get() + 1));
    assert_eq!(js_count("listeners"), 1.0);
    dispatch(&target, "ping");
    assert_eq!(hits.get(), 1);
    drop(listener);
    dispatch(&target, "ping");
    assert_eq!(
        hits.get(),
        1,
        "the callback ran after the guard was dropped"
    );
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn intervals_stop_when_dropped() {
    let ticks = Rc::new(Cell::new(0));
    let t = Rc::clone(&ticks);
    let interval = Interval::new(5, move || t.set(t.get() + 1));
    assert_eq!(js_count("intervals"), 1.0);
    TimeoutFuture::new(60).await;
    assert!(
        ticks.get() >= 2,
        "the interval ticked {} times",
        ticks.get()
    );
    drop(interval);
    let after_drop = ticks.get();
    TimeoutFuture::new(40).await;
    assert_eq!(
        ticks.get(),
        after_drop,
        "the interval ticked after its guard was dropped"
    );
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn timeouts_fire_once_and_stop_when_dropped() {
    let fired = Rc::new(Cell::new(0));
    let f = Rc::clone(&fired);
    let kept = Timeout::new(5, move || f.set(f.get() + 1));
    let f = Rc::clone(&fired);
    let dropped = Timeout::new(5, move || f.set(f.get() + 100));
    assert_eq!(js_count("timeouts"), 2.0);
    drop(dropped);
    assert_eq!(js_count("timeouts"), 1.0);
    TimeoutFuture::new(40).await;
    assert_eq!(fired.get(), 1, "only the kept timeout fires, once");
    assert!(!kept.is_pending());
    assert_eq!(
        js_count("timeouts"),
        0.0,
        "a fired timeout is no longer counted"
    );
    drop(kept);
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn when_settled_runs_its_callback_once_with_the_value_and_frees_it() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    // Each callback holds a count of this until it has run.
    let owned = Rc::new(());
    // A rejection (which the JS helpers never make) still reaches the callback, with the
    // reason, instead of leaving it unrun and an unhandled rejection behind.
    let rejections = Rc::new(Cell::new(0));
    let r = Rc::clone(&rejections);
    let on_rejection = Listener::new(&window(), "unhandledrejection", move |_| r.set(r.get() + 1));
    for n in [1, 2, 3] {
        let promise: js_sys::Promise = if n == 3 {
            js_sys::Promise::reject(&JsValue::from(n))
        } else {
            js_sys::Promise::resolve(&JsValue::from(n))
        };
        let (s, o) = (Rc::clone(&seen), Rc::clone(&owned));
        when_settled(&promise, move |value| {
            let _keep = o;
            s.borrow_mut().push(value.as_f64());
        });
    }
    assert!(
        seen.borrow().is_empty(),
        "a promise reaction runs later, not inside the call"
    );
    assert_eq!(Rc::strong_count(&owned), 4);
    TimeoutFuture::new(0).await;
    assert_eq!(*seen.borrow(), [Some(1.0), Some(2.0), Some(3.0)]);
    assert_eq!(rejections.get(), 0, "no unhandled rejection");
    drop(on_rejection);
    assert_eq!(
        Rc::strong_count(&owned),
        1,
        "each callback ran once and dropped what it held"
    );
    assert_all_zero();
}

struct Probe {
    name: &'static str,
    log: Rc<RefCell<Vec<String>>>,
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

fn probe(log: &Rc<RefCell<Vec<String>>>, name: &'static str, priority: i32) {
    manager::register(
        priority,
        Rc::new(Probe {
            name,
            log: Rc::clone(log),
        }),
    )
    .unwrap()
    .hand_over();
}

#[wasm_bindgen_test]
fn dispose_all_runs_in_priority_order_survives_throws_and_is_idempotent() {
    let log = Rc::new(RefCell::new(Vec::new()));
    probe(&log, "websocket", 10);
    probe(&log, "tracker", 0);
    // A JS callback that throws, registered through the page API, between the two.
    let thrower = js_sys::Function::new_no_args("throw new Error('a dispose callback failed')");
    vigil::on_dispose(thrower, 5).unwrap();
    let l = Rc::clone(&log);
    let after_throw = Closure::<dyn FnMut()>::new(move || l.borrow_mut().push("js 4".into()));
    vigil::on_dispose(
        after_throw
            .as_ref()
            .unchecked_ref::<js_sys::Function>()
            .clone(),
        4,
    )
    .unwrap();
    // The manager listens to pagehide/pageshow while it holds anything.
    assert_eq!(js_count("services"), 4.0);
    assert_eq!(js_count("listeners"), 2.0);
    vigil::dispose_all();
    assert_eq!(
        *log.borrow(),
        [
            "flush websocket",
            "flush tracker",
            "drop websocket",
            "js 4",
            "drop tracker"
        ]
    );
    assert_all_zero();
    vigil::dispose_all();
    assert_eq!(log.borrow().len(), 5, "a second disposeAll does nothing");
    assert_all_zero();
}

#[wasm_bindgen_test]
fn final_pagehide_flushes_and_disposes_everything() {
    let log = Rc::new(RefCell::new(Vec::new()));
    probe(&log, "a", 1);
    let sub = vigil::listen(
        &window(),
        "resize".into(),
        js_sys::Function::new_no_args(""),
    )
    .unwrap();
    assert!(sub.active());
    page_transition("pagehide", false);
    assert_eq!(*log.borrow(), ["flush a", "drop a"]);
    assert!(!sub.active());
    assert_all_zero();
}

#[wasm_bindgen_test]
fn listen_refuses_a_type_that_is_not_a_string() {
    let Err(err) = vigil::listen(
        &window(),
        JsValue::from(5),
        js_sys::Function::new_no_args(""),
    ) else {
        panic!("a number was taken as an event type");
    };
    let err: js_sys::Error = err.unchecked_into();
    assert_eq!(String::from(err.name()), "TypeError");
    assert_eq!(
        String::from(err.message()),
        "type: expected a string, got a value of another type"
    );
    assert_all_zero();
}

#[wasm_bindgen_test]
fn bfcache_pagehide_suspends_and_pageshow_resumes() {
    let log = Rc::new(RefCell::new(Vec::new()));
    probe(&log, "ws", 0);
    page_transition("pagehide", true);
    assert_eq!(*log.borrow(), ["flush ws", "suspend ws"]);
    assert_eq!(js_count("services"), 1.0, "the rest is kept in the cache");
    page_transition("pageshow", true);
    assert_eq!(*log.borrow(), ["flush ws", "suspend ws", "resume ws"]);
    vigil::dispose_all();
    assert_eq!(log.borrow().last().unwrap(), "drop ws");
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn page_api_subscriptions_are_owned_by_the_manager() {
    let calls = Rc::new(Cell::new(0));
    let c = Rc::clone(&calls);
    let cb = Closure::<dyn FnMut()>::new(move || c.set(c.get() + 1));
    let f: js_sys::Function = cb.as_ref().unchecked_ref::<js_sys::Function>().clone();

    let every = vigil::every(5.0, f.clone()).unwrap();
    let after = vigil::after(5.0, f.clone()).unwrap();
    let target: web_sys::EventTarget = document().create_element("div").unwrap().into();
    let listen = vigil::listen(&target, "poke".into(), f.clone()).unwrap();
    assert_eq!(js_count("intervals"), 1.0);
    assert_eq!(js_count("timeouts"), 1.0);
    assert_eq!(js_count("listeners"), 3.0); // ours plus pagehide/pageshow
    assert_eq!(js_count("services"), 3.0);

    // Dropping the JS wrappers (what garbage collection does) ends nothing.
    let ids = (JsValue::from(every), JsValue::from(listen));
    TimeoutFuture::new(40).await;
    assert!(!after.active(), "after() ends itself once it has fired");
    assert_eq!(js_count("services"), 2.0);
    dispatch(&target, "poke");
    let seen = calls.get();
    assert!(seen >= 3, "callbacks ran {seen} times");

    // Symbol.dispose unsubscribes (wasm-bindgen's default would only free the wrapper).
    let dispose = js_sys::Reflect::get(&js_sys::global(), &"Symbol".into())
        .and_then(|s| js_sys::Reflect::get(&s, &"dispose".into()))
        .unwrap();
    let method: js_sys::Function = js_sys::Reflect::get(&ids.1, &dispose)
        .unwrap()
        .unchecked_into();
    method.call0(&ids.1).unwrap();
    dispatch(&target, "poke");
    TimeoutFuture::new(1).await;
    assert_eq!(js_count("listeners"), 2.0);

    let sub: vigil::Subscription = vigil::every(1000.0, f.clone()).unwrap();
    sub.unsubscribe();
    sub.unsubscribe();
    assert!(!sub.active());

    vigil::dispose_all();
    let frozen = calls.get();
    TimeoutFuture::new(30).await;
    assert_eq!(calls.get(), frozen, "nothing runs after disposeAll");
    assert_all_zero();
}

#[wasm_bindgen_test]
fn bad_arguments_throw_a_type_error_naming_them() {
    let err = vigil::every(-1.0, js_sys::Function::new_no_args("")).unwrap_err();
    let err: js_sys::Error = err.dyn_into().unwrap();
    assert_eq!(err.name(), "TypeError");
    let msg = String::from(err.message());
    assert!(msg.starts_with("ms: expected"), "{msg}");
    assert_all_zero();
}

#[wasm_bindgen_test]
fn console_is_patched_once_and_restored() {
    let console = js_sys::Reflect::get(&js_sys::global(), &"console".into()).unwrap();
    let original = js_sys::Reflect::get(&console, &"warn".into()).unwrap();
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = Rc::clone(&seen);
    let patch = ConsolePatch::install("warn", move |args: &js_sys::Array| {
        s.borrow_mut()
            .push(args.get(0).as_string().unwrap_or_default());
        // Logging from inside the hook must not loop.
        web_sys::console::warn_1(&"from the hook".into());
    })
    .unwrap();
    assert!(
        ConsolePatch::install("warn", |_| {}).is_err(),
        "a second patch would double"
    );
    assert_eq!(js_count("consolePatches"), 1.0);
    web_sys::console::warn_1(&"hello".into());
    assert_eq!(*seen.borrow(), ["hello"]);
    drop(patch);
    let now = js_sys::Reflect::get(&console, &"warn".into()).unwrap();
    assert!(
        js_sys::Object::is(&now, &original),
        "console.warn was not restored"
    );
    assert_all_zero();
}

#[wasm_bindgen_test]
fn owned_elements_are_removed() {
    let el = document().create_element("audio").unwrap();
    document().body().unwrap().append_child(&el).unwrap();
    let guard = OwnedElement::new(el.clone());
    assert_eq!(js_count("elements"), 1.0);
    drop(guard);
    assert!(el.parent_node().is_none());
    assert_all_zero();
}

#[wasm_bindgen_test]
fn sockets_close_and_detach_when_dropped() {
    let hits = Rc::new(Cell::new(0));
    let mut socket = Socket::open("ws://127.0.0.1:9/never", &[]).unwrap();
    let h = Rc::clone(&hits);
    socket.on("close", move |_| h.set(h.get() + 1));
    assert_eq!(js_count("sockets"), 1.0);
    let raw = socket.raw().clone();
    drop(socket);
    assert!(raw.ready_state() >= web_sys::WebSocket::CLOSING);
    raw.dispatch_event(&web_sys::Event::new("close").unwrap())
        .unwrap();
    assert_eq!(hits.get(), 0, "a handler survived the guard");
    assert_all_zero();
}

#[wasm_bindgen_test]
fn peer_connections_channels_and_tracks_are_released() {
    let pc = web_sys::RtcPeerConnection::new().unwrap();
    let channel = DataChannel::new(pc.create_data_channel("oai-events"));
    let raw_channel = channel.raw().clone();
    let mut peer = PeerConnection::new(pc.clone());
    let hits = Rc::new(Cell::new(0));
    let h = Rc::clone(&hits);
    peer.on("connectionstatechange", move |_| h.set(h.get() + 1));

    // A live track without a permission prompt: a canvas capture stream.
    let canvas = document().create_element("canvas").unwrap();
    let capture: js_sys::Function = js_sys::Reflect::get(&canvas, &"captureStream".into())
        .unwrap()
        .unchecked_into();
    let stream = capture.call0(&canvas).unwrap();
    let get_tracks: js_sys::Function = js_sys::Reflect::get(&stream, &"getTracks".into())
        .unwrap()
        .unchecked_into();
    let tracks: js_sys::Array = get_tracks.call0(&stream).unwrap().unchecked_into();
    let raw_track: web_sys::MediaStreamTrack = tracks.get(0).unchecked_into();
    // `Clone::clone`: `MediaStreamTrack::clone` is the JS method that makes a *new* track.
    let track = MediaTrack::new(Clone::clone(&raw_track));

    assert_eq!(js_count("peerConnections"), 1.0);
    assert_eq!(js_count("dataChannels"), 1.0);
    assert_eq!(js_count("mediaTracks"), 1.0);
    drop((track, channel, peer));
    assert_eq!(
        raw_track.ready_state(),
        web_sys::MediaStreamTrackState::Ended
    );
    assert!(matches!(
        raw_channel.ready_state(),
        web_sys::RtcDataChannelState::Closing | web_sys::RtcDataChannelState::Closed
    ));
    assert_eq!(pc.signaling_state(), web_sys::RtcSignalingState::Closed);
    pc.dispatch_event(&web_sys::Event::new("connectionstatechange").unwrap())
        .unwrap();
    assert_eq!(hits.get(), 0, "a handler survived the guard");
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn observers_disconnect_when_dropped() {
    let seen = Rc::new(Cell::new(0));
    let s = Rc::clone(&seen);
    let observer = Observer::new(move |list: &JsValue| {
        let get: js_sys::Function = js_sys::Reflect::get(list, &"getEntries".into())
            .unwrap()
            .unchecked_into();
        let entries: js_sys::Array = get.call0(list).unwrap().unchecked_into();
        s.set(s.get() + entries.length());
    })
    .unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"type".into(), &"mark".into()).unwrap();
    observer.observe(&options).unwrap();
    assert_eq!(js_count("observers"), 1.0);
    let performance = window().performance().unwrap();
    performance.mark("vigil-test-1").unwrap();
    TimeoutFuture::new(30).await;
    assert_eq!(seen.get(), 1);
    drop(observer);
    performance.mark("vigil-test-2").unwrap();
    TimeoutFuture::new(30).await;
    assert_eq!(
        seen.get(),
        1,
        "the observer saw a mark after it was dropped"
    );
    assert_all_zero();
}

fn ws_options(extra: &str) -> JsValue {
    js_sys::eval(&format!(
        "({{ url: 'ws://127.0.0.1:9/nothing-listens', heartbeatIntervalMs: 50, connectTimeoutMs: 200, {extra} }})"
    ))
    .unwrap()
}

#[wasm_bindgen_test]
async fn websocket_service_gives_up_after_max_attempts_and_leaves_nothing() {
    let ws = vigil::WebSocketService::new(ws_options(
        "reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 2 }",
    ))
    .unwrap();
    let states = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = Rc::clone(&states);
    let on_state = Closure::<dyn FnMut(JsValue)>::new(move |st: JsValue| {
        s.borrow_mut().push(st.as_string().unwrap())
    });
    let _sub = ws
        .on_state(
            on_state
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap();
    assert_eq!(ws.state(), "idle");
    // online/offline listeners plus the manager's pagehide/pageshow.
    assert_eq!(js_count("listeners"), 4.0);
    assert!(
        ws.send("hello".into(), JsValue::from(1)).unwrap(),
        "queued while not open"
    );
    let stats = ws.stats().unwrap();
    assert_eq!(js_sys::Reflect::get(&stats, &"queued".into()).unwrap(), 1);

    let message = rejection(ws.connect().unwrap()).await;
    assert!(message.contains("maxAttempts"), "{message}");
    assert_eq!(ws.state(), "failed");
    // A state is reported when it changes: each retry stays "reconnecting".
    assert_eq!(*states.borrow(), ["connecting", "reconnecting", "failed"]);
    assert_eq!(js_count("sockets"), 0.0, "a failed service holds no socket");
    assert_eq!(js_count("timeouts"), 0.0);
    let stats = ws.stats().unwrap();
    assert_eq!(
        js_sys::Reflect::get(&stats, &"reconnects".into()).unwrap(),
        2
    );

    ws.dispose();
    ws.dispose();
    assert_eq!(ws.state(), "closed");
    assert!(
        !ws.send("x".into(), JsValue::NULL).unwrap(),
        "false once disposed"
    );
    let err: js_sys::Error = ws.stats().unwrap_err().dyn_into().unwrap();
    assert!(String::from(err.message()).contains("disposed"));
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn dispose_all_closes_a_connecting_websocket_service() {
    let ws = vigil::WebSocketService::new(ws_options("")).unwrap();
    let pending = ws.connect().unwrap();
    assert_eq!(ws.state(), "connecting");
    assert_eq!(js_count("sockets"), 1.0);
    assert_eq!(js_count("timeouts"), 1.0, "the connect timeout");
    vigil::dispose_all();
    assert!(rejection(pending).await.contains("disposed"));
    assert_all_zero();
    TimeoutFuture::new(50).await;
    assert_all_zero();
}

/// `connect()` calls waiting at once are bounded: past 64 the next is rejected at once, and
/// the ones waiting are rejected when the service is disposed.
#[wasm_bindgen_test]
async fn waiting_connect_calls_are_bounded() {
    let ws = vigil::WebSocketService::new(ws_options("")).unwrap();
    let waiting: Vec<js_sys::Promise> = (0..vigil::runtime::waiters::MAX_WAITERS)
        .map(|_| ws.connect().unwrap())
        .collect();
    assert_eq!(
        rejection(ws.connect().unwrap()).await,
        "too many connect() calls are waiting"
    );
    ws.dispose();
    for p in waiting {
        assert!(rejection(p).await.contains("disposed"));
    }
    assert_all_zero();
}

#[wasm_bindgen_test]
fn websocket_options_are_checked_by_name() {
    for (options, name) in [
        ("({})", "url"),
        ("({ url: 'ftp://x' })", "url"),
        (
            "({ url: 'ws://x', heartbeatIntervalMs: -5 })",
            "heartbeatIntervalMs",
        ),
        ("({ url: 'ws://x', reconnect: 'yes' })", "reconnect"),
        ("({ url: 'ws://x', reconnect: { jitter: 2 } })", "jitter"),
        ("({ url: 'ws://x', protocols: [1] })", "protocols"),
        (
            "({ url: 'ws://x', maxQueuedMessages: -1 })",
            "maxQueuedMessages",
        ),
    ] {
        let err = vigil::WebSocketService::new(js_sys::eval(options).unwrap()).unwrap_err();
        let err: js_sys::Error = err.dyn_into().unwrap();
        assert_eq!(err.name(), "TypeError", "{options}");
        let msg = String::from(err.message());
        assert!(msg.starts_with(&format!("{name}:")), "{options}: {msg}");
    }
    let ws =
        vigil::WebSocketService::new(js_sys::eval("({ url: '/ws', reconnect: false })").unwrap())
            .unwrap();
    let err: js_sys::Error = ws
        .disconnect(Some(1234), None)
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(String::from(err.message()).starts_with("code:"));
    ws.disconnect(None, Some("bye".into())).unwrap();
    assert_eq!(ws.state(), "closed");
    // Symbol.dispose disposes (wasm-bindgen's default would only free the wrapper).
    let js = JsValue::from(ws);
    let dispose = js_sys::Reflect::get(&js_sys::global(), &"Symbol".into())
        .and_then(|s| js_sys::Reflect::get(&s, &"dispose".into()))
        .unwrap();
    let f: js_sys::Function = js_sys::Reflect::get(&js, &dispose)
        .unwrap()
        .unchecked_into();
    f.call0(&js).unwrap();
    assert_all_zero();
}

fn vigil_options(extra: &str) -> JsValue {
    // Nothing listens on port 9: events stay queued, which is all these tests need.
    let _ = window().local_storage().unwrap().unwrap().clear();
    js_sys::eval(&format!("({{ dsn: 'http://dev@127.0.0.1:9/1' {extra} }})")).unwrap()
}

/// A runtime whose `beforeSend` keeps every event in `window.__events` (emptied first) and drops
/// it, so nothing is sent; `extra` adds options. Read the events with [`kept_events`].
fn vigil_keeping_events(extra: &str) -> vigil::Vigil {
    js_sys::eval("window.__events = []").unwrap();
    vigil::Vigil::start(vigil_options(&format!(
        "{extra}, beforeSend: (e) => {{ window.__events.push(e); return null; }}"
    )))
    .unwrap()
}

/// The events a [`vigil_keeping_events`] runtime kept, oldest first.
fn kept_events() -> js_sys::Array {
    js_sys::eval("window.__events").unwrap().unchecked_into()
}

/// What the last page left in `localStorage` is restored by category name: an entry under a
/// name this version never writes, or one that is not a pair of strings, is skipped; the copy
/// written back names the categories as the last page did.
#[wasm_bindgen_test]
fn a_restored_queue_keeps_only_the_categories_this_version_writes() {
    let options = vigil_options(", health: false"); // clears localStorage first
    let storage = window().local_storage().unwrap().unwrap();
    let key = "vigil:envelopes:dev@http://127.0.0.1:9/1";
    storage
        .set_item(
            key,
            r#"[["transaction","t"],["error","e"],["metric","m"],["error",1],"x",["error"]]"#,
        )
        .unwrap();
    let v = vigil::Vigil::start(options).unwrap();
    let stats = v.stats().unwrap();
    let count = |name: &str| js_sys::Reflect::get(&stats, &name.into()).unwrap();
    assert_eq!(
        (count("eventsQueued"), count("metricsQueued")),
        (1.into(), 1.into())
    );
    // Nothing listens on port 9, so both stay queued and are written back, names and all.
    assert_eq!(
        storage.get_item(key).unwrap().as_deref(),
        Some(r#"[["error","e"],["metric","m"]]"#)
    );
    v.dispose();
}

/// The global handlers: a script error (with its error, or only a message as a cross-origin
/// script gives) and an unhandled rejection are captured; an `error` event that is not an
/// `ErrorEvent` (a resource that failed to load) is not.
#[wasm_bindgen_test]
fn global_errors_and_rejections_are_captured_and_resource_errors_are_not() {
    let v = vigil_keeping_events("");
    js_sys::eval(
        "window.dispatchEvent(new Event('error'));
         window.dispatchEvent(new ErrorEvent('error', { message: 'Script error.' }));
         window.dispatchEvent(new ErrorEvent('error', { message: 'x', error: new TypeError('boom') }));
         const p = Promise.reject(new RangeError('late'));
         p.catch(() => {});
         window.dispatchEvent(new PromiseRejectionEvent('unhandledrejection',
           { promise: p, reason: new RangeError('late') }));",
    )
    .unwrap();
    let events = kept_events();
    let seen: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let text = |path| at(&e, path).as_string().unwrap_or_default();
            (
                text("exception.values.0.type"),
                text("exception.values.0.value"),
                text("exception.values.0.mechanism.type"),
            )
        })
        .collect();
    let want = |t: &str, v: &str, m: &str| (t.to_owned(), v.to_owned(), m.to_owned());
    assert_eq!(
        seen,
        [
            want("Error", "Script error.", "onerror"),
            want("TypeError", "boom", "onerror"),
            want("RangeError", "late", "onunhandledrejection"),
        ]
    );
    // The page's visibility becomes a navigation breadcrumb with the document's state.
    js_sys::eval("window.dispatchEvent(new Event('visibilitychange'))").unwrap();
    let expected = if js_sys::eval("document.hidden").unwrap().is_truthy() {
        "hidden"
    } else {
        "visible"
    };
    let last = v.breadcrumbs().unwrap().pop();
    assert_eq!(
        at(&last, "category").as_string().as_deref(),
        Some("navigation")
    );
    assert_eq!(at(&last, "message").as_string().as_deref(), Some(expected));
    // A history navigation's breadcrumb is the page's URL, as the exports' `url.full` is.
    let href = js_sys::eval("location.href").unwrap().as_string().unwrap();
    js_sys::eval("window.dispatchEvent(new PopStateEvent('popstate'))").unwrap();
    let last = v.breadcrumbs().unwrap().pop();
    assert_eq!(at(&last, "message").as_string().as_deref(), Some(&*href));
    assert_eq!(vigil::runtime::telemetry::page_url(), href);
    v.dispose();
    assert_all_zero();
}

/// A cleanup manager with room for only some of `Vigil.start`'s services refuses the start with
/// an `Error`, and whatever the start had made is released again.
#[wasm_bindgen_test]
fn a_full_cleanup_manager_refuses_start_and_leaves_nothing() {
    let noop = js_sys::Function::new_no_args("");
    let held: Vec<vigil::Subscription> = (0..vigil::runtime::manager::MAX_ENTRIES - 2)
        .map(|_| vigil::on_dispose(noop.clone(), 0).unwrap())
        .collect();
    let counts = || -> Vec<f64> {
        [
            "listeners",
            "intervals",
            "timeouts",
            "observers",
            "consolePatches",
        ]
        .iter()
        .map(|k| js_count(k))
        .collect()
    };
    let before = counts();
    let err: js_sys::Error = vigil::Vigil::start(vigil_options(""))
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(
        String::from(err.message()).contains("cleanup manager holds"),
        "{}",
        String::from(err.message())
    );
    assert_eq!(counts(), before, "the refused start left nothing behind");
    assert_eq!(
        js_count("services"),
        held.len() as f64,
        "only the page's own entries"
    );
    assert!(vigil::Vigil::current().is_none());
    for s in held {
        s.unsubscribe();
    }
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

#[wasm_bindgen_test]
fn vigil_start_patches_once_and_dispose_restores_everything() {
    let console = js_sys::Reflect::get(&js_sys::global(), &"console".into()).unwrap();
    let original = js_sys::Reflect::get(&console, &"error".into()).unwrap();
    let first = vigil::Vigil::start(vigil_options("")).unwrap();
    let second = vigil::Vigil::start(vigil_options("")).unwrap();
    // The first runtime was disposed by the second start: nothing doubles.
    assert_eq!(
        js_count("consolePatches"),
        2.0,
        "console.error and console.warn, once"
    );
    assert!(first.stats().is_err(), "the first runtime is disposed");
    web_sys::console::error_1(&"seen once".into());
    let crumbs = second.breadcrumbs().unwrap();
    let console_crumbs = crumbs
        .iter()
        .filter(|b| js_sys::Reflect::get(b, &"message".into()).unwrap() == "seen once")
        .count();
    assert_eq!(console_crumbs, 1);
    // error, unhandledrejection, visibilitychange, popstate, focus, blur, online, offline, the
    // transport's online/offline, the manager's pagehide/pageshow, and the performance monitor's
    // keydown/click (until the first input) and visibilitychange.
    assert_eq!(js_count("listeners"), 15.0);
    assert_eq!(js_count("observers"), 1.0, "one PerformanceObserver");
    assert_eq!(
        js_count("intervals"),
        2.0,
        "the metrics export and the health sampler"
    );
    second.dispose();
    second.dispose();
    let now = js_sys::Reflect::get(&console, &"error".into()).unwrap();
    assert!(
        js_sys::Object::is(&now, &original),
        "console.error is the original again"
    );
    assert!(vigil::Vigil::current().is_none());
    assert_all_zero();
}

#[wasm_bindgen_test]
fn vigil_breadcrumbs_stay_within_their_bound() {
    let v =
        vigil::Vigil::start(vigil_options(", maxBreadcrumbs: 3, captureConsole: false")).unwrap();
    for i in 0..10 {
        let crumb = js_sys::Object::new();
        js_sys::Reflect::set(&crumb, &"message".into(), &format!("m{i}").into()).unwrap();
        v.add_breadcrumb(crumb.into()).unwrap();
    }
    let crumbs = v.breadcrumbs().unwrap();
    assert_eq!(crumbs.length(), 3);
    assert_eq!(
        js_sys::Reflect::get(&crumbs.get(0), &"message".into()).unwrap(),
        "m7",
        "oldest first, the oldest dropped"
    );
    let long = "x".repeat(5000);
    let crumb = js_sys::Object::new();
    js_sys::Reflect::set(&crumb, &"message".into(), &long.into()).unwrap();
    v.add_breadcrumb(crumb.into()).unwrap();
    let last = v.breadcrumbs().unwrap().get(2);
    let message = js_sys::Reflect::get(&last, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert_eq!(message.len(), 2048);
    v.dispose();
    assert_all_zero();
}

/// Values a page hands over that JS cannot turn into text the usual way (a symbol, a throwing
/// `toString`, an attributes object that throws when read) become text or nothing; no call
/// throws, and the console hook and the runtime keep working after them.
#[wasm_bindgen_test]
fn vigil_reads_hostile_values_without_throwing() {
    let v = vigil::Vigil::start(vigil_options("")).unwrap();
    let console = js_sys::eval("console").unwrap();
    let warn: js_sys::Function = at(&console, "warn").unchecked_into();
    let symbol = js_sys::eval("Symbol('s')").unwrap();
    let throwing = js_sys::eval("({ toString() { throw new Error('no'); } })").unwrap();
    // (The test harness's own console wrapper converts every argument too, so only a symbol
    // goes through the console here.)
    for _ in 0..2 {
        warn.call2(&console, &symbol, &2.into()).unwrap();
    }
    v.set_tag("k".into(), throwing).unwrap();
    let proxy =
        js_sys::eval("new Proxy({}, { ownKeys() { throw new Error('no keys'); } })").unwrap();
    v.record_metric("m".into(), 1.0, None, proxy).unwrap();
    let attributes = js_sys::eval("({ a: Symbol('t'), b: 2 })").unwrap();
    v.record_metric("m".into(), 2.0, None, attributes).unwrap();
    let crumbs = v.breadcrumbs().unwrap();
    let console_crumbs: Vec<String> = crumbs
        .iter()
        .filter(|c| at(c, "category").as_string().as_deref() == Some("console"))
        .filter_map(|c| at(&c, "message").as_string())
        .collect();
    assert_eq!(
        console_crumbs, ["Symbol(s) 2"; 2],
        "both calls reached the hook"
    );
    v.dispose();
    let v = vigil_keeping_events("");
    v.set_tag("k".into(), symbol).unwrap();
    let throwing = js_sys::eval("({ toString() { throw new Error('no'); } })").unwrap();
    v.set_tag("t".into(), throwing).unwrap();
    v.capture_message("tagged".into(), JsValue::UNDEFINED)
        .unwrap();
    let event = kept_events().get(0);
    assert_eq!(
        at(&event, "tags.k").as_string().as_deref(),
        Some("Symbol(s)")
    );
    assert_eq!(
        at(&event, "tags.t").as_string().as_deref(),
        Some("a value that cannot be read")
    );
    // Contexts and tags are set, replaced and removed; a key whose conversion throws sets
    // nothing and throws nothing.
    let device = js_sys::eval("({ model: 'k1' })").unwrap();
    v.set_context("device".into(), device).unwrap();
    let bad_key = js_sys::eval("({ toString() { throw new Error('no key'); } })").unwrap();
    v.set_context(bad_key.clone(), JsValue::TRUE).unwrap();
    v.set_tag(bad_key, "x".into()).unwrap();
    v.set_tag("k".into(), JsValue::NULL).unwrap();
    v.capture_message("with context".into(), JsValue::UNDEFINED)
        .unwrap();
    let event = kept_events().get(1);
    assert_eq!(
        at(&event, "contexts.device.model").as_string().as_deref(),
        Some("k1")
    );
    assert!(at(&event, "tags.k").is_undefined(), "null removes a tag");
    assert_eq!(
        js_sys::Object::keys(at(&event, "contexts").unchecked_ref::<js_sys::Object>()).length(),
        1,
        "the key that cannot be converted set nothing"
    );
    v.set_context("device".into(), JsValue::NULL).unwrap();
    v.capture_message("without".into(), JsValue::UNDEFINED)
        .unwrap();
    let event = kept_events().get(2);
    assert!(
        at(&event, "contexts.device").is_undefined(),
        "null removes a context"
    );
    v.dispose();
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

#[wasm_bindgen_test]
fn vigil_captures_any_value_and_checks_its_arguments() {
    let v = vigil::Vigil::start(vigil_options(", sampleRate: 1")).unwrap();
    for value in [
        "new Error('e')",
        "'a string'",
        "({ a: 1 })",
        "undefined",
        "42",
    ] {
        let id = v
            .capture_exception(js_sys::eval(value).unwrap(), JsValue::UNDEFINED)
            .unwrap()
            .as_string()
            .expect("the event id is a JS string");
        assert_eq!(id.len(), 32, "{value}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
    let stats = v.stats().unwrap();
    assert_eq!(
        js_sys::Reflect::get(&stats, &"eventsCaptured".into()).unwrap(),
        5
    );
    // Repeating the previous event is dropped by dedupe.
    v.capture_message("same".into(), JsValue::UNDEFINED)
        .unwrap();
    v.capture_message("same".into(), JsValue::UNDEFINED)
        .unwrap();
    let stats = v.stats().unwrap();
    assert_eq!(
        js_sys::Reflect::get(&stats, &"eventsDropped".into()).unwrap(),
        1
    );
    // The same thrown value (type, value and stack) twice is a repeat too; the same type and
    // message thrown from another line is not.
    let error = js_sys::eval("new TypeError('twice')").unwrap();
    for _ in 0..2 {
        v.capture_exception(error.clone(), JsValue::UNDEFINED)
            .unwrap();
    }
    let pair: js_sys::Array = js_sys::eval("[new TypeError('twice'),\n new TypeError('twice')]")
        .unwrap()
        .unchecked_into();
    for e in pair.iter() {
        v.capture_exception(e, JsValue::UNDEFINED).unwrap();
    }
    let stats = v.stats().unwrap();
    assert_eq!(
        js_sys::Reflect::get(&stats, &"eventsDropped".into()).unwrap(),
        2,
        "one repeat of the exception, none for another line"
    );
    let err: js_sys::Error = v
        .capture_message("x".into(), "loud".into())
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(String::from(err.message()).starts_with("level:"));
    v.dispose();
    let err: js_sys::Error =
        vigil::Vigil::start(js_sys::eval("({ dsn: 'http://dev@host' })").unwrap())
            .unwrap_err()
            .dyn_into()
            .unwrap();
    assert!(
        String::from(err.message()).contains("project id"),
        "{:?}",
        err.message()
    );
    let err: js_sys::Error = vigil::Vigil::start(vigil_options(", sampleRate: 2"))
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(String::from(err.message()).starts_with("sampleRate:"));
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

/// Every thrown value becomes an exception with a type and a value, hostile ones included (a
/// throwing getter or a revoked proxy is read by JS that never throws into the wasm).
#[wasm_bindgen_test]
fn vigil_describes_any_thrown_value() {
    let v = vigil_keeping_events("");
    // (Dedupe drops an event equal to the one before it: no two neighbours are alike.)
    let cases = [
        ("new RangeError('too far')", "RangeError", "too far"),
        ("'a string'", "Error", "a string"),
        (
            "({ b: 1, a: 2 })",
            "Error",
            "Object captured as exception with keys: b, a",
        ),
        (
            "(() => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; })()",
            "Error",
            "a thrown value that cannot be read",
        ),
        ("undefined", "Error", "undefined"),
        ("null", "Error", "null"),
        ("42", "Error", "42"),
        ("Symbol('s')", "Error", "Symbol(s)"),
        (
            "Object.defineProperty(new Error('m'), 'name', { get() { throw 1; } })",
            "Error",
            "a thrown value that cannot be read",
        ),
    ];
    for (source, _, _) in cases {
        v.capture_exception(js_sys::eval(source).unwrap(), JsValue::UNDEFINED)
            .unwrap();
    }
    let events = kept_events();
    assert_eq!(events.length() as usize, cases.len());
    for (n, (source, kind, value)) in cases.into_iter().enumerate() {
        let e = events.get(n as u32);
        let last = js_sys::Array::from(&at(&e, "exception.values")).length() - 1;
        let ex = at(&e, &format!("exception.values.{last}"));
        assert_eq!(
            at(&ex, "type").as_string().as_deref(),
            Some(kind),
            "{source}"
        );
        assert_eq!(
            at(&ex, "value").as_string().as_deref(),
            Some(value),
            "{source}"
        );
    }
    v.dispose();
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

/// The event `beforeSend` receives has Sentry's shape (the objects are built in
/// `src/js/telemetry.js`, the decisions in Rust).
#[wasm_bindgen_test]
fn vigil_events_have_the_sentry_shape() {
    let v = vigil_keeping_events(", release: 'kiosk@3'");
    let crumb = js_sys::eval("({ category: 'ui.click', message: 'buy', data: { a: 1 } })").unwrap();
    v.add_breadcrumb(crumb).unwrap();
    v.set_tag("till".into(), "3".into()).unwrap();
    let error = js_sys::eval(
        "(() => { const e = new TypeError('outer', { cause: new Error('inner') }); return e; })()",
    )
    .unwrap();
    let hint =
        js_sys::eval("({ tags: { lane: 'a' }, extra: { n: 1 }, fingerprint: ['x'] })").unwrap();
    let id = v
        .capture_exception(error, hint)
        .unwrap()
        .as_string()
        .unwrap();
    v.capture_message("hello".into(), "warning".into()).unwrap();
    let events = kept_events();
    assert_eq!(events.length(), 2);
    let e = events.get(0);
    let text = |v: JsValue| v.as_string().unwrap_or_default();
    assert_eq!(text(at(&e, "event_id")), id);
    assert_eq!(text(at(&e, "platform")), "javascript");
    assert_eq!(text(at(&e, "level")), "error");
    assert_eq!(text(at(&e, "release")), "kiosk@3");
    assert_eq!(text(at(&e, "environment")), "production");
    assert_eq!(text(at(&e, "sdk.name")), "vigil.javascript");
    assert_eq!(text(at(&e, "tags.till")), "3");
    assert_eq!(text(at(&e, "tags.lane")), "a");
    assert_eq!(at(&e, "extra.n"), 1);
    assert_eq!(text(at(&e, "fingerprint.0")), "x");
    assert!(text(at(&e, "request.url")).starts_with("http"));
    assert!(!text(at(&e, "request.headers.User-Agent")).is_empty());
    assert!(at(&e, "timestamp").as_f64().unwrap() > 1.0e9);
    let crumbs = js_sys::Array::from(&at(&e, "breadcrumbs.values"));
    let last = crumbs.get(crumbs.length() - 1);
    assert_eq!(text(at(&last, "message")), "buy");
    assert_eq!(text(at(&last, "category")), "ui.click");
    assert_eq!(at(&last, "data.a"), 1);
    // The cause first, the main exception last, each with its mechanism and frames.
    assert_eq!(text(at(&e, "exception.values.0.value")), "inner");
    assert_eq!(text(at(&e, "exception.values.0.mechanism.type")), "chained");
    assert_eq!(text(at(&e, "exception.values.1.type")), "TypeError");
    assert_eq!(text(at(&e, "exception.values.1.mechanism.type")), "generic");
    assert_eq!(at(&e, "exception.values.1.mechanism.handled"), true);
    let frame = at(&e, "exception.values.1.stacktrace.frames.0");
    assert!(!text(at(&frame, "filename")).is_empty());
    assert!(at(&frame, "in_app").as_bool().is_some());
    let m = events.get(1);
    assert_eq!(text(at(&m, "message")), "hello");
    assert_eq!(text(at(&m, "level")), "warning");
    v.dispose();
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

#[wasm_bindgen_test]
async fn vigil_measures_the_page_and_checks_metric_arguments() {
    let v = vigil::Vigil::start(vigil_options(", flushIntervalMs: 50")).unwrap();
    // This harness page has painted and has a navigation entry: FCP and TTFB are known (after the
    // buffered entries are delivered), each with a rating.
    gloo_timers::future::TimeoutFuture::new(100).await;
    let vitals = v.vitals().unwrap();
    let ttfb = js_sys::Reflect::get(&vitals, &"ttfb".into()).unwrap();
    assert!(
        js_sys::Reflect::get(&ttfb, &"value".into())
            .unwrap()
            .as_f64()
            .is_some_and(|t| t >= 0.0),
        "TTFB measured"
    );
    let rating = js_sys::Reflect::get(&ttfb, &"rating".into()).unwrap();
    assert!(["good", "needs-improvement", "poor"]
        .iter()
        .any(|r| rating == *r));
    v.mark("a".into()).unwrap();
    let ms = v
        .measure("a-to-now".into(), "a".into(), JsValue::UNDEFINED)
        .unwrap();
    assert!(ms >= 0.0);
    let since_origin = v
        .measure("origin-to-now".into(), JsValue::NULL, JsValue::NULL)
        .unwrap();
    assert!(since_origin >= ms, "null marks are the time origin and now");
    assert!(
        v.measure("bad".into(), "no-such-mark".into(), JsValue::UNDEFINED)
            .is_err(),
        "an unknown mark throws as performance.measure does"
    );
    v.record_metric("queue".into(), 3.0, None, JsValue::UNDEFINED)
        .unwrap();
    let err: js_sys::Error = v
        .record_metric("".into(), 1.0, None, JsValue::UNDEFINED)
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(String::from(err.message()).starts_with("name:"));
    assert!(v
        .record_metric("x".into(), f64::NAN, None, JsValue::UNDEFINED)
        .is_err());
    // The export interval builds exports (nothing listens on port 9: they stay queued).
    gloo_timers::future::TimeoutFuture::new(200).await;
    let stats = v.stats().unwrap();
    let exports = js_sys::Reflect::get(&stats, &"metricExports".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(exports >= 1.0, "exports built: {exports}");
    v.dispose();
    assert!(v.vitals().is_err(), "disposed");
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

/// The runtime's own reading (the `memory.size` instruction, for the health and memory
/// gauges) is the buffer's length as JS sees it.
#[wasm_bindgen_test]
fn the_runtime_reads_the_wasm_memory_size_as_js_does() {
    // (Not after growing it: the memory never shrinks, and the test below would then have
    // headroom that hides growth.)
    assert_eq!(
        vigil::runtime::telemetry::wasm_memory_bytes(),
        wasm_memory_bytes()
    );
}

fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
        .into()
}

/// What is freed is reused: after a warm-up, runtimes that
/// capture errors, open and dispose WebSocket services and are disposed again do not grow the
/// wasm memory. Each round yields to the event loop, so the requests it started (to a port
/// where nothing listens) finish and free their bodies, as they would in a page.
#[wasm_bindgen_test]
async fn wasm_memory_stays_flat_across_start_capture_dispose_cycles() {
    let round = |i: u32| {
        let v = vigil::Vigil::start(vigil_options(
            ", maxQueuedEvents: 10, captureConsole: false",
        ))
        .unwrap();
        for j in 0..5 {
            let error = js_sys::Error::new(&format!("round {i} error {j}"));
            v.capture_exception(error.into(), JsValue::UNDEFINED)
                .unwrap();
        }
        v.record_metric("m".into(), f64::from(i), None, JsValue::UNDEFINED)
            .unwrap();
        let ws = vigil::WebSocketService::new(ws_options("")).unwrap();
        ws.send("hello".into(), JsValue::from_str("x")).unwrap();
        ws.dispose();
        v.dispose();
    };
    for i in 0..40 {
        round(i);
        TimeoutFuture::new(2).await;
    }
    let warm = wasm_memory_bytes();
    for i in 40..240 {
        round(i);
        TimeoutFuture::new(2).await;
    }
    let after = wasm_memory_bytes();
    assert!(
        after <= warm + 65_536.0,
        "wasm memory grew from {warm} to {after} bytes over 200 rounds"
    );
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

// Fleet health: `window.fetch` is replaced by a stub that keeps the bodies posted to the
// collector URL and answers 200.
const HEALTH_STUB: &str = r#"
(() => {
  if (!window.__realFetch) window.__realFetch = window.fetch;
  const bodies = window.healthBodies = [];
  window.fetch = async (url, init) => {
    if (String(url).includes('/health-collector')) {
      bodies.push(String(init.body));
      return new Response('{}', { status: 200 });
    }
    return window.__realFetch(url, init);
  };
  return bodies;
})()
"#;

/// The health exports the stub received so far, parsed.
fn health_exports() -> Vec<JsValue> {
    let bodies: js_sys::Array = js_sys::eval("window.healthBodies")
        .unwrap()
        .unchecked_into();
    bodies
        .iter()
        .filter_map(|b| b.as_string())
        .filter(|b| b.contains("\"vigil.resources\""))
        .map(|b| js_sys::JSON::parse(&b).unwrap())
        .collect()
}

/// `path` through objects and arrays, e.g. `resourceMetrics.0.resource.attributes`.
/// `value.a.0.b` for the path `a.0.b`; `undefined` once a step is missing.
fn at(value: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(value.clone(), |v, key| {
        if v.is_object() {
            js_sys::Reflect::get(&v, &key.into()).unwrap()
        } else {
            JsValue::UNDEFINED
        }
    })
}

/// String attributes `[{ key, value: { stringValue } }]` as pairs.
fn string_attributes(list: &JsValue) -> Vec<(String, String)> {
    js_sys::Array::from(list)
        .iter()
        .map(|a| {
            (
                at(&a, "key").as_string().unwrap(),
                at(&a, "value.stringValue").as_string().unwrap(),
            )
        })
        .collect()
}

fn attribute(list: &[(String, String)], key: &str) -> Option<String> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn health_options(extra: &str) -> JsValue {
    js_sys::eval(&format!(
        "({{ dsn: 'http://dev@127.0.0.1:9/1', metricsUrl: 'http://127.0.0.1:9/health-collector',
            flushIntervalMs: 600000, release: 'kiosk@2.0.0' {extra} }})"
    ))
    .unwrap()
}

#[wasm_bindgen_test]
async fn health_samples_carry_every_resource_kind_and_the_instance_id() {
    let _ = window().local_storage().unwrap().unwrap().clear();
    js_sys::eval(HEALTH_STUB).unwrap();
    let v = vigil::Vigil::start(health_options(", health: { intervalMs: 100 }")).unwrap();
    assert_eq!(
        js_count("intervals"),
        2.0,
        "the metrics export and the health sampler"
    );
    wait_until("a health export", || !health_exports().is_empty()).await;
    let export = health_exports().remove(0);
    let resource = string_attributes(&at(&export, "resourceMetrics.0.resource.attributes"));
    let instance = attribute(&resource, "service.instance.id").expect("service.instance.id");
    assert_eq!(instance.len(), 32);
    assert!(instance
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let stored = window()
        .local_storage()
        .unwrap()
        .unwrap()
        .get_item("vigil.instance")
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(instance.as_str()),
        "kept in localStorage"
    );
    assert_eq!(
        attribute(&resource, "service.version").as_deref(),
        Some("kiosk@2.0.0")
    );
    assert!(attribute(&resource, "vigil.export_id").is_some_and(|id| id.contains(".health.")));
    let metrics = js_sys::Array::from(&at(&export, "resourceMetrics.0.scopeMetrics.0.metrics"));
    let names: Vec<String> = metrics
        .iter()
        .map(|m| at(&m, "name").as_string().unwrap())
        .collect();
    let heap_known = !at(&js_sys::global(), "performance.memory").is_undefined();
    let mut expected = vec!["vigil.resources", "vigil.memory.wasm", "vigil.uptime"];
    if heap_known {
        expected.insert(1, "vigil.memory.js_heap");
    }
    assert_eq!(names, expected);
    // One `vigil.resources` point per key of resources(), with the live count.
    let points = js_sys::Array::from(&at(&metrics.get(0), "gauge.dataPoints"));
    let counts = js_resources();
    let keys: Vec<String> = js_sys::Object::keys(&counts)
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    let kinds: Vec<String> = points
        .iter()
        .map(|p| attribute(&string_attributes(&at(&p, "attributes")), "kind").unwrap())
        .collect();
    assert_eq!(kinds, keys);
    let intervals = points
        .iter()
        .find(|p| at(p, "attributes.0.value.stringValue") == "intervals")
        .unwrap();
    assert_eq!(at(&intervals, "asDouble"), 2);
    let wasm = at(
        &metrics.get(names.len() as u32 - 2),
        "gauge.dataPoints.0.asDouble",
    );
    assert!(wasm.as_f64().unwrap() >= 65536.0, "wasm memory in bytes");
    // A second start on the same page (localStorage kept): the same instance.
    v.dispose();
    assert_all_zero();
    js_sys::eval("window.healthBodies.length = 0").unwrap();
    let v = vigil::Vigil::start(health_options(", health: { intervalMs: 100 }")).unwrap();
    wait_until("a health export", || !health_exports().is_empty()).await;
    let export = health_exports().remove(0);
    let resource = string_attributes(&at(&export, "resourceMetrics.0.resource.attributes"));
    assert_eq!(
        attribute(&resource, "service.instance.id").as_deref(),
        Some(instance.as_str())
    );
    // disposeAll (what a final pagehide does) queues a last sample before the final flush.
    let before = health_exports().len();
    vigil::dispose_all();
    wait_until("the final sample", || health_exports().len() > before).await;
    assert!(v.stats().is_err(), "disposed");
    assert_all_zero();
    js_sys::eval("window.fetch = window.__realFetch; true").unwrap();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

#[wasm_bindgen_test]
fn health_is_optional_and_its_interval_is_checked_by_name() {
    let _ = window().local_storage().unwrap().unwrap().clear();
    let v = vigil::Vigil::start(vigil_options(", health: false")).unwrap();
    assert_eq!(js_count("intervals"), 1.0, "only the metrics export");
    v.dispose();
    assert_all_zero();
    for bad in ["{ intervalMs: 5 }", "{ intervalMs: '1000' }", "90000000"] {
        let err: js_sys::Error = vigil::Vigil::start(vigil_options(&format!(", health: {bad}")))
            .unwrap_err()
            .dyn_into()
            .unwrap();
        assert!(
            String::from(err.message()).starts_with("health"),
            "{bad}: {:?}",
            err.message()
        );
    }
    for (bad, message) in [
        (
            "90000000",
            "health: expected false or { intervalMs }, got a number",
        ),
        (
            "{ intervalMs: '1000' }",
            "health.intervalMs: expected a number of milliseconds from 100 to 86400000, got a string",
        ),
        (
            "{ intervalMs: NaN }",
            "health.intervalMs: expected a number of milliseconds from 100 to 86400000, got NaN",
        ),
    ] {
        let err: js_sys::Error = vigil::Vigil::start(vigil_options(&format!(", health: {bad}")))
            .unwrap_err()
            .dyn_into()
            .unwrap();
        assert_eq!(String::from(err.message()), message, "{bad}");
    }
    let err: js_sys::Error = vigil::Vigil::start(vigil_options(", health: { intervalMs: 99 }"))
        .unwrap_err()
        .dyn_into()
        .unwrap();
    assert!(String::from(err.message()).starts_with("health.intervalMs:"));
    assert_all_zero();
    let _ = window().local_storage().unwrap().unwrap().clear();
}

// ---------------------------------------------------------------------------------------------
// VoiceConnection. `window.fetch` is replaced by a stub (the package calls `window.fetch`
// dynamically): the session endpoint answers as told, and the realtime endpoint is a second
// `RTCPeerConnection` in the page that answers the offer, echoes the microphone and talks on the
// data channel. The real server is exercised by the end-to-end tests.
// ---------------------------------------------------------------------------------------------

const VOICE_STUB: &str = r#"
(() => {
  if (!window.__realFetch) window.__realFetch = window.fetch;
  const stub = window.voiceStub = { session: 'ok', realtime: 'peer', received: [], auth: null, contentType: null, remote: null };
  window.fetch = async (url, init) => {
    const u = String(url);
    if (u.endsWith('/stub/session')) {
      if (stub.session === 'refuse') return new Response('{"error":"not today"}', { status: 403 });
      if (stub.session === 'hang') return new Promise((_, reject) => init.signal.addEventListener('abort',
        () => reject(new DOMException('aborted', 'AbortError'))));
      return new Response(JSON.stringify({ client_secret: { value: 'ek_test', expires_at: 0 }, realtime_url: 'realtime' }));
    }
    if (u.endsWith('/stub/realtime')) {
      stub.auth = new Headers(init.headers).get('Authorization');
      stub.contentType = new Headers(init.headers).get('Content-Type');
      if (stub.realtime === 'refuse') return new Response('{"error":"key refused"}', { status: 401 });
      if (stub.realtime === 'garbage') return new Response('<html>nope</html>', { status: 201 });
      const pc = stub.remote = new RTCPeerConnection();
      pc.ondatachannel = (e) => {
        const ch = stub.channel = e.channel;
        stub.label = ch.label;
        ch.onopen = () => { ch.send('not json'); ch.send(JSON.stringify({ type: 'session.created' })); };
        ch.onmessage = (m) => {
          const ev = JSON.parse(m.data);
          stub.received.push(ev);
          ch.send(JSON.stringify({ type: ev.type === 'session.update' ? 'session.updated' : 'error' }));
        };
      };
      await pc.setRemoteDescription({ type: 'offer', sdp: init.body });
      for (const t of pc.getTransceivers()) {
        t.direction = 'sendrecv';
        await t.sender.replaceTrack(t.receiver.track); // echo
      }
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((done) => {
        if (pc.iceGatheringState === 'complete') return done();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
      });
      return new Response(pc.localDescription.sdp, { status: 201, headers: { 'Content-Type': 'application/sdp' } });
    }
    return window.__realFetch(url, init);
  };
  return stub;
})()
"#;

fn voice_stub(session: &str, realtime: &str) -> JsValue {
    let stub = js_sys::eval(VOICE_STUB).unwrap();
    js_sys::Reflect::set(&stub, &"session".into(), &session.into()).unwrap();
    js_sys::Reflect::set(&stub, &"realtime".into(), &realtime.into()).unwrap();
    stub
}

fn remove_voice_stub() {
    js_sys::eval(
        "if (window.voiceStub && window.voiceStub.remote) window.voiceStub.remote.close();
         if (window.__realFetch) window.fetch = window.__realFetch; true",
    )
    .unwrap();
}

fn voice(extra: &str) -> vigil::VoiceConnection {
    vigil::VoiceConnection::new(
        js_sys::eval(&format!("({{ sessionUrl: '/stub/session', {extra} }})")).unwrap(),
    )
    .unwrap()
}

type StateLog = (
    Rc<RefCell<Vec<String>>>,
    vigil::Subscription,
    Closure<dyn FnMut(JsValue)>,
);

/// Records every state; keep the returned closure alive for as long as states should arrive.
fn record_states(v: &vigil::VoiceConnection) -> StateLog {
    let states = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = Rc::clone(&states);
    let f = Closure::<dyn FnMut(JsValue)>::new(move |st: JsValue| {
        s.borrow_mut().push(st.as_string().unwrap())
    });
    let sub = v
        .on_state(f.as_ref().unchecked_ref::<js_sys::Function>().clone())
        .unwrap();
    (states, sub, f)
}

async fn connect_error(v: &vigil::VoiceConnection) -> (String, String) {
    let e = wasm_bindgen_futures::JsFuture::from(v.connect().unwrap())
        .await
        .expect_err("connect() rejects");
    let err: js_sys::Error = e.dyn_into().unwrap();
    let step = js_sys::Reflect::get(&err, &"step".into())
        .unwrap()
        .as_string()
        .unwrap();
    (String::from(err.message()), step)
}

#[wasm_bindgen_test]
fn voice_options_are_checked_by_name() {
    for (options, name) in [
        ("({ sessionUrl: 'ftp://x' })", "sessionUrl"),
        ("({ sessionUrl: 5 })", "sessionUrl"),
        ("({ dataChannelLabel: {} })", "dataChannelLabel"),
        ("({ audioElement: document.body })", "audioElement"),
        ("({ session: 'hi' })", "session"),
        ("({ audio: 'yes' })", "audio"),
        ("({ connectTimeoutMs: -1 })", "connectTimeoutMs"),
    ] {
        let err = vigil::VoiceConnection::new(js_sys::eval(options).unwrap()).unwrap_err();
        let err: js_sys::Error = err.dyn_into().unwrap();
        assert_eq!(err.name(), "TypeError", "{options}");
        let msg = String::from(err.message());
        assert!(msg.starts_with(&format!("{name}:")), "{options}: {msg}");
    }
    assert_all_zero();
    let v = vigil::VoiceConnection::new(JsValue::UNDEFINED).unwrap();
    assert_eq!(v.state(), "idle");
    assert_eq!(js_count("peerConnections"), 0.0, "nothing before connect()");
    assert!(!v
        .send_event(js_sys::eval("({ type: 'response.create' })").unwrap())
        .unwrap());
    // Symbol.dispose disposes.
    let js = JsValue::from(v);
    let dispose = js_sys::Reflect::get(&js_sys::global(), &"Symbol".into())
        .and_then(|s| js_sys::Reflect::get(&s, &"dispose".into()))
        .unwrap();
    let f: js_sys::Function = js_sys::Reflect::get(&js, &dispose)
        .unwrap()
        .unchecked_into();
    f.call0(&js).unwrap();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_refused_session_rejects_naming_the_step_and_leaves_nothing() {
    voice_stub("refuse", "peer");
    let v = voice("");
    let (states, _sub, _f) = record_states(&v);
    let (message, step) = connect_error(&v).await;
    assert_eq!(step, "session request");
    assert!(message.contains("at the session request step"), "{message}");
    assert!(message.contains("403"), "{message}");
    assert_eq!(v.state(), "failed");
    assert_eq!(*states.borrow(), ["connecting", "failed"]);
    assert_eq!(js_count("timeouts"), 0.0);
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_refused_key_rejects_at_the_exchange_and_stops_the_microphone() {
    let stub = voice_stub("ok", "refuse");
    let v = voice("");
    let (message, step) = connect_error(&v).await;
    assert_eq!(step, "SDP exchange", "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("used already, or expired"), "{message}");
    // The offer went to realtime_url resolved against sessionUrl, with the key and SDP type.
    assert_eq!(
        js_sys::Reflect::get(&stub, &"auth".into()).unwrap(),
        "Bearer ek_test"
    );
    assert_eq!(
        js_sys::Reflect::get(&stub, &"contentType".into()).unwrap(),
        "application/sdp"
    );
    assert_eq!(v.state(), "failed");
    assert_eq!(js_count("mediaTracks"), 0.0, "the microphone was stopped");
    assert_eq!(js_count("peerConnections"), 0.0);
    assert_eq!(js_count("dataChannels"), 0.0);
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_bad_answer_rejects_at_the_answer_step() {
    voice_stub("ok", "garbage");
    let v = voice("");
    let (message, step) = connect_error(&v).await;
    assert_eq!(step, "answer", "{message}");
    assert!(message.contains("not SDP"), "{message}");
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_connect_timeout_names_the_pending_step_and_aborts_the_request() {
    voice_stub("hang", "peer");
    let v = voice("connectTimeoutMs: 100");
    let (message, step) = connect_error(&v).await;
    assert_eq!(step, "session request");
    assert!(
        message.contains("timed out after connectTimeoutMs (100 ms)"),
        "{message}"
    );
    assert_eq!(v.state(), "failed");
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_disconnect_while_connecting_rejects_and_leaves_nothing() {
    voice_stub("hang", "peer");
    let v = voice("");
    let pending = v.connect().unwrap();
    assert_eq!(v.state(), "connecting");
    assert_eq!(js_count("timeouts"), 1.0, "the connect timeout");
    v.disconnect().unwrap();
    let message = rejection(pending).await;
    assert!(message.ends_with("disconnect() was called"), "{message}");
    assert_eq!(v.state(), "disconnected");
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        TimeoutFuture::new(25).await;
    }
    panic!("waited 5 s for {what}");
}

fn eval_bool(code: &str) -> bool {
    js_sys::eval(code).unwrap().is_truthy()
}

#[wasm_bindgen_test]
async fn voice_connects_to_a_loopback_peer_talks_and_releases_everything() {
    voice_stub("ok", "peer");
    let v = voice("session: { instructions: 'be brief' }, dataChannelLabel: 'oai-events'");
    let (states, _sub, _f) = record_states(&v);
    let events = Rc::new(RefCell::new(Vec::<String>::new()));
    let e = Rc::clone(&events);
    let all = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
        let t = js_sys::Reflect::get(&ev, &"type".into()).unwrap();
        e.borrow_mut().push(t.as_string().unwrap());
    });
    let _all = v
        .on(
            "*".into(),
            all.as_ref().unchecked_ref::<js_sys::Function>().clone(),
        )
        .unwrap();
    // A throwing subscriber is reported; the others still run.
    let _throws = v
        .on(
            "session.created".into(),
            js_sys::Function::new_no_args("throw new Error('subscriber bug')"),
        )
        .unwrap();
    let created = Rc::new(Cell::new(0));
    let c = Rc::clone(&created);
    let on_created = Closure::<dyn FnMut(JsValue)>::new(move |_| c.set(c.get() + 1));
    let _created = v
        .on(
            "session.created".into(),
            on_created
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap();

    wasm_bindgen_futures::JsFuture::from(v.connect().unwrap())
        .await
        .expect("connect() resolves");
    assert_eq!(v.state(), "connected");
    assert_eq!(js_count("peerConnections"), 1.0);
    assert_eq!(js_count("dataChannels"), 1.0);
    assert_eq!(js_count("mediaTracks"), 1.0);
    assert_eq!(js_count("timeouts"), 0.0, "the connect timeout is gone");
    // A second connect() resolves at once, no second peer connection.
    wasm_bindgen_futures::JsFuture::from(v.connect().unwrap())
        .await
        .unwrap();
    assert_eq!(js_count("peerConnections"), 1.0);

    wait_until("session.created", || created.get() == 1).await;
    wait_until("session.update at the peer", || {
        eval_bool("voiceStub.received.length >= 1")
    })
    .await;
    assert!(eval_bool(
        "voiceStub.label === 'oai-events' && voiceStub.received[0].type === 'session.update' \
         && voiceStub.received[0].session.type === 'realtime' \
         && voiceStub.received[0].session.instructions === 'be brief'"
    ));
    wait_until("session.updated", || {
        events.borrow().iter().any(|t| t == "session.updated")
    })
    .await;
    assert!(v
        .send_event(js_sys::eval("({ type: 'response.create' })").unwrap())
        .unwrap());
    wait_until("error for an unknown type", || {
        events.borrow().iter().any(|t| t == "error")
    })
    .await;
    assert_eq!(
        *events.borrow(),
        ["session.created", "session.updated", "error"]
    );

    // The echoed microphone arrives and plays in an <audio> the connection created.
    wait_until("the created <audio>", || {
        eval_bool("document.querySelectorAll('audio').length === 1 && !!document.querySelector('audio').srcObject")
    })
    .await;
    assert_eq!(js_count("elements"), 1.0);
    let stats = wasm_bindgen_futures::JsFuture::from(v.stats().unwrap())
        .await
        .unwrap();
    let n = |k: &str| js_sys::Reflect::get(&stats, &k.into()).unwrap();
    assert_eq!(n("invalidEvents"), 1, "the non-JSON message is counted");
    assert_eq!(n("eventsIn"), 3);
    assert_eq!(n("eventsOut"), 1);
    assert!(n("packetsSent").as_f64().is_some());

    v.disconnect().unwrap();
    assert_eq!(v.state(), "disconnected");
    assert!(!v
        .send_event(js_sys::eval("({ type: 'response.create' })").unwrap())
        .unwrap());
    assert!(eval_bool("document.querySelectorAll('audio').length === 0"));
    assert_eq!(
        *states.borrow(),
        ["connecting", "connected", "disconnected"]
    );
    for kind in [
        "peerConnections",
        "dataChannels",
        "mediaTracks",
        "elements",
        "timeouts",
    ] {
        assert_eq!(js_count(kind), 0.0, "{kind} after disconnect()");
    }
    v.dispose();
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_subscribers_may_disconnect_and_dispose_from_inside_a_callback() {
    voice_stub("ok", "peer");
    // Driven from JS, as a page would: the callback runs inside the data channel's own handler,
    // whose guard the disconnect drops.
    let v = JsValue::from(voice(""));
    js_sys::Reflect::set(&js_sys::global(), &"__voice".into(), &v).unwrap();
    let outcome = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(
        js_sys::eval(
            "(async () => {
                const v = window.__voice;
                const states = [];
                v.onState((s) => {
                    states.push(s);
                    if (s === 'disconnected') v.dispose(); // from inside a state callback
                });
                const ended = new Promise((done) => v.on('session.created', () => {
                    v.disconnect();
                    v.disconnect();
                    done(v.sendEvent({ type: 'x' }));
                }));
                await v.connect();
                const sent = await ended;
                v.dispose(); // idempotent
                delete window.__voice;
                return { sent, states, state: v.state };
            })()",
        )
        .unwrap(),
    ))
    .await
    .unwrap();
    let get = |k: &str| js_sys::Reflect::get(&outcome, &k.into()).unwrap();
    assert_eq!(
        get("sent"),
        false,
        "sendEvent after disconnect() is refused"
    );
    assert_eq!(get("state"), "disconnected");
    let states: Vec<String> = js_sys::Array::from(&get("states"))
        .iter()
        .map(|s| s.as_string().unwrap())
        .collect();
    assert_eq!(states, ["connecting", "connected", "disconnected"]);
    remove_voice_stub();
    assert_all_zero();
}

#[wasm_bindgen_test]
async fn voice_bfcache_pagehide_closes_the_call_and_a_final_pagehide_disposes() {
    voice_stub("ok", "peer");
    let v = voice("");
    wasm_bindgen_futures::JsFuture::from(v.connect().unwrap())
        .await
        .expect("connect() resolves");
    assert_eq!(js_count("peerConnections"), 1.0);
    // Into the back/forward cache: an open peer connection would keep the page out of it.
    page_transition("pagehide", true);
    assert_eq!(v.state(), "disconnected");
    for kind in ["peerConnections", "dataChannels", "mediaTracks", "elements"] {
        assert_eq!(js_count(kind), 0.0, "{kind} after a bfcache pagehide");
    }
    page_transition("pageshow", true);
    assert_eq!(v.state(), "disconnected", "a call is not resumed by itself");
    // The page may call again after it came back.
    wasm_bindgen_futures::JsFuture::from(v.connect().unwrap())
        .await
        .expect("connect() again resolves");
    assert_eq!(v.state(), "connected");
    page_transition("pagehide", false);
    assert_eq!(v.state(), "disconnected", "disposed");
    remove_voice_stub();
    assert_all_zero();
}

// --- Bodies the browser writes (transport::envelope, transport::otlp) ----------------------

fn utf8_len(s: &JsValue) -> f64 {
    js_sys::Function::new_with_args("s", "return new TextEncoder().encode(s).length")
        .call1(&JsValue::UNDEFINED, s)
        .unwrap()
        .as_f64()
        .unwrap()
}

#[wasm_bindgen_test]
fn envelopes_are_written_by_the_browser_with_utf8_lengths() {
    use vigil::transport::envelope;
    let message = "line one\nline \"two\" é 😀 \u{2028} \u{1}";
    let event = js_sys::Object::new();
    js_sys::Reflect::set(&event, &"message".into(), &message.into()).unwrap();
    js_sys::Reflect::set(&event, &"level".into(), &"error".into()).unwrap();
    let id = JsValue::from_str("9ec79c33ec9942ab8353589fcb2e04dc");
    let dsn = "http://dev@127.0.0.1:8080/1";
    let body = envelope::event(&id, dsn, "vigil.javascript", &event).expect("encoded");
    assert_eq!(
        body.bytes as f64,
        utf8_len(&body.text),
        "bytes are UTF-8 bytes"
    );
    let text = body.text.as_string().unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(
        lines.len(),
        4,
        "header, item header, payload, then a final newline: {text}"
    );
    assert_eq!(lines[3], "");
    let header = js_sys::JSON::parse(lines[0]).unwrap();
    assert_eq!(at(&header, "event_id"), id);
    assert_eq!(at(&header, "dsn").as_string().as_deref(), Some(dsn));
    assert_eq!(
        at(&header, "sdk.name").as_string().as_deref(),
        Some("vigil.javascript")
    );
    assert_eq!(
        at(&header, "sdk.version").as_string().as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let sent_at = at(&header, "sent_at").as_string().unwrap();
    assert!(
        sent_at.len() == 24 && sent_at.ends_with('Z') && sent_at.as_bytes()[10] == b'T',
        "{sent_at}"
    );
    let item = js_sys::JSON::parse(lines[1]).unwrap();
    assert_eq!(at(&item, "type").as_string().as_deref(), Some("event"));
    let payload = JsValue::from_str(lines[2]);
    assert_eq!(at(&item, "length").as_f64(), Some(utf8_len(&payload)));
    let back = js_sys::JSON::parse(lines[2]).unwrap();
    assert_eq!(at(&back, "message").as_string().as_deref(), Some(message));

    // What the browser cannot encode is refused, not sent half-written.
    js_sys::Reflect::set(&event, &"self".into(), &event).unwrap();
    assert!(
        envelope::event(&id, dsn, "vigil.javascript", &event).is_none(),
        "a cycle"
    );
}

#[wasm_bindgen_test]
fn otlp_bodies_are_written_by_the_browser() {
    use vigil::transport::otlp::{Encoder, Points, Resource};
    let now_ns = (1_795_305_600_123.457_f64 * 1e6) as u64;
    let mut points = Encoder::default();
    points.attr("rating", "good");
    points.point(
        "web_vitals.lcp",
        "ms",
        "Largest Contentful Paint",
        1234.5,
        now_ns,
    );
    points.point("checkout \"time\" é", "1", "", 3.0, 1);
    points.point("checkout \"time\" é", "1", "", f64::NAN, 2);
    assert_eq!(points.points(), 3);
    let body = points.finish(&Resource {
        service_name: "kiosk@1.4.0",
        environment: "production",
        page_url: "http://k/lobby?a=1",
        export_id: "view.1",
        extra: &[("service.instance.id", "0123456789abcdef0123456789abcdef")],
    });
    assert_eq!(body.bytes as f64, utf8_len(&body.text));
    let req = js_sys::JSON::parse(&body.text.as_string().unwrap()).unwrap();
    let rm = at(&req, "resourceMetrics.0");
    let attr = |n: u32, field: &str| at(&rm, &format!("resource.attributes.{n}.{field}"));
    assert_eq!(attr(0, "key").as_string().as_deref(), Some("service.name"));
    assert_eq!(
        attr(0, "value.stringValue").as_string().as_deref(),
        Some("kiosk@1.4.0")
    );
    assert_eq!(
        attr(3, "key").as_string().as_deref(),
        Some("vigil.export_id")
    );
    assert_eq!(
        attr(4, "key").as_string().as_deref(),
        Some("service.instance.id")
    );
    assert!(attr(5, "key").is_undefined());
    let sm = at(&rm, "scopeMetrics.0");
    assert_eq!(at(&sm, "scope.name").as_string().as_deref(), Some("vigil"));
    assert_eq!(
        at(&sm, "scope.version").as_string().as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let point = at(&sm, "metrics.0.gauge.dataPoints.0");
    assert_eq!(at(&point, "asDouble").as_f64(), Some(1234.5));
    assert_eq!(
        at(&point, "timeUnixNano").as_string(),
        Some(now_ns.to_string()),
        "nanoseconds exactly, as a decimal string"
    );
    assert_eq!(
        at(&point, "attributes.0.value.stringValue")
            .as_string()
            .as_deref(),
        Some("good")
    );
    assert_eq!(
        at(&sm, "metrics.1.name").as_string().as_deref(),
        Some("checkout \"time\" é")
    );
    assert_eq!(
        at(&sm, "metrics.1.gauge.dataPoints.1.asDouble").as_f64(),
        Some(0.0),
        "NaN written as 0"
    );
    assert!(
        at(&sm, "metrics.2").is_undefined(),
        "points of one name, one gauge"
    );
    assert_eq!(
        at(&sm, "metrics.1.gauge.dataPoints.0.attributes.length").as_f64(),
        Some(0.0),
        "an attribute belongs to the one point after it"
    );
}

/// One health export as the server receives it, and its size (the figure in SIZE-NOTES.md).
#[wasm_bindgen_test]
fn a_health_export_stays_small() {
    use vigil::runtime::health::{gauges, Sample};
    use vigil::transport::otlp::{Encoder, Resource};
    let sample = Sample {
        counts: counts(),
        js_heap: Some(12_345_678.0),
        wasm_bytes: 1_179_648.0,
        uptime_s: 86_399.123,
        now_ms: 1_795_305_600_000.0,
    };
    let mut points = Encoder::default();
    gauges(&sample, &mut points);
    let body = points.finish(&Resource {
        service_name: "kiosk@1.4.0",
        environment: "production",
        page_url: "https://kiosk.example/lobby",
        export_id: "0123456789abcdef0123456789abcdef.health.1440",
        extra: &[
            ("service.instance.id", "fedcba9876543210fedcba9876543210"),
            ("service.version", "kiosk@1.4.0"),
        ],
    });
    let req = js_sys::JSON::parse(&body.text.as_string().unwrap()).unwrap();
    let metrics = at(&req, "resourceMetrics.0.scopeMetrics.0.metrics");
    assert_eq!(at(&metrics, "length").as_f64(), Some(4.0));
    assert!(body.bytes < 3000, "{} bytes", body.bytes);
}
