// The demo page: loads the package, starts a few runtime-owned resources, and shows what the
// resource ledger counts, live. "Dispose all" does what a final pagehide does; every count must
// then read 0.
//
// The display refresh below is the page's own code (requestAnimationFrame), outside the runtime,
// so it keeps drawing after disposeAll(). Everything the runtime owns stops.
import init, {
  version, resources, disposeAll, onDispose, listen, every, WebSocketService, Vigil,
} from "/pkg/vigil.js";

const $ = (id) => document.getElementById(id);

function log(message) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${message}`;
  $("log").prepend(li);
  while ($("log").children.length > 50) $("log").lastChild.remove();
}

const DRINKS = ["espresso", "cortado", "flat white", "chai", "matcha", "lemonade"];

function showOrder(order, fresh) {
  $("orders").querySelector(".empty")?.remove();
  const li = document.createElement("li");
  li.textContent = `#${order.id}  ${order.items.map((i) => `${i.quantity} × ${i.name}`).join(", ")}`;
  if (fresh) li.className = "new";
  $("orders").prepend(li);
  while ($("orders").children.length > 20) $("orders").lastChild.remove();
}

// The live orders feed: a WebSocketService that re-joins its topic on every open.
function startOrders() {
  const ws = new WebSocketService({ url: "/ws", heartbeatIntervalMs: 5000 });
  ws.onState((state, info) => {
    $("ws-state").textContent = state + (state === "reconnecting" ? ` (attempt ${info.attempt})` : "");
    $("ws-state").className = `state-${state}`;
    log(`websocket: ${state}`);
    if (state === "open") {
      ws.send("subscribe", { topics: ["orders"] });
      ws.send("orders:sync", {});
    }
  });
  ws.subscribe("orders:snapshot", ({ orders }) => {
    $("orders").innerHTML = '<li class="empty">no orders yet: post one</li>';
    orders.slice().reverse().forEach((o) => showOrder(o, false));
  });
  ws.subscribe("order:created", (order) => showOrder(order, true));
  every(1000, () => {
    const s = ws.stats();
    $("ws-rtt").textContent = s.lastRttMs === null ? "–" : `${Math.round(s.lastRttMs)} ms`;
    $("ws-messages").textContent = `${s.messagesIn} in, ${s.messagesOut} out, ${s.queued} queued`;
  });
  ws.connect().catch((e) => log(`websocket: ${e.message}`));
}

async function postOrder() {
  const name = DRINKS[Math.floor(Math.random() * DRINKS.length)];
  const res = await fetch("/api/orders", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ items: [{ name, quantity: 1 + Math.floor(Math.random() * 3) }] }),
  });
  if (!res.ok) log(`order refused: ${(await res.json()).error}`);
}

// The error tracker, pointed at this server with the development DSN.
function startTracker() {
  const vigil = Vigil.start({ dsn: `${location.protocol}//dev@${location.host}/1`, release: "kiosk-demo@1" });
  every(500, () => {
    const live = Vigil.current();
    if (!live) return;
    const s = live.stats();
    $("tracker-stats").tBodies[0].innerHTML = Object.entries(s)
      .map(([k, v]) => `<tr><td>${k}</td><td class="n">${v === null ? "–" : v}</td></tr>`)
      .join("");
  });
  return vigil;
}

// The performance monitor (part of the same Vigil runtime): vitals as they are measured.
const VITALS = [
  ["lcp", "Largest Contentful Paint", "ms"],
  ["inp", "Interaction to Next Paint", "ms"],
  ["cls", "Cumulative Layout Shift", ""],
  ["fcp", "First Contentful Paint", "ms"],
  ["ttfb", "Time to First Byte", "ms"],
];

function drawVitals() {
  const live = Vigil.current();
  if (!live) return;
  const v = live.vitals();
  $("vitals").tBodies[0].innerHTML = VITALS.map(([key, name, unit]) => {
    const m = v[key];
    const value = !m ? "–" : unit ? `${Math.round(m.value)} ${unit}` : m.value.toFixed(3);
    const rating = m ? m.rating : "pending";
    return `<tr data-vital="${key}"><td>${name}</td><td class="rating ${rating}">${m ? rating : "waiting"}</td><td class="n">${value}</td></tr>`;
  }).join("");
}

function startServices() {
  const started = Date.now();
  startTracker();
  every(500, drawVitals);
  const showViewport = () => { $("viewport").textContent = `${innerWidth} × ${innerHeight}`; };
  showViewport();
  listen(window, "resize", showViewport);
  listen(document, "visibilitychange", () => log(`visibility: ${document.visibilityState}`));
  every(1000, () => { $("uptime").textContent = `${Math.round((Date.now() - started) / 1000)} s`; });
  startOrders();
  onDispose(() => {
    log("disposed: every listener, timer and service released");
    $("state").textContent = "disposed";
    $("dispose").disabled = true;
    $("restart").disabled = false;
  });
  $("state").textContent = "running";
  $("dispose").disabled = false;
  $("restart").disabled = true;
  log("services started");
}

