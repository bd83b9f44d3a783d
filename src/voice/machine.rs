//! The voice connection state machine, sans IO: events in, effects out.
//!
//! `connect()` is a chain of asynchronous steps (session request, peer connection, microphone,
//! offer, SDP exchange, answer, data channel open). The shell (`connection.rs`) performs each step
//! the effects ask for and feeds back what happened; this file decides what comes next, which step
//! a failure belongs to, when to give up, and when everything must be released. Every attempt has
//! a generation; results of an older attempt (a microphone granted after a timeout, an answer after
//! `disconnect()`) are ignored, and resources they carry are never kept, so no order of events can
//! leave a peer connection, a track or an element alive after a failure or a disconnect (a
//! randomized test checks it).

use crate::prelude::*;
use core::fmt;

/// The connection state, as `onState` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, `connect()` not called yet.
    Idle,
    /// `connect()` is running its steps.
    Connecting,
    /// The data channel is open.
    Connected,
    /// `disconnect()`, the remote side closed the channel, or the page left: everything released.
    Disconnected,
    /// A step failed or the connection broke: everything released.
    Failed,
}

impl State {
    /// The name pages see.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
        }
    }
}

/// One step of `connect()`; a failure names the step it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `POST sessionUrl` for the short-lived key and the realtime URL.
    Session,
    /// `new RTCPeerConnection()` and `createDataChannel`.
    Peer,
    /// `getUserMedia` and `addTrack`.
    Microphone,
    /// `createOffer` and `setLocalDescription`.
    Offer,
    /// `POST` of the offer SDP to the realtime URL.
    Exchange,
    /// Checking the answer SDP and `setRemoteDescription`.
    Answer,
    /// Waiting for the data channel to open.
    Channel,
    /// The ICE connection failed.
    Ice,
}

impl Step {
    /// The step's name in error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session request",
            Self::Peer => "peer connection",
            Self::Microphone => "microphone",
            Self::Offer => "offer",
            Self::Exchange => "SDP exchange",
            Self::Answer => "answer",
            Self::Channel => "data channel",
            Self::Ice => "ICE",
        }
    }

    /// Every step, in the order `connect()` runs them (ICE can fail at any point after the offer).
    pub const ALL: [Step; 8] = [
        Self::Session,
        Self::Peer,
        Self::Microphone,
        Self::Offer,
        Self::Exchange,
        Self::Answer,
        Self::Channel,
        Self::Ice,
    ];
}

/// Why `connect()` did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The step itself failed; the text says how (an HTTP status, a browser error).
    Failed(String),
    /// `connectTimeoutMs` passed while this step was running.
    TimedOut(u32),
    /// `disconnect()` (or the page leaving) while connecting.
    Disconnected,
    /// `dispose()` while connecting.
    Disposed,
}

/// The error `connect()` rejects with: which step, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConnectError {
    /// The step that was running.
    pub step: Step,
    /// What happened.
    pub cause: Cause,
}

impl ConnectError {
    /// The same text as `Display`, built without `core::fmt`.
    pub fn message(&self) -> String {
        let mut out = crate::text::concat(&[
            "VoiceConnection.connect failed at the ",
            self.step.as_str(),
            " step: ",
        ]);
        match &self.cause {
            Cause::Failed(detail) => out.push_str(detail),
            Cause::TimedOut(ms) => {
                out.push_str("timed out after connectTimeoutMs (");
                crate::text::push_uint(&mut out, (*ms).into());
                out.push_str(" ms)");
            }
            Cause::Disconnected => out.push_str("disconnect() was called"),
            Cause::Disposed => out.push_str("the VoiceConnection was disposed"),
        }
        out
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VoiceConnection.connect failed at the {} step: ",
            self.step.as_str()
        )?;
        match &self.cause {
            Cause::Failed(detail) => f.write_str(detail),
            Cause::TimedOut(ms) => write!(f, "timed out after connectTimeoutMs ({ms} ms)"),
            Cause::Disconnected => f.write_str("disconnect() was called"),
            Cause::Disposed => f.write_str("the VoiceConnection was disposed"),
        }
    }
}

