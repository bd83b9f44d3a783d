// The browser calls and JS objects the telemetry features (`errors`, `perf`) work through.
//
// Kept in JS because here they are a few bytes each: a property read, an object literal or a
// promise chain costs a call per key (and often a web-sys import) from wasm. Rust keeps every
// decision, state machine and guard; these only call the browser and shape objects. Each section
// names the Rust module that owns it.
//
// Snippets are one per feature, and few on purpose (the invariant under `js/` in
// ARCHITECTURE.md, tested in `src/js/mod.rs`): the glue imports a snippet as a whole namespace
// (a bundler cannot drop its unused exports), and it imports every snippet at once, which the
// browser suite's server does not survive beyond 4 of them.

// --- runtime/guards.rs: `ConsolePatch` --------------------------------------------------------

export function vigilPatchConsole(method, hook) {
  const original = console[method];
  let busy = false;
  const patched = function (...args) {
    // The re-entrancy guard lives here: a Rust closure cannot be entered while it runs, so a
    // hook that logs through the console again must be skipped before it is called.
    if (!busy) {
      busy = true;
      try { hook(args); } catch (_) { /* the page's console call must still work */ }
      finally { busy = false; }
    }
    return original.apply(this, args);
  };
  console[method] = patched;
  return [original, patched];
}
export function vigilRestoreConsole(method, original, patched) {
  // Restore only if nobody patched over us since; otherwise leave their wrapper in place.
  if (console[method] === patched) console[method] = original;
}

// --- runtime/telemetry.rs: the health sample -------------------------------------------------

const healthT0 = performance.now();
let heapBytes = -1, heapBusy = false;
// [JS heap bytes or -1, seconds since the runtime started]
export function vigilHealth() {
  const m = performance.memory, p = performance;
  if (!m && !heapBusy && globalThis.crossOriginIsolated && p.measureUserAgentSpecificMemory) {
    heapBusy = true;
    p.measureUserAgentSpecificMemory().then((r) => { heapBytes = r.bytes; }, () => {}).finally(() => { heapBusy = false; });
  }
  return [m ? m.usedJSHeapSize : heapBytes, (p.now() - healthT0) / 1000];
}

/** `list[at]` when it is a number, else 0 (the arrays these functions answer, read from Rust). */
export function vigilNum(list, at) {
  const v = list[at];
  return typeof v === "number" ? v : 0;
}

/** A random id: 32 lowercase hex digits. */
export function vigilRandomId() {
  const c = globalThis.crypto;
  if (c && c.randomUUID) return c.randomUUID().replaceAll("-", "");
  let id = "";
  while (id.length < 32) id += (Math.random() * 16 | 0).toString(16);
  return id;
}

// --- localStorage (the transport's queue, the health instance id), never throwing ------------

export function vigilLoad(key) {
  try { return globalThis.localStorage.getItem(key) ?? undefined; } catch (_) { return undefined; }
}
export function vigilSave(key, value) {
  try {
    if (value === undefined) globalThis.localStorage.removeItem(key);
    else globalThis.localStorage.setItem(key, value);
  } catch (_) { /* no storage, a quota or privacy mode: only the persistent copy is lost */ }
}
// The transport's undelivered envelopes, stored as [[category, body], …]; `flat` is
// [category code, body, …] to save and [category code (-1: a name never written), body,
// UTF-8 bytes, …] when loaded.
// A category is a code in the wasm (`Category::code`) and its rate-limit name in the copy.
const CATEGORIES = ["error", "metric"];
export function vigilSaveQueue(key, flat) {
  const pairs = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([CATEGORIES[flat[i]], flat[i + 1]]);
  vigilSave(key, pairs.length ? JSON.stringify(pairs) : undefined);
}
export function vigilLoadQueue(key) {
  const flat = [];
  try {
    const pairs = JSON.parse(vigilLoad(key) ?? "[]");
    if (Array.isArray(pairs)) for (const p of pairs) {
      if (Array.isArray(p) && typeof p[0] === "string" && typeof p[1] === "string") flat.push(CATEGORIES.indexOf(p[0]), p[1], utf8Bytes(p[1]));
    }
  } catch (_) { /* unreadable: nothing to restore */ }
  return flat;
}

// --- transport/shell.rs: the send ------------------------------------------------------------

// What it resolves to is documented at its import in transport/shell.rs.
/** `[promise, resolve]` for `flush(timeoutMs)` (transport/shell.rs). `vigilWaiter` in options.js
 * is the same with `reject`; this copy exists because calling that one from the telemetry build
 * would wire it straight into the wasm, and the glue would then import options.js whole. */
export function vigilDeferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return [promise, resolve];
}

export function vigilPost(url, type, body, keepalive) {
  const init = { method: "POST", body, keepalive, headers: { "Content-Type": type } };
  try {
    new Request(url, init); // throws what fetch would only reject with (a malformed URL, …)
    return fetch(url, init).then((r) => [r.status, r.headers.get("x-sentry-rate-limits"), r.headers.get("retry-after")],
      (e) => [0, e]);
  } catch (e) {
    return Promise.resolve([-1, e]);
  }
}

