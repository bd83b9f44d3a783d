//! The shell around one `str0m` peer: a tokio task that owns the `Rtc` and its UDP socket.
//!
//! The loop follows str0m's contract (one mutation, then drain `poll_output` to a timeout): wait
//! for a datagram, the next timeout or the stop token; feed it; drain, sending transmits and
//! handing events to [`Conversation`] and [`Vad`] (pure). Media is echoed on the same mid.
//!
//! Every way out returns an [`End`]: the `oai-events` channel closed, ICE disconnected, the
//! connection never came up within the connect timeout, the call reached its maximum length, the
//! peer closed (DTLS close), an
//! engine error, or the stop token (hang-up, server shutdown). Unless the engine failed, the peer
//! sends its close (so the browser learns at once) before returning. The socket and the `Rtc` are dropped with the task, so the port is freed
//! on every path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::channel::ChannelId;
use str0m::media::MediaData;
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::events::{Conversation, ServerEvent};
use super::vad::{Vad, VadConfig};

/// The label of the events channel (OpenAI's).
pub const EVENTS_LABEL: &str = "oai-events";
/// Bytes a data channel may hold unsent before further events are dropped (and counted).
pub const MAX_CHANNEL_BUFFERED: usize = 256 * 1024;
/// How often the detector is ticked while speech goes on and packets may have stopped.
const VAD_TICK: Duration = Duration::from_millis(100);
/// Largest datagram read (WebRTC keeps packets under the path MTU).
const RECV_BUFFER: usize = 2048;
/// Upper bound on outputs drained after `close()` on the way out.
const CLOSE_DRAIN_LIMIT: usize = 256;

/// Why a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed the `oai-events` channel.
    ChannelClosed,
    /// ICE reported the connection lost (the client went away without closing).
    IceDisconnected,
    /// ICE and DTLS did not complete within the connect timeout.
    ConnectTimeout,
    /// The call reached its maximum length.
    MaxLength,
    /// The peer connection closed (DTLS close from the client, or the engine stopped).
    PeerClosed,
    /// Hung up or server shutdown.
    Stopped,
    /// The engine or the socket failed.
    Error,
}

impl End {
    /// Every variant, to show each `reason` label at zero.
    pub const ALL: [End; 7] = [
        End::ChannelClosed,
        End::IceDisconnected,
        End::ConnectTimeout,
        End::MaxLength,
        End::PeerClosed,
        End::Stopped,
        End::Error,
    ];

    /// The `reason` label of `vigil_voice_sessions_ended_total`.
    pub fn reason(self) -> &'static str {
        match self {
            End::ChannelClosed => "channel_closed",
            End::IceDisconnected => "ice_disconnected",
            End::ConnectTimeout => "connect_timeout",
            End::MaxLength => "max_length",
            End::PeerClosed => "peer_closed",
            End::Stopped => "stopped",
            End::Error => "error",
        }
    }
}

/// What one peer did, for the log and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Media frames received.
    pub media_in: u64,
    /// Media frames written back.
    pub media_echoed: u64,
    /// Events sent on the channel.
    pub events_out: u64,
    /// Events dropped because the channel was not open or its buffer was full.
    pub events_dropped: u64,
}

/// Everything a peer task owns.
#[derive(Debug)]
pub struct Peer {
    /// The engine, after the offer was accepted.
    pub rtc: Rtc,
    /// Its own socket; the answer's candidate is this socket's address.
    pub socket: UdpSocket,
    /// `socket.local_addr()`.
    pub local: SocketAddr,
    /// Cancelled on hang-up and on server shutdown.
    pub stop: CancellationToken,
    /// The event state of the call.
    pub conversation: Conversation,
    /// The detector's base settings (a `session.update` may change them).
    pub vad: VadConfig,
    /// How long ICE + DTLS may take.
    pub connect_timeout: Duration,
    /// How long the call may last, from the offer on.
    pub max_length: Duration,
}

struct State {
    conversation: Conversation,
    vad: Vad,
    vad_base: VadConfig,
    channel: Option<ChannelId>,
    connected: bool,
    first_audio: Option<Instant>,
    end: Option<End>,
    stats: PeerStats,
}

/// Runs the peer until it ends; returns why and what it did.
pub async fn run(peer: Peer) -> (End, PeerStats) {
    let Peer {
        mut rtc,
        socket,
        local,
        stop,
        conversation,
        vad,
        connect_timeout,
        max_length,
    } = peer;
    let started = Instant::now();
    // A configured length too large for the clock means no practical limit: a day.
    let end_deadline = started
        .checked_add(max_length)
        .unwrap_or_else(|| started + Duration::from_secs(86_400));
    let mut state = State {
        vad: Vad::new(conversation.vad_config(vad).unwrap_or(vad)),
        conversation,
        vad_base: vad,
        channel: None,
        connected: false,
        first_audio: None,
        end: None,
        stats: PeerStats::default(),
    };
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut tick = false;
    let end = loop {
        let deadline = match drain(&mut rtc, &socket, &mut state).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(error = %e, "voice peer engine error");
                break End::Error;
            }
        };
        // The detector's tick may write an event: a mutation of its own, drained before the next.
        if std::mem::take(&mut tick) && tick_vad(&mut rtc, &mut state, Instant::now()) {
            continue;
        }
        if let Some(end) = state.end {
            break end;
        }
        if !rtc.is_alive() {
            break End::PeerClosed;
        }
        let now = Instant::now();
        let connect_deadline = started + connect_timeout;
        if !state.connected && now >= connect_deadline {
            break End::ConnectTimeout;
        }
        if now >= end_deadline {
            break End::MaxLength;
        }
        let mut wake = deadline.min(end_deadline);
        if !state.connected {
            wake = wake.min(connect_deadline);
        }
        if state.vad.is_speaking() {
            wake = wake.min(now + VAD_TICK);
        }
        let input = tokio::select! {
            biased;
            () = stop.cancelled() => break End::Stopped,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => match buf[..n].try_into() {
                    Ok(contents) => Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: local, contents },
                    ),
                    // Not STUN, DTLS, RTP or RTCP: not for us.
                    Err(_) => continue,
                },
                // ICMP errors from an earlier send surface here on some systems; the peer
                // may still come back, and ICE decides when it is gone.
                Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "voice peer socket error");
                    break End::Error;
                }
            },
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                tick = true;
                Input::Timeout(Instant::now())
            }
        };
        if let Err(e) = rtc.handle_input(input) {
            tracing::debug!(error = %e, "voice peer input error");
            break End::Error;
        }
    };
    // Tell the client (RTCP BYE, SCTP shutdown, DTLS close_notify) unless the engine is broken.
    if end != End::Error && rtc.is_alive() {
        close(&mut rtc, &socket).await;
    }
    (end, state.stats)
}

