// Option bags, read and checked in JS: a property read and a typeof here are a few bytes, and
// each is ~200 bytes of wasm. The messages are the crate's (`VigilError::BadArgument`, and
// `error::millis` for milliseconds): every error is a TypeError "name: expected …, got …", and
// the browser tests check them by name. The Rust side gets a
// flat array of plain values and keeps the decisions (DSN parsing, health bounds, backoff).
//
// Also the one call every variant makes, `vigilListen` (at the end): the snippet every feature
// shares. A bundler keeps only what a variant imports by name (`vigil/core` takes only it).

const kind = (v) =>
  v === null ? "null"
    : v === undefined ? "undefined"
    : typeof v === "boolean" ? "a boolean"
    : typeof v === "number" ? "a number"
    : typeof v === "string" ? "a string"
    : typeof v === "function" ? "a function"
    : Array.isArray(v) ? "an array"
    : "an object";

const bad = (name, expected, got) => new TypeError(name + ": expected " + expected + ", got " + got);

const isObject = (v) => typeof v === "object" && v !== null;

// `o[name]`, undefined when `o` is not an object (then every option is its default).
const get = (o, name) => (isObject(o) ? o[name] : undefined);

function millis(o, name, def, min) {
  const v = get(o, name);
  if (v === undefined) return def;
  if (typeof v !== "number") throw bad(name, "a number of milliseconds", kind(v));
  if (!(v >= 0 && v <= 4294967295)) {
    throw bad(name, "a number of milliseconds between 0 and 4294967295",
      v !== v ? "NaN" : !isFinite(v) ? "an infinite number" : v < 0 ? "a negative number" : "a number over 4294967295");
  }
  const ms = Math.trunc(v);
  if (ms < min) throw bad(name, "a positive number of milliseconds", "0");
  return ms;
}

function num(o, name, def, lo, hi, expected) {
  const v = get(o, name);
  if (v === undefined) return def;
  if (typeof v !== "number") throw bad(name, expected, kind(v));
  if (!(v >= lo && v <= hi)) throw bad(name, expected, "a number out of range");
  return v;
}

function text(o, name, def, expected = "a string") {
  const v = get(o, name);
  if (v === undefined) return def;
  if (typeof v !== "string") throw bad(name, expected, kind(v));
  return v;
}

function flag(o, name, def) {
  const v = get(o, name);
  if (v === undefined) return def;
  if (typeof v !== "boolean") throw bad(name, "true or false", kind(v));
  return v;
}

// `url` resolved against the page, or undefined when it does not parse.
function resolve(url) {
  try {
    return typeof location === "undefined" ? new URL(url) : new URL(url, location.href);
  } catch {
    return undefined;
  }
}

// `health`: undefined (the default: missing, true, or an object without intervalMs), false, or
// the interval as given (Rust checks its range: runtime/health.rs).
function health(o) {
  const h = get(o, "health");
  if (h === undefined || h === true) return undefined;
  if (h === false) return false;
  if (!isObject(h) || Array.isArray(h)) throw bad("health", "false or { intervalMs }", kind(h));
  const ms = h.intervalMs;
  if (ms === undefined) return undefined;
  if (typeof ms !== "number") {
    throw bad("health.intervalMs", "a number of milliseconds from 100 to 86400000", kind(ms));
  }
  return ms;
}

/** `Vigil.start(options)`: [dsn, release, environment, metricsUrl, maxQueuedEvents, health,
 * sampleRate, maxBreadcrumbs, captureConsole, captureGlobalErrors, navigationBreadcrumbs,
 * beforeSend, flushIntervalMs]. */
export function vigilStartOptions(o) {
  const dsn = get(o, "dsn");
  const expected = "a DSN like http://key@host:port/1";
  if (typeof dsn !== "string") throw bad("dsn", expected, dsn === undefined ? "nothing" : kind(dsn));
  const out = [
    dsn,
    text(o, "release"),
    text(o, "environment", "production"),
    text(o, "metricsUrl"),
    num(o, "maxQueuedEvents", 100, 0, 10000, "a number from 0 to 10000"),
    health(o),
  ];
  const beforeSend = get(o, "beforeSend");
  if (beforeSend !== undefined && typeof beforeSend !== "function") {
    throw bad("beforeSend", "a function", kind(beforeSend));
  }
  out.push(
    num(o, "sampleRate", 1, 0, 1, "a number from 0 to 1"),
    num(o, "maxBreadcrumbs", 100, 0, 1000, "a number from 0 to 1000"),
    flag(o, "captureConsole", true),
    flag(o, "captureGlobalErrors", true),
    flag(o, "navigationBreadcrumbs", true),
    beforeSend,
    millis(o, "flushIntervalMs", 10000, 1),
  );
  return out;
}

