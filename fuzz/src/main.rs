//! `./dev.sh fuzz [SECONDS]`: runs every target for an equal share of SECONDS (default 60 in
//! all) from a random seed, prints inputs tried per target, and
//! writes failing inputs to `fuzz/corpus/<target>/crash-<hash>` (replayed by `cargo test`).
//! `vigil-fuzz SECONDS [TARGET…]` runs only the named targets; `VIGIL_FUZZ_SEED` fixes the seed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_fuzz::targets::ALL;
use vigil_fuzz::{fuzz, preview, save_failure, Budget};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: Option<f64> = args.next().map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("SECONDS must be a number, got {s:?}"))
    });
    let names: Vec<String> = args.collect();
    let chosen: Vec<_> = ALL
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .collect();
    if chosen.is_empty() {
        eprintln!(
            "no such target; targets: {:?}",
            ALL.iter().map(|t| t.name).collect::<Vec<_>>()
        );
        std::process::exit(2);
    }
    let per_target = seconds.unwrap_or(60.0) / chosen.len() as f64;
    let seed = std::env::var("VIGIL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    // The targets' panics are caught and reported; the default hook would print each one.
    std::panic::set_hook(Box::new(|_| {}));
    println!("seed {seed}, {per_target:.1} s per target");
    let mut failed = 0;
    for (i, target) in chosen.iter().enumerate() {
        let report = fuzz(
            target,
            seed.wrapping_add(i as u64),
            Budget::Time(Duration::from_secs_f64(per_target)),
        );
        let rate = report.inputs as f64 / report.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<13} {:>9} inputs in {:>5.1} s ({:>8.0}/s), {} failing",
            target.name,
            report.inputs,
            report.elapsed.as_secs_f64(),
            rate,
            report.failures.len()
        );
        for f in &report.failures {
            failed += 1;
            match save_failure(target.name, &f.input) {
                Ok(path) => println!(
                    "  {}: {} -> {}",
                    f.reason,
                    preview(&f.input),
                    path.display()
                ),
                Err(e) => println!("  {}: {} (not saved: {e})", f.reason, preview(&f.input)),
            }
        }
    }
    if failed > 0 {
        println!("{failed} failing inputs written to the corpus; `cargo test -p vigil-fuzz` replays them");
        std::process::exit(1);
    }
}
