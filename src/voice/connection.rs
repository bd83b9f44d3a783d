//! The browser shell of the voice connection: it performs the step each [`Effect`] names, holds
//! the resulting resources in guards, and feeds results back to the [`Machine`]. It decides
//! nothing itself.
//!
//! A resource that arrives with an event (microphone tracks, a remote stream) waits in
//! `incoming` while the machine handles the event; the machine's `KeepMicrophone` / `PlayRemote`
//! moves it into the attempt, and whatever is left in `incoming` afterwards is dropped (tracks
//! stopped) at once. So a microphone granted after a timeout or a `disconnect()` is never kept.
//!
//! Closures given to the browser hold a `Weak` reference to the connection, never an `Rc`: the
//! guards live inside it, so an `Rc` there would be a cycle that never drops.

use crate::prelude::*;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::machine::{ConnectError, Counters, Effect, Event, Machine, State, Step};
use crate::options::Bag;
use crate::runtime::guards::{
    when_settled, DataChannel, MediaTrack, OwnedElement, PeerConnection, Timeout,
};
use crate::runtime::manager::Service;
use crate::runtime::report;
use crate::runtime::subscribers::{Subscribers, TooManySubscriptions};
use crate::runtime::waiters::Waiters;

pub use super::machine::Config;

// Conversions with the browser's promise APIs, kept in JS (`src/js/voice.js`): one function per
// step instead of a Rust future and a web-sys import per call. Each rejects with a string: the
// step's detail. Decisions stay in the machine; resources that come back (tracks) go into guards.
#[wasm_bindgen(module = "/src/js/voice.js")]
extern "C" {
    #[wasm_bindgen(js_name = vigilVoiceSession)]
    fn js_session(url: &str, signal: Option<&web_sys::AbortSignal>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vigilVoiceMicrophone)]
    fn js_microphone(audio: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vigilVoiceAddTracks)]
    fn js_add_tracks(pc: &web_sys::RtcPeerConnection, stream: &web_sys::MediaStream);
    #[wasm_bindgen(js_name = vigilVoiceReceiveOnly)]
    fn js_receive_only(pc: &web_sys::RtcPeerConnection);
    #[wasm_bindgen(js_name = vigilVoiceOffer)]
    fn js_offer(pc: &web_sys::RtcPeerConnection) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vigilVoiceExchange)]
    fn js_exchange(
        url: &str,
        key: &str,
        sdp: &str,
        signal: Option<&web_sys::AbortSignal>,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vigilVoiceAnswer)]
    fn js_answer(pc: &web_sys::RtcPeerConnection, sdp: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vigilVoicePlay)]
    fn js_play(element: &web_sys::HtmlMediaElement, stream: &web_sys::MediaStream);
    #[wasm_bindgen(js_name = vigilVoiceStop)]
    fn js_stop(element: &web_sys::HtmlMediaElement);
    #[wasm_bindgen(js_name = vigilVoiceUpdate)]
    fn js_session_update(session: &JsValue) -> String;
    #[wasm_bindgen(js_name = vigilVoiceStats)]
    fn js_stats(pc: Option<&web_sys::RtcPeerConnection>, counters: &[f64]) -> js_sys::Promise;
}

/// A shared handle on one connection's state.
pub type Shared = Rc<RefCell<Inner>>;

/// What `new VoiceConnection(options)` was given, checked.
#[derive(Debug)]
pub struct Settings {
    /// Absolute URL of the session endpoint.
    pub session_url: String,
    /// The page's `<audio>`, when it gave one.
    pub audio_element: Option<web_sys::HtmlMediaElement>,
    /// The data channel label.
    pub label: String,
    /// Merged into `session.update` (`{type: "realtime", ...session}`), when given.
    pub session: Option<js_sys::Object>,
    /// The `audio` constraint for `getUserMedia` (`true` or an object).
    pub audio: JsValue,
    /// The machine's settings.
    pub config: Config,
}

