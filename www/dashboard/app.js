// The operator's dashboard. Everything a page sent (titles, messages, tags, frames, user agents)
// is untrusted: it reaches the DOM only through textContent and attribute setters, never as
// HTML. The page's own listeners and timers are the runtime's `listen` / `every`, so it cannot
// leak either (the `vigil/core` variant: the lifecycle core alone); charts are uPlot (big ones)
// and small SVG sparklines built node by node.
import init, { listen, every } from "/pkg/core/vigil.js";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const VITALS = {
  lcp: { label: "Largest Contentful Paint", unit: "ms", good: 2500, poor: 4000 },
  inp: { label: "Interaction to Next Paint", unit: "ms", good: 200, poor: 500 },
  cls: { label: "Cumulative Layout Shift", unit: "", good: 0.1, poor: 0.25 },
  fcp: { label: "First Contentful Paint", unit: "ms", good: 1800, poor: 3000 },
  ttfb: { label: "Time to First Byte", unit: "ms", good: 800, poor: 1800 },
};

const WINDOW_SECS = { "1h": 3600, "24h": 86400, "7d": 604800 };

const state = { project: "1", window: "24h", charts: [], inFlight: false, route: null };

// ---------------------------------------------------------------------------------------------
// DOM helpers: text only.

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** A sparkline of `values` (nulls skipped) as an SVG polyline. */
function sparkline(values, { width = 120, height = 28, label = "" } = {}) {
  const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", role: "img" });
  box.append(Object.assign(svg("title"), { textContent: label }));
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => typeof v === "number" && Number.isFinite(v));
  if (pts.length === 0) return box;
  const max = Math.max(...pts.map(([, v]) => v));
  const min = Math.min(...pts.map(([, v]) => v));
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const coords = pts.map(([i, v]) => `${(i * step).toFixed(1)},${(height - 2 - ((v - min) / span) * (height - 4)).toFixed(1)}`);
  box.append(svg("polyline", { points: coords.join(" "), fill: "none" }));
  return box;
}

const fmtTime = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? "") : d.toLocaleString();
};
const ago = (iso) => {
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
};
const bytes = (b) => (typeof b === "number" ? `${(b / 1e6).toFixed(1)} MB` : "–");
const rate = (v, unit) => `${v >= 0 ? "+" : ""}${Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1)}${unit}`;

// ---------------------------------------------------------------------------------------------
// Data.

class SignedOut extends Error {}

async function api(path) {
  // AbortSignal.timeout: no timer of ours left behind (the leak Promise.race with setTimeout makes).
  const res = await fetch(path, { signal: AbortSignal.timeout(10000), credentials: "same-origin" });
  if (res.status === 401) throw new SignedOut();
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return { body: await res.json(), next: res.headers.get("x-next-cursor") };
}

const p = () => encodeURIComponent(state.project);

// ---------------------------------------------------------------------------------------------
// Charts (uPlot).

function destroyCharts() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

function chartWidth(container) {
  return Math.max(260, Math.min(container.clientWidth || 600, 1100));
}

function lineChart(container, { title, times, series, height = 220, bands, xRange, yTop }) {
  const opts = {
    title,
    width: chartWidth(container),
    height,
    // A fixed window on the x axis (when given): one point still sits at its time in the window.
    scales: {
      x: { time: true, range: xRange ? () => xRange() : undefined },
      // From 0 to past the "poor" line (when given), so every rating band shows.
      ...(yTop ? { y: { range: (u, min, max) => [0, Math.max((max ?? 0) * 1.1, yTop)] } } : {}),
    },
    // Only the keys that are set: uPlot reads a present-but-undefined `scale` as a scale name.
    series: [{}, ...series.map((s) => ({
      label: s.label,
      stroke: s.stroke,
      width: 2,
      points: { show: times.length < 40 },
      ...(s.fill ? { fill: s.fill } : {}),
      ...(s.scale ? { scale: s.scale } : {}),
      ...(s.bars ? { paths: uPlot.paths.bars({ size: [0.8, 40] }) } : {}),
    }))],
    axes: [{}, ...uniqueScales(series)],
    hooks: bands ? { drawClear: [(u) => drawBands(u, bands)] } : {},
  };
  const chart = new uPlot(opts, [times, ...series.map((s) => s.values)], container);
  state.charts.push(chart);
  return chart;
}

