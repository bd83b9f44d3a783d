//! `./dev.sh soak [ROUNDS] [QUERY]` (default 30 rounds): the soak of `soak_rounds.rs` against the
//! real server, one line per round and the growth per round after the warm-up. QUERY is passed
//! to the page (`www/test/soak.html`: `errors=`, `sockets=`, `runtimes=`, `voice=0`) to soak
//! one part alone. Figures, not assertions.

use vigil_e2e::{require_pkg, soak_rounds, Browser, Result, Server};

#[tokio::main]
async fn main() -> Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|_| format!("ROUNDS: a number, not {a:?}"))?,
        None => 30,
    };
    let query = std::env::args().nth(2).unwrap_or_default();
    require_pkg();
    let server = Server::start(&[]).await?;
    let browser = Browser::launch().await?;
    println!("soak: {rounds} rounds in one page (300 errors and metric points, 5 WebSocket services, the long-lived socket dropped and reopened, 2 runtimes in iframes, 1 voice call each){}", if query.is_empty() { String::new() } else { format!("; page query {query}") });
    let samples = soak_rounds::run(&server, &browser, rounds, &query, |s| {
        println!("{}", s.line());
    })
    .await?;
    println!("{}", soak_rounds::growth_line(&samples));
    let console = browser.console();
    println!(
        "console lines and uncaught exceptions in the page: {}{}",
        console.len(),
        console
            .iter()
            .take(3)
            .map(|l| format!("\n  {l}"))
            .collect::<String>()
    );
    Ok(())
}
