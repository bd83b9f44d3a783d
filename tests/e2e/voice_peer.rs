//! The server's voice peer against a real Chromium, with plain `RTCPeerConnection` code (no
//! package): the OpenAI Realtime WebRTC flow as a hosted-service page would run it. The
//! `VoiceConnection` module's own tests build on this.

use std::time::Duration;

use serde_json::Value;
use vigil_e2e::{Browser, Result, Server};

const WAIT: Duration = Duration::from_secs(15);

/// `vigil_voice_sessions` from `/metrics`.
async fn voice_sessions(server: &Server) -> Result<i64> {
    let metrics = server.get("/metrics").await?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_voice_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no vigil_voice_sessions in\n{metrics}").into())
}

async fn wait_voice_sessions(server: &Server, n: i64) -> Result<()> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let live = voice_sessions(server).await?;
        if live == n {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("vigil_voice_sessions is {live}, expected {n}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn chromium_gets_events_and_its_microphone_echoed() -> Result<()> {
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    let status = page
        .eval(
            "(async () => {
                const log = window.vlog = { events: [], open: false, tracks: 0 };
                const t0 = performance.now();
                const session = await (await fetch('/voice/session', { method: 'POST' })).json();
                log.sessionMs = performance.now() - t0;
                const pc = window.pc = new RTCPeerConnection();
                const dc = window.dc = pc.createDataChannel('oai-events');
                dc.onopen = () => { log.open = true; };
                dc.onmessage = (e) => log.events.push(JSON.parse(e.data));
                pc.ontrack = () => { log.tracks += 1; };
                const mic = window.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
                for (const t of mic.getTracks()) pc.addTrack(t, mic);
                await pc.setLocalDescription(await pc.createOffer());
                const started = performance.now();
                const res = await fetch(session.realtime_url, {
                    method: 'POST',
                    body: pc.localDescription.sdp,
                    headers: {
                        'Content-Type': 'application/sdp',
                        'Authorization': 'Bearer ' + session.client_secret.value,
                    },
                });
                log.postMs = performance.now() - started;
                log.location = res.headers.get('Location');
                const answer = await res.text();
                if (res.status !== 201) return res.status + ' ' + answer;
                await pc.setRemoteDescription({ type: 'answer', sdp: answer });
                dc.addEventListener('open', () => { log.openMs = performance.now() - started; });
                return res.status;
            })()",
        )
        .await?;
    assert_eq!(status, Value::from(201), "{status}");
    page.wait_for("vlog.open && vlog.events.length > 0", WAIT)
        .await?;
    let first = page.eval("vlog.events[0]").await?;
    assert_eq!(first["type"], "session.created", "{first}");
    assert!(page
        .eval("vlog.location")
        .await?
        .as_str()
        .unwrap_or("")
        .starts_with("/voice/calls/rtc_"));
    wait_voice_sessions(&server, 1).await?;

    page.eval(
        "dc.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'hi' } })); true",
    )
    .await?;
    page.wait_for("vlog.events.some(e => e.type === 'session.updated')", WAIT)
        .await?;
    assert_eq!(
        page.eval("vlog.events.find(e => e.type === 'session.updated').session.instructions")
            .await?,
        "hi"
    );
    page.eval("dc.send(JSON.stringify({ type: 'bogus', event_id: 'e1' })); true")
        .await?;
    page.wait_for("vlog.events.some(e => e.type === 'error')", WAIT)
        .await?;
    let error = page
        .eval("vlog.events.find(e => e.type === 'error').error")
        .await?;
    assert_eq!(error["code"], "unknown_event", "{error}");
    assert_eq!(error["event_id"], "e1", "{error}");

    // The echo: the remote track plays what the fake microphone sends.
    page.wait_for("vlog.tracks > 0", WAIT).await?;
    let inbound = "(async () => {
        let bytes = 0, packets = 0;
        (await pc.getStats()).forEach((r) => {
            if (r.type === 'inbound-rtp' && r.kind === 'audio') { bytes += r.bytesReceived; packets += r.packetsReceived; }
        });
        return { bytes, packets };
    })()";
    let deadline = std::time::Instant::now() + WAIT;
    let stats = loop {
        let stats = page.eval(inbound).await?;
        if stats["packets"].as_u64().unwrap_or(0) >= 50 {
            break stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no echoed audio: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Chromium's fake microphone beeps about every 400 ms, each beep longer than the detector's
    // 100 ms: speech starts, and with pauses shorter than the 500 ms silence duration it goes on.
    // Muting (a disabled track sends silence, level 127) stops it.
    page.wait_for(
        "vlog.events.some(e => e.type === 'input_audio_buffer.speech_started')",
        WAIT,
    )
    .await?;
    page.eval("mic.getTracks().forEach(t => { t.enabled = false; }); true")
        .await?;
    page.wait_for(
        "vlog.events.some(e => e.type === 'input_audio_buffer.speech_stopped')",
        WAIT,
    )
    .await?;
    let pair = page
        .eval(
            "[vlog.events.find(e => e.type === 'input_audio_buffer.speech_started'), \
              vlog.events.find(e => e.type === 'input_audio_buffer.speech_stopped')]",
        )
        .await?;
    assert_eq!(pair[0]["item_id"], pair[1]["item_id"], "{pair}");
    assert!(
        pair[1]["audio_end_ms"].as_u64() > pair[0]["audio_start_ms"].as_u64(),
        "{pair}"
    );
    let figures = page
        .eval("({ sessionMs: vlog.sessionMs, postMs: vlog.postMs, openMs: vlog.openMs, types: vlog.events.map(e => e.type) })")
        .await?;
    eprintln!("voice e2e: echoed {stats}; {figures}");

    // Closing the peer connection ends the call on the server.
    page.eval("pc.close(); mic.getTracks().forEach(t => t.stop()); true")
        .await?;
    wait_voice_sessions(&server, 0).await?;
    let (exit, took) = server.terminate(Duration::from_secs(5)).await?;
    assert!(exit.success(), "{exit} after {took:?}");
    Ok(())
}
