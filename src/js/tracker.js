// Shaping the error tracker's JS objects (events, exceptions, frames, breadcrumbs): an object
// literal here is a few bytes, and each property set from wasm is a call with its key string.
// Rust decides what goes in (tracker.rs); these only build the objects.

const isObject = (v) => typeof v === "object" && v !== null;

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
