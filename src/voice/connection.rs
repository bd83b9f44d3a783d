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

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::machine::{ConnectError, Counters, Effect, Event, Machine, State, Step};
use crate::runtime::guards::{DataChannel, MediaTrack, OwnedElement, PeerConnection, Timeout};
use crate::runtime::manager::Service;
use crate::runtime::report;

pub use super::machine::Config;

/// The most subscriptions (event and state) one connection holds; more are refused.
pub const MAX_SUBSCRIPTIONS: usize = 1024;
/// The most `connect()` promises waiting at once; more are rejected at once.
pub const MAX_PENDING_CONNECTS: usize = 64;
/// At most this many characters of an error response body go into an error message.
const MAX_BODY_IN_MESSAGE: usize = 200;

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
    subs: Vec<Sub>,
    next_sub: u64,
    pending: Vec<(js_sys::Function, js_sys::Function)>,
}

#[derive(Debug)]
struct Sub {
    id: u64,
    /// `Some(type)` (or `"*"`) for events, `None` for state changes.
    kind: Option<String>,
    handler: js_sys::Function,
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
                let _ = media.pause();
                media.set_src_object(None);
            }
            drop(audio); // a created element leaves the page here
        }
        drop(self.timeout.take());
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a VoiceConnection holds at most {MAX_SUBSCRIPTIONS} subscriptions")]
pub struct TooManySubscriptions;

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
        let subs = std::mem::take(&mut self.shared.borrow_mut().subs);
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
            subs: Vec::new(),
            next_sub: 1,
            pending: Vec::new(),
        })),
    }
}

/// `connect()`: resolves when the data channel is open.
pub fn connect(shared: &Shared) -> js_sys::Promise {
    let mut slot = None;
    let promise = js_sys::Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
    if let Some((resolve, reject)) = slot {
        let full = {
            let mut i = shared.borrow_mut();
            if i.pending.len() >= MAX_PENDING_CONNECTS {
                true
            } else {
                i.pending.push((resolve, reject.clone()));
                false
            }
        };
        if full {
            let e = js_sys::Error::new("too many connect() calls are waiting");
            let _ = reject.call1(&JsValue::UNDEFINED, &e);
            return promise;
        }
    }
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
    Ok(channel.is_some_and(|c| c.send_with_str(&String::from(text)).is_ok()))
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
    let mut i = shared.borrow_mut();
    if i.subs.len() >= MAX_SUBSCRIPTIONS {
        return Err(TooManySubscriptions);
    }
    let id = i.next_sub;
    i.next_sub += 1;
    i.subs.push(Sub { id, kind, handler });
    Ok(id)
}

/// Ends a subscription; false when it was gone already.
pub fn unsubscribe(shared: &Shared, id: u64) -> bool {
    let removed = {
        let mut i = shared.borrow_mut();
        let before = i.subs.len();
        i.subs.retain(|s| s.id != id);
        before != i.subs.len()
    };
    removed
}