/// The machine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `connect()` gives up after this.
    pub connect_timeout_ms: u32,
    /// Ask for a microphone (`audio` is not `false`); without one the call only receives.
    pub microphone: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 15_000,
            microphone: true,
        }
    }
}

/// What the shell must do, in order. Effects that start a step carry the attempt's generation,
/// which the shell hands back with the step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The state changed; tell `onState` subscribers.
    State(State),
    /// Arm the connect timeout of `generation` (replacing any armed one).
    ArmTimeout {
        /// The attempt.
        generation: u64,
        /// Delay.
        ms: u32,
    },
    /// Cancel the connect timeout.
    DisarmTimeout,
    /// `POST sessionUrl`; answer with [`Event::SessionReady`] or [`Event::StepFailed`].
    RequestSession(u64),
    /// Create the peer connection and the data channel (with their handlers); answer with
    /// [`Event::PeerReady`] or [`Event::StepFailed`].
    OpenPeer(u64),
    /// `getUserMedia`; answer with [`Event::MicrophoneReady`] or [`Event::StepFailed`].
    RequestMicrophone(u64),
    /// Keep the microphone tracks that came with [`Event::MicrophoneReady`] and add them to the
    /// peer connection. Without this effect the shell stops them at once.
    KeepMicrophone,
    /// No microphone: add a receive-only audio transceiver.
    ReceiveOnly,
    /// `createOffer` + `setLocalDescription`; answer with [`Event::OfferReady`].
    CreateOffer(u64),
    /// `POST` the offer; answer with [`Event::AnswerReady`].
    PostOffer {
        /// The attempt.
        generation: u64,
        /// The realtime URL (absolute).
        url: String,
        /// The short-lived key, sent as `Authorization: Bearer`.
        key: String,
        /// The offer SDP.
        sdp: String,
    },
    /// `setRemoteDescription({type: "answer", sdp})`; answer with [`Event::AnswerSet`].
    SetAnswer {
        /// The attempt.
        generation: u64,
        /// The answer SDP.
        sdp: String,
    },
    /// Keep the remote stream that came with [`Event::RemoteTrack`] and play it.
    PlayRemote,
    /// Send `{type: "session.update", session}` on the open channel.
    SendSessionUpdate,
    /// Hand the message that came with [`Event::Message`] to the subscribers.
    Dispatch,
    /// Release everything the attempt holds: channel and peer connection (handlers detached),
    /// microphone tracks, the audio element, the timeout, requests in flight.
    Release,
    /// Resolve every pending `connect()`.
    Resolve,
    /// Reject every pending `connect()`.
    Reject(ConnectError),
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `connect()`.
    Connect,
    /// The session answer of `generation`.
    SessionReady {
        /// The attempt.
        generation: u64,
        /// `client_secret.value`.
        key: String,
        /// `realtime_url`, resolved to an absolute URL.
        url: String,
    },
    /// The peer connection and data channel of `generation` exist.
    PeerReady(u64),
    /// The microphone of `generation` was granted; its tracks wait in the shell.
    MicrophoneReady(u64),
    /// The local description of `generation` is set to this offer.
    OfferReady(u64, String),
    /// The realtime server answered `generation` with this body.
    AnswerReady(u64, String),
    /// The remote description of `generation` is set.
    AnswerSet(u64),
    /// A step of `generation` failed.
    StepFailed(u64, Step, String),
    /// A remote audio track arrived on `generation`; its stream waits in the shell.
    RemoteTrack(u64),
    /// The data channel of `generation` opened.
    ChannelOpen(u64),
    /// The data channel of `generation` closed.
    ChannelClosed(u64),
    /// The peer connection of `generation` failed (ICE).
    PeerFailed(u64),
    /// A data channel message on `generation`; `json` when it parsed as a JSON object with a
    /// string `type`.
    Message {
        /// The attempt.
        generation: u64,
        /// Parsed as an event.
        json: bool,
    },
    /// The connect timeout of `generation` fired.
    TimedOut(u64),
    /// `disconnect()`, or `pagehide` into the back/forward cache.
    Disconnect,
    /// `dispose()`.
    Dispose,
}

