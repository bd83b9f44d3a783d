//! `VoiceConnection` (issue #6): converts and delegates to [`crate::voice::connection`].

use crate::prelude::*;
use wasm_bindgen::prelude::*;

use super::handle::{alias_symbol_dispose, Handle};
use super::subscription::Subscription;
use crate::runtime::manager;
use crate::voice::connection::{self as voice_conn, Inner as VoiceInner};

#[wasm_bindgen(typescript_custom_section)]
const TS_VOICE: &'static str = r#"
/** Options of `new VoiceConnection(options)`. */
export interface VoiceConnectionOptions {
  /** POST → `{ client_secret: { value, expires_at }, realtime_url }`. Default "/voice/session". */
  sessionUrl?: string;
  /** An <audio> to play into; when absent one is created (autoplay, in <body>) and removed on disconnect. */
  audioElement?: HTMLAudioElement;
  /** Default "oai-events". */
  dataChannelLabel?: string;
  /** Sent as `{type: "session.update", session: {type: "realtime", ...session}}` when the channel opens. */
  session?: Record<string, unknown>;
  /** `getUserMedia` audio constraints; `false`: receive only. Default true. */
  audio?: boolean | MediaTrackConstraints;
  /** `connect()` rejects after this. Default 15000. */
  connectTimeoutMs?: number;
}
export type VoiceState = "idle" | "connecting" | "connected" | "disconnected" | "failed";
export interface VoiceStats {
  packetsSent: number; packetsReceived: number; bytesSent: number; bytesReceived: number;
  /** The nominated candidate pair's `currentRoundTripTime`, in ms; null before one exists. */
  roundTripTimeMs: number | null;
  /** Data channel events dispatched, `sendEvent` calls the data channel took, and messages that were not JSON events. */
  eventsIn: number; eventsOut: number; invalidEvents: number;
}
"#;

/// The OpenAI Realtime WebRTC flow (session key, peer connection, microphone, SDP exchange,
/// `oai-events` data channel) with every resource in a guard. Owned by the cleanup manager.
#[wasm_bindgen]
#[derive(Debug)]
pub struct VoiceConnection {
    handle: Handle<VoiceInner>,
}

#[wasm_bindgen]
impl VoiceConnection {
    /// Creates the connection; nothing is acquired until `connect()`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "VoiceConnectionOptions")] options: JsValue,
    ) -> Result<VoiceConnection, JsValue> {
        let service = voice_conn::create(voice_conn::parse_options(&options)?);
        let weak = service.downgrade();
        let handle = Handle::register(manager::priority::NETWORK, service, weak)?;
        static ONCE: crate::runtime::local::Once = crate::runtime::local::Once::new();
        ONCE.call_once(|| {
            let probe = VoiceConnection {
                handle: Handle::none(),
            };
            alias_symbol_dispose(&JsValue::from(probe), "dispose");
        });
        Ok(Self { handle })
    }
    fn live(&self) -> Result<voice_conn::Shared, JsValue> {
        self.handle.live("this VoiceConnection was disposed")
    }

    /// Runs the connect steps; resolves when the data channel is open. A failure rejects with an
    /// `Error` naming the step (also in its `step` property) and leaves nothing behind.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn connect(&self) -> Result<js_sys::Promise, JsValue> {
        Ok(voice_conn::connect(&self.live()?))
    }

    /// Calls `handler(event)` for every server event of `type` (`"*"`: every event).
    pub fn on(
        &self,
        #[wasm_bindgen(js_name = "type")] kind: String,
        #[wasm_bindgen(unchecked_param_type = "(event: any) => void")] handler: js_sys::Function,
    ) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = voice_conn::subscribe(&s, Some(kind), handler)
            .map_err(|e| js_sys::Error::new(&e.message()))?;
        Ok(Subscription::voice(&s, id))
    }

    /// Calls `handler(state)` on every state change.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(state: VoiceState) => void")]
        handler: js_sys::Function,
    ) -> Result<Subscription, JsValue> {
        let s = self.live()?;
        let id = voice_conn::subscribe(&s, None, handler)
            .map_err(|e| js_sys::Error::new(&e.message()))?;
        Ok(Subscription::voice(&s, id))
    }

    /// Sends a client event as JSON on the data channel; false when not connected (or disposed)
    /// or when the channel refused it.
    #[wasm_bindgen(js_name = sendEvent)]
    pub fn send_event(&self, event: JsValue) -> Result<bool, JsValue> {
        match self.handle.upgrade() {
            Some(s) => voice_conn::send_event(&s, &event),
            None => Ok(false),
        }
    }

    /// Mutes (or unmutes) the microphone: `track.enabled = !muted`.
    #[wasm_bindgen(js_name = setMuted)]
    pub fn set_muted(&self, muted: bool) -> Result<(), JsValue> {
        voice_conn::set_muted(&self.live()?, muted);
        Ok(())
    }

    /// `"idle" | "connecting" | "connected" | "disconnected" | "failed"` (`"disconnected"` once
    /// disposed).
    #[wasm_bindgen(getter, unchecked_return_type = "VoiceState")]
    pub fn state(&self) -> JsValue {
        // A JS string made from the static name (no returned `String`, no deferred free).
        JsValue::from_str(
            self.handle
                .upgrade()
                .map_or("disconnected", |s| voice_conn::state(&s).as_str()),
        )
    }

    /// Audio packet and byte counts and the round trip from `getStats()`, plus event counters.
    #[wasm_bindgen(unchecked_return_type = "Promise<VoiceStats>")]
    pub fn stats(&self) -> Result<js_sys::Promise, JsValue> {
        Ok(voice_conn::stats(&self.live()?))
    }

    /// Closes the data channel and the peer connection (handlers detached), stops the
    /// microphone, pauses and empties the audio element (removed if created). State
    /// `disconnected`; `connect()` may be called again.
    pub fn disconnect(&self) -> Result<(), JsValue> {
        voice_conn::disconnect(&self.live()?);
        Ok(())
    }

    /// Disconnects and frees the subscriptions. Idempotent.
    pub fn dispose(&self) {
        self.handle.dispose();
    }
}
