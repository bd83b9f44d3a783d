//! A short soak (the long one is `./dev.sh soak`): after the warm-up the wasm memory holds still
//! (at most one allocator step), and after every round DevTools' listener count is back at its
//! baseline.

use vigil_e2e::soak_rounds::{growth_line, run};
use vigil_e2e::{require_pkg, Browser, Result, Server};

const ROUNDS: usize = 8;
/// Rounds before the wasm memory must hold still.
const WARM_UP: usize = 4;
/// The allocator grows the memory in steps of two 64 KiB pages; the last step of its high-water
/// mark came at round 3 in 60-round runs and as late as round 5 here on a busy machine. One such
/// step after the warm-up is allowed; a leak of more than about 16 KiB a round shows as more.
const ONE_STEP: f64 = 128.0 * 1024.0;

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
    let after = &samples[WARM_UP..];
    let steps = after.windows(2).filter(|w| w[1].wasm > w[0].wasm).count();
    let grown = after[after.len() - 1].wasm - after[0].wasm;
    assert!(
        steps <= 1 && grown <= ONE_STEP,
        "the wasm memory grew after the warm-up ({steps} steps, {grown} bytes):\n{}",
        after
            .iter()
            .map(|s| s.line())
            .collect::<Vec<_>>()
            .join("\n")
    );
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