/// True while subscription `id` is held.
pub fn has_subscription(shared: &Shared, id: u64) -> bool {
    shared.borrow().subs.iter().any(|s| s.id == id)
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
    let (pc, c) = {
        let i = shared.borrow();
        (
            i.attempt.peer.as_ref().map(|p| p.raw().clone()),
            i.machine.counters(),
        )
    };
    wasm_bindgen_futures::future_to_promise(async move {
        let mut sums = [0.0_f64; 4]; // packetsSent, packetsReceived, bytesSent, bytesReceived
        let mut rtt = JsValue::NULL;
        if let Some(pc) = pc {
            let report = JsFuture::from(pc.get_stats()).await?;
            let values: js_sys::Function = get(&report, "values").dyn_into()?;
            let iter = values.call0(&report)?;
            if let Some(iter) = js_sys::try_iter(&iter)? {
                for stat in iter {
                    let stat = stat?;
                    let kind = get(&stat, "type").as_string().unwrap_or_default();
                    let audio = get(&stat, "kind").as_string().as_deref() == Some("audio");
                    let num = |k: &str| get(&stat, k).as_f64().unwrap_or(0.0);
                    match kind.as_str() {
                        "outbound-rtp" if audio => {
                            sums[0] += num("packetsSent");
                            sums[2] += num("bytesSent");
                        }
                        "inbound-rtp" if audio => {
                            sums[1] += num("packetsReceived");
                            sums[3] += num("bytesReceived");
                        }
                        "candidate-pair" if get(&stat, "nominated").is_truthy() => {
                            if let Some(s) = get(&stat, "currentRoundTripTime").as_f64() {
                                rtt = JsValue::from(s * 1000.0);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let out = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&out, &k.into(), v).map(drop);
        for (k, v) in [
            "packetsSent",
            "packetsReceived",
            "bytesSent",
            "bytesReceived",
        ]
        .iter()
        .zip(sums)
        {
            set(k, &v.into())?;
        }
        set("roundTripTimeMs", &rtt)?;
        set("eventsIn", &(c.events_in as f64).into())?;
        set("eventsOut", &(c.events_out as f64).into())?;
        set("invalidEvents", &(c.invalid as f64).into())?;
        Ok(out.into())
    })
}

fn get(target: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `name: message` of a thrown value, for error messages.
fn describe(e: &JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    let name = get(e, "name").as_string().unwrap_or_default();
    let message = get(e, "message").as_string().unwrap_or_default();
    match (name.is_empty(), message.is_empty()) {
        (true, true) => "an unknown error".to_owned(),
        (false, true) => name,
        (true, false) => message,
        (false, false) => name + ": " + &message,
    }
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
            let handlers: Vec<js_sys::Function> = shared
                .borrow()
                .subs
                .iter()
                .filter(|s| s.kind.is_none())
                .map(|s| s.handler.clone())
                .collect();
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
                if let Some(pc) = i.attempt.peer.as_ref() {
                    for t in &tracks {
                        t.raw().set_enabled(!muted);
                        pc.raw().add_track_0(t.raw(), &stream);
                    }
                }
                i.attempt.microphone.extend(tracks);
            }
        }
        Effect::ReceiveOnly => {
            let i = shared.borrow();
            if let Some(pc) = i.attempt.peer.as_ref() {
                let init = web_sys::RtcRtpTransceiverInit::new();
                init.set_direction(web_sys::RtcRtpTransceiverDirection::Recvonly);
                pc.raw().add_transceiver_with_str_and_init("audio", &init);
            }
        }
        Effect::CreateOffer(g) => create_offer(shared, g),
        Effect::PostOffer {
            generation,
            url,
            key,
            sdp,
        } => post_offer(shared, generation, url, key, sdp),
        Effect::SetAnswer { generation, sdp } => set_answer(shared, generation, sdp),
        Effect::PlayRemote => play_remote(shared),
        Effect::SendSessionUpdate => send_session_update(shared),
        Effect::Dispatch => dispatch(shared),
        Effect::Release => {
            let attempt = std::mem::take(&mut shared.borrow_mut().attempt);
            drop(attempt); // outside the borrow
        }
        Effect::Resolve => {
            let pending = std::mem::take(&mut shared.borrow_mut().pending);
            for (resolve, _) in pending {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
        Effect::Reject(reason) => reject(shared, &reason),
    }
}

fn reject(shared: &Shared, reason: &ConnectError) {
    let pending = std::mem::take(&mut shared.borrow_mut().pending);
    if pending.is_empty() {
        return;
    }
    let error = js_sys::Error::new(&reason.to_string());
    let _ = js_sys::Reflect::set(&error, &"step".into(), &reason.step.as_str().into());
    for (_, reject) in pending {
        let _ = reject.call1(&JsValue::UNDEFINED, &error);
    }
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

/// `fetch(url, {method: "POST", body, headers, signal})`; the status and the body text.
async fn post(
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
    signal: Option<&web_sys::AbortSignal>,
) -> Result<(u16, String), String> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    init.set_signal(signal);
    let h = web_sys::Headers::new().map_err(|e| describe(&e))?;
    for (k, v) in headers {
        h.set(k, v).map_err(|e| describe(&e))?;
    }
    init.set_headers(&h);
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| describe(&e))?
        .unchecked_into();
    let text = match response.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(|e| describe(&e))?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(describe(&e)),
    };
    Ok((response.status(), text))
}

/// "POST {url} answered {status}: {body…}"
fn refused(url: &str, status: u16, body: &str) -> String {
    let mut s = String::from("POST ");
    s.push_str(url);
    s.push_str(" answered ");
    s.push_str(&status.to_string());
    let body = body.trim();
    if !body.is_empty() {
        s.push_str(": ");
        s.extend(body.chars().take(MAX_BODY_IN_MESSAGE));
    }
    s
}

fn request_session(shared: &Shared, g: u64) {
    let url = shared.borrow().settings.session_url.clone();
    let signal = abort_signal(shared);
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let result = session(&url, signal.as_ref()).await;
        let Some(s) = weak.upgrade() else { return };
        feed(
            &s,
            match result {
                Ok((key, url)) => Event::SessionReady {
                    generation: g,
                    key,
                    url,
                },
                Err(detail) => Event::StepFailed(g, Step::Session, detail),
            },
        );
    });
}

/// `POST sessionUrl` → `(client_secret.value, realtime_url resolved against sessionUrl)`.
async fn session(
    url: &str,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<(String, String), String> {
    let (status, text) = post(url, "{}", &[("Content-Type", "application/json")], signal).await?;
    if !(200..300).contains(&status) {
        return Err(refused(url, status, &text));
    }
    let answer =
        js_sys::JSON::parse(&text).map_err(|_| "the session answer is not JSON".to_owned())?;
    let secret = get(&answer, "client_secret");
    let key = get(&secret, "value")
        .as_string()
        .ok_or("the session answer has no client_secret.value")?;
    let realtime = get(&answer, "realtime_url")
        .as_string()
        .ok_or("the session answer has no realtime_url")?;
    let resolved = web_sys::Url::new_with_base(&realtime, url)
        .map_err(|_| "the session answer's realtime_url is not a URL".to_owned())?;
    Ok((key, resolved.href()))
}

fn open_peer(shared: &Shared, g: u64) {
    let label = shared.borrow().settings.label.clone();
    let pc = match web_sys::RtcPeerConnection::new() {
        Ok(pc) => pc,
        Err(e) => return feed(shared, Event::StepFailed(g, Step::Peer, describe(&e))),
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
            let failed = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::RtcPeerConnection>().ok())
                .is_some_and(|pc| pc.connection_state() == web_sys::RtcPeerConnectionState::Failed);
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
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let result = microphone(&audio).await;
        let Some(s) = weak.upgrade() else { return }; // the tracks (if any) stop as they drop
        match result {
            Ok((stream, tracks)) => {
                feed_with(
                    &s,
                    Incoming::Microphone(stream, tracks),
                    Event::MicrophoneReady(g),
                );
            }
            Err(detail) => feed(&s, Event::StepFailed(g, Step::Microphone, detail)),
        }
    });
}