/// Counters for the JS side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Data channel messages dispatched to subscribers.
    pub events_in: u64,
    /// Data channel messages that were not JSON events (counted and ignored).
    pub invalid: u64,
    /// `sendEvent` calls that were sent.
    pub events_out: u64,
    /// `sendEvent` calls refused because the connection was not open.
    pub refused: u64,
    /// `connect()` attempts started.
    pub attempts: u64,
}

/// The voice connection state machine.
#[derive(Debug)]
pub struct Machine {
    config: Config,
    state: State,
    generation: u64,
    /// The step `connect()` is waiting for (meaningful while connecting).
    step: Step,
    /// The current attempt may hold resources (from `Connect` until `Release`).
    holding: bool,
    /// The shell was asked to create the peer connection of the current attempt.
    peer: bool,
    /// The realtime URL and key between the session answer and the offer.
    pending_post: Option<(String, String)>,
    counters: Counters,
}

impl Machine {
    /// A machine in `Idle`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: State::Idle,
            generation: 0,
            step: Step::Session,
            holding: false,
            peer: false,
            pending_post: None,
            counters: Counters::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The step `connect()` is at (the last one reached, once connected or failed).
    pub fn step(&self) -> Step {
        self.step
    }

    /// True while the attempt may hold browser resources (the shell holds them).
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// `sendEvent`: true when the connection is open (the shell then hands the event to the
    /// channel and tells [`Machine::taken`] whether it took it), false (refused) otherwise.
    pub fn send(&mut self) -> bool {
        let open = self.state == State::Connected;
        if !open {
            self.counters.refused += 1;
        }
        open
    }

    /// The channel took the event (counted as sent) or threw (closing, a full send buffer, a
    /// message over its size limit: counted as refused).
    pub fn taken(&mut self, took: bool) {
        if took {
            self.counters.events_out += 1;
        } else {
            self.counters.refused += 1;
        }
    }

    fn current(&self, generation: u64) -> bool {
        self.holding && generation == self.generation
    }

    /// An event of the current attempt's peer connection or data channel.
    fn of_peer(&self, generation: u64) -> bool {
        self.current(generation) && self.peer
    }

    /// The current attempt is at `step`.
    fn at(&self, generation: u64, step: Step) -> bool {
        self.current(generation) && self.state == State::Connecting && self.step == step
    }

