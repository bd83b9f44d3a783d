//! `VoiceConnection` against the server's realtime-compatible peer, in a real browser with a fake
//! microphone: the call connects, events and the echoed audio arrive, tone bursts in the
//! microphone become `speech_started` / `speech_stopped`, refused keys and a denied microphone
//! reject naming their step, and connect/disconnect cycles leave nothing behind (resources, DOM
//! listeners, the server's session gauge). Figures are printed, never asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::{require_pkg, Browser, Page, Result, Server};

const WAIT: Duration = Duration::from_secs(20);

/// Creates `window.v` (a `VoiceConnection` with `extra` options) and `window.log` (every event
/// type and state, in order).
async fn voice_page(page: &Page<'_>, extra: &str) -> Result<()> {
    page.load_package().await?;
    page.eval(&format!(
        "(() => {{
            const log = window.log = {{ events: [], states: [], payloads: {{}} }};
            const v = window.v = new vigil.VoiceConnection({{ sessionUrl: '/voice/session', {extra} }});
            v.on('*', (e) => {{ log.events.push(e.type); log.payloads[e.type] = e; }});
            v.onState((s) => log.states.push(s));
            return true;
        }})()"
    ))
    .await?;
    Ok(())
}

/// Polls `/metrics` until `vigil_voice_sessions` reads `n` (sessions end asynchronously after
/// the browser closes its side).
async fn wait_for_sessions(server: &Server, n: u64) -> Result<()> {
    let want = format!("vigil_voice_sessions {n}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = server.get("/metrics").await?;
        if metrics.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let line: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("vigil_voice_sessions"))
                .collect();
            return Err(format!("waited 10 s for `{want}`; metrics say {line:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::test]
async fn a_call_connects_talks_echoes_and_disconnects_leaving_nothing() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    voice_page(&page, "session: { instructions: 'be brief' }").await?;
    page.eval("v.connect().then(() => true)").await?;
    assert_eq!(page.eval("v.state").await?, "connected");
    let resources = page.eval("vigil.resources()").await?;
    assert_eq!(resources["peerConnections"], 1, "{resources}");
    assert_eq!(resources["dataChannels"], 1, "{resources}");
    assert_eq!(resources["mediaTracks"], 1, "{resources}");
    assert_eq!(resources["timeouts"], 0, "{resources}");
    wait_for_sessions(&server, 1).await?;

    // The server greets on open and confirms the session.update sent when the channel opened.
    page.wait_for("log.events.includes('session.created')", WAIT)
        .await?;
    page.wait_for("log.events.includes('session.updated')", WAIT)
        .await?;
    assert_eq!(
        page.eval("log.events.indexOf('session.created') < log.events.indexOf('session.updated')")
            .await?,
        true
    );

    // The echoed microphone arrives and plays in the <audio> the connection created.
    page.wait_for(
        "document.querySelectorAll('audio').length === 1 && !!document.querySelector('audio').srcObject",
        WAIT,
    )
    .await?;
    let first = page.eval("v.stats()").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = page.eval("v.stats()").await?;
    assert!(
        number(&later, "packetsReceived") > number(&first, "packetsReceived")
            && number(&later, "packetsReceived") > 0.0,
        "inbound audio packets grow: {first} then {later}"
    );
    assert!(number(&later, "packetsSent") > 0.0, "{later}");
    assert!(number(&later, "bytesReceived") > 0.0, "{later}");

    // Unknown client events get an `error`: the data channel round trip, measured 10 times.
    let rtts = page
        .eval(
            "(async () => {
                const out = [];
                for (let i = 0; i < 10; i++) {
                    const t0 = performance.now();
                    const got = new Promise((done) => {
                        const sub = v.on('error', () => { sub.unsubscribe(); done(); });
                    });
                    if (!v.sendEvent({ type: 'vigil.ping' })) throw new Error('sendEvent refused');
                    await got;
                    out.push(performance.now() - t0);
                }
                return out;
            })()",
        )
        .await?;
    let mut rtts: Vec<f64> = rtts
        .as_array()
        .ok_or("round trips")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(rtts.len(), 10);
    let stats = page.eval("v.stats()").await?;
    println!(
        "voice figures: data channel event round trip (unknown type -> error) median of 10: {:.2} ms; \
         ICE candidate-pair currentRoundTripTime: {} ms; packets sent/received after ~2 s: {}/{}",
        median(&mut rtts),
        stats["roundTripTimeMs"],
        stats["packetsSent"],
        stats["packetsReceived"],
    );
    assert!(number(&stats, "eventsIn") >= 12.0, "{stats}");
    assert_eq!(number(&stats, "eventsOut"), 10.0, "{stats}");
    // An event the channel refuses (over its message size limit: `send` throws) is not sent.
    assert_eq!(
        page.eval("v.sendEvent({ type: 'vigil.big', pad: 'x'.repeat(4 << 20) })")
            .await?,
        false
    );
    let stats = page.eval("v.stats()").await?;
    assert_eq!(
        number(&stats, "eventsOut"),
        10.0,
        "a refused event is not counted as sent: {stats}"
    );

    page.eval("v.setMuted(true); v.setMuted(false); true")
        .await?;
    page.eval("v.disconnect(); true").await?;
    assert_eq!(page.eval("v.state").await?, "disconnected");
    assert_eq!(
        page.eval("v.sendEvent({ type: 'response.create' })")
            .await?,
        false
    );
    assert_eq!(
        page.eval("document.querySelectorAll('audio').length")
            .await?,
        0,
        "the created <audio> left the page"
    );
    assert_eq!(
        page.eval("log.states").await?,
        serde_json::json!(["connecting", "connected", "disconnected"])
    );
    page.eval("v.dispose(); true").await?;
    page.assert_no_resources().await?;
    wait_for_sessions(&server, 0).await?;
    Ok(())
}