/// Everything one `VoiceConnection` holds. Dropping it releases every guard.
#[derive(Debug)]
pub struct Inner {
    machine: Machine,
    settings: Settings,
    attempt: Attempt,
    incoming: Option<Incoming>,
    /// The parsed message waiting for the machine's `Dispatch`.
    message: Option<JsValue>,
    muted: bool,
    subs: Subscribers,
    pending: Waiters,
}

/// A resource that came with an event, waiting for the machine to keep it.
#[derive(Debug)]
enum Incoming {
    Microphone(web_sys::MediaStream, Vec<MediaTrack>),
    Remote(web_sys::MediaStream),
}

#[derive(Debug)]
enum Audio {
    /// The page's element: paused and emptied on release, left in the page.
    Given(web_sys::HtmlMediaElement),
    /// Ours: paused, emptied and removed on release.
    Created(OwnedElement),
}

impl Audio {
    fn media(&self) -> Option<web_sys::HtmlMediaElement> {
        match self {
            Self::Given(e) => Some(e.clone()),
            Self::Created(e) => e.raw().dyn_ref::<web_sys::HtmlMediaElement>().cloned(),
        }
    }
}

/// Everything one `connect()` attempt holds; dropping it releases all of it, in order.
#[derive(Debug, Default)]
struct Attempt {
    channel: Option<DataChannel>,
    peer: Option<PeerConnection>,
    microphone: Vec<MediaTrack>,
    audio: Option<Audio>,
    timeout: Option<Timeout>,
    /// Aborts the requests in flight.
    abort: Option<web_sys::AbortController>,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // The channel first (its handlers detached), then the peer connection, then the tracks.
        drop(self.channel.take());
        drop(self.peer.take());
        self.microphone.clear();
        if let Some(audio) = self.audio.take() {
            if let Some(media) = audio.media() {
                js_stop(&media);
            }
            drop(audio); // a created element leaves the page here
        }
        drop(self.timeout.take());
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }
}

/// The connection as the cleanup manager owns it: dropping it releases everything.
#[derive(Debug)]
pub struct VoiceService {
    shared: Shared,
}

impl Service for VoiceService {
    /// Into the back/forward cache: an open peer connection would keep the page out of it.
    fn suspend(&self) {
        feed(&self.shared, Event::Disconnect);
    }
}

impl Drop for VoiceService {
    fn drop(&mut self) {
        // No page callbacks while disposing: subscribers go first. Then the machine releases the
        // attempt and rejects a `connect()` under way.
        let subs = self.shared.borrow_mut().subs.take();
        drop(subs);
        feed(&self.shared, Event::Dispose);
    }
}

impl VoiceService {
    /// A weak handle for the JS wrapper (which must not keep the connection alive).
    pub fn downgrade(&self) -> Weak<RefCell<Inner>> {
        Rc::downgrade(&self.shared)
    }
}

/// Creates the connection (idle: nothing is held until `connect()`).
pub fn create(settings: Settings) -> VoiceService {
    let machine = Machine::new(settings.config.clone());
    VoiceService {
        shared: Rc::new(RefCell::new(Inner {
            machine,
            settings,
            attempt: Attempt::default(),
            incoming: None,
            message: None,
            muted: false,
            subs: Subscribers::new("VoiceConnection"),
            pending: Waiters::default(),
        })),
    }
}

/// `connect()`: resolves when the data channel is open.
pub fn connect(shared: &Shared) -> js_sys::Promise {
    let promise = shared.borrow_mut().pending.wait("connect()");
    feed(shared, Event::Connect);
    promise
}

/// `disconnect()`.
pub fn disconnect(shared: &Shared) {
    feed(shared, Event::Disconnect);
}

/// `sendEvent(event)`: false when the channel is not open.
pub fn send_event(shared: &Shared, event: &JsValue) -> Result<bool, JsValue> {
    if !event.is_object() {
        return Err(
            js_sys::TypeError::new("event: expected an object with a string `type`").into(),
        );
    }
    let text = js_sys::JSON::stringify(event)
        .map_err(|_| js_sys::TypeError::new("event: cannot be serialized as JSON"))?;
    let channel = {
        let mut i = shared.borrow_mut();
        if !i.machine.send() {
            return Ok(false);
        }
        i.attempt.channel.as_ref().map(|c| c.raw().clone())
    };
    // Counted as sent only when the channel took it (it throws when closing, when its send
    // buffer is full, or for a message over its size limit).
    let took = channel.is_some_and(|c| c.send_with_str(&String::from(text)).is_ok());
    shared.borrow_mut().machine.taken(took);
    Ok(took)
}

