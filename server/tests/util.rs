//! Helpers for the server's integration tests.

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_server::store::testdb::TestDatabase;
pub use vigil_server::store::Engine;
use vigil_server::store::Store;
use vigil_server::{app, AppState, Config, Tuning};

/// The admin token every test server uses.
pub const ADMIN: &str = "test-admin";

/// A router over an in-memory database, serving `www/` and `pkg/` from a temporary folder that
/// holds a small `index.html`, `test/page.html` and `vigil_bg.wasm`.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    _dir: tempfile::TempDir,
    /// A PostgreSQL test's database, dropped with the app.
    _database: TestDatabase,
}

/// Runs each `async fn name(engine: Engine)` as two tests, `name::sqlite` and `name::postgres`
/// (PostgreSQL on `VIGIL_TEST_POSTGRES`, a fresh database each), so a failure names its engine.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::util::Engine::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::util::Engine::Postgres).await;
                }
            }
        )*
    };
}
pub(crate) use on_both_engines;

impl TestApp {
    /// A fresh app with the development config (project `1:dev`, admin token [`ADMIN`]).
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// As [`TestApp::new`], storing into a fresh database of `engine`.
    pub async fn on(engine: Engine) -> Self {
        Self::build_on(engine, |_| {}, None, None, |_| {}).await
    }

    /// As [`TestApp::on`], after `tune` edits the tuning the flags give (writer batch, queue).
    pub async fn on_tuned(engine: Engine, tune: impl FnOnce(&mut Tuning)) -> Self {
        Self::build_on(engine, |_| {}, None, None, tune).await
    }

    /// As [`TestApp::new`], after `change` edits the config.
    pub async fn with_config(change: impl FnOnce(&mut Config)) -> Self {
        Self::build(change, None, None).await
    }

    /// As [`TestApp::new`], with the voice peer's limits and timings given (short key TTL, cap).
    pub async fn with_voice(voice: vigil_server::voice::VoiceConfig) -> Self {
        Self::build(|_| {}, None, Some(voice)).await
    }

    /// As [`TestApp::with_config`], with the hub's and the voice peer's settings given too.
    pub async fn with_configs(
        change: impl FnOnce(&mut Config),
        hub: vigil_server::hub::HubConfig,
        voice: vigil_server::voice::VoiceConfig,
    ) -> Self {
        Self::build(change, Some(hub), Some(voice)).await
    }

    /// As [`TestApp::with_config`], after `tune` edits the tuning the flags give (writer batch,
    /// queue).
    pub async fn with_tuning(
        change: impl FnOnce(&mut Config),
        tune: impl FnOnce(&mut Tuning),
    ) -> Self {
        Self::build_on(Engine::Sqlite, change, None, None, tune).await
    }

    async fn build(
        change: impl FnOnce(&mut Config),
        hub: Option<vigil_server::hub::HubConfig>,
        voice: Option<vigil_server::voice::VoiceConfig>,
    ) -> Self {
        Self::build_on(Engine::Sqlite, change, hub, voice, |_| {}).await
    }