function uniqueScales(series) {
  const seen = [];
  const axes = [];
  for (const s of series) {
    const scale = s.scale ?? "y";
    if (seen.includes(scale)) continue;
    seen.push(scale);
    axes.push({ scale, side: seen.length === 1 ? 3 : 1, label: s.axis, size: 60, values: s.format ? (u, vals) => vals.map(s.format) : undefined });
  }
  return axes;
}

/** Good / needs-improvement / poor bands behind a vitals chart. */
function drawBands(u, { good, poor }) {
  const { ctx, bbox } = u;
  const y = (v) => Math.max(bbox.top, Math.min(bbox.top + bbox.height, u.valToPos(v, "y", true)));
  const top = bbox.top;
  const bottom = bbox.top + bbox.height;
  const fill = (from, to, color) => {
    ctx.fillStyle = color;
    ctx.fillRect(bbox.left, Math.min(from, to), bbox.width, Math.abs(to - from));
  };
  fill(bottom, y(good), "rgba(12, 206, 107, 0.12)");
  fill(y(good), y(poor), "rgba(255, 164, 0, 0.14)");
  fill(y(poor), top, "rgba(255, 78, 66, 0.12)");
}

// ---------------------------------------------------------------------------------------------
// Views. Each returns an `update()` that refreshes its data in place (live updates).