    /// Feeds one event; returns the effects, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Connect => match self.state {
                State::Connecting => {} // joins the attempt under way
                State::Connected => fx.push(Effect::Resolve),
                State::Idle | State::Disconnected | State::Failed => {
                    self.generation += 1;
                    self.holding = true;
                    self.step = Step::Session;
                    self.counters.attempts += 1;
                    self.set_state(&mut fx, State::Connecting);
                    fx.push(Effect::ArmTimeout {
                        generation: self.generation,
                        ms: self.config.connect_timeout_ms,
                    });
                    fx.push(Effect::RequestSession(self.generation));
                }
            },
            Event::SessionReady {
                generation,
                key,
                url,
            } if self.at(generation, Step::Session) => {
                if key.is_empty() {
                    self.fail(
                        &mut fx,
                        Cause::Failed("the session answer has an empty client_secret.value".into()),
                    );
                } else {
                    self.pending_post = Some((url, key));
                    self.step = Step::Peer;
                    self.peer = true;
                    fx.push(Effect::OpenPeer(generation));
                }
            }
            Event::PeerReady(g) if self.at(g, Step::Peer) => {
                if self.config.microphone {
                    self.step = Step::Microphone;
                    fx.push(Effect::RequestMicrophone(g));
                } else {
                    self.step = Step::Offer;
                    fx.push(Effect::ReceiveOnly);
                    fx.push(Effect::CreateOffer(g));
                }
            }
            Event::MicrophoneReady(g) if self.at(g, Step::Microphone) => {
                self.step = Step::Offer;
                fx.push(Effect::KeepMicrophone);
                fx.push(Effect::CreateOffer(g));
            }
            Event::OfferReady(g, sdp) if self.at(g, Step::Offer) => {
                self.step = Step::Exchange;
                let (url, key) = self.pending_post.take().unwrap_or_default();
                fx.push(Effect::PostOffer {
                    generation: g,
                    url,
                    key,
                    sdp,
                });
            }
            Event::AnswerReady(g, sdp) if self.at(g, Step::Exchange) => {
                self.step = Step::Answer;
                if looks_like_sdp(&sdp) {
                    fx.push(Effect::SetAnswer { generation: g, sdp });
                } else {
                    self.fail(
                        &mut fx,
                        Cause::Failed("the realtime server's answer is not SDP".into()),
                    );
                }
            }
            Event::AnswerSet(g) if self.at(g, Step::Answer) => self.step = Step::Channel,
            Event::StepFailed(g, step, detail)
                if self.current(g) && self.state == State::Connecting =>
            {
                self.step = step;
                self.fail(&mut fx, Cause::Failed(detail));
            }
            Event::RemoteTrack(g) if self.of_peer(g) => fx.push(Effect::PlayRemote),
            Event::ChannelOpen(g) if self.of_peer(g) && self.state == State::Connecting => {
                self.step = Step::Channel;
                fx.push(Effect::DisarmTimeout);
                self.set_state(&mut fx, State::Connected);
                fx.push(Effect::SendSessionUpdate);
                fx.push(Effect::Resolve);
            }
            Event::ChannelClosed(g) if self.of_peer(g) => {
                if self.state == State::Connecting {
                    self.step = Step::Channel;
                    self.fail(
                        &mut fx,
                        Cause::Failed("the data channel closed before it opened".into()),
                    );
                } else {
                    self.release(&mut fx, State::Disconnected);
                }
            }
            Event::PeerFailed(g) if self.of_peer(g) => {
                if self.state == State::Connecting {
                    self.step = Step::Ice;
                    self.fail(
                        &mut fx,
                        Cause::Failed(
                            "the peer connection failed (no ICE path to the server)".into(),
                        ),
                    );
                } else {
                    self.release(&mut fx, State::Failed);
                }
            }
            Event::Message { generation, json }
                if self.of_peer(generation) && self.state == State::Connected =>
            {
                if json {
                    self.counters.events_in += 1;
                    fx.push(Effect::Dispatch);
                } else {
                    self.counters.invalid += 1;
                }
            }
            Event::TimedOut(g) if self.current(g) && self.state == State::Connecting => {
                let ms = self.config.connect_timeout_ms;
                self.fail(&mut fx, Cause::TimedOut(ms));
            }
            Event::Disconnect => self.end(&mut fx, Cause::Disconnected),
            Event::Dispose => self.end(&mut fx, Cause::Disposed),
            // Results of an attempt that is over, or of a step that is not the current one.
            Event::SessionReady { .. }
            | Event::PeerReady(_)
            | Event::MicrophoneReady(_)
            | Event::OfferReady(..)
            | Event::AnswerReady(..)
            | Event::AnswerSet(_)
            | Event::StepFailed(..)
            | Event::RemoteTrack(_)
            | Event::ChannelOpen(_)
            | Event::ChannelClosed(_)
            | Event::PeerFailed(_)
            | Event::Message { .. }
            | Event::TimedOut(_) => {}
        }
        fx
    }

    fn set_state(&mut self, fx: &mut Vec<Effect>, state: State) {
        if self.state != state {
            self.state = state;
            fx.push(Effect::State(state));
        }
    }

    fn release(&mut self, fx: &mut Vec<Effect>, state: State) {
        if self.holding {
            self.holding = false;
            self.peer = false;
            self.pending_post = None;
            fx.push(Effect::Release);
        }
        self.set_state(fx, state);
    }

    /// The current attempt failed at `self.step`: release, `failed`, reject.
    fn fail(&mut self, fx: &mut Vec<Effect>, cause: Cause) {
        self.release(fx, State::Failed);
        fx.push(Effect::Reject(ConnectError {
            step: self.step,
            cause,
        }));
    }

    /// `disconnect()` / `dispose()`: release, `disconnected`, and reject a `connect()` under way.
    fn end(&mut self, fx: &mut Vec<Effect>, cause: Cause) {
        let connecting = self.state == State::Connecting;
        self.release(fx, State::Disconnected);
        if connecting {
            fx.push(Effect::Reject(ConnectError {
                step: self.step,
                cause,
            }));
        }
    }
}