/// `setMuted(muted)`: `enabled = !muted` on every microphone track (and on later ones).
pub fn set_muted(shared: &Shared, muted: bool) {
    let mut i = shared.borrow_mut();
    i.muted = muted;
    for t in &i.attempt.microphone {
        t.raw().set_enabled(!muted);
    }
}

/// Adds an event (`Some(type)`) or state (`None`) subscription; returns its id.
pub fn subscribe(
    shared: &Shared,
    kind: Option<String>,
    handler: js_sys::Function,
) -> Result<u64, TooManySubscriptions> {
    shared.borrow_mut().subs.add(kind, handler)
}

/// Ends a subscription; false when it was gone already.
pub fn unsubscribe(shared: &Shared, id: u64) -> bool {
    let removed = shared.borrow_mut().subs.remove(id);
    removed
}

/// True while subscription `id` is held.
pub fn has_subscription(shared: &Shared, id: u64) -> bool {
    shared.borrow().subs.contains(id)
}

/// The current state.
pub fn state(shared: &Shared) -> State {
    shared.borrow().machine.state()
}

/// Event counters.
pub fn counters(shared: &Shared) -> Counters {
    shared.borrow().machine.counters()
}

/// `stats()`: `{ packetsSent, packetsReceived, bytesSent, bytesReceived, roundTripTimeMs }` from
/// `getStats()` (audio `outbound-rtp` / `inbound-rtp`, the nominated candidate pair), plus the
/// event counters. All zero (and `roundTripTimeMs: null`) without a peer connection.
pub fn stats(shared: &Shared) -> js_sys::Promise {
    let i = shared.borrow();
    let c = i.machine.counters();
    js_stats(
        i.attempt.peer.as_ref().map(PeerConnection::raw),
        &[c.events_in as f64, c.events_out as f64, c.invalid as f64],
    )
}

fn get(target: &JsValue, key: &str) -> JsValue {
    crate::runtime::read(target, key)
}

/// Feeds one event to the machine and applies the effects. No borrow is held while page code
/// (subscribers, promise callbacks) runs, so that code may call back into the connection.
fn feed(shared: &Shared, event: Event) {
    let effects = shared.borrow_mut().machine.handle(event);
    for effect in effects {
        apply(shared, effect);
    }
}

/// Feeds an event that carries a resource: kept only if the machine says so, else dropped now.
fn feed_with(shared: &Shared, incoming: Incoming, event: Event) {
    let old = shared.borrow_mut().incoming.replace(incoming);
    drop(old);
    feed(shared, event);
    let left = shared.borrow_mut().incoming.take();
    drop(left); // tracks not kept are stopped here
}