// --- transport/envelope.rs and otlp.rs: bodies, written by the browser's JSON -----------------
// Each answers [body, UTF-8 bytes]; the body stays a JS string the wasm never copies.

/** Bytes of `s` in UTF-8. Surrogates come in pairs here (`JSON.stringify` escapes a lone one). */
function utf8Bytes(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c < 0x800 || (c & 0xf800) === 0xd800 ? 1 : 2;
  }
  return n;
}

/** A Sentry envelope of one event, or `undefined` when the event cannot be encoded. */
export function vigilEnvelope(id, dsn, name, version, event) {
  let payload;
  try { payload = JSON.stringify(event); } catch (_) { return undefined; }
  if (typeof payload !== "string") return undefined;
  const bytes = utf8Bytes(payload);
  const head = JSON.stringify({ event_id: id, sent_at: new Date().toISOString(), dsn, sdk: { name, version } })
    + "\n" + JSON.stringify({ type: "event", length: bytes }) + "\n";
  return [head + payload + "\n", utf8Bytes(head) + bytes + 1];
}

// An OTLP/HTTP JSON metrics body, built call by call from transport/otlp.rs: attributes wait
// for what comes next (a point, or at the end the resource); points of one name make one gauge,
// in the order the names were first seen.
const pending = (acc) => acc.a || (acc.a = []);
export function vigilOtlpAttr(acc, key, value) { pending(acc).push({ key, value: { stringValue: value } }); }
export function vigilOtlpPoint(acc, name, unit, description, value, time) {
  const m = acc.m || (acc.m = []);
  let g = m.find((g) => g.name === name);
  if (!g) m.push(g = { name, unit, description, gauge: { dataPoints: [] } });
  g.gauge.dataPoints.push({ asDouble: Number.isFinite(value) ? value : 0, timeUnixNano: BigInt(time).toString(),
    attributes: pending(acc).splice(0) });
}
export function vigilOtlp(acc, version) {
  const body = JSON.stringify({ resourceMetrics: [{ resource: { attributes: pending(acc) },
    scopeMetrics: [{ scope: { name: "vigil", version }, metrics: acc.m || [] }] }] });
  return [body, utf8Bytes(body)];
}

// --- errors/tracker.rs: events, exceptions, frames, breadcrumbs -------------------------------
// An object literal here is a few bytes; each property set from wasm is a call with its key.

const isObject = (v) => typeof v === "object" && v !== null;

/** `String(v)`, never throwing (a page's values: `beforeSend` errors, tags, console arguments). */
export function vigilText(v) {
  try {
    return String(v);
  } catch (_) {
    return "a value that cannot be read";
  }
}

/** A console call's arguments as the console shows them, one space apart (Rust cuts the line). */
export function vigilLine(args) {
  return args.map(vigilText).join(" ");
}

/** `setTag` (`asText`) and `setContext`: `undefined` or `null` removes the entry. A page's key
 * and value, so nothing escapes: a key that cannot be converted or a cyclic `__proto__` sets
 * nothing. */
export function vigilSetEntry(target, key, value, asText) {
  try {
    if (value === undefined || value === null) delete target[key];
    else target[key] = asText ? vigilText(value) : value;
  } catch (_) { /* nothing set */ }
}

/** A thrown value as [type, value, stack], never throwing (its reader in errors/tracker.rs). */
export function vigilDescribe(v) {
  try {
    if (v instanceof Error) {
      const stack = v.stack;
      return [String(v.name), String(v.message), typeof stack === "string" ? stack : ""];
    }
    if (typeof v === "string") return ["Error", v, ""];
    if (isObject(v)) {
      return ["Error", "Object captured as exception with keys: " + Object.keys(v).slice(0, 10).join(", "), ""];
    }
    return ["Error", String(v), ""];
  } catch (_) {
    return ["Error", "a thrown value that cannot be read", ""];
  }
}

/** A breadcrumb, timestamped now (seconds). */
export function vigilCrumb(category, message, level) {
  return { timestamp: Date.now() / 1000, category, message, level };
}

/** `addBreadcrumb(crumb)`: the known fields copied, the message already cut by Rust. */
export function vigilCopyCrumb(crumb, message) {
  const b = { timestamp: Date.now() / 1000 };
  for (const key of ["category", "level", "type", "data"]) if (crumb[key] !== undefined) b[key] = crumb[key];
  if (message !== undefined) b.message = message;
  return b;
}

/** One stack frame (Sentry's shape). */
export function vigilFrame(filename, fn, lineno, colno, inApp, addr) {
  const f = { filename };
  if (fn !== undefined) f.function = fn;
  if (lineno !== undefined) f.lineno = lineno;
  if (colno !== undefined) f.colno = colno;
  f.in_app = inApp;
  if (addr !== undefined) {
    f.instruction_addr = addr;
    f.addr_mode = "rel:0";
  }
  return f;
}

/** One exception value; `frames` may be empty. */
export function vigilException(type, value, mechanism, handled, frames) {
  const ex = { type, value, mechanism: { type: mechanism, handled } };
  if (frames.length) ex.stacktrace = { frames };
  return ex;
}

