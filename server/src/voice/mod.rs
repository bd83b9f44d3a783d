//! The voice peer (`/voice/*`): a realtime-compatible WebRTC peer for development and tests.
//!
//! - [`keys`] (pure): single-use `ek_…` keys with expiry, bounded (full: new keys refused).
//! - [`vad`] (pure): the speech detector over RFC 6464 audio levels.
//! - [`events`] (pure): the `oai-events` data channel types and what to answer.
//! - [`peer`]: the shell, one tokio task per call owning its `str0m::Rtc` and UDP socket.
//!
//! [`VoiceHub`] ties them: it mints keys, opens calls under a cap, keeps the calls map and the
//! `vigil_voice_sessions` gauge, and on shutdown stops every peer and waits for them. A call
//! leaves the map in one place, the drop of its [`Slot`], so every end path cleans the same way.
//!
//! UDP: each call binds its own socket on the `--voice-udp` IP. With port 0 (the default) the
//! system picks a free port per call; with a port `P`, calls take the first free port of
//! `P..P+max_sessions`, so a firewall rule can name the range.

pub mod events;
pub mod keys;
pub mod peer;
pub mod routes;
pub mod vad;

pub use routes::routes;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use str0m::change::SdpOffer;
use str0m::{Candidate, RtcConfig};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_protocol::{ClientSecret, VoiceSession};

use crate::ingest::ratelimit::Rate;
use crate::metrics::Metrics;
use crate::perip::PerIp;
use events::Conversation;
use keys::{KeyError, KeyStore};
use vad::VadConfig;

/// Where the page posts its offer (the `realtime_url` of a minted session).
pub const REALTIME_PATH: &str = "/voice/realtime";
/// Where a call lives (`Location` of the answer).
pub const CALLS_PATH: &str = "/voice/calls";
/// Largest SDP offer read.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// Limits and timings of the voice peer.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    /// The IP (and optional first port) calls bind their UDP sockets to.
    pub udp: SocketAddr,
    /// Calls at once; more are refused with 503.
    pub max_sessions: usize,
    /// How long a minted key works.
    pub key_ttl: Duration,
    /// Keys outstanding at once; past it new keys are refused (503 with `Retry-After`) until one
    /// is spent or expires.
    pub max_keys: usize,
    /// How long ICE + DTLS may take before the call is ended (an offer that never connects holds
    /// a call place this long).
    pub connect_timeout: Duration,
    /// The longest a call may last; it is then ended (`max_length`).
    pub max_call: Duration,
    /// Keys one IP may mint (`POST /voice/session`) when it is not the operator (`--demo`).
    pub mint_per_ip: Rate,
    /// Offers one IP may post (`POST /voice/realtime`), whoever minted its keys.
    pub calls_per_ip: Rate,
    /// Calls one IP may hold at once (an IPv6 client by its /64); more are refused with 429.
    pub max_calls_per_ip: usize,
    /// How long shutdown waits for peers to end.
    pub shutdown_grace: Duration,
    /// The speech detector's defaults.
    pub vad: VadConfig,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_sessions: 16,
            key_ttl: Duration::from_secs(60),
            max_keys: 1024,
            connect_timeout: Duration::from_secs(10),
            max_call: Duration::from_secs(30 * 60),
            mint_per_ip: Rate {
                per_sec: 1.0,
                burst: 30.0,
            },
            calls_per_ip: Rate {
                per_sec: 1.0,
                burst: 30.0,
            },
            max_calls_per_ip: 4,
            shutdown_grace: Duration::from_secs(2),
            vad: VadConfig::default(),
        }
    }
}

impl VoiceConfig {
    /// The defaults with the flags of `config` (`--voice-udp`, `--voice-max-sessions`,
    /// `--voice-max-call`, `--voice-max-calls-per-ip`).
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            udp: config.voice_udp,
            max_sessions: config.voice_max_sessions,
            max_call: config.voice_max_call,
            max_calls_per_ip: config.voice_max_calls_per_ip,
            ..Self::default()
        }
    }
}