fn apply(shared: &Shared, effect: Effect) {
    match effect {
        Effect::State(state) => {
            let handlers = shared.borrow().subs.for_state();
            let name = JsValue::from_str(state.as_str());
            for h in handlers {
                if let Err(e) = h.call1(&JsValue::UNDEFINED, &name) {
                    report::report("a VoiceConnection onState handler threw", &e);
                }
            }
        }
        Effect::ArmTimeout { generation, ms } => {
            let weak = Rc::downgrade(shared);
            let t = Timeout::new(ms, move || {
                if let Some(s) = weak.upgrade() {
                    feed(&s, Event::TimedOut(generation));
                }
            });
            let old = shared.borrow_mut().attempt.timeout.replace(t);
            drop(old);
        }
        Effect::DisarmTimeout => {
            let old = shared.borrow_mut().attempt.timeout.take();
            drop(old);
        }
        Effect::RequestSession(g) => request_session(shared, g),
        Effect::OpenPeer(g) => open_peer(shared, g),
        Effect::RequestMicrophone(g) => request_microphone(shared, g),
        Effect::KeepMicrophone => {
            let mut i = shared.borrow_mut();
            if let Some(Incoming::Microphone(stream, tracks)) = i.incoming.take() {
                let muted = i.muted;
                for t in &tracks {
                    t.raw().set_enabled(!muted);
                }
                if let Some(pc) = i.attempt.peer.as_ref() {
                    js_add_tracks(pc.raw(), &stream);
                }
                i.attempt.microphone.extend(tracks);
            }
        }
        Effect::ReceiveOnly => {
            if let Some(pc) = peer_of(shared) {
                js_receive_only(&pc);
            }
        }
        Effect::CreateOffer(g) => create_offer(shared, g),
        Effect::PostOffer {
            generation,
            url,
            key,
            sdp,
        } => post_offer(shared, generation, &url, &key, &sdp),
        Effect::SetAnswer { generation, sdp } => set_answer(shared, generation, &sdp),
        Effect::PlayRemote => play_remote(shared),
        Effect::SendSessionUpdate => send_session_update(shared),
        Effect::Dispatch => dispatch(shared),
        Effect::Release => {
            let attempt = core::mem::take(&mut shared.borrow_mut().attempt);
            drop(attempt); // outside the borrow
        }
        Effect::Resolve => {
            let pending = shared.borrow_mut().pending.take();
            pending.resolve();
        }
        Effect::Reject(reason) => reject(shared, &reason),
    }
}

fn reject(shared: &Shared, reason: &ConnectError) {
    let pending = shared.borrow_mut().pending.take();
    if pending.is_empty() {
        return;
    }
    let error = js_sys::Error::new(&reason.message());
    crate::runtime::set_own(&error, "step", &reason.step.as_str().into());
    pending.reject(&error);
}

/// An abort signal for the attempt's requests (one controller per attempt).
fn abort_signal(shared: &Shared) -> Option<web_sys::AbortSignal> {
    let mut i = shared.borrow_mut();
    if i.attempt.abort.is_none() {
        i.attempt.abort = web_sys::AbortController::new().ok();
    }
    i.attempt
        .abort
        .as_ref()
        .map(web_sys::AbortController::signal)
}

/// What to do with the outcome of one step's promise (a failure is the step's detail text).
type Done = fn(&Shared, u64, Result<JsValue, String>);

/// Waits for a step's promise (`[true, value]` or `[false, detail]`: the JS steps never reject),
/// then hands the outcome to `done` if the connection still exists.
fn run(shared: &Shared, g: u64, promise: js_sys::Promise, done: Done) {
    let weak = Rc::downgrade(shared);
    when_settled(&promise, move |outcome| {
        let outcome: js_sys::Array = outcome.unchecked_into(); // the steps answer `[ok, value]`
        let result = if outcome.get(0).is_truthy() {
            Ok(outcome.get(1))
        } else {
            Err(outcome.get(1).as_string().unwrap_or_default())
        };
        match weak.upgrade() {
            Some(s) => done(&s, g, result),
            // Disposed meanwhile: a microphone granted now is stopped at once.
            None => drop(result.ok().map(|v| tracks_of(&v))),
        }
    });
}

/// Every track of a `MediaStream` in a guard (none for another value).
fn tracks_of(value: &JsValue) -> Vec<MediaTrack> {
    value
        .dyn_ref::<web_sys::MediaStream>()
        .map(|stream| {
            stream
                .get_tracks()
                .iter()
                .map(|t| MediaTrack::new(t.unchecked_into()))
                .collect()
        })
        .unwrap_or_default()
}

fn failed(step: Step) -> impl Fn(u64, String) -> Event {
    move |g, detail| Event::StepFailed(g, step, detail)
}

fn request_session(shared: &Shared, g: u64) {
    let url = shared.borrow().settings.session_url.clone();
    let signal = abort_signal(shared);
    run(shared, g, js_session(&url, signal.as_ref()), |s, g, r| {
        let event = match r {
            Ok(pair) => {
                let pair: js_sys::Array = pair.unchecked_into(); // `[key, url]`
                Event::SessionReady {
                    generation: g,
                    key: pair.get(0).as_string().unwrap_or_default(),
                    url: pair.get(1).as_string().unwrap_or_default(),
                }
            }
            Err(detail) => failed(Step::Session)(g, detail),
        };
        feed(s, event);
    });
}