/// An SDP body starts with its version line.
fn looks_like_sdp(body: &str) -> bool {
    body.trim_start().starts_with("v=0")
}

#[cfg(test)]
mod tests {
    #[test]
    fn connect_error_messages_are_the_display() {
        for cause in [
            Cause::Failed("HTTP 401".into()),
            Cause::TimedOut(15_000),
            Cause::Disconnected,
            Cause::Disposed,
        ] {
            let e = ConnectError {
                step: Step::Offer,
                cause,
            };
            assert_eq!(e.message(), e.to_string());
        }
    }

    use super::*;

    const URL: &str = "http://127.0.0.1/voice/realtime";
    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n";

    fn session(generation: u64) -> Event {
        Event::SessionReady {
            generation,
            key: "ek_1".into(),
            url: URL.into(),
        }
    }

    fn rejection(fx: &[Effect]) -> Option<&ConnectError> {
        fx.iter().find_map(|e| match e {
            Effect::Reject(r) => Some(r),
            _ => None,
        })
    }

    /// Runs the happy path up to the open channel; returns the effects of every step.
    fn connected(m: &mut Machine) -> Vec<Vec<Effect>> {
        let g = m.generation + 1;
        vec![
            m.handle(Event::Connect),
            m.handle(session(g)),
            m.handle(Event::PeerReady(g)),
            m.handle(Event::MicrophoneReady(g)),
            m.handle(Event::OfferReady(g, "v=0 offer".into())),
            m.handle(Event::AnswerReady(g, SDP.into())),
            m.handle(Event::AnswerSet(g)),
            m.handle(Event::RemoteTrack(g)),
            m.handle(Event::ChannelOpen(g)),
        ]
    }

    #[test]
    fn connect_runs_the_steps_in_order_and_resolves_on_open() {
        let mut m = Machine::new(Config::default());
        let fx = connected(&mut m);
        assert_eq!(
            fx[0],
            [
                Effect::State(State::Connecting),
                Effect::ArmTimeout {
                    generation: 1,
                    ms: 15_000
                },
                Effect::RequestSession(1)
            ]
        );
        assert_eq!(fx[1], [Effect::OpenPeer(1)]);
        assert_eq!(fx[2], [Effect::RequestMicrophone(1)]);
        assert_eq!(fx[3], [Effect::KeepMicrophone, Effect::CreateOffer(1)]);
        assert_eq!(
            fx[4],
            [Effect::PostOffer {
                generation: 1,
                url: URL.into(),
                key: "ek_1".into(),
                sdp: "v=0 offer".into()
            }]
        );
        assert_eq!(
            fx[5],
            [Effect::SetAnswer {
                generation: 1,
                sdp: SDP.into()
            }]
        );
        assert!(fx[6].is_empty());
        assert_eq!(fx[7], [Effect::PlayRemote]);
        assert_eq!(
            fx[8],
            [
                Effect::DisarmTimeout,
                Effect::State(State::Connected),
                Effect::SendSessionUpdate,
                Effect::Resolve
            ]
        );
        assert_eq!(m.state(), State::Connected);
        assert!(m.holding());
        // A second connect() while connected resolves at once; no second attempt.
        assert_eq!(m.handle(Event::Connect), [Effect::Resolve]);
        assert_eq!(m.counters().attempts, 1);
    }