/// A 48 kHz 16-bit mono WAV: `cycles` times (1 s silence, 1.5 s of a loud 440 Hz tone,
/// 2 s silence).
fn write_tone_bursts(path: &Path, cycles: usize) -> Result<()> {
    const RATE: u32 = 48_000;
    let mut samples: Vec<i16> = Vec::new();
    for _ in 0..cycles {
        samples.extend(std::iter::repeat_n(0, RATE as usize));
        let tone = RATE as usize * 3 / 2;
        samples.extend((0..tone).map(|n| {
            let t = n as f64 / f64::from(RATE);
            (0.8 * f64::from(i16::MAX) * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        }));
        samples.extend(std::iter::repeat_n(0, RATE as usize * 2));
    }
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav)?;
    Ok(())
}

#[tokio::test]
async fn tone_bursts_in_the_microphone_become_speech_started_and_stopped() -> Result<()> {
    require_pkg();
    let dir = tempfile::tempdir()?;
    let wav = dir.path().join("bursts.wav");
    write_tone_bursts(&wav, 3)?;
    let flag = format!("--use-file-for-fake-audio-capture={}", wav.display());
    let server = Server::start(&[]).await?;
    let browser = Browser::launch_with(&[&flag]).await?;
    let page = browser.open_empty(&server).await?;
    voice_page(&page, "").await?;
    page.eval("v.connect().then(() => true)").await?;
    let started = Instant::now();
    page.wait_for(
        "log.events.includes('input_audio_buffer.speech_started')",
        WAIT,
    )
    .await?;
    let at_start = started.elapsed();
    page.wait_for(
        "log.events.includes('input_audio_buffer.speech_stopped')",
        WAIT,
    )
    .await?;
    let at_stop = started.elapsed();
    // In order, paired on one item.
    let events = page.eval("log.events").await?;
    let list: Vec<&str> = events
        .as_array()
        .ok_or("events")?
        .iter()
        .filter_map(Value::as_str)
        .filter(|t| t.starts_with("input_audio_buffer.speech"))
        .collect();
    assert_eq!(
        list.first(),
        Some(&"input_audio_buffer.speech_started"),
        "{events}"
    );
    println!(
        "voice figures: speech_started {} ms and speech_stopped {} ms after connect() resolved \
         (bursts of 1.5 s after 1 s of silence)",
        at_start.as_millis(),
        at_stop.as_millis()
    );
    page.eval("v.dispose(); true").await?;
    page.assert_no_resources().await?;
    wait_for_sessions(&server, 0).await?;
    Ok(())
}

