//! The targets: each runs one parser of untrusted input on arbitrary bytes and checks its
//! invariants (a value or a typed error, outputs within the documented limits, output size
//! bounded by a constant times the input's).

use std::cell::RefCell;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::http::{header, HeaderMap, HeaderValue};
use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::Value;
use vigil::errors::stack;
use vigil::transport::dsn::Dsn;
use vigil::transport::ratelimit::{RateLimits, MAX_CATEGORIES};
use vigil_server::hub::{session, Hub, HubConfig};
use vigil_server::ingest::{auth, envelope, otlp};
use vigil_server::voice::events::{
    Conversation, ServerEvent, MAX_MESSAGE_BYTES, MAX_SESSION_BYTES,
};
use vigil_server::voice::vad::VadConfig;
use vigil_server::{access, dashboard, voice};

use crate::Target;

/// Every target, in the order `./dev.sh fuzz` runs them.
pub const ALL: &[Target] = &[
    ENVELOPE,
    OTLP,
    AUTH,
    VOICE_OFFER,
    VOICE_EVENTS,
    HUB_SESSION,
    STACK,
    DSN,
    RATELIMIT,
];

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// A typed error must say something.
fn explained(e: &impl std::fmt::Display) -> Result<(), String> {
    ensure(!e.to_string().trim().is_empty(), || {
        "an error without a message".into()
    })
}

// ---------------------------------------------------------------------------------------------
// Server: ingest
// ---------------------------------------------------------------------------------------------

/// The Sentry envelope parser with a small item limit (so `ItemTooLarge` is reachable).
pub const ENVELOPE: Target = Target {
    name: "envelope",
    check: check_envelope,
    dictionary: &[
        "{}\n",
        "{\"type\":\"event\"}\n",
        "{\"type\":\"event\",\"length\":",
        "\"length\":",
        "\"type\":",
        "null",
        "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n",
        "{\"type\":\"attachment\",\"length\":3}\nabc\n",
        "\r\n",
        "1.5",
        "-3",
    ],
    max_len: 16 * 1024,
};

const ENVELOPE_MAX_ITEM: usize = 1000;

fn check_envelope(data: &[u8]) -> Result<(), String> {
    match envelope::parse(data, ENVELOPE_MAX_ITEM) {
        Ok(env) => {
            ensure(env.items.len() <= envelope::MAX_ITEMS, || {
                format!("{} items, over {}", env.items.len(), envelope::MAX_ITEMS)
            })?;
            let mut total = 0usize;
            for item in &env.items {
                ensure(item.payload.len() <= ENVELOPE_MAX_ITEM, || {
                    format!("a {}-byte payload over the limit", item.payload.len())
                })?;
                ensure(!item.kind.is_empty(), || "an item without a type".into())?;
                // Payloads borrow from the body: inside it, and not overlapping each other.
                let start = item.payload.as_ptr() as usize;
                let body = data.as_ptr() as usize;
                ensure(
                    item.payload.is_empty()
                        || (start >= body && start + item.payload.len() <= body + data.len()),
                    || "a payload outside the body".into(),
                )?;
                total += item.payload.len() + item.kind.len();
            }
            ensure(total <= data.len(), || {
                format!("{total} bytes of items from a {}-byte body", data.len())
            })
        }
        Err(e) => {
            explained(&e)?;
            if let envelope::EnvelopeError::Truncated {
                expected,
                available,
                ..
            } = e
            {
                ensure((available as u64) < expected, || {
                    "truncated with enough bytes".into()
                })?;
            }
            Ok(())
        }
    }
}

/// OTLP/HTTP JSON metrics, with its limits.
pub const OTLP: Target = Target {
    name: "otlp",
    check: check_otlp,
    dictionary: &[
        "{\"resourceMetrics\":[",
        "{\"scopeMetrics\":[{\"metrics\":[",
        "{\"name\":\"m\",\"unit\":\"ms\",\"gauge\":{\"dataPoints\":[",
        "\"sum\":{\"dataPoints\":[",
        "\"histogram\":{\"dataPoints\":[{\"count\":\"2\",\"sum\":3}]}",
        "{\"asDouble\":1.5,\"timeUnixNano\":\"1\"}",
        "{\"asInt\":\"7\"}",
        "\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}}]",
        "{\"key\":\"vigil.export_id\",\"value\":{\"stringValue\":\"x\"}}",
        "{\"intValue\":\"-9223372036854775808\"}",
        "{\"doubleValue\":1e308}",
        "{\"boolValue\":true}",
        "\"resource\":{\"attributes\":[",
        "]}",
        "},",
        "\"count\":\"0\"",
    ],
    max_len: 64 * 1024,
};

