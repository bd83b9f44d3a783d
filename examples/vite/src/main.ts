// A web app using Vigil the way a bundler app does: `vigil/telemetry` from npm, typed options,
// the runtime's own `listen` for the page's listeners, and `disposeAll()` to leave nothing behind.
import init, {
  Vigil,
  disposeAll,
  listen,
  resources,
  type CaptureHint,
  type ResourceCounts,
  type VigilOptions,
} from "vigil/telemetry";

/** What the end-to-end test reads from the page. */
export interface ExampleHandle {
  vigil: Vigil;
  resources: () => ResourceCounts;
  lastEventId: string | null;
}

declare global {
  interface Window {
    vigilExample?: ExampleHandle;
  }
}

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
}

const dsn =
  new URLSearchParams(location.search).get("dsn") ?? `http://dev@${location.hostname || "127.0.0.1"}:8080/1`;

async function main(): Promise<void> {
  await init();
  const options: VigilOptions = {
    dsn,
    release: "vite-example@0.1.0",
    environment: "example",
    maxBreadcrumbs: 50,
    health: { intervalMs: 60_000 },
    beforeSend: (event) => {
      event.tags = { ...event.tags, bundler: "vite" };
      return event;
    },
  };
  const vigil = Vigil.start(options);
  vigil.setTag("example", "vite");
  vigil.setUser({ id: "example-user" });
  vigil.addBreadcrumb({ category: "example", message: "the app started", level: "info" });

  vigil.mark("example-ready");
  vigil.recordMetric("example.buttons", 3);

  const handle: ExampleHandle = { vigil, resources, lastEventId: null };
  window.vigilExample = handle;

  const status = element<HTMLParagraphElement>("#status");
  const counts = element<HTMLPreElement>("#resources");
  element<HTMLElement>("#dsn").textContent = dsn;
  const show = (): void => {
    counts.textContent = JSON.stringify(resources(), null, 2);
  };

  // The runtime owns these listeners: `disposeAll()` removes them with everything else.
  listen(element("#throw"), "click", () => {
    throw new Error("thrown from the Vite example");
  });
  listen(element("#capture"), "click", () => {
    const hint: CaptureHint = { level: "warning", tags: { button: "capture" } };
    handle.lastEventId = vigil.captureException(new Error("captured from the Vite example"), hint);
    status.textContent = `captured event ${handle.lastEventId}`;
    show();
  });
  listen(element("#dispose"), "click", () => {
    disposeAll();
    status.textContent = "disposed: every listener, timer and observer is gone";
    show();
  });

  status.textContent = `Vigil is watching this page (${vigil.stats().eventsCaptured} events so far)`;
  show();
}

main().catch((error: unknown) => {
  element<HTMLParagraphElement>("#status").textContent = `Vigil did not start: ${String(error)}`;
});
