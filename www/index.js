// The demo page: loads the package, starts a few runtime-owned resources, and shows what the
// resource ledger counts, live. "Dispose all" does what a final pagehide does; every count must
// then read 0.
//
// The display refresh below is the page's own code (requestAnimationFrame), outside the runtime,
// so it keeps drawing after disposeAll(). Everything the runtime owns stops.
import init, { version, resources, disposeAll, onDispose, listen, every } from "/pkg/vigil.js";

const $ = (id) => document.getElementById(id);

function log(message) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${message}`;
  $("log").prepend(li);
  while ($("log").children.length > 50) $("log").lastChild.remove();
}

function startServices() {
  const started = Date.now();
  const showViewport = () => { $("viewport").textContent = `${innerWidth} × ${innerHeight}`; };
  showViewport();
  listen(window, "resize", showViewport);
  listen(document, "visibilitychange", () => log(`visibility: ${document.visibilityState}`));
  every(1000, () => { $("uptime").textContent = `${Math.round((Date.now() - started) / 1000)} s`; });
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
  drawResources();
  window.vigilDemo = { ready: true };
} catch (e) {
  $("error").textContent = `could not start: ${e}`;
  window.vigilDemo = { ready: false, error: String(e) };
  throw e;
}