/// Why a call was not opened.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// No `Authorization: Bearer ek_…`.
    #[error("missing Authorization: Bearer ek_… (mint one with POST /voice/session)")]
    MissingKey,
    /// The key is unknown, spent or expired.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The body is not an SDP offer.
    #[error("{0}")]
    BadOffer(String),
    /// At the cap of concurrent calls.
    #[error("the voice peer holds its maximum of {0} sessions")]
    Full(usize),
    /// The caller's IP holds its maximum of calls; the connect timeout (in seconds) is the
    /// soonest one of them may end by itself.
    #[error("this address holds its maximum of {0} calls")]
    TooManyCalls(usize, u64),
    /// The key store is full of live keys; the first expires after this.
    #[error("the voice key store is full; retry after {0:?}")]
    KeysFull(Duration),
    /// Over this IP's limit; retry after this many seconds.
    #[error("rate limited: retry after {0} s")]
    RateLimited(u64),
    /// The server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The key table every instance shares (PostgreSQL) could not be reached.
    #[error("the voice key store is unreachable: {0}")]
    KeyStoreUnreachable(String),
    /// No UDP socket could be bound.
    #[error("cannot bind a UDP socket on {0}: {1}")]
    Socket(SocketAddr, #[source] std::io::Error),
}

/// An opened call: its id and the SDP answer.
#[derive(Debug, Clone)]
pub struct Call {
    /// `rtc_…`, the last segment of `Location`.
    pub id: String,
    /// The SDP answer (the response body).
    pub answer: String,
}

/// The voice peer's state, cheap to clone.
#[derive(Debug, Clone)]
pub struct VoiceHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: VoiceConfig,
    metrics: Metrics,
    keys: Mutex<KeyStore>,
    /// Set when instances share one PostgreSQL: keys live in its table instead of `keys`.
    shared_keys: OnceLock<crate::cluster::Cluster>,
    /// Live calls: the stop token and the caller's [`crate::perip::key`] of each.
    calls: Mutex<HashMap<String, (CancellationToken, String)>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    mint_per_ip: PerIp,
    calls_per_ip: PerIp,
}