/** The event every capture starts from. */
export function vigilEvent(id, level, environment, release, version, tags, contexts, user, hint, crumbs) {
  const e = { event_id: id, timestamp: Date.now() / 1000, platform: "javascript", level, environment };
  if (release !== undefined) e.release = release;
  e.sdk = { name: "vigil.javascript", version };
  const t = Object.assign({}, tags);
  if (isObject(hint) && isObject(hint.tags)) Object.assign(t, hint.tags);
  e.tags = t;
  if (isObject(hint) && isObject(hint.extra)) e.extra = hint.extra;
  if (isObject(hint) && Array.isArray(hint.fingerprint)) e.fingerprint = hint.fingerprint;
  if (user !== undefined && user !== null) e.user = user;
  e.contexts = Object.assign({}, contexts);
  if (typeof window !== "undefined") {
    e.request = { url: location.href, headers: { "User-Agent": navigator.userAgent } };
  }
  e.breadcrumbs = { values: crumbs };
  return e;
}

// --- perf/shell.rs: performance entries as arrays of numbers ---------------------------------

const PERF_KINDS = ["largest-contentful-paint", "layout-shift", "event", "first-input", "paint",
  "navigation", "longtask", "resource"];
// `observe()` options for every entry type the monitor reads and the browser supports: buffered,
// and event timing from 40 ms (the INP threshold `web-vitals` uses).
export function vigilPerfTypes() {
  const s = (typeof PerformanceObserver !== "undefined" && PerformanceObserver.supportedEntryTypes) || [];
  return PERF_KINDS.filter((k) => k !== "navigation" && s.includes(k)).map((type) =>
    type === "event" ? { type, buffered: true, durationThreshold: 40 } : { type, buffered: true });
}
function navEntry(e) {
  return [5, e.activationStart || 0, e.domainLookupStart, e.domainLookupEnd, e.connectStart,
    e.connectEnd, e.requestStart, e.responseStart, e.responseEnd, e.domInteractive,
    e.domContentLoadedEventEnd, e.loadEventEnd];
}
// Entries as arrays of numbers: [kind, startTime, value or duration, extra, name?].
export function vigilPerfRead(list) {
  const out = [];
  for (const e of (Array.isArray(list) ? list : list.getEntries())) {
    switch (e.entryType) {
      case "largest-contentful-paint": out.push([0, e.startTime]); break;
      case "layout-shift": out.push([1, e.startTime, e.value, e.hadRecentInput ? 1 : 0]); break;
      case "event": case "first-input": out.push([2, e.startTime, e.duration, e.interactionId || 0]); break;
      case "paint": if (e.name === "first-contentful-paint") out.push([4, e.startTime]); break;
      case "longtask": out.push([6, e.startTime, e.duration]); break;
      case "resource": out.push([7, e.startTime, e.duration, e.transferSize || 0, e.name]); break;
    }
  }
  return out;
}
export function vigilPerfNavigation() {
  const e = performance.getEntriesByType("navigation")[0];
  return e ? navEntry(e) : null;
}
// When the page was first hidden, as web-vitals finds it: 0 if hidden now, else Infinity.
export function vigilPerfFirstHidden(activationStart) {
  const e = document.prerendering ? undefined : performance.getEntriesByType("visibility-state")
    .find((e) => e.name === "hidden" && e.startTime >= activationStart);
  if (e) return e.startTime;
  return document.visibilityState === "hidden" && !document.prerendering ? 0 : Infinity;
}
// The page as the transport, the monitor and the tracker read it, in one call (runtime/telemetry.rs
// `page_state`). Outside a page (a worker) the parts it lacks read as their defaults.
export function vigilPageState() {
  const p = typeof performance === "object" ? performance : {};
  const d = typeof document === "object" ? document : {};
  const m = p.memory;
  return [
    typeof p.interactionCount === "number" ? p.interactionCount : -1,
    m ? m.usedJSHeapSize : -1,
    d.visibilityState === "hidden" ? 1 : 0,
    p.now ? p.now() : 0,
    d.readyState === "complete" ? 1 : 0,
    typeof location === "object" ? location.href : "",
    typeof navigator === "object" && navigator.onLine === false ? 0 : 1,
  ];
}
// `recordMetric`'s attributes as [key, String(value), …]; none for an object that cannot be read.
export function vigilPerfAttributes(a) {
  const flat = [];
  try {
    if (isObject(a)) for (const [k, v] of Object.entries(a)) flat.push(k, String(v));
  } catch (_) {
    return [];
  }
  return flat;
}
export function vigilPerfMark(name) { performance.mark(name); }
export function vigilPerfMeasure(name, start, end) {
  // A missing mark is `undefined` for the browser (a `null` one would be the mark "null").
  const m = performance.measure(name, start ?? undefined, end ?? undefined);
  if (m && typeof m.duration === "number") return m.duration;
  const all = performance.getEntriesByName(name, "measure");
  return all.length ? all[all.length - 1].duration : 0;
}