#[tokio::test]
async fn thirty_connect_disconnect_cycles_leave_listeners_at_baseline() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    let baseline = page.dom_counters().await?;
    voice_page(&page, "").await?;
    let times = page
        .eval(
            "(async () => {
                const times = [];
                for (let i = 0; i < 30; i++) {
                    const t0 = performance.now();
                    await v.connect();
                    times.push(performance.now() - t0);
                    if (i % 3 === 2) vigil.disposeAll(); else v.disconnect();
                    if (i % 3 === 2) {
                        window.v = new vigil.VoiceConnection({ sessionUrl: '/voice/session' });
                    }
                }
                v.dispose();
                return times;
            })()",
        )
        .await?;
    let times: Vec<f64> = times
        .as_array()
        .ok_or("times")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(times.len(), 30);
    // The last 20 (the first ones warm up the browser's WebRTC stack).
    let mut last20 = times[10..].to_vec();
    let med = median(&mut last20);
    println!(
        "voice figures: connect() to open data channel on loopback, median of 20: {med:.1} ms \
         (min {:.1}, max {:.1})",
        last20.first().copied().unwrap_or(f64::NAN),
        last20.last().copied().unwrap_or(f64::NAN)
    );
    page.assert_no_resources().await?;
    assert_eq!(
        page.eval("document.querySelectorAll('audio').length")
            .await?,
        0
    );
    let after = page.dom_counters().await?;
    assert_eq!(
        after.js_event_listeners, baseline.js_event_listeners,
        "baseline {baseline:?}, after {after:?}"
    );
    wait_for_sessions(&server, 0).await?;
    Ok(())
}

#[tokio::test]
async fn a_reused_or_unknown_key_is_refused_naming_the_step() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.load_package().await?;
    // The page's session endpoint hands out the same key twice (a replay), then a made-up one.
    let result = page
        .eval(
            "(async () => {
                const real = window.fetch;
                const minted = await (await real('/voice/session', { method: 'POST' })).json();
                let answer = minted;
                window.fetch = (url, init) => String(url).endsWith('/replay/session')
                    ? Promise.resolve(new Response(JSON.stringify(answer)))
                    : real(url, init);
                const first = new vigil.VoiceConnection({ sessionUrl: '/replay/session' });
                await first.connect();
                first.dispose();
                const out = {};
                for (const [name, key] of [['reused', minted.client_secret.value], ['unknown', 'ek_made_up']]) {
                    answer = { ...minted, client_secret: { ...minted.client_secret, value: key } };
                    const v = new vigil.VoiceConnection({ sessionUrl: '/replay/session' });
                    try { await v.connect(); out[name] = 'resolved'; }
                    catch (e) { out[name] = { message: e.message, step: e.step, state: v.state }; }
                    v.dispose();
                }
                window.fetch = real;
                return out;
            })()",
        )
        .await?;
    for name in ["reused", "unknown"] {
        let r = &result[name];
        assert_eq!(r["step"], "SDP exchange", "{name}: {result}");
        assert_eq!(r["state"], "failed", "{name}: {result}");
        let message = r["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("at the SDP exchange step") && message.contains("401"),
            "{name}: {message}"
        );
    }
    page.assert_no_resources().await?;
    wait_for_sessions(&server, 0).await?;
    Ok(())
}