impl VoiceHub {
    /// A voice peer that stops its calls when `shutdown` is cancelled.
    pub fn new(config: VoiceConfig, metrics: Metrics, shutdown: CancellationToken) -> Self {
        let keys = KeyStore::new(config.key_ttl, config.max_keys);
        Self {
            inner: Arc::new(Inner {
                mint_per_ip: PerIp::new(config.mint_per_ip),
                calls_per_ip: PerIp::new(config.calls_per_ip),
                config,
                metrics,
                keys: Mutex::new(keys),
                shared_keys: OnceLock::new(),
                calls: Mutex::default(),
                shutdown,
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// The limits.
    pub fn config(&self) -> &VoiceConfig {
        &self.inner.config
    }

    /// Live calls.
    pub fn session_count(&self) -> usize {
        lock(&self.inner.calls).len()
    }

    /// Keeps keys in the table every instance of `cluster` shares, so a key minted by one is
    /// spent by any (once). Without it keys stay in this process's memory (SQLite, one server).
    pub fn share_keys(&self, cluster: crate::cluster::Cluster) {
        let _ = self.inner.shared_keys.set(cluster);
    }

    /// Keys outstanding in this process's memory (the shared table: `Cluster::key_count`).
    pub fn key_count(&self) -> usize {
        lock(&self.inner.keys).len()
    }

    /// Takes one of `ip`'s mint tokens (a page under `--demo`; the operator is not limited).
    pub fn admit_mint(&self, ip: IpAddr) -> Result<(), VoiceError> {
        self.admit(&self.inner.mint_per_ip, "voice_session", ip)
    }

    fn admit(&self, limit: &PerIp, route: &str, ip: IpAddr) -> Result<(), VoiceError> {
        limit.check(ip).map_err(|secs| {
            self.inner
                .metrics
                .requests_refused
                .with_label_values(&[route, "rate_limited"])
                .inc();
            VoiceError::RateLimited(secs)
        })
    }

    /// `POST /voice/session`: a fresh single-use key, or [`VoiceError::KeysFull`] (counted) when
    /// the store holds its maximum of live keys: a live key is never pushed out.
    pub async fn mint(&self) -> Result<VoiceSession, VoiceError> {
        let value = keys::new_key();
        if let Some(cluster) = self.inner.shared_keys.get() {
            let config = &self.inner.config;
            let minted = cluster
                .mint_key(&value, config.key_ttl, config.max_keys)
                .await
                .map_err(|e| VoiceError::KeyStoreUnreachable(e.to_string()))?;
            return match minted {
                Ok(expires_ms) => Ok(VoiceSession {
                    client_secret: ClientSecret {
                        value,
                        expires_at: u64::try_from(expires_ms / 1000).unwrap_or(0),
                    },
                    realtime_url: REALTIME_PATH.into(),
                }),
                Err(full) => Err(self.refuse_full(full)),
            };
        }
        let (inserted, dropped_before, dropped_after) = {
            let mut store = lock(&self.inner.keys);
            let before = store.dropped();
            let inserted = store.insert(value.clone(), Instant::now());
            (inserted, before, store.dropped())
        };
        self.count_dropped(dropped_before, dropped_after);
        if let Err(full) = inserted {
            return Err(self.refuse_full(full));
        }
        let expires_at = SystemTime::now()
            .checked_add(self.inner.config.key_ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Ok(VoiceSession {
            client_secret: ClientSecret { value, expires_at },
            realtime_url: REALTIME_PATH.into(),
        })
    }

    fn refuse_full(&self, full: keys::Full) -> VoiceError {
        self.inner
            .metrics
            .requests_refused
            .with_label_values(&["voice_session", "keys_full"])
            .inc();
        VoiceError::KeysFull(full.retry_after)
    }

    /// `POST /voice/realtime` from `ip`: takes one of the IP's call tokens (a refusal spends no
    /// key), spends `key` (the request's bearer token, read by `access::bearer`), accepts the
    /// SDP `offer`, and starts the peer. The
    /// key is spent by any attempt it authorizes, even one that fails later.
    pub async fn open_call(
        &self,
        ip: IpAddr,
        key: Option<&str>,
        content_type: Option<&str>,
        offer: &[u8],
    ) -> Result<Call, VoiceError> {
        self.admit(&self.inner.calls_per_ip, "voice_realtime", ip)?;
        let key = key
            .filter(|k| !k.is_empty())
            .ok_or(VoiceError::MissingKey)?;
        self.redeem(key).await?;
        let offer = parse_offer(content_type, offer)?;
        let slot = self.reserve(ip)?;
        let socket = bind_socket(self.inner.config.udp, self.inner.config.max_sessions).await?;
        let local = socket
            .local_addr()
            .map_err(|e| VoiceError::Socket(self.inner.config.udp, e))?;
        let mut rtc = RtcConfig::new().set_ice_lite(true).build(Instant::now());
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| VoiceError::Socket(local, std::io::Error::other(e.to_string())))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| VoiceError::BadOffer(format!("the offer cannot be answered: {e}")))?;
        let conversation =
            Conversation::new(&format!("sess_{}", &slot.id[4..]), self.inner.config.vad);
        let peer = peer::Peer {
            rtc,
            socket,
            local,
            stop: slot.stop.clone(),
            conversation,
            vad: self.inner.config.vad,
            connect_timeout: self.inner.config.connect_timeout,
            max_length: self.inner.config.max_call,
        };
        let id = slot.id.clone();
        let metrics = self.inner.metrics.clone();
        self.inner.tasks.spawn(async move {
            let (end, stats) = peer::run(peer).await;
            metrics
                .voice_sessions_ended
                .with_label_values(&[end.reason()])
                .inc();
            tracing::debug!(call = %slot.id, reason = end.reason(), ?stats, "voice call ended");
            drop(slot);
        });
        Ok(Call {
            id,
            answer: answer.to_sdp_string(),
        })
    }

    /// Ends the call `id` (its peer sends a close first). Whether it was live.
    pub fn hang_up(&self, id: &str) -> bool {
        lock(&self.inner.calls)
            .get(id)
            .map(|(stop, _)| stop.cancel())
            .is_some()
    }

    /// Stops every call and waits (at most the configured grace) for their tasks to end.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(self.inner.config.shutdown_grace, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.session_count(),
                "voice peers still running after the grace period"
            );
        }
    }

    async fn redeem(&self, key: &str) -> Result<(), VoiceError> {
        if let Some(cluster) = self.inner.shared_keys.get() {
            let verdict = cluster
                .redeem_key(key)
                .await
                .map_err(|e| VoiceError::KeyStoreUnreachable(e.to_string()))?;
            return Ok(verdict?);
        }
        let (result, before, after) = {
            let mut store = lock(&self.inner.keys);
            let before = store.dropped();
            let result = store.redeem(key, Instant::now());
            (result, before, store.dropped())
        };
        self.count_dropped(before, after);
        Ok(result?)
    }

    fn count_dropped(&self, before: keys::Dropped, after: keys::Dropped) {
        let m = &self.inner.metrics.voice_keys_dropped;
        m.with_label_values(&["expired"])
            .inc_by(after.expired - before.expired);
    }