    #[test]
    fn without_a_microphone_the_call_only_receives() {
        let mut m = Machine::new(Config {
            microphone: false,
            ..Config::default()
        });
        m.handle(Event::Connect);
        m.handle(session(1));
        assert_eq!(
            m.handle(Event::PeerReady(1)),
            [Effect::ReceiveOnly, Effect::CreateOffer(1)]
        );
    }

    #[test]
    fn each_failure_names_its_step_releases_and_fails() {
        for (i, &step) in Step::ALL.iter().enumerate() {
            let mut m = Machine::new(Config::default());
            m.handle(Event::Connect);
            // Walk the happy path up to the step under test, then fail there.
            let path = [
                session(1),
                Event::PeerReady(1),
                Event::MicrophoneReady(1),
                Event::OfferReady(1, "v=0".into()),
                Event::AnswerReady(1, SDP.into()),
                Event::AnswerSet(1),
            ];
            for e in path.into_iter().take(i.min(6)) {
                let fx = m.handle(e);
                assert!(rejection(&fx).is_none(), "{step:?}: {fx:?}");
            }
            let fx = m.handle(Event::StepFailed(1, step, "boom".into()));
            let r = rejection(&fx).expect("rejected");
            assert_eq!(r.step, step);
            let message = r.to_string();
            assert!(
                message.contains(&format!("at the {} step", step.as_str())),
                "{message}"
            );
            assert!(message.ends_with("boom"), "{message}");
            assert_eq!(fx[0], Effect::Release, "released first: {fx:?}");
            assert_eq!(m.state(), State::Failed);
            assert!(!m.holding());
        }
    }

    #[test]
    fn the_failures_the_browser_reports_name_their_step() {
        // Bad answer.
        let mut m = Machine::new(Config::default());
        m.handle(Event::Connect);
        m.handle(session(1));
        m.handle(Event::PeerReady(1));
        m.handle(Event::MicrophoneReady(1));
        m.handle(Event::OfferReady(1, "v=0".into()));
        let fx = m.handle(Event::AnswerReady(1, "<html>oops</html>".into()));
        let r = rejection(&fx).unwrap();
        assert_eq!(r.step, Step::Answer);
        assert!(r.to_string().contains("not SDP"), "{r}");

        // ICE failure while waiting for the channel.
        let mut m = Machine::new(Config::default());
        let mut fx = connected(&mut m);
        fx.pop();
        let fx = m.handle(Event::PeerFailed(2)); // not this attempt: ignored
        assert!(fx.is_empty());
        let mut m = Machine::new(Config::default());
        for e in [
            Event::Connect,
            session(1),
            Event::PeerReady(1),
            Event::MicrophoneReady(1),
            Event::OfferReady(1, "v=0".into()),
            Event::AnswerReady(1, SDP.into()),
            Event::AnswerSet(1),
        ] {
            m.handle(e);
        }
        let fx = m.handle(Event::PeerFailed(1));
        let r = rejection(&fx).unwrap();
        assert_eq!(r.step, Step::Ice);
        assert!(r.to_string().contains("at the ICE step"), "{r}");

        // Timeout at the microphone (a prompt nobody answers).
        let mut m = Machine::new(Config {
            connect_timeout_ms: 500,
            ..Config::default()
        });
        m.handle(Event::Connect);
        m.handle(session(1));
        m.handle(Event::PeerReady(1));
        let fx = m.handle(Event::TimedOut(1));
        let r = rejection(&fx).unwrap();
        assert_eq!(
            r.to_string(),
            "VoiceConnection.connect failed at the microphone step: timed out after connectTimeoutMs (500 ms)"
        );
        // The microphone granted late is not kept.
        assert!(m.handle(Event::MicrophoneReady(1)).is_empty());
        // Empty key.
        let mut m = Machine::new(Config::default());
        m.handle(Event::Connect);
        let fx = m.handle(Event::SessionReady {
            generation: 1,
            key: String::new(),
            url: URL.into(),
        });
        assert_eq!(rejection(&fx).unwrap().step, Step::Session);
    }

