//! The WebSocket hub (`/ws`): sessions in a map keyed by id, topics, and the orders feed.
//!
//! Socket logic ([`session::run`]) is written over `Sink`/`Stream` of axum `Message`s, so unit
//! tests drive it with channels. Every exit path of a session (close, error, timeout, limit, slow
//! reader, shutdown) ends in one place: the session's [`session::Registration`] drop, which takes
//! it out of the map and its topics and sets the `vigil_ws_connections` gauge.

pub mod orders;
pub mod routes;
pub mod session;

pub use routes::routes;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_protocol::Envelope;

use crate::ingest::ratelimit::Rate;
use crate::metrics::Metrics;
use crate::perip::PerIp;
use crate::store::Store;

/// Limits and timings of the hub (server-api.md, `/ws`).
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// Server Ping frames go out this often; two silent intervals close the connection.
    pub heartbeat: Duration,
    /// Frames over this close the connection with 1009.
    pub max_frame_bytes: usize,
    /// More messages than this in one second close the connection with 1008.
    pub max_messages_per_sec: u32,
    /// Messages waiting for a slow reader; when full the reader is closed with 1013.
    pub outgoing_queue: usize,
    /// Topics one session may join.
    pub max_topics_per_session: usize,
    /// Sessions at once; more are refused with 503.
    pub max_sessions: usize,
    /// Sessions at once from one IP address; more are closed with 1013.
    pub max_sessions_per_ip: usize,
    /// Orders kept in the database: inserting one prunes the oldest past this (counted in
    /// `vigil_orders_pruned_total`).
    pub max_orders: u32,
    /// What one IP may post to `POST /api/orders` under `--demo` (the operator is not limited).
    pub orders_per_ip: Rate,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            max_frame_bytes: 64 * 1024,
            max_messages_per_sec: 100,
            outgoing_queue: 256,
            max_topics_per_session: 32,
            max_sessions: 10_000,
            max_sessions_per_ip: 64,
            max_orders: 1000,
            orders_per_ip: Rate {
                per_sec: 1.0,
                burst: 10.0,
            },
        }
    }
}

impl HubConfig {
    /// The defaults, with the connection caps `config` sets.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            max_sessions: config.ws_max_connections,
            max_sessions_per_ip: config.ws_max_connections_per_ip,
            ..Self::default()
        }
    }
}

/// The hub, cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: HubConfig,
    store: Store,
    metrics: Metrics,
    shutdown: CancellationToken,
    sessions: Mutex<Sessions>,
    next_id: AtomicU64,
    started: Instant,
    reaper: Mutex<Option<JoinHandle<()>>>,
    orders_per_ip: PerIp,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<u64, Entry>,
    topics: HashMap<String, HashSet<u64>>,
    /// Live sessions per client address (at most `max_sessions` entries: each has one).
    per_ip: HashMap<std::net::IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    outgoing: mpsc::Sender<Message>,
    kill: CancellationToken,
    /// Set before `kill` when a broadcast found the outgoing queue full: the session ends as a
    /// slow reader (1013) whatever it was doing, even blocked writing to its socket.
    slow: Arc<AtomicBool>,
    last_seen_ms: Arc<AtomicU64>,
    topics: HashSet<String>,
    /// The client's address, when known (counted in `per_ip`).
    ip: Option<std::net::IpAddr>,
}

/// Why a topic change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The session joined its limit of topics.
    #[error("at most {0} topics per connection")]
    TooMany(usize),
    /// A name that is empty, too long or not printable ASCII.
    #[error("topic names are 1 to 64 printable ASCII characters")]
    BadName,
}

impl Hub {
    /// A hub over `store`; it stops its sessions and reaper when `shutdown` is cancelled.
    pub fn new(
        config: HubConfig,
        store: Store,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                orders_per_ip: PerIp::new(config.orders_per_ip),
                config,
                store,
                metrics,
                shutdown,
                sessions: Mutex::default(),
                next_id: AtomicU64::new(1),
                started: Instant::now(),
                reaper: Mutex::new(None),
            }),
        }
    }

    /// The hub's limits.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Sessions in `topic`.
    pub fn topic_size(&self, topic: &str) -> usize {
        self.lock().topics.get(topic).map_or(0, HashSet::len)
    }

    /// Topics with at least one member.
    pub fn topic_count(&self) -> usize {
        self.lock().topics.len()
    }

    /// Starts the idle reaper (once): every heartbeat interval it closes sessions silent for two
    /// intervals, even one stuck writing to a dead peer. Its handle is kept; it ends on shutdown.
    pub fn start_reaper(&self) {
        let mut slot = self.inner.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return;
        }
        let hub = self.clone();
        *slot = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(hub.inner.config.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = hub.inner.shutdown.cancelled() => break,
                    _ = tick.tick() => hub.reap_idle(),
                }
            }
        }));
    }

    /// Waits for the reaper to end (after shutdown).
    pub async fn stop_reaper(&self) {
        let handle = self
            .inner
            .reaper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
    }

    /// Closes every session that has been silent for two heartbeat intervals.
    pub fn reap_idle(&self) {
        let now = self.now_ms();
        let limit = 2 * self.inner.config.heartbeat.as_millis() as u64;
        for entry in self.lock().by_id.values() {
            if now.saturating_sub(entry.last_seen_ms.load(Ordering::Relaxed)) > limit {
                entry.kill.cancel();
            }
        }
    }

    /// Sends `message` to every session in `topic`; a session whose queue is full is closed.
    /// Returns how many sessions it was queued for.
    pub fn broadcast<P: serde::Serialize>(&self, topic: &str, kind: &str, payload: &P) -> usize {
        let Ok(text) = serde_json::to_string(&Envelope::new(kind, payload, now_epoch_ms())) else {
            return 0;
        };
        let message = Message::Text(Utf8Bytes::from(text));
        let sessions = self.lock();
        let Some(members) = sessions.topics.get(topic) else {
            return 0;
        };
        let mut sent = 0;
        for id in members {
            if let Some(entry) = sessions.by_id.get(id) {
                match entry.outgoing.try_send(message.clone()) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        entry.slow.store(true, Ordering::Relaxed);
                        entry.kill.cancel();
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        sent
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the whole hub, so keep serving.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    fn join(&self, id: u64, topics: &[String]) -> Result<(), TopicError> {
        if topics.iter().any(|t| !valid_topic(t)) {
            return Err(TopicError::BadName);
        }
        let max = self.inner.config.max_topics_per_session;
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(entry) = s.by_id.get_mut(&id) else {
            return Ok(());
        };
        let new = topics.iter().filter(|t| !entry.topics.contains(*t)).count();
        if entry.topics.len() + new > max {
            return Err(TopicError::TooMany(max));
        }
        for t in topics {
            entry.topics.insert(t.clone());
            s.topics.entry(t.clone()).or_default().insert(id);
        }
        Ok(())
    }

    fn leave(&self, id: u64, topics: &[String]) {
        let mut guard = self.lock();
        let s = &mut *guard;
        if let Some(entry) = s.by_id.get_mut(&id) {
            for t in topics {
                entry.topics.remove(t);
                remove_member(&mut s.topics, t, id);
            }
        }
    }
}

fn remove_member(topics: &mut HashMap<String, HashSet<u64>>, topic: &str, id: u64) {
    if let Some(members) = topics.get_mut(topic) {
        members.remove(&id);
        if members.is_empty() {
            topics.remove(topic);
        }
    }
}

fn valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic())
}

/// Milliseconds since the Unix epoch.
pub fn now_epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
