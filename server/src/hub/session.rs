//! One WebSocket session, over any `Sink`/`Stream` of axum `Message`s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_protocol::{ws, Envelope};

use super::{now_epoch_ms, remove_member, Entry, Hub};

/// Close codes the hub uses.
pub mod close {
    /// The server is shutting down, or the peer showed no life.
    pub const GOING_AWAY: u16 = 1001;
    /// More than the allowed messages per second.
    pub const POLICY: u16 = 1008;
    /// A frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The outgoing queue of a slow reader is full.
    pub const TRY_LATER: u16 = 1013;
}

/// Why a session ended; counted in `vigil_ws_sessions_ended_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client sent a close frame.
    ClientClosed,
    /// The connection dropped without a close frame.
    Dropped,
    /// A protocol error on the socket.
    Error,
    /// A frame over the size limit (1009).
    TooBig,
    /// Too many messages per second (1008).
    Flood,
    /// No frame of any kind for two heartbeat intervals (1001).
    Silent,
    /// The outgoing queue was full: a slow reader (1013).
    SlowReader,
    /// The server is shutting down (1001).
    Shutdown,
    /// The hub was full when the session arrived (1013).
    HubFull,
}

impl End {
    /// The close code sent to the peer, if one is sent.
    pub fn close_code(self) -> Option<u16> {
        match self {
            Self::ClientClosed | Self::Dropped | Self::Error => None,
            Self::TooBig => Some(close::TOO_BIG),
            Self::Flood => Some(close::POLICY),
            Self::Silent | Self::Shutdown => Some(close::GOING_AWAY),
            Self::SlowReader | Self::HubFull => Some(close::TRY_LATER),
        }
    }

    /// The `reason` label, and the close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Dropped => "dropped",
            Self::Error => "error",
            Self::TooBig => "frame_too_large",
            Self::Flood => "too_many_messages",
            Self::Silent => "no_heartbeat",
            Self::SlowReader => "slow_reader",
            Self::Shutdown => "server_shutdown",
            Self::HubFull => "hub_full",
        }
    }

    /// Every reason, for showing the counters at zero.
    pub const ALL: [End; 9] = [
        Self::ClientClosed,
        Self::Dropped,
        Self::Error,
        Self::TooBig,
        Self::Flood,
        Self::Silent,
        Self::SlowReader,
        Self::Shutdown,
        Self::HubFull,
    ];
}

/// A session's place in the hub. Dropping it is the one cleanup every exit path runs: out of the
/// map, out of every topic, gauge updated.
#[derive(Debug)]
#[must_use = "the session leaves the hub when this is dropped"]
pub struct Registration {
    hub: Hub,
    id: u64,
}

impl Registration {
    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut guard = self.hub.lock();
        let s = &mut *guard;
        if let Some(entry) = s.by_id.remove(&self.id) {
            for t in &entry.topics {
                remove_member(&mut s.topics, t, self.id);
            }
            if let Some(ip) = entry.ip {
                if let Some(n) = s.per_ip.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.per_ip.remove(&ip);
                    }
                }
            }
        }
        self.hub
            .inner
            .metrics
            .ws_connections
            .set(s.by_id.len() as i64);
    }
}

struct Joined {
    registration: Registration,
    outgoing: mpsc::Receiver<Message>,
    kill: CancellationToken,
    slow: Arc<AtomicBool>,
    last_seen_ms: Arc<AtomicU64>,
}

