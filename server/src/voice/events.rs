//! *Pure.* The `oai-events` data channel: the realtime events as serde types, and the
//! [`Conversation`] that decides what to answer to each client message and detector event.
//!
//! Names and shapes follow OpenAI Realtime (GA), so a page written for the hosted service talks to
//! this peer unchanged: `session.created` when the channel opens, `session.updated` after a
//! `session.update`, `input_audio_buffer.speech_started` / `speech_stopped` from the detector, and
//! `error` (`invalid_request_error`) for anything else, including text that is not JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::vad::{VadConfig, VadEvent};

/// Longest client message read; longer ones get an `error` and are not parsed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest session object a `session.update` may grow the session to (as JSON).
pub const MAX_SESSION_BYTES: usize = 32 * 1024;

/// An event the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// First event on the channel: the session as it is.
    #[serde(rename = "session.created")]
    SessionCreated {
        /// Unique per event.
        event_id: String,
        /// The whole session object.
        session: Value,
    },
    /// After a `session.update`: the merged session.
    #[serde(rename = "session.updated")]
    SessionUpdated {
        /// Unique per event.
        event_id: String,
        /// The whole session object.
        session: Value,
    },
    /// The detector heard speech begin.
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        /// Unique per event.
        event_id: String,
        /// Milliseconds since the call's first audio, padding included.
        audio_start_ms: u64,
        /// The user item this speech will become.
        item_id: String,
    },
    /// The detector heard speech end.
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        /// Unique per event.
        event_id: String,
        /// Milliseconds since the call's first audio, silence duration included.
        audio_end_ms: u64,
        /// The same item as the matching `speech_started`.
        item_id: String,
    },
    /// After `input_audio_buffer.clear`.
    #[serde(rename = "input_audio_buffer.cleared")]
    InputAudioBufferCleared {
        /// Unique per event.
        event_id: String,
    },
    /// A client event was refused.
    #[serde(rename = "error")]
    Error {
        /// Unique per event.
        event_id: String,
        /// What and why.
        error: ErrorInfo,
    },
}

impl ServerEvent {
    /// The `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionCreated { .. } => "session.created",
            Self::SessionUpdated { .. } => "session.updated",
            Self::SpeechStarted { .. } => "input_audio_buffer.speech_started",
            Self::SpeechStopped { .. } => "input_audio_buffer.speech_stopped",
            Self::InputAudioBufferCleared { .. } => "input_audio_buffer.cleared",
            Self::Error { .. } => "error",
        }
    }

    /// The JSON text sent on the channel.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: string keys, no non-finite floats of our own
        // (session values came from JSON text, so they are finite too).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"error\"}"))
    }
}

/// The body of an `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Always `invalid_request_error` here.
    #[serde(rename = "type")]
    pub kind: String,
    /// `unknown_event`, `invalid_json`, `invalid_event`, `invalid_value`, `message_too_large`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The offending parameter, when one is.
    pub param: Option<String>,
    /// The `event_id` of the client event refused, when it had one.
    pub event_id: Option<String>,
}

/// The client events this peer handles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ClientEvent {
    /// Merge `session` into the session.
    #[serde(rename = "session.update")]
    SessionUpdate {
        /// Echoed in an error about this event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        /// Fields to change; objects merge, other values replace, `null` clears.
        session: Map<String, Value>,
    },
    /// Forget buffered input audio (this peer buffers none; it confirms and resets the
    /// detector's item).
    #[serde(rename = "input_audio_buffer.clear")]
    InputAudioBufferClear {
        /// Echoed in an error about this event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
    },
}

const HANDLED: [&str; 2] = ["session.update", "input_audio_buffer.clear"];

/// One call's event state: the session object, event and item counters.
#[derive(Debug, Clone)]
pub struct Conversation {
    session: Map<String, Value>,
    next_event: u64,
    next_item: u64,
    speech_item: Option<String>,
}