fn check_otlp(data: &[u8]) -> Result<(), String> {
    let export = match otlp::parse(data) {
        Ok(export) => export,
        Err(e) => return explained(&e),
    };
    ensure(export.rows.len() <= otlp::MAX_POINTS, || {
        format!("{} points", export.rows.len())
    })?;
    if let Some(id) = &export.export_id {
        ensure(!id.is_empty() && id.len() <= otlp::MAX_EXPORT_ID, || {
            format!("an export id of {} bytes", id.len())
        })?;
    }
    let attrs_ok = |attrs: &std::collections::BTreeMap<String, String>| {
        attrs.len() <= otlp::MAX_ATTRIBUTES
            && attrs
                .iter()
                .all(|(k, v)| k.len() <= otlp::MAX_KEY && v.len() <= otlp::MAX_VALUE)
    };
    ensure(attrs_ok(&export.resource), || {
        "resource attributes over the limits".into()
    })?;
    for row in &export.rows {
        ensure(row.name.len() <= otlp::MAX_NAME, || "a long name".into())?;
        ensure(row.unit.len() <= otlp::MAX_UNIT, || "a long unit".into())?;
        ensure(row.value.is_finite(), || "a non-finite value".into())?;
        ensure(attrs_ok(&row.attributes), || {
            "point attributes over the limits".into()
        })?;
    }
    // Memory: each stored point costs at most its attributes (≤ 32 × (128 + 1024) bytes) and a
    // point in the body takes at least a few bytes (`{}` plus a separator).
    ensure(export.rows.len() <= data.len() / 2 + 1, || {
        format!("{} points from {} bytes", export.rows.len(), data.len())
    })
}

// ---------------------------------------------------------------------------------------------
// Server: headers
// ---------------------------------------------------------------------------------------------

/// `X-Sentry-Auth`, `Authorization: Bearer`, the `Cookie` session secret and the query key.
pub const AUTH: Target = Target {
    name: "auth",
    check: check_auth,
    dictionary: &[
        "Sentry ",
        "sentry ",
        "sentry_key=",
        "sentry_version=7",
        ", ",
        "Bearer ",
        "vigil_session=",
        "; ",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "&",
        "key=",
    ],
    max_len: 8 * 1024,
};

fn substring_of(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    part.is_empty() || (p >= w && p + part.len() <= w + whole.len())
}

