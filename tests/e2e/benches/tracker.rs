//! Cost of `captureException` in headless Chromium, next to `@sentry/browser` in the same page and
//! run (`./dev.sh bench` bundles it from npm into the tools folder). Both drop the event in
//! `beforeSend`, so the figure is the capture path (stack parsing, event building, hooks), not the
//! network. Median of 100 batches of 100 calls, each with a fresh 5-frame error.

use std::path::PathBuf;

use vigil_e2e::{require_pkg, Browser, Result, Server};

const HARNESS: &str = "
window.deep5 = (make) => { const a = () => b(), b = () => c(), c = () => d(), d = () => e(), e = () => make(); return a(); };
window.bench = (capture) => {
  const batches = [];
  for (let b = 0; b < 100; b++) {
    const t = performance.now();
    for (let i = 0; i < 100; i++) capture(deep5(() => new Error('bench ' + b + '-' + i)));
    batches.push((performance.now() - t) * 1000 / 100);
  }
  batches.sort((x, y) => x - y);
  return batches[50];
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
            const m = vigil;
            window.v = m.Vigil.start({{ dsn: 'http://dev@{addr}/1', beforeSend: () => null }});
            return true;
        }})()"
    ))
    .await?;
    println!("captureException in headless Chromium, 5-frame stack, median of 100 x 100 calls:");
    let baseline = page.eval("bench(() => {})").await?;
    println!(
        "  creating the Error alone:       {:>7.1} us",
        baseline.as_f64().unwrap_or(f64::NAN)
    );
    let ours = page.eval("bench((e) => v.captureException(e))").await?;
    println!(
        "  vigil Vigil.captureException:   {:>7.1} us",
        ours.as_f64().unwrap_or(f64::NAN)
    );
    match sentry_bundle() {
        Some(bundle) => {
            let source = std::fs::read_to_string(bundle)?;
            page.eval(&source).await?;
            page.eval(&format!(
                "Sentry.init({{ dsn: 'http://dev@{addr}/1', beforeSend: () => null }}); true"
            ))
            .await?;
            let version = page.eval("Sentry.SDK_VERSION").await?;
            let theirs = page
                .eval("bench((e) => Sentry.captureException(e))")
                .await?;
            println!(
                "  @sentry/browser {} captureException: {:>7.1} us",
                version.as_str().unwrap_or("?"),
                theirs.as_f64().unwrap_or(f64::NAN)
            );
            // Again ours, after Sentry is loaded, to show the order did not matter.
            let again = page.eval("bench((e) => v.captureException(e))").await?;
            println!(
                "  vigil again:                    {:>7.1} us",
                again.as_f64().unwrap_or(f64::NAN)
            );
        }
        None => println!("  (@sentry/browser not bundled: run `./dev.sh bench` to install it)"),
    }
    Ok(())
}