impl Conversation {
    /// A conversation for session `id` with the detector's defaults shown in the session.
    pub fn new(id: &str, vad: VadConfig) -> Self {
        let session = serde_json::json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": id,
            "model": "vigil-echo",
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": { "type": "audio/opus" },
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": threshold_from_dbov(vad.threshold),
                        "prefix_padding_ms": vad.prefix_padding_ms,
                        "silence_duration_ms": vad.silence_duration_ms,
                    },
                },
                "output": { "format": { "type": "audio/opus" }, "voice": "echo" },
            },
        });
        let session = match session {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            session,
            next_event: 0,
            next_item: 0,
            speech_item: None,
        }
    }

    /// The session object as it is now.
    pub fn session(&self) -> Value {
        Value::Object(self.session.clone())
    }

    /// What to send when the channel opens.
    pub fn opened(&mut self) -> ServerEvent {
        ServerEvent::SessionCreated {
            event_id: self.event_id(),
            session: self.session(),
        }
    }

    /// What to answer to one text message from the client.
    pub fn on_text(&mut self, text: &str) -> Vec<ServerEvent> {
        if text.len() > MAX_MESSAGE_BYTES {
            return vec![self.error(
                "message_too_large",
                format!("messages are at most {MAX_MESSAGE_BYTES} bytes"),
                None,
                None,
            )];
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return vec![self.error(
                    "invalid_json",
                    format!("the message is not JSON: {e}"),
                    None,
                    None,
                )]
            }
        };
        let event_id = value
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(kind) = value.get("type").and_then(Value::as_str) else {
            return vec![self.error(
                "invalid_event",
                "the event has no string `type`".into(),
                Some("type"),
                event_id,
            )];
        };
        if !HANDLED.contains(&kind) {
            let message = format!("unknown or unsupported event type {kind:?}");
            return vec![self.error("unknown_event", message, Some("type"), event_id)];
        }
        match serde_json::from_value::<ClientEvent>(value) {
            Ok(ClientEvent::SessionUpdate { session, event_id }) => {
                vec![self.update(session, event_id)]
            }
            Ok(ClientEvent::InputAudioBufferClear { .. }) => {
                self.speech_item = None;
                vec![ServerEvent::InputAudioBufferCleared {
                    event_id: self.event_id(),
                }]
            }
            Err(e) => vec![self.error("invalid_event", e.to_string(), None, event_id)],
        }
    }

    /// What to answer to a binary message (the protocol is text only).
    pub fn on_binary(&mut self) -> ServerEvent {
        self.error(
            "invalid_event",
            "binary messages are not supported; send JSON text".into(),
            None,
            None,
        )
    }

    /// The event for a detector edge, or none when turn detection is off.
    pub fn on_vad(&mut self, event: VadEvent) -> Option<ServerEvent> {
        self.vad_config(VadConfig::default())?;
        Some(match event {
            VadEvent::SpeechStarted { audio_start_ms } => {
                let item_id = format!("item_{:06}", self.next_item);
                self.next_item += 1;
                self.speech_item = Some(item_id.clone());
                ServerEvent::SpeechStarted {
                    event_id: self.event_id(),
                    audio_start_ms,
                    item_id,
                }
            }
            VadEvent::SpeechStopped { audio_end_ms } => {
                let item_id = self.speech_item.take().unwrap_or_else(|| {
                    let id = format!("item_{:06}", self.next_item);
                    self.next_item += 1;
                    id
                });
                ServerEvent::SpeechStopped {
                    event_id: self.event_id(),
                    audio_end_ms,
                    item_id,
                }
            }
        })
    }

    /// The detector settings the session asks for, from `base`; `None` when the session turned
    /// detection off (`audio.input.turn_detection: null`).
    pub fn vad_config(&self, base: VadConfig) -> Option<VadConfig> {
        let td = self
            .session
            .get("audio")
            .and_then(|a| a.get("input"))
            .and_then(|i| i.get("turn_detection"))?;
        if td.is_null() {
            return None;
        }
        let ms = |name: &str, default: u64| {
            td.get(name)
                .and_then(Value::as_u64)
                .map_or(default, |v| v.min(60_000))
        };
        Some(VadConfig {
            threshold: td
                .get("threshold")
                .and_then(Value::as_f64)
                .map_or(base.threshold, dbov_from_threshold),
            prefix_padding_ms: ms("prefix_padding_ms", base.prefix_padding_ms),
            silence_duration_ms: ms("silence_duration_ms", base.silence_duration_ms),
            min_speech_ms: base.min_speech_ms,
        })
    }

    fn update(&mut self, changes: Map<String, Value>, event_id: Option<String>) -> ServerEvent {
        if let Some(t) = changes.get("type") {
            if t != "realtime" {
                return self.error(
                    "invalid_value",
                    "session.type must be \"realtime\"".into(),
                    Some("session.type"),
                    event_id,
                );
            }
        }
        let mut merged = self.session.clone();
        for (key, value) in changes {
            // The identity of the session is the server's.
            if key == "id" || key == "object" {
                continue;
            }
            merge(merged.entry(key).or_insert(Value::Null), value);
        }
        let size = serde_json::to_vec(&merged).map_or(usize::MAX, |v| v.len());
        if size > MAX_SESSION_BYTES {
            return self.error(
                "invalid_value",
                format!("the session would be {size} bytes; at most {MAX_SESSION_BYTES}"),
                Some("session"),
                event_id,
            );
        }
        self.session = merged;
        ServerEvent::SessionUpdated {
            event_id: self.event_id(),
            session: self.session(),
        }
    }

    fn error(
        &mut self,
        code: &str,
        message: String,
        param: Option<&str>,
        client_event_id: Option<String>,
    ) -> ServerEvent {
        ServerEvent::Error {
            event_id: self.event_id(),
            error: ErrorInfo {
                kind: "invalid_request_error".into(),
                code: code.into(),
                message,
                param: param.map(str::to_owned),
                event_id: client_event_id,
            },
        }
    }

    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("event_{:08}", self.next_event)
    }
}

