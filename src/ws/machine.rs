//! The WebSocket connection state machine, sans IO: events and a clock in, effects out.
//!
//! The shell (`service.rs`) owns the socket and timer guards and does what the effects say; this
//! file decides *when* to open, close, ping, give up and reconnect, and is tested natively with a
//! fake clock. Every socket the machine opens carries a generation number; events of an older
//! generation are ignored, so no order of close, error, timeout, `online` and `connect()` can leave
//! two sockets open.

use crate::prelude::*;
use alloc::borrow::Cow;
use alloc::collections::VecDeque;

pub use crate::backoff::Backoff;
use crate::backoff::Jitter;

/// The connection state, as `onState` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, `connect()` not called yet.
    Idle,
    /// The first socket is opening.
    Connecting,
    /// A socket is open.
    Open,
    /// The connection was lost (or the page went into the back/forward cache); a new socket will
    /// be opened after the backoff delay, or at once when the browser comes back online.
    Reconnecting,
    /// `disconnect()` was called, or the server closed cleanly with reconnect off. Final.
    Closed,
    /// Gave up: reconnect is off, or `maxAttempts` were used up.
    Failed,
}

impl State {
    /// The name pages see.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Reconnecting => "reconnecting",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }
}

/// The machine's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// App-level ping every this many ms while open.
    pub heartbeat_interval_ms: u32,
    /// No message within this after a ping: the socket is dead.
    pub heartbeat_timeout_ms: u32,
    /// A socket not open after this is given up.
    pub connect_timeout_ms: u32,
    /// `None`: never reconnect.
    pub reconnect: Option<Backoff>,
    /// Messages sent while not open wait here; the oldest is dropped beyond it.
    pub max_queued_messages: usize,
    /// Seed of the jitter generator.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            reconnect: Some(Backoff::default()),
            max_queued_messages: 1000,
            seed: 0x5eed,
        }
    }
}

/// The timers the machine asks for; at most one of each kind is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The socket must open before this fires.
    Connect,
    /// Time to try again.
    Reconnect,
    /// Time to send a ping.
    Heartbeat,
    /// A ping went unanswered.
    HeartbeatDeadline,
    /// The connection stayed open long enough to reset the attempt count.
    Stable,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Self::Connect,
        Self::Reconnect,
        Self::Heartbeat,
        Self::HeartbeatDeadline,
        Self::Stable,
    ];
}

/// What the shell must do, in order. `F` is a text frame: a `String` in the native tests, the
/// browser's own string in the shell (a page's frame is never copied into the wasm).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<F = String> {
    /// Open a new socket tagged `generation` (the previous one was closed by an earlier effect).
    Open {
        /// Tag for the events of this socket.
        generation: u64,
    },
    /// Close the current socket (detaching its handlers) with this code and reason.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: Cow<'static, str>,
    },
    /// Send one text frame on the open socket.
    Send(F),
    /// (Re)arm a timer to fire after this many ms.
    Arm(Timer, u32),
    /// Cancel a timer.
    Disarm(Timer),
    /// The state changed; tell `onState` subscribers (with the reconnect attempt number).
    State(State),
    /// The connection opened: resolve every pending `connect()`.
    Resolve,
    /// No connection will come: reject every pending `connect()` with this reason.
    Reject(&'static str),
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<F = String> {
    /// `connect()`.
    Connect,
    /// The socket of `generation` opened.
    Opened(u64),
    /// The socket of `generation` closed with `code`.
    Closed(u64, u16),
    /// The socket of `generation` reported an error.
    Errored(u64),
    /// A frame arrived on the socket of `generation`; `pong` carries the echoed ping timestamp
    /// when the frame is a `pong`.
    Message {
        /// Which socket.
        generation: u64,
        /// `payload.timestamp` of a `pong`.
        pong: Option<f64>,
    },
    /// A timer fired.
    Fired(Timer),
    /// `online`.
    Online,
    /// `offline`.
    Offline,
    /// `send()` of an encoded frame.
    Send(F),
    /// `disconnect(code, reason)`: final.
    Disconnect(u16, String),
    /// `pagehide` into the back/forward cache.
    Suspend,
    /// `pageshow` from the back/forward cache.
    Resume,
}

/// Counters for `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Frames received.
    pub messages_in: u64,
    /// Frames sent (queued ones count when they leave).
    pub messages_out: u64,
    /// Reconnect attempts started.
    pub reconnects: u64,
    /// Frames waiting in the queue.
    pub queued: usize,
    /// Frames dropped from a full queue.
    pub dropped: u64,
    /// Last ping round trip.
    pub last_rtt_ms: Option<f64>,
}

