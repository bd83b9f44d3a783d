//! A short soak (the long one is `./dev.sh soak`): after the warm-up the wasm memory does not
//! grow, and after every round DevTools' listener count is back at its baseline.

use vigil_e2e::soak_rounds::{growth_line, run};
use vigil_e2e::{require_pkg, Browser, Result, Server};

const ROUNDS: usize = 8;
/// Rounds before the wasm memory must hold still (a 60-round soak took its last 64 KiB page in
/// round 3).
const WARM_UP: usize = 4;

#[tokio::test]
async fn a_short_soak_keeps_wasm_memory_flat_and_listeners_at_baseline() -> Result<()> {
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    let samples = run(&server, &browser, ROUNDS, "errors=200", |s| {
        println!("{}", s.line());
    })
    .await?;
    println!("{}", growth_line(&samples));
    let settled = &samples[WARM_UP];
    for s in &samples[WARM_UP..] {
        assert_eq!(
            s.wasm,
            settled.wasm,
            "the wasm memory grew after the warm-up:\n{}\n{}",
            settled.line(),
            s.line()
        );
    }
    for s in &samples[1..] {
        assert_eq!(
            s.listeners,
            samples[0].listeners,
            "listeners not back at the baseline:\n{}\n{}",
            samples[0].line(),
            s.line()
        );
    }
    Ok(())
}