    /// Takes a place under the cap and under `ip`'s share of it, or says why not.
    fn reserve(&self, ip: IpAddr) -> Result<Slot, VoiceError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(VoiceError::ShuttingDown);
        }
        let config = &self.inner.config;
        let caller = crate::perip::key(ip);
        let mut calls = lock(&self.inner.calls);
        if calls.len() >= config.max_sessions {
            return Err(VoiceError::Full(config.max_sessions));
        }
        // At most `max_sessions` entries: counting them is cheaper than keeping a second map.
        let held = calls.values().filter(|(_, c)| *c == caller).count();
        if held >= config.max_calls_per_ip.max(1) {
            self.inner
                .metrics
                .requests_refused
                .with_label_values(&["voice_realtime", "too_many_calls"])
                .inc();
            return Err(VoiceError::TooManyCalls(
                config.max_calls_per_ip.max(1),
                config.connect_timeout.as_secs().max(1),
            ));
        }
        let id = format!("rtc_{}", uuid::Uuid::new_v4().simple());
        let stop = self.inner.shutdown.child_token();
        calls.insert(id.clone(), (stop.clone(), caller));
        self.inner.metrics.voice_sessions.set(calls.len() as i64);
        Ok(Slot {
            inner: self.inner.clone(),
            id,
            stop,
        })
    }
}

/// One call's place in the map; dropping it is the one way a call leaves.
#[derive(Debug)]
struct Slot {
    inner: Arc<Inner>,
    id: String,
    stop: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut calls = lock(&self.inner.calls);
        calls.remove(&self.id);
        self.inner.metrics.voice_sessions.set(calls.len() as i64);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent across a panic in another holder (each update is one call).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The body as an SDP offer, or a reason for the 400 (public for the fuzz targets in `fuzz/`).
pub fn parse_offer(content_type: Option<&str>, body: &[u8]) -> Result<SdpOffer, VoiceError> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if mime.as_deref() != Some("application/sdp") {
        return Err(VoiceError::BadOffer(
            "the body must be an SDP offer with Content-Type: application/sdp".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| VoiceError::BadOffer("the SDP offer is not UTF-8".into()))?;
    if !text.trim_start().starts_with("v=0") {
        return Err(VoiceError::BadOffer(
            "the body is not SDP (it must start with v=0)".into(),
        ));
    }
    SdpOffer::from_sdp_string(text)
        .map_err(|e| VoiceError::BadOffer(format!("the SDP offer does not parse: {e}")))
}

/// A socket for one call: port 0 lets the system choose; a fixed port starts a range.
async fn bind_socket(udp: SocketAddr, max_sessions: usize) -> Result<UdpSocket, VoiceError> {
    if udp.port() == 0 {
        return UdpSocket::bind(udp)
            .await
            .map_err(|e| VoiceError::Socket(udp, e));
    }
    let mut last = None;
    for offset in 0..max_sessions.max(1) {
        let Some(port) = udp.port().checked_add(offset as u16) else {
            break;
        };
        match UdpSocket::bind(SocketAddr::new(udp.ip(), port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(VoiceError::Socket(
        udp,
        last.unwrap_or_else(|| std::io::Error::other("no port left in the range")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER_START: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    #[test]
    fn offers_need_the_sdp_content_type_and_sdp_text() {
        for (ct, body) in [
            (None, OFFER_START),
            (Some("application/json"), OFFER_START),
            (Some("application/sdp"), "{\"sdp\":1}"),
            (Some("application/sdp"), ""),
        ] {
            let e = parse_offer(ct, body.as_bytes()).unwrap_err();
            assert!(matches!(e, VoiceError::BadOffer(_)), "{ct:?} {body:?}: {e}");
        }
        assert!(matches!(
            parse_offer(Some("application/sdp"), b"\xff\xfe"),
            Err(VoiceError::BadOffer(_))
        ));
    }

    #[tokio::test]
    async fn a_fixed_port_starts_a_range() {
        // Find a free port, then take two sockets from it.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap();
        drop(probe);
        let a = bind_socket(base, 4).await.unwrap();
        let b = bind_socket(base, 4).await.unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_eq!(pa, base.port());
        assert!(pb > pa && pb < base.port() + 4, "{pa} {pb}");
        // A range of one, already taken, is an error that names the address.
        let e = bind_socket(base, 1).await.unwrap_err();
        assert!(e.to_string().contains(&base.to_string()), "{e}");
    }
}