impl Hub {
    /// Adds a session, or `None` when the hub holds `max_sessions` already, or `ip` holds
    /// `max_sessions_per_ip`.
    fn register(&self, ip: Option<std::net::IpAddr>) -> Option<Joined> {
        let (tx, rx) = mpsc::channel(self.inner.config.outgoing_queue.max(1));
        let kill = CancellationToken::new();
        let slow = Arc::new(AtomicBool::new(false));
        let last_seen_ms = Arc::new(AtomicU64::new(self.now_ms()));
        let mut s = self.lock();
        if s.by_id.len() >= self.inner.config.max_sessions {
            return None;
        }
        if let Some(ip) = ip {
            let n = s.per_ip.entry(ip).or_insert(0);
            if *n >= self.inner.config.max_sessions_per_ip {
                return None;
            }
            *n += 1;
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        s.by_id.insert(
            id,
            Entry {
                outgoing: tx,
                kill: kill.clone(),
                slow: Arc::clone(&slow),
                last_seen_ms: Arc::clone(&last_seen_ms),
                topics: Default::default(),
                ip,
            },
        );
        self.inner.metrics.ws_connections.set(s.by_id.len() as i64);
        drop(s);
        Some(Joined {
            registration: Registration {
                hub: self.clone(),
                id,
            },
            outgoing: rx,
            kill,
            slow,
            last_seen_ms,
        })
    }

    /// True when a new session would be refused.
    pub fn is_full(&self) -> bool {
        self.lock().by_id.len() >= self.inner.config.max_sessions
    }
}

/// How long a session that sent its close frame keeps reading (and discarding) for the client's
/// close, so that the client reads the close code instead of a reset connection.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs one session until it ends, whatever the reason; returns the close code it sent (if any).
/// The client's address is not known: it is not counted per IP (tests, in-process callers).
pub async fn run<S, R, E>(hub: Hub, sink: S, stream: R) -> Option<u16>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    run_from(hub, None, sink, stream).await
}

/// As [`run`], for a client at `ip`: past `max_sessions_per_ip` from it, the session is closed
/// at once with 1013.
pub async fn run_from<S, R, E>(
    hub: Hub,
    ip: Option<std::net::IpAddr>,
    mut sink: S,
    mut stream: R,
) -> Option<u16>
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let end = serve(&hub, ip, &mut sink, &mut stream).await;
    hub.inner
        .metrics
        .ws_sessions_ended
        .with_label_values(&[end.reason()])
        .inc();
    if let Some(code) = end.close_code() {
        if send_close(&mut sink, code, end.reason()).await {
            // Closing the socket now, with the client's frames still arriving, resets it and the
            // client sees 1006 instead of our code: read them away until its close (bounded by
            // LINGER; every frame is dropped as it comes).
            let _ = tokio::time::timeout(LINGER, async {
                while let Some(Ok(frame)) = stream.next().await {
                    if matches!(frame, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    end.close_code()
}

async fn serve<S, R, E>(hub: &Hub, ip: Option<std::net::IpAddr>, mut sink: S, mut stream: R) -> End
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let Some(joined) = hub.register(ip) else {
        return End::HubFull;
    };
    let Joined {
        registration,
        mut outgoing,
        kill,
        slow,
        last_seen_ms,
    } = joined;
    let sink = &mut sink;
    let id = registration.id();
    let config = hub.inner.config.clone();
    let metrics = hub.inner.metrics.clone();
    let out_counter = metrics.ws_messages.with_label_values(&["out"]);
    let in_counter = metrics.ws_messages.with_label_values(&["in"]);

    let welcome = envelope(
        ws::WELCOME,
        &ws::Welcome {
            session_id: id.to_string(),
            heartbeat_ms: config.heartbeat.as_millis() as u64,
        },
    );
    if let Some(end) = send_or_stop(sink, &kill, &slow, welcome).await {
        return end; // `registration` drops here: the same cleanup
    }
    out_counter.inc();

    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.heartbeat,
        config.heartbeat,
    );
    let mut window = (Instant::now(), 0u32);
    let shutdown = hub.inner.shutdown.clone();

    let end = loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break End::Shutdown,
            () = kill.cancelled() => break killed(&slow),
            frame = stream.next() => {
                let frame = match frame {
                    None => break End::Dropped,
                    Some(Err(_)) => break End::Error,
                    Some(Ok(frame)) => frame,
                };
                last_seen_ms.store(hub.now_ms(), Ordering::Relaxed);
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Close(_) => break End::ClientClosed,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(b) if b.len() > config.max_frame_bytes => break End::TooBig,
                    Message::Binary(_) => {
                        in_counter.inc();
                        let reply = error_message("binary_frame", "frames are JSON text");
                        if let Some(end) = send_or_stop(sink, &kill, &slow, reply).await { break end }
                        out_counter.inc();
                        continue;
                    }
                };
                if text.len() > config.max_frame_bytes {
                    break End::TooBig;
                }
                in_counter.inc();
                if window.0.elapsed().as_secs() >= 1 {
                    window = (Instant::now(), 0);
                }
                window.1 += 1;
                if window.1 > config.max_messages_per_sec {
                    break End::Flood;
                }
                if let Some(reply) = handle_text(hub, id, text.as_str()).await {
                    if let Some(end) = send_or_stop(sink, &kill, &slow, reply).await { break end }
                    out_counter.inc();
                }
            }
            Some(message) = outgoing.recv() => {
                if let Some(end) = send_or_stop(sink, &kill, &slow, message).await { break end }
                out_counter.inc();
            }
            _ = ping.tick() => {
                let silent = hub.now_ms().saturating_sub(last_seen_ms.load(Ordering::Relaxed));
                if silent > 2 * config.heartbeat.as_millis() as u64 {
                    break End::Silent;
                }
                if let Some(end) = send_or_stop(sink, &kill, &slow, Message::Ping(Default::default())).await { break end }
            }
        }
    };
    drop(registration); // the one cleanup, on every path (also when this future is dropped)
    end
}