fn check_auth(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    if let Some(key) = auth::key_from_sentry_auth(text) {
        ensure(!key.is_empty() && substring_of(key, text), || {
            format!("sentry_key {key:?} is not a non-empty part of the header")
        })?;
        ensure(!key.contains(',') && key.trim() == key, || {
            format!("sentry_key {key:?} holds a separator or blanks")
        })?;
    }
    if let Some(value) = auth::query_param(Some(text), "sentry_key") {
        ensure(!value.is_empty() && !value.contains('&'), || {
            format!("query value {value:?}")
        })?;
    }

    // Header values are bytes on the wire: any that `HeaderValue` accepts.
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(data) {
        headers.insert(header::AUTHORIZATION, v.clone());
        headers.append(header::COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {text}")) {
        headers.append(header::AUTHORIZATION, v);
    }
    if let Some(token) = access::bearer(&headers) {
        ensure(token.trim() == token && token.len() <= data.len(), || {
            format!("bearer token {token:?}")
        })?;
    }
    let secret_ok = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(secret) = access::session_secret(&headers) {
        ensure(secret_ok(secret), || format!("session secret {secret:?}"))?;
    }
    if let Some(secret) = dashboard::session::from_cookie_header(text) {
        ensure(secret_ok(secret) && substring_of(secret, text), || {
            format!("cookie secret {secret:?}")
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server: voice
// ---------------------------------------------------------------------------------------------

/// The SDP offer of `POST /voice/realtime` (bodies up to its 64 KiB limit).
pub const VOICE_OFFER: Target = Target {
    name: "voice_offer",
    check: check_voice_offer,
    dictionary: &[
        "v=0\r\n",
        "o=- 1 2 IN IP4 127.0.0.1\r\n",
        "s=-\r\n",
        "t=0 0\r\n",
        "a=group:BUNDLE 0 1\r\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "a=mid:0\r\n",
        "a=ice-ufrag:abcd\r\n",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n",
        "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n",
        "a=setup:actpass\r\n",
        "a=sendrecv\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
        "a=ssrc:1 cname:x\r\n",
        "a=sctp-port:5000\r\n",
        "a=candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host\r\n",
        "a=rtcp-mux\r\n",
    ],
    max_len: voice::MAX_OFFER_BYTES,
};

fn check_voice_offer(data: &[u8]) -> Result<(), String> {
    // The first byte picks the Content-Type, so the check before the parser is fuzzed too.
    let (content_type, body) = match data.split_first() {
        Some((b, rest)) if b % 4 == 1 => (None, rest),
        Some((b, rest)) if b % 4 == 2 => (Some("text/plain"), rest),
        Some((b, rest)) if b % 4 == 3 => (Some("Application/SDP; charset=utf-8"), rest),
        Some((_, rest)) => (Some("application/sdp"), rest),
        None => (Some("application/sdp"), data),
    };
    match voice::parse_offer(content_type, body) {
        Ok(_) => {
            let text = std::str::from_utf8(body).map_err(|_| "accepted non-UTF-8".to_owned())?;
            ensure(text.trim_start().starts_with("v=0"), || {
                "accepted a body without v=0".into()
            })?;
            ensure(
                content_type.is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp")),
                || format!("accepted Content-Type {content_type:?}"),
            )
        }
        Err(voice::VoiceError::BadOffer(reason)) => {
            ensure(!reason.is_empty(), || "a refusal without a reason".into())
        }
        Err(other) => Err(format!("not a BadOffer: {other}")),
    }
}

/// The `oai-events` data channel: a conversation fed the input's messages (split at `0x00`;
/// a message starting with `0x01` stands for a binary one).
pub const VOICE_EVENTS: Target = Target {
    name: "voice_events",
    check: check_voice_events,
    dictionary: &[
        "{\"type\":\"session.update\",\"session\":{",
        "{\"type\":\"input_audio_buffer.clear\"}",
        "\"event_id\":\"e1\",",
        "\"audio\":{\"input\":{\"turn_detection\":",
        "{\"type\":\"server_vad\",\"threshold\":0.5,\"silence_duration_ms\":200}",
        "null",
        "\"type\":\"realtime\"",
        "\"instructions\":\"",
        "\"id\":\"x\",\"object\":\"y\"",
        "[[[[[[[[",
        "]]]]]]]]",
        "}}",
        "\0",
        "\u{1}",
    ],
    max_len: 256 * 1024,
};

fn check_voice_events(data: &[u8]) -> Result<(), String> {
    let mut conversation = Conversation::new("sess_fuzz", VadConfig::default());
    let opened = conversation.opened();
    ensure(opened.kind() == "session.created", || "opened".into())?;
    for message in data.split(|&b| b == 0) {
        let events = if message.first() == Some(&1) {
            vec![conversation.on_binary()]
        } else {
            conversation.on_text(&String::from_utf8_lossy(message))
        };
        ensure(!events.is_empty(), || "a message without an answer".into())?;
        for event in &events {
            let json = event.to_json();
            let value: Value =
                serde_json::from_str(&json).map_err(|e| format!("unparsable answer: {e}"))?;
            ensure(value["type"] == event.kind(), || {
                format!("type {} for {}", value["type"], event.kind())
            })?;
            // Bounded answers: an error quotes at most the message (≤ 64 KiB), a session is at
            // most its limit.
            let limit = MAX_MESSAGE_BYTES.min(message.len()) * 6 + MAX_SESSION_BYTES + 1024;
            ensure(json.len() <= limit, || {
                format!(
                    "a {}-byte answer to a {}-byte message",
                    json.len(),
                    message.len()
                )
            })?;
            if let ServerEvent::SessionUpdated { session, .. } = event {
                let size = serde_json::to_vec(session).map_or(usize::MAX, |v| v.len());
                ensure(size <= MAX_SESSION_BYTES, || {
                    format!("a session of {size} bytes")
                })?;
                ensure(session["type"] == "realtime", || {
                    "the session type changed".into()
                })?;
            }
        }
        let session = conversation.session();
        ensure(session["id"] == "sess_fuzz", || {
            "the session id changed".into()
        })?;
        let _ = conversation.vad_config(VadConfig::default());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server: a WebSocket session
// ---------------------------------------------------------------------------------------------

/// A hub session fed the input's frames. Records are split at `0x00`; the first byte of each
/// picks the frame: `T` text, `B` binary, `P` ping, `O` pong, `C` close (with a code when the
/// record has two more bytes), `X` text over the frame limit, `Y` binary over it, `Z` the
/// record's bytes as text even when they are not UTF-8 (lossily, as a server would never see
/// them), anything else text.
pub const HUB_SESSION: Target = Target {
    name: "hub_session",
    check: check_hub_session,
    dictionary: &[
        "\0T{\"type\":\"ping\",\"payload\":{\"timestamp\":1},\"timestamp\":0}",
        "\0T{\"type\":\"subscribe\",\"payload\":{\"topics\":[\"orders\",\"a\"]},\"timestamp\":0}",
        "\0T{\"type\":\"unsubscribe\",\"payload\":{\"topics\":[\"orders\"]},\"timestamp\":0}",
        "\0T{\"type\":\"orders:sync\",\"payload\":{\"full\":true},\"timestamp\":0}",
        "\0T{\"type\":\"pong\",\"payload\":null,\"timestamp\":0}",
        "\0P",
        "\0O",
        "\0B",
        "\0C",
        "\0X",
        "\0Y",
        "\0Z",
        "\"topics\":",
        "\"payload\":",
        "1e400",
    ],
    max_len: 16 * 1024,
};

struct HubRig {
    runtime: tokio::runtime::Runtime,
    hub: Hub,
    metrics: vigil_server::metrics::Metrics,
}

thread_local! {
    static HUB: RefCell<Option<HubRig>> = const { RefCell::new(None) };
}

fn hub_rig() -> HubRig {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let metrics = vigil_server::metrics::Metrics::new();
    let hub = runtime.block_on(async {
        let store = vigil_server::store::Store::connect("sqlite::memory:")
            .await
            .expect("an in-memory store");
        Hub::new(
            HubConfig::default(),
            store,
            metrics.clone(),
            Default::default(),
        )
    });
    HubRig {
        runtime,
        hub,
        metrics,
    }
}

fn frames(data: &[u8], max_frame: usize) -> Vec<Message> {
    data.split(|&b| b == 0)
        .map(|record| {
            let (tag, rest) = record
                .split_first()
                .map_or((b'T', record), |(t, r)| (*t, r));
            let text = |bytes: &[u8]| Utf8Bytes::from(String::from_utf8_lossy(bytes).into_owned());
            let big = |bytes: &[u8]| {
                let unit = if bytes.is_empty() {
                    b"x".as_slice()
                } else {
                    bytes
                };
                unit.repeat(max_frame / unit.len() + 1)
            };
            match tag {
                b'T' | b'Z' => Message::Text(text(rest)),
                b'B' => Message::Binary(rest.to_vec().into()),
                b'P' => Message::Ping(rest.to_vec().into()),
                b'O' => Message::Pong(rest.to_vec().into()),
                b'C' => Message::Close(match rest {
                    [a, b, reason @ ..] => Some(CloseFrame {
                        code: u16::from_be_bytes([*a, *b]),
                        reason: text(reason),
                    }),
                    _ => None,
                }),
                b'X' => Message::Text(text(&big(rest))),
                b'Y' => Message::Binary(big(rest).into()),
                _ => Message::Text(text(record)),
            }
        })
        .collect()
}

fn check_hub_session(data: &[u8]) -> Result<(), String> {
    HUB.with(|cell| {
        let mut cell = cell.borrow_mut();
        let rig = cell.get_or_insert_with(hub_rig);
        let max_frame = rig.hub.config().max_frame_bytes;
        let input = frames(data, max_frame);
        let sent = input.len();
        let hub = rig.hub.clone();
        let (code, out) = rig.runtime.block_on(async move {
            let (to_server, server_in) = mpsc::unbounded::<Result<Message, std::io::Error>>();
            let (server_out, mut from_server) = mpsc::unbounded::<Message>();
            for m in input {
                let _ = to_server.unbounded_send(Ok(m));
            }
            drop(to_server); // then the connection drops
            let task = tokio::spawn(session::run(hub, server_out, server_in));
            let code = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .map_err(|_| "the session did not end within 5 s".to_owned())?
                .map_err(|e| format!("the session task failed: {e}"))?;
            let mut out = Vec::new();
            while let Some(m) = from_server.next().await {
                out.push(m);
            }
            Ok::<_, String>((code, out))
        })?;
        ensure(rig.hub.session_count() == 0, || {
            format!("{} sessions left in the hub", rig.hub.session_count())
        })?;
        ensure(rig.hub.topic_count() == 0, || {
            format!("{} topics left in the hub", rig.hub.topic_count())
        })?;
        ensure(rig.metrics.ws_connections.get() == 0, || {
            format!("ws_connections is {}", rig.metrics.ws_connections.get())
        })?;
        ensure(matches!(code, None | Some(1008 | 1009 | 1013)), || {
            format!("close code {code:?}")
        })?;
        if let Some(code) = code {
            let last = out.last();
            ensure(
                matches!(last, Some(Message::Close(Some(f))) if f.code == code),
                || format!("ended with {code} but the last frame sent was {last:?}"),
            )?;
        }
        // At most a welcome, one answer per frame received, and a close.
        ensure(out.len() <= sent + 2, || {
            format!("{} frames sent for {sent} received", out.len())
        })?;
        let too_big = out.iter().find(|m| match m {
            Message::Text(t) => t.len() > max_frame + 1024,
            _ => false,
        });
        ensure(too_big.is_none(), || {
            "an answer over the frame limit".into()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Runtime: native cores
// ---------------------------------------------------------------------------------------------

/// `Error.stack` strings of every engine.
pub const STACK: Target = Target {
    name: "stack",
    check: check_stack,
    dictionary: &[
        "\n    at ",
        "async ",
        "new ",
        " (",
        ")",
        "https://app.example/",
        "https://cdn.vigil/pkg/",
        ".js:",
        ":10:5",
        "@",
        "global code@",
        ":wasm-function[",
        "]:0x",
        "[wasm code]",
        "[native code]",
        "<anonymous>",
        "eval at ",
        ", <anonymous>:1:1",
        "chrome-extension://",
        "/node_modules/",
        "webkit-masked-url:",
        "4294967296",
    ],
    max_len: 64 * 1024,
};

/// The prefix the target marks not in app (as the runtime does with its package URL).
pub const NOT_IN_APP: &str = "https://cdn.vigil/pkg/";

/// The invariants of one parse; public for the timing tests.
pub fn check_stack_text(text: &str) -> Result<(), String> {
    let frames = stack::parse(text, &[NOT_IN_APP]);
    ensure(frames.len() <= stack::MAX_FRAMES, || {
        format!("{} frames", frames.len())
    })?;
    let lines = text.lines().count();
    ensure(frames.len() <= lines, || {
        format!("{} frames from {lines} lines", frames.len())
    })?;
    let mut bytes = 0usize;
    for f in &frames {
        bytes += f.filename.len()
            + f.function.map_or(0, str::len)
            + f.instruction_addr.map_or(0, str::len);
        if f.filename.starts_with(NOT_IN_APP) || f.filename.is_empty() {
            ensure(!f.in_app, || format!("{:?} marked in app", f.filename))?;
        }
        if let Some(function) = &f.function {
            ensure(!function.is_empty(), || "an empty function name".into())?;
        }
    }
    // Memory: frames are slices of the text, so their parts add up to at most the text (the
    // bound keeps room for a constant per frame, should a frame ever own its text again).
    ensure(bytes <= text.len() + 32 * frames.len(), || {
        format!("{bytes} bytes of frames from {} bytes of stack", text.len())
    })
}

fn check_stack(data: &[u8]) -> Result<(), String> {
    check_stack_text(&String::from_utf8_lossy(data))
}

/// `Dsn::parse`.
pub const DSN: Target = Target {
    name: "dsn",
    check: check_dsn,
    dictionary: &[
        "https://",
        "http://",
        "HTTPS://",
        "ftp://",
        "@",
        ":",
        "/",
        "[::1]",
        "]:",
        "?",
        "#",
        "65535",
        "65536",
        "0",
        "key",
        "localhost",
        "/42",
    ],
    max_len: 4 * 1024,
};

fn check_dsn(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    match Dsn::parse(&text) {
        Ok(dsn) => {
            ensure(dsn.scheme == "http" || dsn.scheme == "https", || {
                format!("scheme {:?}", dsn.scheme)
            })?;
            ensure(
                !dsn.public_key.is_empty() && !dsn.public_key.contains(['@', ':']),
                || format!("public key {:?}", dsn.public_key),
            )?;
            ensure(!dsn.host.is_empty(), || "an empty host".into())?;
            ensure(dsn.port != Some(0), || "port 0".into())?;
            ensure(
                !dsn.project_id.is_empty() && !dsn.project_id.contains('/'),
                || format!("project id {:?}", dsn.project_id),
            )?;
            ensure(!dsn.path.ends_with('/'), || {
                format!("path {:?} ends with /", dsn.path)
            })?;
            let size =
                dsn.public_key.len() + dsn.host.len() + dsn.path.len() + dsn.project_id.len();
            ensure(size <= text.len(), || "fields longer than the DSN".into())?;
            // What the transport builds from it parses back to the same place.
            let url = dsn.envelope_url("fuzz");
            ensure(url.starts_with(&dsn.origin()), || "envelope url".into())?;
            // For plain fields (no brackets, blanks or URL delimiters; the parser does not
            // validate characters, and a page's own DSN is not hostile), it round-trips.
            let plain = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
            };
            if [&dsn.public_key, &dsn.host, &dsn.path, &dsn.project_id]
                .iter()
                .all(|f| plain(f))
            {
                let port = dsn.port.map(|p| format!(":{p}")).unwrap_or_default();
                let again = format!(
                    "{}://{}@{}{port}{}/{}",
                    dsn.scheme, dsn.public_key, dsn.host, dsn.path, dsn.project_id
                );
                let reparsed = Dsn::parse(&again).map_err(|e| format!("{again:?}: {e}"))?;
                ensure(reparsed == dsn, || {
                    format!("{again:?} parses to {reparsed:?}, not {dsn:?}")
                })?;
            }
            Ok(())
        }
        Err(e) => ensure(e.message() == e.to_string(), || {
            format!(
                "message {:?} is not the Display {:?}",
                e.message(),
                e.to_string()
            )
        }),
    }
}

/// `X-Sentry-Rate-Limits` and `Retry-After`. The input is `status\0limits\0retry-after`.
pub const RATELIMIT: Target = Target {
    name: "ratelimit",
    check: check_ratelimit,
    dictionary: &[
        "60:error;transaction:key",
        ", ",
        "10::organization",
        ":",
        ";",
        ",",
        "2.5",
        "999999999999",
        "1000000000000",
        "\0",
        "429",
        "error",
        "metric_bucket",
    ],
    max_len: 8 * 1024,
};

fn check_ratelimit(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let status = parts
        .next()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(429);
    let limits = parts.next();
    let retry = parts.next();
    let now = 1_000_000.0;
    let mut r = RateLimits::default();
    r.update(now, status, limits, retry);
    r.update(now, status, limits, retry); // twice: the same limits, no growth
                                          // Seconds have at most 12 whole digits.
    let horizon = now + 1e12 * 1000.0 + 1000.0;
    let mut categories: Vec<&str> = limits
        .unwrap_or("")
        .split([',', ':', ';'])
        .map(str::trim)
        .collect();
    categories.extend(["error", "transaction", "metric", ""]);
    for c in categories {
        if let Some(until) = r.limited_until(c, now) {
            ensure(until.is_finite() && until > now && until <= horizon, || {
                format!("{c:?} limited until {until}")
            })?;
        }
    }
    // Memory: at most MAX_CATEGORIES names, each from the header.
    let debug = format!("{r:?}");
    let bound = 128 + MAX_CATEGORIES * (64 + 10 * limits.map_or(0, str::len));
    ensure(debug.len() <= bound, || {
        format!(
            "{} bytes of state from a {}-byte header",
            debug.len(),
            text.len()
        )
    })
}