/// The connection state machine, over text frames of type `F` (it never reads them; its own
/// ping is made `From` a `String`).
#[derive(Debug)]
pub struct Machine<F = String> {
    config: Config,
    state: State,
    generation: u64,
    /// A socket of `generation` exists (opening or open).
    socket: bool,
    attempts: u32,
    online: bool,
    suspended: bool,
    deadline_armed: bool,
    queue: VecDeque<F>,
    stats: Stats,
    rng: Jitter,
}

impl<F: From<String>> Machine<F> {
    /// A machine in `Idle`; `online` is `navigator.onLine`.
    pub fn new(config: Config, online: bool) -> Self {
        let rng = Jitter::new(config.seed);
        Self {
            config,
            state: State::Idle,
            generation: 0,
            socket: false,
            attempts: 0,
            online,
            suspended: false,
            deadline_armed: false,
            queue: VecDeque::new(),
            stats: Stats::default(),
            rng,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Reconnect attempts since the last stable open.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The generation of the current socket, if one exists.
    pub fn socket_generation(&self) -> Option<u64> {
        self.socket.then_some(self.generation)
    }

    /// Counters for `stats()`.
    pub fn stats(&self) -> Stats {
        Stats {
            queued: self.queue.len(),
            ..self.stats
        }
    }

    /// Feeds one event at time `now_ms`; returns the effects, in order.
    pub fn handle(&mut self, now_ms: f64, event: Event<F>) -> Vec<Effect<F>> {
        let mut fx = Vec::new();
        match event {
            Event::Connect => match self.state {
                State::Idle | State::Failed => {
                    self.attempts = 0;
                    self.open(&mut fx, State::Connecting);
                }
                State::Closed => fx.push(Effect::Reject("the service was disconnected")),
                // Already connecting, open or waiting to reconnect: never a second socket.
                State::Connecting | State::Open | State::Reconnecting => {
                    if self.state == State::Open {
                        fx.push(Effect::Resolve);
                    }
                }
            },
            Event::Opened(g) if self.current(g) => {
                self.set_state(&mut fx, State::Open);
                fx.push(Effect::Disarm(Timer::Connect));
                fx.push(Effect::Arm(
                    Timer::Heartbeat,
                    self.config.heartbeat_interval_ms,
                ));
                fx.push(Effect::Arm(
                    Timer::Stable,
                    self.config.heartbeat_interval_ms.min(5000),
                ));
                while let Some(frame) = self.queue.pop_front() {
                    self.stats.messages_out += 1;
                    fx.push(Effect::Send(frame));
                }
                fx.push(Effect::Resolve);
            }
            Event::Closed(g, code) if self.current(g) => self.lost(&mut fx, code),
            Event::Errored(g) if self.current(g) => self.lost(&mut fx, 1006),
            Event::Message { generation, pong } if self.current(generation) => {
                self.stats.messages_in += 1;
                if self.deadline_armed {
                    self.deadline_armed = false;
                    fx.push(Effect::Disarm(Timer::HeartbeatDeadline));
                }
                if let Some(sent) = pong {
                    self.stats.last_rtt_ms = Some((now_ms - sent).max(0.0));
                }
            }
            Event::Fired(timer) => self.fired(&mut fx, now_ms, timer),
            Event::Online => {
                self.online = true;
                if self.waiting() && !self.suspended {
                    fx.push(Effect::Disarm(Timer::Reconnect));
                    let state = self.state;
                    self.open(&mut fx, state);
                }
            }
            Event::Offline => {
                self.online = false;
                if self.waiting() {
                    fx.push(Effect::Disarm(Timer::Reconnect));
                }
            }
            Event::Send(frame) => {
                if self.state == State::Open {
                    self.stats.messages_out += 1;
                    fx.push(Effect::Send(frame));
                } else if self.config.max_queued_messages == 0 {
                    self.stats.dropped += 1;
                } else {
                    if self.queue.len() >= self.config.max_queued_messages {
                        self.queue.pop_front();
                        self.stats.dropped += 1;
                    }
                    self.queue.push_back(frame);
                }
            }
            Event::Disconnect(code, reason) => {
                if self.state != State::Closed {
                    self.stop(&mut fx, code, Cow::Owned(reason));
                    self.stats.dropped += self.queue.len() as u64;
                    self.queue.clear();
                    self.set_state(&mut fx, State::Closed);
                    fx.push(Effect::Reject("the service was disconnected"));
                }
            }
            Event::Suspend => {
                if matches!(
                    self.state,
                    State::Connecting | State::Open | State::Reconnecting
                ) {
                    self.suspended = true;
                    self.stop(&mut fx, 1001, Cow::Borrowed("page hidden"));
                    self.set_state(&mut fx, State::Reconnecting);
                }
            }
            Event::Resume => {
                if self.suspended {
                    self.suspended = false;
                    self.attempts = 0;
                    self.open(&mut fx, State::Reconnecting);
                }
            }
            // Events of a socket that is not the current one.
            Event::Opened(_) | Event::Closed(..) | Event::Errored(_) | Event::Message { .. } => {}
        }
        fx
    }

    /// Trying to connect, but no socket exists right now.
    fn waiting(&self) -> bool {
        matches!(self.state, State::Connecting | State::Reconnecting) && !self.socket
    }

    fn current(&self, generation: u64) -> bool {
        self.socket && generation == self.generation
    }

    fn set_state(&mut self, fx: &mut Vec<Effect<F>>, state: State) {
        if self.state != state {
            self.state = state;
            fx.push(Effect::State(state));
        }
    }

    /// Opens a socket now, or waits for `online`.
    fn open(&mut self, fx: &mut Vec<Effect<F>>, state: State) {
        self.set_state(fx, state);
        if !self.online {
            return; // the `online` event opens it
        }
        self.generation += 1;
        self.socket = true;
        fx.push(Effect::Open {
            generation: self.generation,
        });
        fx.push(Effect::Arm(Timer::Connect, self.config.connect_timeout_ms));
    }

    /// Closes the current socket (if any) and cancels every timer.
    fn stop(&mut self, fx: &mut Vec<Effect<F>>, code: u16, reason: Cow<'static, str>) {
        if self.socket {
            self.socket = false;
            fx.push(Effect::Close { code, reason });
        }
        self.deadline_armed = false;
        fx.extend(Timer::ALL.iter().map(|&t| Effect::Disarm(t)));
    }

    /// The socket is gone or dead: schedule the next attempt, or give up.
    fn lost(&mut self, fx: &mut Vec<Effect<F>>, code: u16) {
        let was_open = self.state == State::Open;
        self.stop(fx, 4000, Cow::Borrowed("connection lost"));
        let Some(backoff) = self.config.reconnect else {
            let end = if code == 1000 && was_open {
                State::Closed
            } else {
                State::Failed
            };
            self.set_state(fx, end);
            fx.push(Effect::Reject("the connection closed and reconnect is off"));
            return;
        };
        if backoff.max_attempts.is_some_and(|max| self.attempts >= max) {
            self.set_state(fx, State::Failed);
            fx.push(Effect::Reject(
                "gave up after maxAttempts reconnect attempts",
            ));
            return;
        }
        self.attempts += 1;
        self.stats.reconnects += 1;
        self.set_state(fx, State::Reconnecting);
        if self.online {
            let delay = backoff.delay_ms(self.attempts, self.rng.next_unit());
            fx.push(Effect::Arm(
                Timer::Reconnect,
                delay.min(f64::from(u32::MAX)) as u32,
            ));
        }
    }

    fn fired(&mut self, fx: &mut Vec<Effect<F>>, now_ms: f64, timer: Timer) {
        match timer {
            Timer::Connect if self.socket && self.state != State::Open => self.lost(fx, 4008),
            Timer::Reconnect
                if self.state == State::Reconnecting && !self.socket && !self.suspended =>
            {
                self.open(fx, State::Reconnecting)
            }
            Timer::Heartbeat if self.state == State::Open => {
                self.stats.messages_out += 1;
                fx.push(Effect::Send(F::from(ping_frame(now_ms))));
                if !self.deadline_armed {
                    self.deadline_armed = true;
                    fx.push(Effect::Arm(
                        Timer::HeartbeatDeadline,
                        self.config.heartbeat_timeout_ms,
                    ));
                }
                fx.push(Effect::Arm(
                    Timer::Heartbeat,
                    self.config.heartbeat_interval_ms,
                ));
            }
            Timer::HeartbeatDeadline if self.state == State::Open && self.deadline_armed => {
                self.deadline_armed = false;
                self.lost(fx, 4001);
            }
            Timer::Stable if self.state == State::Open => self.attempts = 0,
            // A timer that raced with a state change: nothing to do.
            _ => {}
        }
    }
}

/// `{"type":"ping","payload":{"timestamp":T},"timestamp":T}` with `T` in whole milliseconds.
pub fn ping_frame(now_ms: f64) -> String {
    // Integer formatting only: float formatting would cost the bundle ~10 KB.
    let t = crate::text::uint(now_ms.max(0.0) as u64);
    crate::text::concat(&[
        r#"{"type":"ping","payload":{"timestamp":"#,
        &t,
        r#"},"timestamp":"#,
        &t,
        "}",
    ])
}

/// The close a page may ask for (`disconnect(code, reason)`): 1000 or 3000..=4999, and a reason
/// of at most 123 bytes of UTF-8 (what `WebSocket.close` accepts).
pub fn check_close(code: u16, reason: &str) -> Result<(), crate::error::VigilError> {
    use crate::error::VigilError::BadArgument;
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(BadArgument {
            name: "code",
            expected: "1000 or a code from 3000 to 4999",
            got: "another code",
        });
    }
    if reason.len() > 123 {
        return Err(BadArgument {
            name: "reason",
            expected: "at most 123 bytes of UTF-8",
            got: "a longer string",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(config: Config) -> Machine {
        Machine::new(config, true)
    }

    fn opens(fx: &[Effect]) -> Vec<u64> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Open { generation } => Some(*generation),
                _ => None,
            })
            .collect()
    }

    fn armed(fx: &[Effect], timer: Timer) -> Option<u32> {
        fx.iter().rev().find_map(|e| match e {
            Effect::Arm(t, ms) if *t == timer => Some(*ms),
            _ => None,
        })
    }

    /// Connects and opens generation 1.
    fn open_machine(config: Config) -> Machine {
        let mut m = machine(config);
        assert_eq!(opens(&m.handle(0.0, Event::Connect)), [1]);
        m.handle(1.0, Event::Opened(1));
        assert_eq!(m.state(), State::Open);
        m
    }

    #[test]
    fn connect_opens_once_and_resolves_on_open() {
        let mut m = machine(Config::default());
        let fx = m.handle(0.0, Event::Connect);
        assert_eq!(opens(&fx), [1]);
        assert_eq!(armed(&fx, Timer::Connect), Some(10_000));
        assert!(fx.contains(&Effect::State(State::Connecting)));
        // connect() again while connecting: no second socket.
        assert!(opens(&m.handle(1.0, Event::Connect)).is_empty());
        let fx = m.handle(2.0, Event::Opened(1));
        assert!(fx.contains(&Effect::State(State::Open)));
        assert!(fx.contains(&Effect::Resolve));
        assert_eq!(armed(&fx, Timer::Heartbeat), Some(30_000));
        assert_eq!(armed(&fx, Timer::Stable), Some(5000));
        // connect() while open resolves at once, opens nothing.
        assert_eq!(m.handle(3.0, Event::Connect), [Effect::Resolve]);
    }

    #[test]
    fn a_lost_connection_reconnects_after_the_backoff_and_ignores_stale_events() {
        let mut m = open_machine(Config::default());
        let fx = m.handle(10.0, Event::Errored(1));
        assert_eq!(m.state(), State::Reconnecting);
        let delay = armed(&fx, Timer::Reconnect).unwrap();
        assert!((750..=1250).contains(&delay), "{delay}");
        // The close that follows the error belongs to the same, already handled socket.
        assert!(m.handle(11.0, Event::Closed(1, 1006)).is_empty());
        assert_eq!(m.stats().reconnects, 1);
        let fx = m.handle(1000.0, Event::Fired(Timer::Reconnect));
        assert_eq!(opens(&fx), [2]);
        // Late events of socket 1 change nothing.
        for stale in [
            Event::Opened(1),
            Event::Closed(1, 1000),
            Event::Errored(1),
            Event::Message {
                generation: 1,
                pong: None,
            },
        ] {
            assert!(m.handle(1001.0, stale).is_empty());
        }
        m.handle(1002.0, Event::Opened(2));
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn attempts_grow_until_a_stable_open_resets_them() {
        let mut m = open_machine(Config {
            seed: 7,
            ..Config::default()
        });
        let mut g = 1;
        for n in 1..=4u32 {
            let fx = m.handle(0.0, Event::Closed(g, 1006));
            let base = 1000.0 * 2f64.powi(n as i32 - 1);
            let d = f64::from(armed(&fx, Timer::Reconnect).unwrap());
            assert!(
                d >= base * 0.75 - 1.0 && d <= base * 1.25,
                "attempt {n}: {d}"
            );
            assert_eq!(m.attempts(), n);
            g = opens(&m.handle(0.0, Event::Fired(Timer::Reconnect)))[0];
        }
        m.handle(0.0, Event::Opened(g));
        assert_eq!(m.attempts(), 4, "not reset until the open has lasted");
        m.handle(5000.0, Event::Fired(Timer::Stable));
        assert_eq!(m.attempts(), 0);
        let fx = m.handle(6000.0, Event::Closed(g, 1006));
        assert!(armed(&fx, Timer::Reconnect).unwrap() <= 1250);
    }

    #[test]
    fn offline_waits_and_online_tries_at_once() {
        let mut m = open_machine(Config::default());
        m.handle(0.0, Event::Offline);
        let fx = m.handle(1.0, Event::Closed(1, 1006));
        assert_eq!(
            armed(&fx, Timer::Reconnect),
            None,
            "no attempt while offline"
        );
        assert_eq!(m.state(), State::Reconnecting);
        let fx = m.handle(2.0, Event::Online);
        assert_eq!(opens(&fx), [2]);
        assert!(
            opens(&m.handle(3.0, Event::Online)).is_empty(),
            "one socket"
        );
        assert!(opens(&m.handle(4.0, Event::Fired(Timer::Reconnect))).is_empty());
    }

    #[test]
    fn connect_while_offline_waits_for_online() {
        let mut m = Machine::new(Config::default(), false);
        let fx = m.handle(0.0, Event::Connect);
        assert!(opens(&fx).is_empty());
        assert_eq!(m.state(), State::Connecting);
        assert!(opens(&m.handle(1.0, Event::Connect)).is_empty());
        assert_eq!(opens(&m.handle(2.0, Event::Online)), [1]);
        assert_eq!(m.state(), State::Connecting);
    }

    #[test]
    fn heartbeat_measures_rtt_and_detects_a_dead_socket() {
        let mut m = open_machine(Config::default());
        let fx = m.handle(30_000.0, Event::Fired(Timer::Heartbeat));
        assert!(fx.contains(&Effect::Send(ping_frame(30_000.0))));
        assert_eq!(armed(&fx, Timer::HeartbeatDeadline), Some(10_000));
        assert_eq!(armed(&fx, Timer::Heartbeat), Some(30_000));
        let fx = m.handle(
            30_042.0,
            Event::Message {
                generation: 1,
                pong: Some(30_000.0),
            },
        );
        assert!(fx.contains(&Effect::Disarm(Timer::HeartbeatDeadline)));
        assert_eq!(m.stats().last_rtt_ms, Some(42.0));
        // A late deadline after an answer does nothing.
        assert!(m
            .handle(40_000.0, Event::Fired(Timer::HeartbeatDeadline))
            .is_empty());

        // Next ping goes unanswered: the socket is dead even though no close event came.
        m.handle(60_000.0, Event::Fired(Timer::Heartbeat));
        let fx = m.handle(70_000.0, Event::Fired(Timer::HeartbeatDeadline));
        assert!(fx.contains(&Effect::Close {
            code: 4000,
            reason: "connection lost".into()
        }));
        assert_eq!(m.state(), State::Reconnecting);
    }

    #[test]
    fn a_socket_that_never_opens_times_out() {
        let mut m = machine(Config::default());
        m.handle(0.0, Event::Connect);
        let fx = m.handle(10_000.0, Event::Fired(Timer::Connect));
        assert!(matches!(fx[0], Effect::Close { .. }));
        assert_eq!(m.state(), State::Reconnecting);
        assert!(armed(&fx, Timer::Reconnect).is_some());
    }

    #[test]
    fn max_attempts_then_failed() {
        let mut m = open_machine(Config {
            reconnect: Some(Backoff {
                max_attempts: Some(2),
                ..Backoff::default()
            }),
            ..Config::default()
        });
        let mut g = 1;
        for _ in 0..2 {
            m.handle(0.0, Event::Closed(g, 1006));
            g = opens(&m.handle(0.0, Event::Fired(Timer::Reconnect)))[0];
        }
        let fx = m.handle(0.0, Event::Closed(g, 1006));
        assert_eq!(m.state(), State::Failed);
        assert!(fx.iter().any(|e| matches!(e, Effect::Reject(_))));
        // connect() after failing starts over.
        assert_eq!(opens(&m.handle(0.0, Event::Connect)).len(), 1);
    }

    #[test]
    fn without_reconnect_a_clean_close_is_closed_and_a_drop_is_failed() {
        let cfg = Config {
            reconnect: None,
            ..Config::default()
        };
        let mut m = open_machine(cfg.clone());
        m.handle(0.0, Event::Closed(1, 1000));
        assert_eq!(m.state(), State::Closed);
        let mut m = open_machine(cfg);
        m.handle(0.0, Event::Closed(1, 1006));
        assert_eq!(m.state(), State::Failed);
    }

    #[test]
    fn the_queue_is_bounded_and_drains_in_order_on_open() {
        let mut m = machine(Config {
            max_queued_messages: 3,
            ..Config::default()
        });
        for i in 0..5 {
            assert!(m.handle(0.0, Event::Send(format!("m{i}"))).is_empty());
        }
        assert_eq!(m.stats().queued, 3);
        assert_eq!(m.stats().dropped, 2);
        m.handle(0.0, Event::Connect);
        let fx = m.handle(0.0, Event::Opened(1));
        let sent: Vec<_> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Send(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(sent, ["m2", "m3", "m4"]);
        assert_eq!(m.stats().queued, 0);
        assert_eq!(m.stats().messages_out, 3);
        assert_eq!(
            m.handle(0.0, Event::Send("live".into())),
            [Effect::Send("live".into())]
        );
    }

    #[test]
    fn disconnect_is_final() {
        let mut m = open_machine(Config::default());
        m.handle(0.0, Event::Send("x".into()));
        let fx = m.handle(0.0, Event::Disconnect(1000, "bye".into()));
        assert_eq!(
            fx[0],
            Effect::Close {
                code: 1000,
                reason: "bye".into()
            }
        );
        assert_eq!(m.state(), State::Closed);
        assert!(m
            .handle(0.0, Event::Disconnect(1000, String::new()))
            .is_empty());
        assert_eq!(
            m.handle(0.0, Event::Connect),
            [Effect::Reject("the service was disconnected")]
        );
        for e in [Event::Online, Event::Fired(Timer::Reconnect), Event::Resume] {
            assert!(opens(&m.handle(0.0, e)).is_empty());
        }
    }

    #[test]
    fn bfcache_closes_the_socket_and_reconnects_on_resume() {
        let mut m = open_machine(Config::default());
        let fx = m.handle(0.0, Event::Suspend);
        assert_eq!(
            fx[0],
            Effect::Close {
                code: 1001,
                reason: "page hidden".into()
            }
        );
        assert_eq!(m.state(), State::Reconnecting);
        assert!(opens(&m.handle(0.0, Event::Online)).is_empty());
        assert!(opens(&m.handle(0.0, Event::Fired(Timer::Reconnect))).is_empty());
        assert_eq!(opens(&m.handle(0.0, Event::Resume)), [2]);
        assert!(opens(&m.handle(0.0, Event::Resume)).is_empty());
    }

    /// Whatever the order of events, at most one socket exists, and every `Open` follows the
    /// `Close` of the previous socket.
    #[test]
    fn no_order_of_events_opens_a_second_socket() {
        let mut seed = 0x1234_5678_9abc_def1_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for run in 0..300 {
            let mut m: Machine = Machine::new(
                Config {
                    seed: run,
                    ..Config::default()
                },
                next() % 2 == 0,
            );
            let mut live: Option<u64> = None;
            let mut newest = 0;
            for step in 0..200 {
                let g = if newest == 0 {
                    0
                } else {
                    newest - (next() % 2).min(newest - 1)
                };
                let event = match next() % 12 {
                    0 => Event::Connect,
                    1 => Event::Opened(g),
                    2 => Event::Closed(g, 1006),
                    3 => Event::Errored(g),
                    4 => Event::Fired(Timer::ALL[(next() % 5) as usize]),
                    5 => Event::Online,
                    6 => Event::Offline,
                    7 => Event::Send("x".into()),
                    8 => Event::Suspend,
                    9 => Event::Resume,
                    10 => Event::Message {
                        generation: g,
                        pong: Some(0.0),
                    },
                    _ if step % 97 == 0 => Event::Disconnect(1000, String::new()),
                    _ => Event::Connect,
                };
                for effect in m.handle(step as f64, event.clone()) {
                    match effect {
                        Effect::Open { generation } => {
                            assert_eq!(
                                live, None,
                                "run {run} step {step}: second socket after {event:?}"
                            );
                            live = Some(generation);
                            newest = generation;
                        }
                        Effect::Close { .. } => {
                            assert!(
                                live.is_some(),
                                "run {run} step {step}: close without socket"
                            );
                            live = None;
                        }
                        Effect::Send(_) => {
                            assert_eq!(m.state(), State::Open, "sent while not open");
                        }
                        _ => {}
                    }
                }
                assert_eq!(live, m.socket_generation(), "run {run} step {step}");
            }
        }
    }

    #[test]
    fn state_names_are_the_contract() {
        let names: Vec<_> = [
            State::Idle,
            State::Connecting,
            State::Open,
            State::Reconnecting,
            State::Closed,
            State::Failed,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "idle",
                "connecting",
                "open",
                "reconnecting",
                "closed",
                "failed"
            ]
        );
    }

    #[test]
    fn close_codes_and_reasons_are_checked_by_name() {
        assert!(check_close(1000, "bye").is_ok());
        assert!(check_close(3000, "").is_ok());
        assert!(check_close(4999, &"x".repeat(123)).is_ok());
        for code in [999, 1001, 1006, 2999, 5000] {
            let e = check_close(code, "").unwrap_err().to_string();
            assert!(e.starts_with("code: expected"), "{code}: {e}");
        }
        let e = check_close(1000, &"é".repeat(62)).unwrap_err().to_string();
        assert!(e.starts_with("reason: expected"), "{e}");
    }
}