async function issuesView(view) {
  const table = el("table", { class: "issues" },
    el("thead", {}, el("tr", {}, ["Issue", "Level", "Events", "Last 24 h", "First seen", "Last seen"].map((h) => el("th", { text: h })))));
  const body = el("tbody");
  table.append(body);
  const more = el("button", { type: "button", class: "more", hidden: "" }, "Load more");
  const empty = el("p", { class: "muted", hidden: "" }, "No errors yet. Press Throw on the demo page and one appears here within seconds.");
  view.append(el("h2", {}, "Issues"), empty, table, more);
  let cursor = null;
  const rows = new Map();

  const row = (i) => {
    const link = el("a", { href: `#/issue/${encodeURIComponent(i.fingerprint)}`, class: "title" });
    link.textContent = i.title || "(no title)";
    return el("tr", {},
      el("td", { "data-label": "Issue" }, link),
      el("td", { "data-label": "Level" }, el("span", { class: `level ${/^[a-z]+$/.test(i.level) ? i.level : ""}`, text: i.level })),
      el("td", { "data-label": "Events", class: "num", text: i.count }),
      el("td", { "data-label": "Last 24 h" }, sparkline(i.hourly ?? [], { label: `events per hour: ${(i.hourly ?? []).join(", ")}` })),
      el("td", { "data-label": "First seen", title: fmtTime(i.firstSeen), text: ago(i.firstSeen) }),
      el("td", { "data-label": "Last seen", title: fmtTime(i.lastSeen), text: ago(i.lastSeen) }));
  };

  const load = async (append) => {
    const { body: list, next } = await api(`/api/${p()}/issues?limit=100${append && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (!append) {
      cursor = next;
      // First page: replace those rows, keep pages already loaded below them.
      const first = list.map((i) => i.fingerprint);
      for (const fp of first) rows.get(fp)?.remove();
      const fresh = list.map((i) => { const r = row(i); rows.set(i.fingerprint, r); return r; });
      body.prepend(...fresh);
    } else {
      cursor = next;
      for (const i of list) {
        rows.get(i.fingerprint)?.remove();
        const r = row(i);
        rows.set(i.fingerprint, r);
        body.append(r);
      }
    }
    more.hidden = !cursor;
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
  };
  listen(more, "click", () => load(true).catch(showError));
  await load(false);
  return () => load(false);
}

function frameText(f) {
  const where = [f.filename ?? f.abs_path ?? "?", f.lineno, f.colno].filter((x) => x !== undefined && x !== null).join(":");
  return { fn: f.function || "<anonymous>", where: f.instruction_addr ? `${where} ${f.instruction_addr}` : where };
}

function keyValues(obj) {
  const dl = el("dl", { class: "kv" });
  for (const [k, v] of Object.entries(obj ?? {})) {
    dl.append(el("dt", { text: k }), el("dd", { text: typeof v === "string" ? v : JSON.stringify(v) }));
  }
  return dl;
}

async function issueView(view, fingerprint) {
  const { body: issue } = await api(`/api/${p()}/issues/${encodeURIComponent(fingerprint)}?window=24h`);
  const ev = issue.latestEvent ?? {};
  const ua = ev.request?.headers?.["User-Agent"] ?? ev.contexts?.browser?.name ?? "";
  view.append(
    el("p", {}, el("a", { href: "#/issues" }, "← Issues")),
    el("h2", { class: "title", text: issue.title }),
    keyValues({
      level: issue.level,
      events: issue.count,
      "first seen": fmtTime(issue.firstSeen),
      "last seen": fmtTime(issue.lastSeen),
      release: ev.release ?? "–",
      environment: ev.environment ?? "–",
      browser: ua || "–",
      url: ev.request?.url ?? "–",
      user: ev.user ? JSON.stringify(ev.user) : "–",
      "latest event": issue.lastEventId,
    }));
  const chartBox = el("div", { class: "chart" });
  view.append(el("h3", {}, "Events per hour"), chartBox);
  const hours = () => issue.eventsPerHour.map((h) => Date.parse(h.hour) / 1000);
  const chart = lineChart(chartBox, {
    times: hours(),
    series: [{ label: "events", stroke: "#c0392b", fill: "rgba(192,57,43,0.25)", values: issue.eventsPerHour.map((h) => h.count), bars: true, axis: "events" }],
    height: 180,
  });

  const exceptions = ev.exception?.values ?? [];
  view.append(el("h3", {}, exceptions.length > 1 ? `Exceptions (${exceptions.length}, the cause chain)` : "Exception"));
  if (exceptions.length === 0) view.append(el("p", { class: "muted", text: ev.message?.formatted ?? ev.message ?? ev.logentry?.message ?? "No exception: a message event." }));
  // Sentry's order is innermost cause first; show the thrown error first, as people read it.
  for (const ex of [...exceptions].reverse()) {
    const frames = ex.stacktrace?.frames ?? [];
    const list = el("ol", { class: "frames" });
    for (const f of [...frames].reverse()) {
      const { fn, where } = frameText(f);
      list.append(el("li", { class: f.in_app === false ? "lib" : "app" }, el("code", { class: "fn", text: fn }), " ", el("span", { class: "where", text: where })));
    }
    view.append(el("section", { class: "exception" },
      el("h4", {}, el("span", { class: "type", text: ex.type ?? "Error" }), ": ", el("span", { text: ex.value ?? "" })),
      el("p", { class: "muted", text: `${frames.length} frame${frames.length === 1 ? "" : "s"}, most recent call first${ex.mechanism ? ` · ${ex.mechanism.type}${ex.mechanism.handled === false ? ", unhandled" : ""}` : ""}` }),
      list));
  }

  const crumbs = ev.breadcrumbs?.values ?? ev.breadcrumbs ?? [];
  view.append(el("h3", {}, `Breadcrumbs (${Array.isArray(crumbs) ? crumbs.length : 0})`));
  const tbody = el("tbody");
  for (const b of Array.isArray(crumbs) ? crumbs : []) {
    const t = typeof b.timestamp === "number" ? new Date(b.timestamp * 1000).toLocaleTimeString() : fmtTime(b.timestamp);
    tbody.append(el("tr", {},
      el("td", { "data-label": "Time", text: t }),
      el("td", { "data-label": "Category", text: b.category ?? b.type ?? "" }),
      el("td", { "data-label": "Level", text: b.level ?? "" }),
      el("td", { "data-label": "Message", text: b.message ?? "" }),
      el("td", { "data-label": "Data", class: "data", text: b.data ? JSON.stringify(b.data) : "" })));
  }
  view.append(el("table", { class: "crumbs" }, el("thead", {}, el("tr", {}, ["Time", "Category", "Level", "Message", "Data"].map((h) => el("th", { text: h })))), tbody));
  view.append(el("h3", {}, "Tags"), keyValues(ev.tags), el("h3", {}, "Extra"), keyValues(ev.extra));

  return async () => {
    const { body: fresh } = await api(`/api/${p()}/issues/${encodeURIComponent(fingerprint)}?window=24h`);
    issue.eventsPerHour = fresh.eventsPerHour;
    chart.setData([hours(), fresh.eventsPerHour.map((h) => h.count)]);
  };
}

function ratingOf(v, spec) {
  if (v > spec.poor) return "poor";
  if (v > spec.good) return "needs-improvement";
  return "good";
}

const fmtVital = (v, spec) => (v === null || v === undefined ? "–" : spec.unit === "ms" ? `${Math.round(v)} ms` : v.toFixed(3));

async function vitalsView(view) {
  const picker = el("select", { "aria-label": "window" }, ["1h", "24h", "7d"].map((w) => el("option", { value: w, text: w })));
  picker.value = state.window;
  view.append(el("div", { class: "row" }, el("h2", {}, "Web vitals"), el("label", {}, "Window ", picker)));
  const grid = el("div", { class: "vitals" });
  view.append(grid);
  const cards = {};
  for (const [key, spec] of Object.entries(VITALS)) {
    const value = el("span", { class: "value" });
    const split = el("div", { class: "split" }, el("span", { class: "good" }), el("span", { class: "ni" }), el("span", { class: "poor" }));
    const legend = el("p", { class: "muted" });
    const box = el("div", { class: "chart" });
    grid.append(el("section", { class: "vital" }, el("h3", {}, `${key.toUpperCase()} `, el("small", { text: spec.label })), el("p", {}, "p75 ", value), split, legend, box));
    cards[key] = { value, split, legend, box, chart: null };
  }
  const update = async () => {
    const [{ body: summary }, { body: history }] = await Promise.all([
      api(`/api/${p()}/vitals?window=${state.window}`),
      api(`/api/${p()}/vitals/history?window=${state.window}`),
    ]);
    for (const [key, spec] of Object.entries(VITALS)) {
      const c = cards[key];
      const s = summary[key] ?? { p75: null, count: 0, good: 0, needsImprovement: 0, poor: 0 };
      c.value.textContent = fmtVital(s.p75, spec);
      c.value.className = `value ${s.p75 === null || s.p75 === undefined ? "" : ratingOf(s.p75, spec)}`;
      const total = s.count || 1;
      const [g, ni, poor] = c.split.children;
      g.style.width = `${(100 * s.good) / total}%`;
      ni.style.width = `${(100 * s.needsImprovement) / total}%`;
      poor.style.width = `${(100 * s.poor) / total}%`;
      c.legend.textContent = s.count
        ? `${s.count} page views · good ${Math.round((100 * s.good) / total)}% · needs improvement ${Math.round((100 * s.needsImprovement) / total)}% · poor ${Math.round((100 * s.poor) / total)}%`
        : "no page views in this window";
      const points = history[key] ?? [];
      const times = points.map((b) => Date.parse(b.time) / 1000);
      const values = points.map((b) => b.p75);
      if (!c.chart) {
        c.chart = lineChart(c.box, {
          times,
          series: [{ label: "p75", stroke: "#1f4e79", values, axis: spec.unit || "score" }],
          height: 170,
          bands: spec,
          yTop: spec.poor * 1.3,
          xRange: () => {
            const now = Date.now() / 1000;
            return [now - WINDOW_SECS[state.window], now];
          },
        });
      } else {
        c.chart.setData([times, values]);
      }
    }
  };
  listen(picker, "change", () => {
    state.window = picker.value;
    update().catch(showError);
  });
  await update();
  return update;
}

async function fleetView(view) {
  const summary = el("p", { class: "muted" });
  const list = el("div", { class: "fleet" });
  const more = el("button", { type: "button", class: "more", hidden: "" }, "Load more");
  view.append(el("h2", {}, "Fleet"), summary, list, more);
  let limit = 100;
  const update = async () => {
    const { body: rows, next } = await api(`/api/${p()}/fleet?window=24h&limit=${limit}`);
    const leaking = rows.filter((r) => r.leaking).length;
    summary.textContent = rows.length
      ? `${rows.length}${next ? "+" : ""} instance${rows.length === 1 ? "" : "s"} seen in 24 h · ${leaking} leaking${leaking ? " (listed first)" : ""}`
      : "No runtime has sent a health sample yet. Every page that calls Vigil.start() sends one every minute.";
    list.replaceChildren(...rows.map(instanceCard));
    more.hidden = !next;
  };
  listen(more, "click", () => {
    limit = Math.min(1000, limit + 100);
    update().catch(showError);
  });
  await update();
  return update;
}

function instanceCard(r) {
  const total = Object.values(r.resources ?? {}).reduce((a, c) => a + (c.last ?? 0), 0);
  const kinds = Object.entries(r.resources ?? {}).filter(([, c]) => c.last > 0 || c.perHour !== 0);
  const card = el("section", { class: `instance ${r.leaking ? "leaking" : ""}` },
    el("header", {},
      el("code", { class: "id", text: r.instanceId }),
      r.leaking ? el("span", { class: "badge poor", text: "leaking" }) : el("span", { class: "badge good", text: r.judged ? "steady" : "too few samples" }),
      el("span", { class: "muted", text: `${r.release || "no release"} · ${r.samples} samples · last seen ${ago(r.lastSeen)}` })),
    r.reasons?.length ? el("ul", { class: "reasons" }, r.reasons.map((t) => el("li", { text: t }))) : null,
    el("div", { class: "trends" },
      // Rates only once judged: two samples extrapolated to a day say nothing.
      trend("JS heap", bytes(r.heap?.last), r.judged && r.heap?.bytesPerHour ? rate(r.heap.bytesPerHour / 1e6 * 24, " MB/day") : "", r.trend?.heap ?? []),
      trend("wasm memory", bytes(r.wasm?.last), r.judged && r.wasm?.bytesPerHour ? rate(r.wasm.bytesPerHour / 1e6 * 24, " MB/day") : "", r.trend?.wasm ?? []),
      trend("resources", String(total), "", r.trend?.resources ?? [])),
    kinds.length ? el("p", { class: "kinds" }, kinds.map(([k, c]) => el("span", { class: c.perHour > 0 && r.reasons?.some((x) => x.startsWith(k)) ? "kind grow" : "kind", text: `${k} ${c.last}${r.judged && c.perHour ? ` (${rate(c.perHour, "/h")})` : ""}` }))) : null,
    el("p", { class: "ua muted", text: r.userAgent }));
  return card;
}

function trend(label, last, growth, values) {
  return el("div", { class: "trend" }, el("span", { class: "label", text: label }), el("strong", { text: last }), el("span", { class: "muted", text: growth }), sparkline(values, { width: 160, height: 32, label }));
}

// ---------------------------------------------------------------------------------------------
// Routing and live updates.

function showError(e) {
  if (e instanceof SignedOut) {
    location.assign("/dashboard");
    return;
  }
  const live = document.getElementById("live");
  live.textContent = `update failed: ${e.message}`;
  live.className = "live error";
}

async function render() {
  const hash = location.hash || "#/issues";
  const [, name, arg] = hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) ?? [null, "issues"];
  destroyCharts();
  const view = document.getElementById("view");
  view.replaceChildren();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === (name === "issue" ? "issues" : name));
  const token = {};
  state.route = token;
  state.update = null;
  try {
    const views = { issues: issuesView, vitals: vitalsView, fleet: fleetView };
    const update = name === "issue" && arg ? await issueView(view, decodeURIComponent(arg)) : await (views[name] ?? issuesView)(view);
    if (state.route === token) state.update = update;
    stamp();
  } catch (e) {
    if (e instanceof SignedOut) return showError(e);
    view.append(el("p", { class: "error", text: `Could not load this view: ${e.message}` }));
  }
}

function stamp() {
  const live = document.getElementById("live");
  live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  live.className = "live";
}

async function tick() {
  if (state.inFlight || !state.update || document.hidden) return; // one refresh at a time
  state.inFlight = true;
  try {
    await state.update();
    stamp();
  } catch (e) {
    showError(e);
  } finally {
    state.inFlight = false;
  }
}

async function main() {
  await init();
  const picker = document.getElementById("project");
  const { body: projects } = await api("/api/projects");
  picker.replaceChildren(...projects.map((id) => el("option", { value: id, text: id })));
  state.project = projects[0] ?? "1";
  listen(picker, "change", () => {
    state.project = picker.value;
    render();
  });
  listen(window, "hashchange", () => render());
  every(REFRESH_MS, () => { tick(); });
  await render();
  document.body.dataset.ready = "true";
}

main().catch(showError);