    #[test]
    fn disconnect_while_connecting_rejects_and_stale_results_are_dropped() {
        let mut m = Machine::new(Config::default());
        m.handle(Event::Connect);
        m.handle(session(1));
        let fx = m.handle(Event::Disconnect);
        assert_eq!(fx[0], Effect::Release);
        assert_eq!(fx[1], Effect::State(State::Disconnected));
        let r = rejection(&fx).unwrap();
        assert_eq!(r.step, Step::Peer);
        assert!(r.to_string().ends_with("disconnect() was called"), "{r}");
        for late in [
            Event::PeerReady(1),
            Event::RemoteTrack(1),
            Event::ChannelOpen(1),
            Event::TimedOut(1),
        ] {
            assert!(m.handle(late).is_empty());
        }
        // A new connect() is a new attempt; the old one's results still do nothing.
        m.handle(Event::Connect);
        assert!(m.handle(session(1)).is_empty());
        assert_eq!(m.handle(session(2)), [Effect::OpenPeer(2)]);
        let fx = m.handle(Event::Dispose);
        assert!(rejection(&fx)
            .unwrap()
            .to_string()
            .ends_with("the VoiceConnection was disposed"));
    }

    #[test]
    fn once_connected_a_closed_channel_disconnects_and_a_failed_peer_fails() {
        let mut m = Machine::new(Config::default());
        connected(&mut m);
        assert_eq!(
            m.handle(Event::ChannelClosed(1)),
            [Effect::Release, Effect::State(State::Disconnected)]
        );
        connected(&mut m);
        assert_eq!(
            m.handle(Event::PeerFailed(2)),
            [Effect::Release, Effect::State(State::Failed)]
        );
        // Disconnect when nothing is held: just the state, no release, no rejection.
        assert_eq!(
            m.handle(Event::Disconnect),
            [Effect::State(State::Disconnected)]
        );
        assert!(m.handle(Event::Disconnect).is_empty());
    }

    #[test]
    fn messages_count_and_send_only_when_connected() {
        let mut m = Machine::new(Config::default());
        assert!(!m.send());
        connected(&mut m);
        assert_eq!(
            m.handle(Event::Message {
                generation: 1,
                json: true
            }),
            [Effect::Dispatch]
        );
        assert!(m
            .handle(Event::Message {
                generation: 1,
                json: false
            })
            .is_empty());
        assert!(m.send());
        m.taken(true);
        // Allowed, but the channel threw: not sent.
        assert!(m.send());
        m.taken(false);
        m.handle(Event::Disconnect);
        assert!(!m.send());
        assert!(m
            .handle(Event::Message {
                generation: 1,
                json: true
            })
            .is_empty());
        let c = m.counters();
        assert_eq!(
            (c.events_in, c.invalid, c.events_out, c.refused),
            (1, 1, 1, 3)
        );
    }

    /// A fake shell: what the browser would hold if it did exactly what the effects say.
    #[derive(Debug, Default)]
    struct Held {
        peer: Option<u64>,
        mic: bool,
        audio: bool,
        timer: Option<u64>,
    }

    impl Held {
        fn any(&self) -> bool {
            self.peer.is_some() || self.mic || self.audio || self.timer.is_some()
        }
    }

