//! Cost of `captureException` in headless Chromium, next to `@sentry/browser` (default
//! integrations) in the same page and run (`./dev.sh bench` bundles it from npm into the tools
//! folder). Both drop the event in `beforeSend`, so the figure is the capture path (stack
//! formatting and parsing, event building, hooks), not the network.
//!
//! Each batch makes 100 errors of distinct messages with a 5-frame stack *before* its timer
//! starts, so V8 formats each `error.stack` inside the capture, as in a real page; a second
//! figure reads the stacks before the timer ("pre-formatted"). Vigil and Sentry take turns batch
//! by batch (so a busy machine slows both alike), after a discarded warm-up round; the figure is
//! the median of 100 batches.

use std::path::PathBuf;

use vigil_e2e::{require_pkg, Browser, Result, Server};

const HARNESS: &str = "
window.deep5 = (make) => { const a = () => b(), b = () => c(), c = () => d(), d = () => e(), e = () => make(); return a(); };
window.batch = (capture, n, preformat) => {
  const errors = [];
  for (let i = 0; i < 100; i++) errors.push(deep5(() => new Error('bench ' + n + '-' + i + '-' + Math.random())));
  if (preformat) for (const e of errors) void e.stack;
  const t = performance.now();
  for (const e of errors) capture(e);
  return (performance.now() - t) * 1000 / 100;
};
const median = (xs) => { xs.sort((x, y) => x - y); return xs[xs.length >> 1]; };
// Per-capture microseconds (median of 100 batches of 100) for each named capture, taking turns.
window.compare = (captures, preformat) => {
  const times = Object.fromEntries(Object.keys(captures).map((k) => [k, []]));
  for (let b = 0; b < 100; b++)
    for (const [name, capture] of Object.entries(captures)) times[name].push(batch(capture, b, preformat));
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
};
true";

fn sentry_bundle() -> Option<PathBuf> {
    let tools = std::env::var_os("VIGIL_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vigil/tools"))
        })?;
    let bundle = tools.join("sentry-bundle.js");
    bundle.exists().then_some(bundle)
}

fn us(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let browser = Browser::launch().await?;
    let page = browser.open_empty(&server).await?;
    page.eval(HARNESS).await?;
    page.load_package().await?;
    page.eval(&format!(
        "(async () => {{
            window.v = vigil.Vigil.start({{ dsn: 'http://dev@{addr}/1', beforeSend: () => null }});
            return true;
        }})()"
    ))
    .await?;
    println!("captureException in headless Chromium, 5-frame stacks, errors made before the timer, median of 100 x 100:");
    // The first round warms up (JIT, wasm tier-up) and is discarded.
    page.eval("compare({ vigil: (e) => v.captureException(e) }, false)")
        .await?;
    let alone = page
        .eval("compare({ nothing: () => {}, stack: (e) => e.stack, vigil: (e) => v.captureException(e) }, false)")
        .await?;
    println!(
        "  reading error.stack alone (V8 formats it): {:>6.1} us",
        us(&alone, "stack")
    );
    println!(
        "  vigil, before @sentry/browser is loaded:   {:>6.1} us",
        us(&alone, "vigil")
    );
    let Some(bundle) = sentry_bundle() else {
        println!("  (@sentry/browser not bundled: run `./dev.sh bench` to install it)");
        return Ok(());
    };
    page.eval(&std::fs::read_to_string(bundle)?).await?;
    page.eval(&format!(
        "Sentry.init({{ dsn: 'http://dev@{addr}/1', beforeSend: () => null }}); true"
    ))
    .await?;
    let version = page.eval("Sentry.SDK_VERSION").await?;
    let version = version.as_str().unwrap_or("?");
    let pair = "{ vigil: (e) => v.captureException(e), sentry: (e) => Sentry.captureException(e) }";
    // Warm-up, discarded: both reach their optimized tiers (JIT, wasm tier-up) before timing.
    page.eval(&format!("compare({pair}, false)")).await?;
    for (label, preformat) in [
        ("stack formatted in the capture", false),
        ("stacks pre-formatted", true),
    ] {
        let t = page.eval(&format!("compare({pair}, {preformat})")).await?;
        let (ours, theirs) = (us(&t, "vigil"), us(&t, "sentry"));
        println!(
            "  {label}: vigil {ours:>6.1} us, @sentry/browser {version} {theirs:>6.1} us, ratio {:.2} (bar: <= 0.5)",
            ours / theirs
        );
    }
    Ok(())
}