/// Sends unless the session is killed meanwhile (a slow reader must not hold the task forever).
/// `None` when sent; otherwise why the session ends: the sink failed (`Dropped`), or it was killed
/// while sending, which is how a slow reader is usually caught (its socket stopped taking bytes,
/// so the send is pending when its queue overflows).
async fn send_or_stop<S: Sink<Message> + Unpin>(
    sink: &mut S,
    kill: &CancellationToken,
    slow: &AtomicBool,
    message: Message,
) -> Option<End> {
    tokio::select! {
        () = kill.cancelled() => Some(killed(slow)),
        r = sink.send(message) => r.is_err().then_some(End::Dropped),
    }
}

/// Why a killed session ends: a broadcast found its queue full (a slow reader, 1013), else the
/// reaper found it silent (1001).
fn killed(slow: &AtomicBool) -> End {
    if slow.load(Ordering::Relaxed) {
        End::SlowReader
    } else {
        End::Silent
    }
}

async fn send_close<S: Sink<Message> + Unpin>(
    sink: &mut S,
    code: u16,
    reason: &'static str,
) -> bool {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let sent = tokio::time::timeout(std::time::Duration::from_secs(1), sink.send(frame)).await;
    matches!(sent, Ok(Ok(())))
}

fn envelope<P: Serialize>(kind: &str, payload: &P) -> Message {
    let text = serde_json::to_string(&Envelope::new(kind, payload, now_epoch_ms()))
        .unwrap_or_else(|_| String::from(r#"{"type":"error","payload":null,"timestamp":0}"#));
    Message::Text(Utf8Bytes::from(text))
}

fn error_message(code: &str, message: &str) -> Message {
    envelope(
        ws::ERROR,
        &ws::ErrorPayload {
            code: code.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// Answers one text frame (or nothing).
async fn handle_text(hub: &Hub, id: u64, text: &str) -> Option<Message> {
    let frame: Envelope<serde_json::Value> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return Some(error_message(
                "bad_frame",
                &format!("expected {{\"type\", \"payload\", \"timestamp\"}} JSON: {e}"),
            ))
        }
    };
    match frame.kind.as_str() {
        ws::PING => {
            let timestamp = frame.payload.get("timestamp").cloned().unwrap_or_default();
            Some(envelope(
                ws::PONG,
                &serde_json::json!({ "timestamp": timestamp }),
            ))
        }
        ws::PONG => None,
        ws::SUBSCRIBE | ws::UNSUBSCRIBE => {
            let topics: ws::Topics = match serde_json::from_value(frame.payload) {
                Ok(t) => t,
                Err(_) => {
                    return Some(error_message(
                        "bad_payload",
                        "payload.topics must be an array of strings",
                    ))
                }
            };
            if frame.kind == ws::UNSUBSCRIBE {
                hub.leave(id, &topics.topics);
                None
            } else {
                hub.join(id, &topics.topics)
                    .err()
                    .map(|e| error_message("bad_topics", &e.to_string()))
            }
        }
        vigil_protocol::orders::SYNC => match hub.inner.store.recent_orders(50).await {
            Ok(orders) => Some(envelope(
                vigil_protocol::orders::SNAPSHOT,
                &vigil_protocol::orders::Snapshot { orders },
            )),
            Err(e) => {
                tracing::error!(error = ?e, "orders:sync failed");
                Some(error_message("storage", "could not read the orders"))
            }
        },
        other => Some(error_message(
            "unknown_type",
            &format!("unknown message type {other:?}"),
        )),
    }
}