/// `getUserMedia({audio})`; every track is in a guard as soon as it exists.
async fn microphone(audio: &JsValue) -> Result<(web_sys::MediaStream, Vec<MediaTrack>), String> {
    let devices = web_sys::window()
        .ok_or("no window")?
        .navigator()
        .media_devices()
        .map_err(|_| {
            "navigator.mediaDevices is not available (not a secure context?)".to_owned()
        })?;
    let constraints = web_sys::MediaStreamConstraints::new();
    constraints.set_audio(audio);
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| describe(&e))?;
    let stream: web_sys::MediaStream = JsFuture::from(promise)
        .await
        .map_err(|e| describe(&e))?
        .unchecked_into();
    let tracks = stream
        .get_tracks()
        .iter()
        // `Clone::clone` is not needed: each JsValue is ours; `MediaStreamTrack::clone` would
        // make a new track.
        .map(|t| MediaTrack::new(t.unchecked_into()))
        .collect();
    Ok((stream, tracks))
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
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let result = async {
            let offer = JsFuture::from(pc.create_offer()).await?;
            let sdp = get(&offer, "sdp").as_string().unwrap_or_default();
            JsFuture::from(pc.set_local_description(offer.unchecked_ref())).await?;
            Ok::<_, JsValue>(sdp)
        }
        .await;
        let Some(s) = weak.upgrade() else { return };
        feed(
            &s,
            match result {
                Ok(sdp) => Event::OfferReady(g, sdp),
                Err(e) => Event::StepFailed(g, Step::Offer, describe(&e)),
            },
        );
    });
}