/** `new WebSocketService(options)`: [url, protocols, heartbeatIntervalMs, heartbeatTimeoutMs,
 * connectTimeoutMs, reconnect, maxQueuedMessages]; `reconnect` is null (never) or
 * [initialDelayMs, maxDelayMs, factor, jitter, maxAttempts]. */
export function vigilWsOptions(o) {
  const given = get(o, "url");
  if (typeof given !== "string") {
    throw bad("url", "a ws:// or wss:// URL", given === undefined ? "nothing" : kind(given));
  }
  const url = resolve(given);
  const protocol = url && url.protocol;
  if (protocol === "http:" || protocol === "https:") url.protocol = protocol === "http:" ? "ws:" : "wss:";
  else if (protocol !== "ws:" && protocol !== "wss:") {
    throw bad("url", "a ws:// or wss:// URL (or one relative to the page)", "something else");
  }
  const p = get(o, "protocols");
  const expected = "a string or an array of strings";
  let protocols = [];
  if (typeof p === "string") protocols = [p];
  else if (Array.isArray(p)) {
    if (!p.every((x) => typeof x === "string")) throw bad("protocols", expected, "an array with a non-string");
    protocols = p;
  } else if (p !== undefined) throw bad("protocols", expected, kind(p));
  const r = get(o, "reconnect");
  let reconnect = [1000, 30000, 2, 0.25, Infinity];
  if (r === false) reconnect = null;
  else if (isObject(r)) {
    const max = num(r, "maxAttempts", Infinity, 0, Infinity, "a number of attempts (or Infinity)");
    reconnect = [
      millis(r, "initialDelayMs", 1000, 0),
      millis(r, "maxDelayMs", 30000, 0),
      num(r, "factor", 2, 1, 100, "a factor between 1 and 100"),
      num(r, "jitter", 0.25, 0, 1, "a jitter between 0 and 1"),
      max,
    ];
  } else if (r !== undefined && r !== true) throw bad("reconnect", "false or an object", kind(r));
  return [
    url.href,
    protocols,
    millis(o, "heartbeatIntervalMs", 30000, 1),
    millis(o, "heartbeatTimeoutMs", 10000, 1),
    millis(o, "connectTimeoutMs", 10000, 1),
    reconnect,
    Math.trunc(num(o, "maxQueuedMessages", 1000, 0, 1000000, "a number of messages between 0 and 1000000")),
  ];
}

/** `new VoiceConnection(options)`: [sessionUrl, audioElement, dataChannelLabel, session,
 * audio, connectTimeoutMs]. */
export function vigilVoiceOptions(o) {
  const url = resolve(text(o, "sessionUrl", "/voice/session"));
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw bad("sessionUrl", "an http(s) URL (or one relative to the page)", "something else");
  }
  const label = text(o, "dataChannelLabel", "oai-events");
  const element = get(o, "audioElement");
  if (element !== undefined && !(typeof HTMLMediaElement !== "undefined" && element instanceof HTMLMediaElement)) {
    throw bad("audioElement", "an <audio> element", kind(element));
  }
  const session = get(o, "session");
  if (session !== undefined && !(isObject(session) && !Array.isArray(session))) {
    throw bad("session", "an object", kind(session));
  }
  const audio = get(o, "audio") === undefined ? true : get(o, "audio");
  if (typeof audio !== "boolean" && !isObject(audio)) {
    throw bad("audio", "a boolean or MediaTrackConstraints", kind(audio));
  }
  return [url.href, element, label, session, audio, millis(o, "connectTimeoutMs", 15000, 1)];
}

/** `addEventListener` with `{ capture, passive: true }` (runtime/guards.rs `Listener`). */
export function vigilListen(target, type, callback, capture) {
  target.addEventListener(type, callback, { capture, passive: true });
}

/** `[promise, resolve, reject]`: a `connect()` waiting (runtime/waiters.rs; WebSocket, voice). */
export function vigilWaiter() {
  let resolve, reject;
  const promise = new Promise((yes, no) => { resolve = yes; reject = no; });
  return [promise, resolve, reject];
}