function drawResources() {
  const counts = resources();
  const body = $("resources").tBodies[0];
  let total = 0;
  const rows = Object.entries(counts).map(([name, n]) => {
    total += n;
    return `<tr class="${n ? "live" : "zero"}" data-name="${name}"><td>${name}</td><td class="n">${n}</td></tr>`;
  });
  body.innerHTML = rows.join("");
  $("summary").textContent = total === 0
    ? "nothing live: every resource released"
    : `${total} live resources, each held by a guard`;
  $("summary").className = total === 0 ? "clean" : "";
  requestAnimationFrame(drawResources);
}

try {
  await init();
  $("version").textContent = version();
  startServices();
  $("dispose").addEventListener("click", () => disposeAll());
  $("restart").addEventListener("click", startServices);
  $("post-order").addEventListener("click", postOrder);
  // Buttons that fail on purpose: each becomes an event on the server (GET /api/1/issues).
  $("throw").addEventListener("click", () => {
    setTimeout(() => { throw new TypeError("the demo threw on purpose"); }, 0);
  });
  $("reject").addEventListener("click", () => {
    Promise.reject(new Error("the demo rejected on purpose"));
  });
  $("console-error").addEventListener("click", () => console.error("the demo logged an error"));
  $("message").addEventListener("click", () => Vigil.current()?.captureMessage("hello from the kiosk", "info"));
  // A click whose handler blocks the main thread: the next paint waits, INP grows.
  $("slow-click").addEventListener("click", () => {
    const end = performance.now() + 250;
    while (performance.now() < end) { /* busy on purpose */ }
  });
  $("record-metric").addEventListener("click", () => {
    const live = Vigil.current();
    if (!live) return;
    live.mark("demo-start");
    live.recordMetric("kiosk.queue_length", Math.floor(Math.random() * 12), "1", { lane: "demo" });
    log(`recorded kiosk.queue_length; measure took ${live.measure("demo", "demo-start").toFixed(2)} ms`);
  });
  drawResources();
  window.vigilDemo = { ready: true };
} catch (e) {
  $("error").textContent = `could not start: ${e}`;
  window.vigilDemo = { ready: false, error: String(e) };
  throw e;
}

// ---- Voice panel (issue #6): a VoiceConnection to the server's echo peer --------------------
// Connect, mute, disconnect; the live state, audio stats, and the latest events (at most 30).
import { VoiceConnection } from "/pkg/vigil.js";

function startVoicePanel() {
  let voice = null;
  let muted = false;
  let held = []; // this call's stats timer and dispose callback, released on the next Connect
  const show = (state) => {
    $("voice-state").textContent = state;
    $("voice-state").className = `state-${state}`;
    const live = state === "connecting" || state === "connected";
    $("voice-connect").disabled = live;
    $("voice-disconnect").disabled = !live;
    $("voice-mute").disabled = state !== "connected";
  };
  const event = (text) => {
    $("voice-events").querySelector(".empty")?.remove();
    const li = document.createElement("li");
    li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
    $("voice-events").prepend(li);
    while ($("voice-events").children.length > 30) $("voice-events").lastChild.remove();
  };
  $("voice-connect").addEventListener("click", () => {
    voice?.dispose(); // a previous call (or one ended by "Dispose all") is released first
    held.forEach((sub) => sub.unsubscribe());
    voice = new VoiceConnection({ session: { instructions: "You are a kiosk assistant." } });
    voice.onState(show);
    voice.on("*", (e) => event(e.type));
    muted = false;
    $("voice-mute").textContent = "Mute";
    voice.connect().catch((e) => event(`connect failed: ${e.message}`));
    held = [every(1000, () => {
      if (voice?.state !== "connected") return;
      voice.stats().then((s) => {
        const rtt = s.roundTripTimeMs === null ? "–" : `${Math.round(s.roundTripTimeMs)} ms`;
        $("voice-stats").textContent = `${s.packetsSent} sent, ${s.packetsReceived} received, rtt ${rtt}`;
      }, () => {});
    }), onDispose(() => show("disconnected"))];
  });
  $("voice-disconnect").addEventListener("click", () => voice?.disconnect());
  $("voice-mute").addEventListener("click", () => {
    muted = !muted;
    voice?.setMuted(muted);
    $("voice-mute").textContent = muted ? "Unmute" : "Mute";
  });
}

if (window.vigilDemo?.ready) startVoicePanel();
// ---- end voice panel --------------------------------------------------------------------------