fn post_offer(shared: &Shared, g: u64, url: String, key: String, sdp: String) {
    let signal = abort_signal(shared);
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let bearer = String::from("Bearer ") + &key;
        let result = post(
            &url,
            &sdp,
            &[
                ("Content-Type", "application/sdp"),
                ("Authorization", &bearer),
            ],
            signal.as_ref(),
        )
        .await;
        let Some(s) = weak.upgrade() else { return };
        feed(
            &s,
            match result {
                Ok((status, body)) if (200..300).contains(&status) => Event::AnswerReady(g, body),
                Ok((status, body)) => {
                    let mut detail = refused(&url, status, &body);
                    if status == 401 {
                        detail.push_str(" (the key was refused: used already, or expired)");
                    }
                    Event::StepFailed(g, Step::Exchange, detail)
                }
                Err(detail) => Event::StepFailed(g, Step::Exchange, detail),
            },
        );
    });
}

fn set_answer(shared: &Shared, g: u64, sdp: String) {
    let Some(pc) = peer_of(shared) else { return };
    let weak = Rc::downgrade(shared);
    wasm_bindgen_futures::spawn_local(async move {
        let answer = web_sys::RtcSessionDescriptionInit::new(web_sys::RtcSdpType::Answer);
        answer.set_sdp(&sdp);
        let result = JsFuture::from(pc.set_remote_description(&answer)).await;
        let Some(s) = weak.upgrade() else { return };
        feed(
            &s,
            match result {
                Ok(_) => Event::AnswerSet(g),
                Err(e) => Event::StepFailed(g, Step::Answer, describe(&e)),
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
    let media = {
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
        let media = i.attempt.audio.as_ref().and_then(Audio::media);
        if let Some(m) = &media {
            m.set_src_object(Some(&stream));
        }
        media
    };
    if let Some(m) = media {
        if let Ok(p) = m.play() {
            // Autoplay may be refused until a user gesture; the element still holds the stream.
            wasm_bindgen_futures::spawn_local(async move {
                let _ = JsFuture::from(p).await;
            });
        }
    }
}

/// `<audio autoplay>` appended to `<body>`, in a guard that removes it.
fn create_audio_element() -> Option<OwnedElement> {
    let document = web_sys::window()?.document()?;
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
    let session = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&session, &"type".into(), &"realtime".into());
    if let Some(given) = given {
        js_sys::Object::assign(&session, &given);
    }
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &"type".into(), &"session.update".into());
    let _ = js_sys::Reflect::set(&message, &"session".into(), &session);
    match js_sys::JSON::stringify(&message) {
        Ok(text) => {
            if let Err(e) = channel.send_with_str(&String::from(text)) {
                report::report("VoiceConnection could not send session.update", &e);
            }
        }
        Err(e) => report::report("VoiceConnection: session cannot be serialized as JSON", &e),
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
        let handlers: Vec<js_sys::Function> = i
            .subs
            .iter()
            .filter(|s| s.kind.as_deref().is_some_and(|k| k == kind || k == "*"))
            .map(|s| s.handler.clone())
            .collect();
        (message, handlers)
    };
    for h in handlers {
        if let Err(e) = h.call1(&JsValue::UNDEFINED, &message) {
            report::report("a VoiceConnection subscriber threw", &e);
        }
    }
}