/// JSON merge: objects merge key by key, anything else replaces.
fn merge(target: &mut Value, change: Value) {
    match (target, change) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, c) => *t = c,
    }
}

/// OpenAI's `threshold` (0..1, higher needs louder audio) as an RFC 6464 level:
/// `(1 - t) * 100` -dBov, so the default 0.5 is -50 dBov.
pub fn dbov_from_threshold(t: f64) -> u8 {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    ((1.0 - t) * 100.0).round() as u8
}

/// The inverse of [`dbov_from_threshold`], for showing the detector's setting in the session.
pub fn threshold_from_dbov(level: u8) -> f64 {
    (100.0 - f64::from(level.min(100))) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Conversation {
        Conversation::new("sess_1", VadConfig::default())
    }

    fn to_value(e: &ServerEvent) -> Value {
        serde_json::from_str(&e.to_json()).unwrap()
    }

    #[test]
    fn session_created_carries_the_session() {
        let mut c = conv();
        let v = to_value(&c.opened());
        assert_eq!(v["type"], "session.created");
        assert_eq!(v["event_id"], "event_00000001");
        assert_eq!(v["session"]["id"], "sess_1");
        assert_eq!(v["session"]["type"], "realtime");
        assert_eq!(
            v["session"]["audio"]["input"]["turn_detection"],
            json!({"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,"silence_duration_ms":500})
        );
    }

    #[test]
    fn session_update_merges_and_answers_the_whole_session() {
        let mut c = conv();
        let out = c.on_text(
            r#"{"type":"session.update","session":{"type":"realtime","instructions":"be brief",
                "id":"nope","audio":{"input":{"turn_detection":{"silence_duration_ms":200}}}}}"#,
        );
        assert_eq!(out.len(), 1);
        let v = to_value(&out[0]);
        assert_eq!(v["type"], "session.updated");
        assert_eq!(v["session"]["instructions"], "be brief");
        assert_eq!(v["session"]["id"], "sess_1", "the id is the server's");
        let td = &v["session"]["audio"]["input"]["turn_detection"];
        assert_eq!(td["silence_duration_ms"], 200);
        assert_eq!(td["prefix_padding_ms"], 300, "siblings are kept");
        assert_eq!(
            c.vad_config(VadConfig::default())
                .unwrap()
                .silence_duration_ms,
            200
        );
    }

    #[test]
    fn turn_detection_null_turns_speech_events_off() {
        let mut c = conv();
        assert!(c
            .on_vad(VadEvent::SpeechStarted { audio_start_ms: 0 })
            .is_some());
        c.on_text(
            r#"{"type":"session.update","session":{"audio":{"input":{"turn_detection":null}}}}"#,
        );
        assert_eq!(c.vad_config(VadConfig::default()), None);
        assert_eq!(c.on_vad(VadEvent::SpeechStopped { audio_end_ms: 9 }), None);
    }

    #[test]
    fn threshold_maps_to_dbov_both_ways() {
        assert_eq!(dbov_from_threshold(0.5), 50);
        assert_eq!(dbov_from_threshold(0.8), 20);
        assert_eq!(dbov_from_threshold(7.0), 0);
        assert_eq!(dbov_from_threshold(f64::NAN), 50);
        assert_eq!(threshold_from_dbov(50), 0.5);
        let mut c = conv();
        c.on_text(r#"{"type":"session.update","session":{"audio":{"input":{"turn_detection":{"threshold":0.7}}}}}"#);
        assert_eq!(c.vad_config(VadConfig::default()).unwrap().threshold, 30);
    }

    #[test]
    fn unknown_types_get_an_unknown_event_error_with_the_client_event_id() {
        let mut c = conv();
        let out = c.on_text(r#"{"type":"bogus","event_id":"evt_9"}"#);
        let v = to_value(&out[0]);
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "unknown_event");
        assert_eq!(v["error"]["event_id"], "evt_9");
        assert!(v["error"]["message"].as_str().unwrap().contains("bogus"));
        // Known OpenAI events this echo peer does not implement are refused the same way.
        let v = to_value(&c.on_text(r#"{"type":"response.create"}"#)[0]);
        assert_eq!(v["error"]["code"], "unknown_event");
    }

    #[test]
    fn malformed_messages_get_errors_not_panics() {
        let mut c = conv();
        for (text, code) in [
            ("not json", "invalid_json"),
            ("", "invalid_json"),
            ("[1,2]", "invalid_event"),
            (r#"{"type":7}"#, "invalid_event"),
            (r#"{"type":"session.update"}"#, "invalid_event"),
            (
                r#"{"type":"session.update","session":"x"}"#,
                "invalid_event",
            ),
            (
                r#"{"type":"session.update","session":{"type":"transcription"}}"#,
                "invalid_value",
            ),
        ] {
            let out = c.on_text(text);
            assert_eq!(out.len(), 1, "{text}");
            let v = to_value(&out[0]);
            assert_eq!(v["type"], "error", "{text}");
            assert_eq!(v["error"]["code"], code, "{text}");
        }
        let big = format!(
            r#"{{"type":"session.update","session":{{"instructions":"{}"}}}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            to_value(&c.on_text(&big)[0])["error"]["code"],
            "message_too_large"
        );
        assert_eq!(to_value(&c.on_binary())["error"]["code"], "invalid_event");
    }

    #[test]
    fn the_session_cannot_grow_past_its_limit() {
        let mut c = conv();
        let chunk = "y".repeat(MAX_SESSION_BYTES / 4);
        let mut refused = 0;
        for i in 0..8 {
            let text =
                json!({"type":"session.update","session":{ format!("k{i}"): chunk }}).to_string();
            if to_value(&c.on_text(&text)[0])["type"] == "error" {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(serde_json::to_vec(&c.session()).unwrap().len() <= MAX_SESSION_BYTES);
    }

    #[test]
    fn speech_events_pair_on_one_item_and_ids_are_unique() {
        let mut c = conv();
        let a = to_value(
            &c.on_vad(VadEvent::SpeechStarted {
                audio_start_ms: 700,
            })
            .unwrap(),
        );
        let b = to_value(
            &c.on_vad(VadEvent::SpeechStopped { audio_end_ms: 2480 })
                .unwrap(),
        );
        assert_eq!(a["type"], "input_audio_buffer.speech_started");
        assert_eq!(a["audio_start_ms"], 700);
        assert_eq!(b["type"], "input_audio_buffer.speech_stopped");
        assert_eq!(b["audio_end_ms"], 2480);
        assert_eq!(a["item_id"], b["item_id"]);
        assert_ne!(a["event_id"], b["event_id"]);
        let c2 = to_value(
            &c.on_vad(VadEvent::SpeechStarted {
                audio_start_ms: 3000,
            })
            .unwrap(),
        );
        assert_ne!(c2["item_id"], a["item_id"]);
    }

    #[test]
    fn events_round_trip_through_serde() {
        let mut c = conv();
        for e in [
            c.opened(),
            c.on_text(r#"{"type":"input_audio_buffer.clear"}"#)
                .remove(0),
            c.on_text("{").remove(0),
        ] {
            let back: ServerEvent = serde_json::from_str(&e.to_json()).unwrap();
            assert_eq!(back.kind(), e.kind());
            assert_eq!(back, e);
        }
        let update = ClientEvent::SessionUpdate {
            event_id: None,
            session: Map::new(),
        };
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({"type":"session.update","session":{}})
        );
    }
}