fn open_peer(shared: &Shared, g: u64) {
    let label = shared.borrow().settings.label.clone();
    let Ok(pc) = web_sys::RtcPeerConnection::new() else {
        let detail = "new RTCPeerConnection() threw".to_owned();
        return feed(shared, Event::StepFailed(g, Step::Peer, detail));
    };
    let mut peer = PeerConnection::new(pc);
    let mut channel = DataChannel::new(peer.raw().create_data_channel(&label));
    let weak = Rc::downgrade(shared);
    let on = |f: fn(&Shared, u64, &web_sys::Event)| {
        let weak = Weak::clone(&weak);
        move |event: &web_sys::Event| {
            if let Some(s) = weak.upgrade() {
                f(&s, g, event);
            }
        }
    };
    peer.on("track", on(on_track));
    peer.on(
        "connectionstatechange",
        on(|s, g, e| {
            // The state as a string: web-sys's enum conversion brings its own panic path.
            let failed = e
                .target()
                .and_then(|t| js_sys::Reflect::get(&t, &"connectionState".into()).ok())
                .is_some_and(|state| state == "failed");
            if failed {
                feed(s, Event::PeerFailed(g));
            }
        }),
    );
    channel.on("open", on(|s, g, _| feed(s, Event::ChannelOpen(g))));
    channel.on("close", on(|s, g, _| feed(s, Event::ChannelClosed(g))));
    channel.on("message", on(on_message));
    {
        let mut i = shared.borrow_mut();
        i.attempt.peer = Some(peer);
        i.attempt.channel = Some(channel);
    }
    feed(shared, Event::PeerReady(g));
}

fn request_microphone(shared: &Shared, g: u64) {
    let audio = shared.borrow().settings.audio.clone();
    run(shared, g, js_microphone(&audio), |s, g, r| match r {
        Ok(stream) => {
            // In guards before anything else runs: if the machine does not keep them, they stop.
            let tracks = tracks_of(&stream);
            let incoming = Incoming::Microphone(stream.unchecked_into(), tracks);
            feed_with(s, incoming, Event::MicrophoneReady(g));
        }
        Err(detail) => feed(s, failed(Step::Microphone)(g, detail)),
    });
}

fn peer_of(shared: &Shared) -> Option<web_sys::RtcPeerConnection> {
    shared
        .borrow()
        .attempt
        .peer
        .as_ref()
        .map(|p| Clone::clone(p.raw()))
}

fn create_offer(shared: &Shared, g: u64) {
    let Some(pc) = peer_of(shared) else { return };
    run(shared, g, js_offer(&pc), |s, g, r| {
        feed(
            s,
            match r {
                Ok(sdp) => Event::OfferReady(g, sdp.as_string().unwrap_or_default()),
                Err(detail) => failed(Step::Offer)(g, detail),
            },
        );
    });
}

fn post_offer(shared: &Shared, g: u64, url: &str, key: &str, sdp: &str) {
    let signal = abort_signal(shared);
    run(
        shared,
        g,
        js_exchange(url, key, sdp, signal.as_ref()),
        |s, g, r| {
            feed(
                s,
                match r {
                    Ok(body) => Event::AnswerReady(g, body.as_string().unwrap_or_default()),
                    Err(detail) => failed(Step::Exchange)(g, detail),
                },
            );
        },
    );
}

fn set_answer(shared: &Shared, g: u64, sdp: &str) {
    let Some(pc) = peer_of(shared) else { return };
    run(shared, g, js_answer(&pc, sdp), |s, g, r| {
        feed(
            s,
            match r {
                Ok(_) => Event::AnswerSet(g),
                Err(detail) => failed(Step::Answer)(g, detail),
            },
        );
    });
}

