// The WebRTC steps of `VoiceConnection` (`voice/connection.rs`), kept in JS: one small function
// per step instead of a web-sys import per call. Each step never rejects: it resolves to
// `[true, value]` or `[false, detail]` (a string), which Rust reads in one promise reaction
// (`guards::when_settled`). Decisions stay in the machine; tracks that come back go into guards.

const stepDetail = (e) => typeof e === 'string' ? e : e && e.name ? e.name + ': ' + e.message : String(e);
const step = (p) => p.then((v) => [true, v], (e) => [false, stepDetail(e)]);
const voicePost = async (url, body, headers, signal) => {
  const r = await fetch(url, { method: 'POST', body, headers, signal });
  const text = await r.text();
  if (r.ok) return text;
  const t = text.trim();
  throw 'POST ' + url + ' answered ' + r.status + (t ? ': ' + t.slice(0, 200) : '') +
    (r.status === 401 ? ' (the key was refused: used already, or expired)' : '');
};
export function vigilVoiceSession(url, signal) {
  return step(voicePost(url, '{}', { 'Content-Type': 'application/json' }, signal).then((text) => {
    let a;
    try { a = JSON.parse(text); } catch (_) { throw 'the session answer is not JSON'; }
    const key = a && a.client_secret && a.client_secret.value;
    if (typeof key !== 'string') throw 'the session answer has no client_secret.value';
    if (typeof a.realtime_url !== 'string') throw 'the session answer has no realtime_url';
    return [key, new URL(a.realtime_url, url).href];
  }));
}
export function vigilVoiceMicrophone(audio) {
  const devices = navigator.mediaDevices;
  if (!devices) return step(Promise.reject('navigator.mediaDevices is missing (not a secure context?)'));
  return step(devices.getUserMedia({ audio }));
}
export function vigilVoiceAddTracks(pc, stream) { for (const t of stream.getTracks()) pc.addTrack(t, stream); }
export function vigilVoiceReceiveOnly(pc) { pc.addTransceiver('audio', { direction: 'recvonly' }); }
export function vigilVoiceOffer(pc) {
  return step(pc.createOffer().then((o) => pc.setLocalDescription(o).then(() => o.sdp)));
}
export function vigilVoiceExchange(url, key, sdp, signal) {
  return step(voicePost(url, sdp, { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + key }, signal));
}
export function vigilVoiceAnswer(pc, sdp) { return step(pc.setRemoteDescription({ type: 'answer', sdp })); }
export function vigilVoicePlay(el, stream) {
  el.srcObject = stream;
  const p = el.play(); // autoplay may be refused until a user gesture; the element keeps the stream
  if (p) p.catch(() => {});
}
export function vigilVoiceStop(el) { el.pause(); el.srcObject = null; }
export function vigilVoiceUpdate(session) {
  return JSON.stringify({ type: 'session.update', session: { type: 'realtime', ...session } });
}
export async function vigilVoiceStats(pc, c) {
  const out = { packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0, roundTripTimeMs: null,
    eventsIn: c[0], eventsOut: c[1], invalidEvents: c[2] };
  if (pc) (await pc.getStats()).forEach((s) => {
    if (s.kind === 'audio' && s.type === 'outbound-rtp') { out.packetsSent += s.packetsSent || 0; out.bytesSent += s.bytesSent || 0; }
    if (s.kind === 'audio' && s.type === 'inbound-rtp') { out.packetsReceived += s.packetsReceived || 0; out.bytesReceived += s.bytesReceived || 0; }
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) out.roundTripTimeMs = s.currentRoundTripTime * 1000;
  });
  return out;
}
