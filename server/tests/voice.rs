//! `/voice/*`: key minting and refusals in-process, then real calls from a `str0m` client over
//! 127.0.0.1 UDP against the live server (events, echo, speech events, hang-up, shutdown).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use vigil_server::voice::vad::VadConfig;
use vigil_server::voice::VoiceConfig;

use crate::util::{json, text, wait_voice_sessions, LiveServer, RtcClient, TestApp, ADMIN};

const WAIT: Duration = Duration::from_secs(5);

/// Mints a key as the operator (the admin token).
async fn mint(app: &TestApp) -> String {
    let res = app.send(mint_request(Some(ADMIN))).await;
    assert_eq!(res.status(), StatusCode::OK);
    json(res).await["client_secret"]["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `POST /voice/session`, with `Authorization: Bearer <token>` when given.
fn mint_request(token: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/voice/session");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

fn offer_request(key: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post("/voice/realtime").header("content-type", content_type);
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    r.body(body.into()).unwrap()
}

async fn offer() -> String {
    RtcClient::new().await.1
}

/// Asserts a JSON `{ error }` body with `status`, and returns the reason.
async fn refused(res: axum::http::Response<Body>, status: StatusCode) -> String {
    assert_eq!(res.status(), status);
    let body = json(res).await;
    body["error"].as_str().expect("an error reason").to_owned()
}

#[tokio::test]
async fn session_mints_single_use_keys_in_the_realtime_shape() {
    let app = TestApp::new().await;
    let res = app.send(mint_request(Some(ADMIN))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json(res).await;
    let key = body["client_secret"]["value"].as_str().unwrap();
    assert!(key.starts_with("ek_") && key.len() > 20, "{key}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = body["client_secret"]["expires_at"].as_u64().unwrap();
    assert!(
        (now + 55..=now + 61).contains(&expires_at),
        "{expires_at} vs {now}"
    );
    assert_eq!(body["realtime_url"], "/voice/realtime");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["client_secret", "realtime_url"]
    );
    assert_ne!(mint(&app).await, key);
    assert_eq!(app.state.voice().key_count(), 2);
}

#[tokio::test]
async fn realtime_answers_201_with_sdp_and_location() {
    let app = TestApp::new().await;
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", offer().await))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["content-type"], "application/sdp");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/voice/calls/rtc_"), "{location}");
    let answer = text(res).await;
    assert!(answer.starts_with("v=0"), "{answer}");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains("typ host") && answer.contains("127.0.0.1"),
        "{answer}"
    );
    assert!(
        answer.contains("m=audio") && answer.contains("a=sendrecv"),
        "{answer}"
    );
    assert!(answer.contains("webrtc-datachannel"), "{answer}");
    assert_eq!(app.state.voice().session_count(), 1);
    assert_eq!(app.state.metrics().voice_sessions.get(), 1);
}

/// An offer as Chromium writes it for `VoiceConnection` (mic track + `oai-events`), with an mDNS
/// host candidate (Chromium hides local IPs behind `….local` names, which str0m cannot parse).
const CHROMIUM_OFFER: &str = "v=0\r
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1\r
a=extmap-allow-mixed\r
a=msid-semantic: WMS stream\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r
c=IN IP4 0.0.0.0\r
a=rtcp:9 IN IP4 0.0.0.0\r
a=candidate:2999745851 1 udp 2122260223 4e1f1c8a-0f0e-4b5e-9d8b-1c2d3e4f5a6b.local 54321 typ host generation 0 network-id 1\r
a=ice-ufrag:Zx9b\r
a=ice-pwd:aBcDeFgHiJkLmNoPqRsTuVwX\r
a=ice-options:trickle\r
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r
a=setup:actpass\r
a=mid:0\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=sendrecv\r
a=msid:stream track\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:111 opus/48000/2\r
a=rtcp-fb:111 transport-cc\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:63 red/48000/2\r
a=fmtp:63 111/111\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:13 CN/8000\r
a=rtpmap:110 telephone-event/48000\r
a=rtpmap:126 telephone-event/8000\r
a=ssrc:1234567 cname:q1w2e3r4t5y6u7i8\r
a=ssrc:1234567 msid:stream track\r
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
c=IN IP4 0.0.0.0\r
a=candidate:2999745851 1 udp 2122260223 4e1f1c8a-0f0e-4b5e-9d8b-1c2d3e4f5a6b.local 54321 typ host generation 0 network-id 1\r
a=ice-ufrag:Zx9b\r
a=ice-pwd:aBcDeFgHiJkLmNoPqRsTuVwX\r
a=ice-options:trickle\r
a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r
a=setup:actpass\r
a=mid:1\r
a=sctp-port:5000\r
a=max-message-size:262144\r
";

#[tokio::test]
async fn a_chromium_offer_with_mdns_candidates_is_answered() {
    let app = TestApp::new().await;
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", CHROMIUM_OFFER))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let answer = text(res).await;
    for needle in [
        "a=ice-lite",
        "a=mid:0",
        "a=mid:1",
        "a=sendrecv",
        "opus/48000/2",
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "webrtc-datachannel",
        "a=setup:passive",
    ] {
        assert!(answer.contains(needle), "{needle} missing from\n{answer}");
    }
}

#[tokio::test]
async fn realtime_refuses_missing_unknown_and_reused_keys_with_401() {
    let app = TestApp::new().await;
    let sdp = offer().await;
    let reason = refused(
        app.send(offer_request(None, "application/sdp", sdp.clone()))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(reason.contains("Bearer"), "{reason}");
    let reason = refused(
        app.send(offer_request(
            Some("ek_nope"),
            "application/sdp",
            sdp.clone(),
        ))
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(reason, "unknown or already used key");

    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", sdp.clone()))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reason = refused(
        app.send(offer_request(Some(&key), "application/sdp", sdp))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(reason, "unknown or already used key");
    assert_eq!(app.state.voice().session_count(), 1);
}

#[tokio::test]
async fn realtime_refuses_expired_keys_with_401_and_counts_them() {
    let app = TestApp::with_voice(VoiceConfig {
        key_ttl: Duration::from_millis(50),
        ..VoiceConfig::default()
    })
    .await;
    let key = mint(&app).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let reason = refused(
        app.send(offer_request(Some(&key), "application/sdp", offer().await))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(reason, "the key expired");
    let metrics = app.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_keys_dropped_total{reason=\"expired\"} 1"),
        "{metrics}"
    );
    assert_eq!(app.state.voice().session_count(), 0);
}

#[tokio::test]
async fn realtime_answers_bodies_that_are_not_sdp_offers_with_400() {
    let app = TestApp::new().await;
    for (content_type, body) in [
        ("application/json", r#"{"sdp":"v=0"}"#.to_owned()),
        ("application/sdp", "hello".to_owned()),
        ("application/sdp", "v=0\r\nthis is not sdp\r\n".to_owned()),
        ("text/plain", offer().await),
    ] {
        let key = mint(&app).await;
        let reason = refused(
            app.send(offer_request(Some(&key), content_type, body.clone()))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(!reason.is_empty(), "{content_type} {body}");
    }
    // Over the 64 KiB limit: refused before being read whole.
    let key = mint(&app).await;
    let res = app
        .send(offer_request(
            Some(&key),
            "application/sdp",
            "v".repeat(70_000),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.state.voice().session_count(), 0);
}

#[tokio::test]
async fn calls_past_the_cap_get_503_until_one_hangs_up() {
    let app = TestApp::with_voice(VoiceConfig {
        max_sessions: 1,
        ..VoiceConfig::default()
    })
    .await;
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", offer().await))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();

    let key = mint(&app).await;
    let reason = refused(
        app.send(offer_request(Some(&key), "application/sdp", offer().await))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(reason.contains("maximum"), "{reason}");

    let hang_up = |path: String| Request::delete(path).body(Body::empty()).unwrap();
    assert_eq!(
        app.send(hang_up(location.clone())).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_voice_sessions(&app.state, 0).await;
    assert_eq!(
        app.send(hang_up(location)).await.status(),
        StatusCode::NOT_FOUND
    );
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", offer().await))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// A live server whose detector reacts quickly (so the test sends little audio).
async fn live() -> LiveServer {
    LiveServer::start_with_voice(
        vigil_server::hub::HubConfig::default(),
        VoiceConfig {
            vad: VadConfig {
                threshold: 50,
                min_speech_ms: 60,
                silence_duration_ms: 200,
                prefix_padding_ms: 0,
            },
            ..VoiceConfig::default()
        },
    )
    .await
}

/// Mints a key and posts `offer` over HTTP; returns the answer, the `Location` and how long the
/// POST took.
async fn call(server: &impl Base, offer: &str) -> (String, String, Duration) {
    let http = reqwest::Client::new();
    let session: Value = http
        .post(server.url("/voice/session"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = session["client_secret"]["value"].as_str().unwrap();
    let url = server.url(session["realtime_url"].as_str().unwrap());
    let started = Instant::now();
    let res = http
        .post(url)
        .header("content-type", "application/sdp")
        .header("authorization", format!("Bearer {key}"))
        .body(offer.to_owned())
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    (res.text().await.unwrap(), location, took)
}

/// A client whose events channel is open and has received `session.created`; also returns the
/// POST time and the time from creating the offer to the channel opening.
async fn connected(server: &impl Base) -> (RtcClient, String, Duration, Duration) {
    let started = Instant::now();
    let (mut client, offer) = RtcClient::new().await;
    let (answer, location, post) = call(server, &offer).await;
    client.accept_answer(&answer);
    assert!(
        client.drive_until(WAIT, |c| c.open).await,
        "the events channel did not open"
    );
    let open = started.elapsed();
    assert!(
        client.drive_until(WAIT, |c| !c.events.is_empty()).await,
        "no session.created"
    );
    (client, location, post, open)
}

/// Drives until an event of `kind` arrives; returns it.
async fn expect_event(client: &mut RtcClient, kind: &str) -> Value {
    let seen = client.events.len();
    expect_event_since(client, kind, seen).await
}

/// Drives until an event of `kind` is among the events from index `seen` on; returns it.
async fn expect_event_since(client: &mut RtcClient, kind: &str, seen: usize) -> Value {
    assert!(
        client
            .drive_until(WAIT, |c| c.events[seen..].iter().any(|e| e["type"] == kind))
            .await,
        "no {kind}; got {:?}",
        client.event_types()
    );
    client.events[seen..]
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_str0m_client_gets_events_speech_and_its_audio_echoed() {
    let server = live().await;
    let (mut client, _location, post, open) = connected(&server).await;
    eprintln!("voice: POST /voice/realtime {post:?}, offer to channel open {open:?}");
    server.wait_voice_sessions(1).await;

    let created = client.events[0].clone();
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["type"], "realtime");
    assert!(created["session"]["id"]
        .as_str()
        .unwrap()
        .starts_with("sess_"));

    client.send_text(
        &json!({"type":"session.update","session":{"type":"realtime","instructions":"echo me"}})
            .to_string(),
    );
    let updated = expect_event(&mut client, "session.updated").await;
    assert_eq!(updated["session"]["instructions"], "echo me");
    assert_eq!(updated["session"]["id"], created["session"]["id"]);

    client.send_text(r#"{"type":"bogus","event_id":"evt_1"}"#);
    let error = expect_event(&mut client, "error").await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["code"], "unknown_event");
    assert_eq!(error["error"]["event_id"], "evt_1");

    client.send_text("not json");
    let error = expect_event(&mut client, "error").await;
    assert_eq!(error["error"]["code"], "invalid_json");

    // 400 ms of loud frames, then 400 ms of silence, paced at 20 ms like a microphone.
    let mut sent = Vec::new();
    let mark = client.events.len();
    for i in 0..40u8 {
        let payload = vec![0xfc, i, i.wrapping_mul(7), 0x42];
        client.send_audio(&payload, if i < 20 { 20 } else { 127 });
        sent.push(payload);
        client
            .drive_until(Duration::from_millis(20), |_| false)
            .await;
    }
    let started = expect_event_since(&mut client, "input_audio_buffer.speech_started", mark).await;
    let stopped = expect_event_since(&mut client, "input_audio_buffer.speech_stopped", mark).await;
    assert_eq!(started["item_id"], stopped["item_id"]);
    let (start, end) = (
        started["audio_start_ms"].as_u64().unwrap(),
        stopped["audio_end_ms"].as_u64().unwrap(),
    );
    // The first frame is loud and the padding is 0, so speech starts at the call's first audio.
    // It ends 200 ms (the silence duration) after the last loud frame, ~380 ms in by the sender's
    // pacing; arrival times stretch or bunch on a loaded machine, so the bound is loose.
    assert_eq!(start, 0, "audio_start_ms");
    assert!((200..=5000).contains(&end), "audio_end_ms {end}");

    // The echo: the frames come back, in order.
    assert!(
        client
            .drive_until(WAIT, |c| c.media.len() >= sent.len())
            .await,
        "echoed {} of {} frames",
        client.media.len(),
        sent.len()
    );
    assert_eq!(client.media, sent);

    // Closing the channel ends the call on the server.
    client.rtc.direct_api().close_data_channel(client.channel);
    client
        .drive_until(Duration::from_millis(300), |_| false)
        .await;
    server.wait_voice_sessions(0).await;
    let metrics = server.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"channel_closed\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn hang_up_closes_the_call_and_the_client_sees_it() {
    let server = live().await;
    let (mut client, location, _, _) = connected(&server).await;
    let res = reqwest::Client::new()
        .delete(server.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    server.wait_voice_sessions(0).await;
    assert!(
        client.drive_until(WAIT, RtcClient::is_ended).await,
        "the client was not told"
    );
    server.stop().await;
}

#[tokio::test]
async fn server_shutdown_ends_live_peers() {
    let server = live().await;
    let (mut a, _, _, _) = connected(&server).await;
    let (mut b, _, _, _) = connected(&server).await;
    server.wait_voice_sessions(2).await;
    let state = server.state.clone();
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(state.voice().session_count(), 0);
    assert_eq!(state.metrics().voice_sessions.get(), 0);
    let metrics = state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"stopped\"} 2"),
        "{metrics}"
    );
    for client in [&mut a, &mut b] {
        assert!(
            client.drive_until(WAIT, RtcClient::is_ended).await,
            "a client was not told"
        );
    }
}

#[tokio::test]
async fn a_client_closing_its_peer_connection_ends_the_call() {
    let server = live().await;
    let (mut client, _, _, _) = connected(&server).await;
    server.wait_voice_sessions(1).await;
    // RTCP BYE, SCTP shutdown and DTLS close_notify, as a browser's pc.close() sends.
    client.rtc.close().unwrap();
    client
        .drive_until(Duration::from_millis(200), |_| false)
        .await;
    server.wait_voice_sessions(0).await;
    let metrics = server.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"peer_closed\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

/// The slow one (~16 s): str0m's ICE-lite agent drops a pair after 15 s without a STUN binding
/// request (a fixed constant of the `is` crate), which is how a vanished browser is noticed.
#[tokio::test]
async fn a_client_that_vanishes_is_ended_by_ice_disconnect() {
    let server = live().await;
    let (client, _, _, _) = connected(&server).await;
    server.wait_voice_sessions(1).await;
    // Gone without a word: no close, its socket closed (the server's sends now hit a closed
    // port).
    drop(client);
    let started = Instant::now();
    while server.state.voice().session_count() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the peer outlived its ICE timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.wait_voice_sessions(0).await;
    eprintln!(
        "voice: a vanished client was noticed after {:?}",
        started.elapsed()
    );
    let metrics = server.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"ice_disconnected\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_connects_is_ended_by_the_connect_timeout() {
    let server = LiveServer::start_with_voice(
        vigil_server::hub::HubConfig::default(),
        VoiceConfig {
            connect_timeout: Duration::from_secs(1),
            ..VoiceConfig::default()
        },
    )
    .await;
    // The offer is posted but the client never sends a packet.
    let (_client, offer) = RtcClient::new().await;
    call(&server, &offer).await;
    server.wait_voice_sessions(1).await;
    server.wait_voice_sessions(0).await;
    let metrics = server.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"connect_timeout\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

/// Prints figures (run with `--nocapture`): POST time and offer-to-open time over 20 sequential
/// calls, each hung up before the next. Asserts only correctness.
#[tokio::test]
async fn figures_handshake_times_over_20_calls() {
    let server = live().await;
    let mut posts = Vec::new();
    let mut opens = Vec::new();
    for _ in 0..20 {
        let (_client, location, post, open) = connected(&server).await;
        posts.push(post);
        opens.push(open);
        let res = reqwest::Client::new()
            .delete(server.url(&location))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
        server.wait_voice_sessions(0).await;
    }
    posts.sort();
    opens.sort();
    eprintln!(
        "voice figures: POST /voice/realtime median {:?} (max {:?}); offer to channel open median {:?} (max {:?}) over {} calls",
        posts[posts.len() / 2],
        posts[posts.len() - 1],
        opens[opens.len() / 2],
        opens[opens.len() - 1],
        opens.len()
    );

    server.stop().await;
}

/// Where a server answers HTTP: the in-process [`LiveServer`] or the real binary.
trait Base {
    /// `http://ADDR{path}`
    fn url(&self, path: &str) -> String;
}

impl Base for LiveServer {
    fn url(&self, path: &str) -> String {
        LiveServer::url(self, path)
    }
}

/// The real `vigil-server` binary on free ports, its voice peers on `voice_ip`.
struct Process {
    child: std::process::Child,
    // Kept open: the server prints more start-up lines, and a closed pipe would kill it.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    base: String,
    _dir: tempfile::TempDir,
}

impl Base for Process {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Process {
    fn start(voice_ip: &str) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil-server"))
            .args(["--addr", "127.0.0.1:0", "--admin-token", ADMIN])
            .arg("--database-url")
            .arg(format!("sqlite://{}/v.db", dir.path().display()))
            .arg("--www")
            .arg(dir.path())
            .arg("--pkg")
            .arg(dir.path())
            .arg("--voice-udp")
            .arg(format!("{voice_ip}:0"))
            // This test holds 11 calls from one address.
            .args(["--voice-max-calls-per-ip", "16"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_owned();
        Self {
            child,
            _stdout: stdout,
            base,
            _dir: dir,
        }
    }

    /// Resident memory of the server process.
    fn rss_kib(&self) -> i64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Open file descriptors of the server process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An IP of 127.0.0.0/8 unlikely to be shared with another run of this suite, so the UDP sockets
/// on it can be counted.
fn private_loopback_ip() -> String {
    let pid = std::process::id();
    format!("127.{}.{}.3", (pid >> 8) & 0xff, pid & 0xff)
}

/// The real binary: what one live call costs the server (RSS, fds, one UDP socket on
/// `--voice-udp`), and SIGTERM with live calls exits 0 within 5 s, freeing every socket and
/// telling the clients.
#[tokio::test]
async fn the_binary_holds_one_socket_per_call_and_exits_cleanly_with_live_calls() {
    let ip = private_loopback_ip();
    let server = Process::start(&ip);
    assert_eq!(udp_sockets_on(&ip), 0);
    // One call first, so allocations made once (TLS provider, pools) are not counted per call.
    let warm = connected(&server).await.0;
    let (rss_before, fds_before) = (server.rss_kib(), server.fds());
    let mut calls = Vec::new();
    for _ in 0..10 {
        calls.push(connected(&server).await.0);
    }
    let (rss, fds) = (server.rss_kib() - rss_before, server.fds() - fds_before);
    assert_eq!(
        udp_sockets_on(&ip),
        11,
        "one UDP socket per call, on --voice-udp"
    );
    eprintln!(
        "voice figures: the server process, 10 more live calls: +{rss} KiB RSS (~{} KiB per call), +{fds} fds",
        rss / 10
    );
    calls.push(warm);

    let mut server = server;
    let started = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "voice figures: SIGTERM with 11 live calls: exit {status} after {:?}",
        started.elapsed()
    );
    assert!(status.success(), "{status}");
    assert_eq!(udp_sockets_on(&ip), 0, "every peer socket is freed");
    for client in &mut calls {
        assert!(
            client.drive_until(WAIT, RtcClient::is_ended).await,
            "a client was not told"
        );
    }
}

/// UDP sockets bound to the IPv4 address `ip` in this network namespace (`/proc/net/udp`).
fn udp_sockets_on(ip: &str) -> usize {
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    // The table writes the address as the hex of its in-memory (network order) u32.
    let hex = format!("{:08X}", u32::from_ne_bytes(ip.octets()));
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.starts_with(&format!("{hex}:")))
        })
        .count()
}

#[tokio::test]
async fn voice_crosses_origins_only_for_allowed_ones() {
    let preflight = |origin: &'static str| {
        Request::options("/voice/realtime")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    // No allow-list: same origin only (telemetry still takes any origin).
    let app = TestApp::new().await;
    let res = app.send(preflight("http://kiosk.example")).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let app =
        TestApp::with_config(|c| c.allowed_origins = vec!["http://kiosk.example".into()]).await;
    let res = app.send(preflight("http://kiosk.example")).await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://kiosk.example"
    );
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let res = app.send(preflight("http://evil.example")).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // The answer's Location is readable from the allowed page.
    let res = app
        .send(
            Request::post("/voice/session")
                .header("origin", "http://kiosk.example")
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("location"), "{exposed}");
}

/// The review's flood: 1,100 mints into the 1,024-key store. Before, they pushed out a user's
/// unused key; now the store refuses the excess with 503 and the user's key still opens a call.
#[tokio::test]
async fn a_flood_of_mints_does_not_push_out_a_live_key() {
    let app = TestApp::new().await;
    let users_key = mint(&app).await;
    let mut refused_503 = 0;
    for _ in 0..1100 {
        let res = app.send(mint_request(Some(ADMIN))).await;
        match res.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(res.headers().contains_key("retry-after"));
                refused_503 += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused_503, 1100 - 1023);
    assert_eq!(app.state.voice().key_count(), 1024);
    let res = app
        .send(offer_request(
            Some(&users_key),
            "application/sdp",
            offer().await,
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let metrics = app.state.metrics().render();
    assert!(
        metrics.contains(
            "vigil_requests_refused_total{reason=\"keys_full\",route=\"voice_session\"} 77"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn offers_past_the_per_ip_limit_get_429_and_spend_no_key() {
    let app = TestApp::with_voice(VoiceConfig {
        calls_per_ip: vigil_server::ingest::ratelimit::Rate {
            per_sec: 10.0,
            burst: 1.0,
        },
        ..VoiceConfig::default()
    })
    .await;
    let first = mint(&app).await;
    let res = app
        .send(offer_request(
            Some(&first),
            "application/sdp",
            offer().await,
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let second = mint(&app).await;
    let res = app
        .send(offer_request(
            Some(&second),
            "application/sdp",
            offer().await,
        ))
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    // The refused offer did not spend its key: after the bucket refills it opens a call.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let res = app
        .send(offer_request(
            Some(&second),
            "application/sdp",
            offer().await,
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let metrics = app.state.metrics().render();
    assert!(
        metrics.contains(
            "vigil_requests_refused_total{reason=\"rate_limited\",route=\"voice_realtime\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_calls() {
    let app = TestApp::with_voice(VoiceConfig {
        max_calls_per_ip: 2,
        ..VoiceConfig::default()
    })
    .await;
    let mut locations = Vec::new();
    for _ in 0..2 {
        let key = mint(&app).await;
        let res = app
            .send(offer_request(Some(&key), "application/sdp", offer().await))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        locations.push(res.headers()["location"].to_str().unwrap().to_owned());
    }
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", offer().await))
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(app.state.voice().session_count(), 2);
    // One hangs up: the address may call again.
    let hang_up = Request::delete(locations[0].as_str())
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(hang_up).await.status(), StatusCode::NO_CONTENT);
    wait_voice_sessions(&app.state, 1).await;
    let key = mint(&app).await;
    let res = app
        .send(offer_request(Some(&key), "application/sdp", offer().await))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let metrics = app.state.metrics().render();
    assert!(
        metrics.contains(
            "vigil_requests_refused_total{reason=\"too_many_calls\",route=\"voice_realtime\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_call_is_ended_at_its_maximum_length() {
    let server = LiveServer::start_with_voice(
        vigil_server::hub::HubConfig::default(),
        VoiceConfig {
            max_call: Duration::from_millis(1500),
            ..VoiceConfig::default()
        },
    )
    .await;
    let (mut client, _, _, _) = connected(&server).await;
    server.wait_voice_sessions(1).await;
    let started = Instant::now();
    assert!(
        client.drive_until(WAIT, RtcClient::is_ended).await,
        "the client was not told"
    );
    server.wait_voice_sessions(0).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let metrics = server.state.metrics().render();
    assert!(
        metrics.contains("vigil_voice_sessions_ended_total{reason=\"max_length\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[test]
fn offers_that_never_connect_hold_a_place_at_most_10_s_and_calls_last_at_most_30_min() {
    let c = VoiceConfig::default();
    assert!(
        c.connect_timeout <= Duration::from_secs(10),
        "{:?}",
        c.connect_timeout
    );
    assert_eq!(c.max_call, Duration::from_secs(30 * 60));
    assert_eq!(c.max_calls_per_ip, 4);
    let flags = vigil_server::Config::for_tests("sqlite::memory:");
    assert_eq!(VoiceConfig::from_config(&flags).max_call, c.max_call);
}