fn on_track(shared: &Shared, g: u64, event: &web_sys::Event) {
    let Some(event) = event.dyn_ref::<web_sys::RtcTrackEvent>() else {
        return;
    };
    // `streams[0]`; a peer that sends no stream id (no `msid`) gives none: wrap the track.
    let stream = event
        .streams()
        .get(0)
        .dyn_into::<web_sys::MediaStream>()
        .ok()
        .or_else(|| {
            let tracks = js_sys::Array::of1(&event.track());
            web_sys::MediaStream::new_with_tracks(&tracks).ok()
        });
    if let Some(stream) = stream {
        feed_with(shared, Incoming::Remote(stream), Event::RemoteTrack(g));
    }
}

fn play_remote(shared: &Shared) {
    let (media, stream) = {
        let mut i = shared.borrow_mut();
        let Some(Incoming::Remote(stream)) = i.incoming.take() else {
            return;
        };
        if i.attempt.audio.is_none() {
            i.attempt.audio = match i.settings.audio_element.clone() {
                Some(given) => Some(Audio::Given(given)),
                None => create_audio_element().map(Audio::Created),
            };
        }
        (i.attempt.audio.as_ref().and_then(Audio::media), stream)
    };
    if let Some(m) = media {
        js_play(&m, &stream);
    }
}

/// `<audio autoplay>` appended to `<body>`, in a guard that removes it.
fn create_audio_element() -> Option<OwnedElement> {
    let document = crate::runtime::window()?.document()?;
    let element = document.create_element("audio").ok()?;
    let guard = OwnedElement::new(element);
    let _ = guard.raw().set_attribute("autoplay", "");
    document.body()?.append_child(guard.raw()).ok()?;
    Some(guard)
}

fn send_session_update(shared: &Shared) {
    let (channel, given) = {
        let i = shared.borrow();
        (
            i.attempt.channel.as_ref().map(|c| c.raw().clone()),
            i.settings.session.clone(),
        )
    };
    let Some(channel) = channel else { return };
    let text = js_session_update(given.as_ref().map_or(&JsValue::UNDEFINED, |g| g.as_ref()));
    if let Err(e) = channel.send_with_str(&text) {
        report::report("VoiceConnection could not send session.update", &e);
    }
}

fn on_message(shared: &Shared, g: u64, event: &web_sys::Event) {
    let parsed = event
        .dyn_ref::<web_sys::MessageEvent>()
        .and_then(|e| e.data().as_string())
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .filter(|v| v.is_object() && get(v, "type").is_string());
    let json = parsed.is_some();
    shared.borrow_mut().message = parsed;
    feed(
        shared,
        Event::Message {
            generation: g,
            json,
        },
    );
    shared.borrow_mut().message = None;
}

fn dispatch(shared: &Shared) {
    let (message, handlers) = {
        let i = shared.borrow();
        let Some(message) = i.message.clone() else {
            return;
        };
        let kind = get(&message, "type").as_string().unwrap_or_default();
        let handlers = i.subs.for_message(&kind);
        (message, handlers)
    };
    for h in handlers {
        if let Err(e) = h.call1(&JsValue::UNDEFINED, &message) {
            report::report("a VoiceConnection subscriber threw", &e);
        }
    }
}

#[wasm_bindgen(module = "/src/js/options.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = vigilVoiceOptions)]
    fn read_options(options: &JsValue) -> Result<js_sys::Array, JsValue>;
}

/// Reads and checks `new VoiceConnection(options)` (in `src/js/options.js`); errors are
/// `TypeError`s that name the option.
pub fn parse_options(options: &JsValue) -> Result<Settings, JsValue> {
    let o = Bag(read_options(options)?);
    let element = o.value(1);
    let session = o.value(3);
    let audio = o.value(4);
    Ok(Settings {
        session_url: o.text(0).unwrap_or_default(),
        audio_element: (!element.is_undefined()).then(|| element.unchecked_into()),
        label: o.text(2).unwrap_or_default(),
        session: (!session.is_undefined()).then(|| session.unchecked_into()),
        config: Config {
            connect_timeout_ms: o.millis(5),
            microphone: audio.as_bool() != Some(false),
        },
        audio,
    })
}