    /// Whatever the order of events (late results, duplicates, other attempts' events, disconnect
    /// at any point), an attempt that ended holds nothing, every ended `connect()` is settled in
    /// the same batch, and every rejection names a step.
    #[test]
    fn no_order_of_events_leaves_a_resource_after_disconnect_or_failure() {
        let mut seed = 0x0dd_ba11_cafe_f00d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for run in 0..400 {
            let mut m = Machine::new(Config {
                connect_timeout_ms: 100,
                microphone: run % 5 != 0,
            });
            let mut held = Held::default();
            for step in 0..150 {
                let newest = m.generation;
                let g = newest.saturating_sub(next() % 2).max(1);
                let event = match next() % 17 {
                    0 | 1 => Event::Connect,
                    2 => session(g),
                    3 => Event::PeerReady(g),
                    4 => Event::MicrophoneReady(g),
                    5 => Event::OfferReady(g, "v=0".into()),
                    6 => Event::AnswerReady(g, if next() % 4 == 0 { "x" } else { SDP }.into()),
                    7 => Event::AnswerSet(g),
                    8 => Event::StepFailed(g, Step::ALL[(next() % 8) as usize], "e".into()),
                    9 => Event::RemoteTrack(g),
                    10 | 11 => Event::ChannelOpen(g),
                    12 => Event::ChannelClosed(g),
                    13 => Event::PeerFailed(g),
                    14 => Event::Message {
                        generation: g,
                        json: next() % 2 == 0,
                    },
                    15 => Event::TimedOut(g),
                    _ if next() % 3 == 0 => Event::Dispose,
                    _ => Event::Disconnect,
                };
                let before = m.state();
                let fx = m.handle(event.clone());
                let mut settled = false;
                for effect in &fx {
                    match effect {
                        Effect::OpenPeer(g) => {
                            assert!(held.peer.is_none(), "run {run} step {step}: second peer");
                            held.peer = Some(*g);
                        }
                        Effect::KeepMicrophone => {
                            assert!(
                                held.peer.is_some(),
                                "run {run} step {step}: mic without peer"
                            );
                            held.mic = true;
                        }
                        Effect::PlayRemote => {
                            assert!(
                                held.peer.is_some(),
                                "run {run} step {step}: audio without peer"
                            );
                            held.audio = true;
                        }
                        Effect::ArmTimeout { generation, .. } => held.timer = Some(*generation),
                        Effect::DisarmTimeout => held.timer = None,
                        Effect::Release => held = Held::default(),
                        Effect::SendSessionUpdate | Effect::Dispatch => {
                            assert_eq!(m.state(), State::Connected, "run {run} step {step}");
                        }
                        Effect::Resolve => settled = true,
                        Effect::Reject(e) => {
                            settled = true;
                            assert!(e.to_string().contains(e.step.as_str()));
                        }
                        _ => {}
                    }
                }
                let now = m.state();
                if matches!(now, State::Idle | State::Disconnected | State::Failed) {
                    assert!(
                        !held.any() && !m.holding(),
                        "run {run} step {step}: {now:?} after {event:?} still holds {held:?}"
                    );
                }
                if now == State::Connected {
                    assert!(
                        held.timer.is_none(),
                        "run {run} step {step}: timer left armed"
                    );
                }
                if before == State::Connecting && now != State::Connecting {
                    assert!(
                        settled,
                        "run {run} step {step}: connect() left pending by {event:?}"
                    );
                }
                if let Some(p) = held.peer {
                    assert_eq!(
                        p, m.generation,
                        "run {run} step {step}: a stale peer survived"
                    );
                }
            }
        }
    }

    #[test]
    fn state_and_step_names_are_the_contract() {
        let names: Vec<_> = [
            State::Idle,
            State::Connecting,
            State::Connected,
            State::Disconnected,
            State::Failed,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(
            names,
            ["idle", "connecting", "connected", "disconnected", "failed"]
        );
        let steps: Vec<_> = Step::ALL.iter().map(|s| s.as_str()).collect();
        let mut unique = steps.clone();
        unique.dedup();
        assert_eq!(steps, unique);
    }
}
