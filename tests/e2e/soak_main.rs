//! `./dev.sh soak [ROUNDS]` (default 30): the soak of `soak_rounds.rs` against the real server,
//! one line per round and the growth per round after the warm-up. Figures, not assertions.

use vigil_e2e::{require_pkg, soak_rounds, Browser, Result, Server};

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|_| format!("ROUNDS: a number, not {a:?}"))?,
        None => 30,
    };
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    println!("soak: {rounds} rounds in one page (300 errors and metric points, 5 WebSocket services, the long-lived socket dropped and reopened, 2 runtimes in iframes, 1 voice call each)");
    let samples = soak_rounds::run(&server, &browser, rounds, "", |s| {
        println!("{}", s.line());
    })
    .await?;
    println!("{}", soak_rounds::growth_line(&samples));
    Ok(())
}