#[tokio::test]
async fn a_denied_microphone_rejects_connect_cleanly() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    // Without the fake prompt, and with prompts denied: getUserMedia fails as a user's "Block".
    let browser = Browser::launch_without(
        &["--use-fake-ui-for-media-stream"],
        &["--deny-permission-prompts"],
    )
    .await?;
    let page = browser.open_empty(&server).await?;
    voice_page(&page, "connectTimeoutMs: 10000").await?;
    let error = page
        .eval("v.connect().then(() => 'resolved', (e) => ({ message: e.message, step: e.step }))")
        .await?;
    assert_eq!(error["step"], "microphone", "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at the microphone step") && message.contains("NotAllowedError"),
        "{message}"
    );
    assert_eq!(page.eval("v.state").await?, "failed");
    assert_eq!(
        page.eval("log.states").await?,
        serde_json::json!(["connecting", "failed"])
    );
    let resources = page.eval("vigil.resources()").await?;
    for kind in [
        "peerConnections",
        "dataChannels",
        "mediaTracks",
        "elements",
        "timeouts",
    ] {
        assert_eq!(resources[kind], 0, "{kind}: {resources}");
    }
    page.eval("v.dispose(); true").await?;
    page.assert_no_resources().await?;
    wait_for_sessions(&server, 0).await?;
    Ok(())
}

#[tokio::test]
async fn a_call_the_server_ends_is_released_in_the_page() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    voice_page(&page, "").await?;
    page.eval("v.connect().then(() => true)").await?;
    page.wait_for("document.querySelectorAll('audio').length === 1", WAIT)
        .await?;
    // SIGTERM: the server closes every peer on its way out.
    let started = Instant::now();
    let (status, _) = server.terminate(Duration::from_secs(5)).await?;
    assert!(status.success(), "{status:?}");
    page.wait_for("v.state !== 'connected'", Duration::from_secs(40))
        .await?;
    println!(
        "voice figures: the page saw the server's shutdown as `{}` after {} ms",
        page.eval("v.state").await?,
        started.elapsed().as_millis()
    );
    let resources = page.eval("vigil.resources()").await?;
    for kind in [
        "peerConnections",
        "dataChannels",
        "mediaTracks",
        "elements",
        "timeouts",
    ] {
        assert_eq!(resources[kind], 0, "{kind}: {resources}");
    }
    assert_eq!(
        page.eval("document.querySelectorAll('audio').length")
            .await?,
        0
    );
    page.eval("v.dispose(); true").await?;
    page.assert_no_resources().await?;
    Ok(())
}

#[tokio::test]
async fn the_demo_voice_panel_connects_shows_events_and_disconnects() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open(&format!("{}/", server.url)).await?;
    page.wait_for("window.vigilDemo && window.vigilDemo.ready", WAIT)
        .await?;
    let text = |id: &str| format!("document.getElementById('{id}').textContent");
    page.eval("document.getElementById('voice-connect').click(); true")
        .await?;
    page.wait_for(&format!("{} === 'connected'", text("voice-state")), WAIT)
        .await?;
    page.wait_for(
        &format!("{}.includes('session.updated')", text("voice-events")),
        WAIT,
    )
    .await?;
    page.wait_for(
        &format!("/[1-9]\\d* received/.test({})", text("voice-stats")),
        WAIT,
    )
    .await?;
    page.screenshot("demo-voice-connected").await?;
    page.eval("document.getElementById('voice-mute').click(); true")
        .await?;
    assert_eq!(page.eval(&text("voice-mute")).await?, "Unmute");
    page.eval("document.getElementById('voice-disconnect').click(); true")
        .await?;
    page.wait_for(&format!("{} === 'disconnected'", text("voice-state")), WAIT)
        .await?;
    // The demo's resource table (its own module instance) reads 0 for every voice resource.
    page.wait_for(
        "['peerConnections','dataChannels','mediaTracks','elements'].every(n => \
         document.querySelector(`#resources tr[data-name=${n}] td.n`).textContent === '0')",
        WAIT,
    )
    .await?;
    wait_for_sessions(&server, 0).await?;
    Ok(())
}