    async fn build_on(
        engine: Engine,
        change: impl FnOnce(&mut Config),
        hub: Option<vigil_server::hub::HubConfig>,
        voice: Option<vigil_server::voice::VoiceConfig>,
        tune: impl FnOnce(&mut Tuning),
    ) -> Self {
        let database = TestDatabase::new(engine)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", engine.name()));
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(www.join("test")).unwrap();
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(www.join("index.html"), "<title>Vigil demo</title>").unwrap();
        std::fs::write(www.join("test/page.html"), "<p>test page</p>").unwrap();
        std::fs::create_dir_all(www.join("dashboard")).unwrap();
        std::fs::write(
            www.join("dashboard/login.html"),
            "<form><!--message--><input name=token></form>",
        )
        .unwrap();
        std::fs::write(www.join("dashboard/index.html"), "<main id=view></main>").unwrap();
        std::fs::write(www.join("dashboard/app.js"), "export {};").unwrap();
        std::fs::write(pkg.join("vigil_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(pkg.join("vigil.js"), "export default 1;").unwrap();
        let mut config = Config::for_tests(&database.url);
        config.www = www;
        config.pkg = pkg;
        change(&mut config);
        let store = Store::connect(&config.database_url).await.unwrap();
        let mut tuning = Tuning::from_config(&config);
        tuning.hub = hub.unwrap_or_default();
        if let Some(voice) = voice {
            tuning.voice = voice;
        }
        tune(&mut tuning);
        let state = AppState::new(&config, store, tuning);
        Self {
            router: app(state.clone()),
            state,
            _dir: dir,
            _database: database,
        }
    }

    /// The temporary folder holding `www/` and `pkg/`.
    pub fn state_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Sends one request through the router.
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// `GET path`, with the admin token when `admin` is true.
    pub async fn get(&self, path: &str, admin: bool) -> Response<Body> {
        let mut req = Request::get(path);
        if admin {
            req = req.header("authorization", format!("Bearer {ADMIN}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

/// The whole body as text.
pub async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The whole body as JSON.
pub async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).unwrap()
}

/// A real server on `127.0.0.1:0` with the given hub settings, serving until dropped.
pub struct LiveServer {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl LiveServer {
    /// Binds and serves in the background.
    pub async fn start(hub: vigil_server::hub::HubConfig) -> Self {
        Self::start_with_voice(hub, vigil_server::voice::VoiceConfig::default()).await
    }

    /// As [`LiveServer::start`], with the voice peer's limits and timings given too.
    pub async fn start_with_voice(
        hub: vigil_server::hub::HubConfig,
        voice: vigil_server::voice::VoiceConfig,
    ) -> Self {
        Self::start_with(hub, voice, |_| {}).await
    }

    /// As [`LiveServer::start`], after `change` edits the config (connection limits, timeouts).
    pub async fn start_with_config(change: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(
            vigil_server::hub::HubConfig::default(),
            vigil_server::voice::VoiceConfig::default(),
            change,
        )
        .await
    }

    /// As [`LiveServer::start_with_voice`], after `change` edits the config.
    pub async fn start_with(
        hub: vigil_server::hub::HubConfig,
        voice: vigil_server::voice::VoiceConfig,
        change: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(&format!("sqlite://{}/vigil.db", dir.path().display()));
        config.www = dir.path().to_path_buf();
        config.pkg = dir.path().to_path_buf();
        change(&mut config);
        let tuning = Tuning {
            hub,
            voice,
            ..Tuning::from_config(&config)
        };
        let server = vigil_server::Server::bind(&config, tuning).await.unwrap();
        let addr = server.local_addr();
        let state = server.state().clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            state,
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    /// `ws://ADDR/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Waits (at most 3 s) until the hub holds `n` sessions and the gauge says the same.
    pub async fn wait_sessions(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let count = self.state.hub().session_count();
            let gauge = self.state.metrics().ws_connections.get();
            if count == n && gauge == n as i64 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {n} sessions, hub has {count}, gauge says {gauge}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// `http://ADDR{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits (at most 5 s) until the voice peer holds `n` calls and the gauge says the same.
    pub async fn wait_voice_sessions(&self, n: usize) {
        wait_voice_sessions(&self.state, n).await;
    }

    /// Shuts down gracefully and waits for the serve task.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("shutdown within 5 s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits (at most 5 s) until `state`'s voice peer holds `n` calls and `vigil_voice_sessions`
/// says the same.
pub async fn wait_voice_sessions(state: &AppState, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let count = state.voice().session_count();
        let gauge = state.metrics().voice_sessions.get();
        if count == n && gauge == n as i64 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} voice calls, the peer has {count}, the gauge says {gauge}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A `str0m` peer playing the browser's part of the OpenAI Realtime flow over 127.0.0.1 UDP:
/// it offers a sendrecv audio track and the `oai-events` data channel, like `VoiceConnection`.
///
/// Use: [`RtcClient::new`] gives the offer SDP; POST it; [`RtcClient::accept_answer`]; then
/// [`RtcClient::drive_until`] runs the network until a condition holds. Each `send_*` call is one
/// str0m mutation: call `drive_until` (which drains first) before the next one.
pub struct RtcClient {
    pub rtc: str0m::Rtc,
    socket: tokio::net::UdpSocket,
    local: std::net::SocketAddr,
    pending: Option<str0m::change::SdpPendingOffer>,
    /// The audio track's mid.
    pub mid: str0m::media::Mid,
    /// The events channel.
    pub channel: str0m::channel::ChannelId,
    /// ICE + DTLS are up.
    pub connected: bool,
    /// The events channel is open.
    pub open: bool,
    /// The events channel was closed by the server.
    pub channel_closed: bool,
    /// ICE reported the server gone.
    pub disconnected: bool,
    /// The engine's error, when `poll_output` failed (the client is then unusable).
    pub failed: Option<String>,
    /// Every message received on the events channel, parsed as JSON.
    pub events: Vec<serde_json::Value>,
    /// Every media frame received (the server's echo).
    pub media: Vec<Vec<u8>>,
    rtp_time: u64,
}

impl RtcClient {
    /// A client with its own socket on 127.0.0.1 and its offer SDP.
    pub async fn new() -> (Self, String) {
        use str0m::media::{Direction, MediaKind};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = str0m::RtcConfig::new().build(std::time::Instant::now());
        rtc.add_local_candidate(str0m::Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let channel = change.add_channel("oai-events".into());
        let (offer, pending) = change.apply().unwrap();
        let client = Self {
            rtc,
            socket,
            local,
            pending: Some(pending),
            mid,
            channel,
            connected: false,
            open: false,
            channel_closed: false,
            disconnected: false,
            failed: None,
            events: Vec::new(),
            media: Vec::new(),
            rtp_time: 0,
        };
        (client, offer.to_sdp_string())
    }

    /// Applies the server's SDP answer.
    pub fn accept_answer(&mut self, sdp: &str) {
        let answer = str0m::change::SdpAnswer::from_sdp_string(sdp).unwrap();
        let pending = self.pending.take().expect("one answer per offer");
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Runs the network (drain, then wait for a datagram or a timeout) until `done` holds or
    /// `timeout` passes; returns whether `done` held.
    pub async fn drive_until(
        &mut self,
        timeout: std::time::Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        use str0m::{Event, IceConnectionState, Input, Output};
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 2048];
        loop {
            let next = loop {
                let output = match self.rtc.poll_output() {
                    Ok(o) => o,
                    // The engine gave up on the connection (e.g. the server vanished mid-close).
                    Err(e) => {
                        self.failed = Some(e.to_string());
                        return done(self);
                    }
                };
                match output {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(e) => match e {
                        Event::Connected => self.connected = true,
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            self.disconnected = true
                        }
                        Event::ChannelOpen(id, _) if id == self.channel => self.open = true,
                        Event::ChannelClose(id) if id == self.channel => self.channel_closed = true,
                        Event::ChannelData(d) if d.id == self.channel => {
                            self.events.push(serde_json::from_slice(&d.data).unwrap())
                        }
                        Event::MediaData(d) => self.media.push(d.data.to_vec()),
                        _ => {}
                    },
                }
            };
            if done(self) {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline || !self.rtc.is_alive() || self.failed.is_some() {
                return false;
            }
            let wake = tokio::time::Instant::from_std(next.min(deadline));
            let input = tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let (n, source) = r.unwrap();
                    Input::Receive(std::time::Instant::now(), str0m::net::Receive {
                        proto: str0m::net::Protocol::Udp,
                        source,
                        destination: self.local,
                        contents: buf[..n].try_into().unwrap(),
                    })
                }
                () = tokio::time::sleep_until(wake) => Input::Timeout(std::time::Instant::now()),
            };
            if let Err(e) = self.rtc.handle_input(input) {
                self.failed = Some(e.to_string());
                return done(self);
            }
        }
    }

    /// Sends `text` on the events channel.
    pub fn send_text(&mut self, text: &str) {
        let mut channel = self.rtc.channel(self.channel).expect("the channel is open");
        assert!(channel.write(false, text.as_bytes()).unwrap());
    }

    /// Sends one 20 ms Opus frame carrying `payload`, with the RFC 6464 audio level `level`
    /// (-dBov: 0 loud, 127 silence) in its header extension.
    pub fn send_audio(&mut self, payload: &[u8], level: u8) {
        use str0m::media::{Frequency, MediaTime};
        let time = MediaTime::new(self.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_time += 960;
        let writer = self.rtc.writer(self.mid).expect("the audio track exists");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == str0m::format::Codec::Opus)
            .expect("opus was negotiated")
            .pt();
        writer
            .audio_level(-(level.min(127) as i8), level < 127)
            .write(pt, std::time::Instant::now(), time, payload.to_vec())
            .unwrap();
    }

    /// Whether the call is over for this client: the server closed the channel or the peer
    /// connection (str0m may report a DTLS close as an engine error).
    pub fn is_ended(&self) -> bool {
        self.channel_closed || !self.rtc.is_alive() || self.failed.is_some()
    }

    /// The `type`s of the events received so far.
    pub fn event_types(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}