/// Polls until the engine asks to wait; returns until when.
async fn drain(
    rtc: &mut Rtc,
    socket: &UdpSocket,
    state: &mut State,
) -> Result<Instant, str0m::RtcError> {
    loop {
        match rtc.poll_output()? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => {
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    tracing::debug!(error = %e, to = %t.destination, "voice peer send failed");
                }
            }
            Output::Event(e) => on_event(rtc, state, e),
        }
    }
}

/// Starts a local close (RTCP BYE, SCTP shutdown, DTLS close_notify) and sends what it queues.
async fn close(rtc: &mut Rtc, socket: &UdpSocket) {
    if rtc.close().is_err() {
        return;
    }
    for _ in 0..CLOSE_DRAIN_LIMIT {
        match rtc.poll_output() {
            Ok(Output::Transmit(t)) => {
                let _ = socket.send_to(&t.contents, t.destination).await;
            }
            Ok(Output::Event(_)) => {}
            Ok(Output::Timeout(_)) | Err(_) => break,
        }
        if !rtc.is_alive() {
            break;
        }
    }
}

fn on_event(rtc: &mut Rtc, state: &mut State, event: Event) {
    match event {
        Event::Connected => state.connected = true,
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            state.end.get_or_insert(End::IceDisconnected);
        }
        Event::ChannelOpen(id, label) if label == EVENTS_LABEL && state.channel.is_none() => {
            state.channel = Some(id);
            let created = state.conversation.opened();
            send(rtc, state, &created);
        }
        Event::ChannelData(data) if Some(data.id) == state.channel => {
            let replies = if data.binary {
                vec![state.conversation.on_binary()]
            } else {
                state
                    .conversation
                    .on_text(&String::from_utf8_lossy(&data.data))
            };
            if let Some(config) = state.conversation.vad_config(state.vad_base) {
                state.vad.set_config(config);
            }
            for reply in &replies {
                send(rtc, state, reply);
            }
        }
        Event::ChannelClose(id) if Some(id) == state.channel => {
            state.end.get_or_insert(End::ChannelClosed);
        }
        Event::MediaData(data) => on_media(rtc, state, data),
        _ => {}
    }
}

/// One incoming frame: measure its level, then write it back on the same mid.
fn on_media(rtc: &mut Rtc, state: &mut State, data: MediaData) {
    state.stats.media_in += 1;
    let first = *state.first_audio.get_or_insert(data.network_time);
    if let Some(level) = data.ext_vals.audio_level {
        // str0m gives the RFC 6464 level as a negative dBov number.
        let level = level.unsigned_abs().min(127);
        let t_ms = data
            .network_time
            .saturating_duration_since(first)
            .as_millis() as u64;
        if let Some(edge) = state.vad.push(t_ms, level) {
            if let Some(event) = state.conversation.on_vad(edge) {
                send(rtc, state, &event);
            }
        }
    }
    let Some(writer) = rtc.writer(data.mid) else {
        return;
    };
    let Some(pt) = writer.match_params(data.params) else {
        return;
    };
    let writer = match data.ext_vals.audio_level {
        Some(level) => writer.audio_level(level, data.ext_vals.voice_activity.unwrap_or(false)),
        None => writer,
    };
    if writer
        .write(pt, data.network_time, data.time, data.data)
        .is_ok()
    {
        state.stats.media_echoed += 1;
    }
}

/// On a clock tick: lets the detector end speech when packets stopped arriving. Returns whether
/// it wrote to the channel.
fn tick_vad(rtc: &mut Rtc, state: &mut State, now: Instant) -> bool {
    let Some(first) = state.first_audio else {
        return false;
    };
    let t_ms = now.saturating_duration_since(first).as_millis() as u64;
    let Some(event) = state
        .vad
        .idle(t_ms)
        .and_then(|edge| state.conversation.on_vad(edge))
    else {
        return false;
    };
    send(rtc, state, &event);
    true
}

fn send(rtc: &mut Rtc, state: &mut State, event: &ServerEvent) {
    let sent = state
        .channel
        .and_then(|id| rtc.channel(id))
        .is_some_and(|mut channel| {
            channel.buffered_amount() <= MAX_CHANNEL_BUFFERED
                && channel
                    .write(false, event.to_json().as_bytes())
                    .unwrap_or(false)
        });
    if sent {
        state.stats.events_out += 1;
    } else {
        state.stats.events_dropped += 1;
    }
}
