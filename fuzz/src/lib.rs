//! Fuzz targets for every parser of untrusted input, on stable Rust.
//!
//! A [`Target`] is a function from bytes to "the invariants held" (or a message saying which did
//! not). The driver here is a small mutation fuzzer: it starts from the target's corpus
//! (`fuzz/corpus/<target>/*`: seeds and every input that ever found a bug), mutates them (byte
//! flips, inserts, deletes, repeated chunks, the target's dictionary tokens, splices), runs the
//! target under `catch_unwind`, and counts a panic, a broken invariant or an input slower than
//! [`SLOW`] as a failure. Randomness is proptest's seedable ChaCha generator: `cargo test` uses
//! fixed seeds, `./dev.sh fuzz` random ones, and failing inputs are written to the corpus so every
//! later `cargo test` replays them.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

pub mod targets;

/// One input taking longer than this is a failure (debug build; the parsers are linear, so this
/// only trips on superlinear behaviour).
pub const SLOW: Duration = Duration::from_secs(2);

/// A fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name, also the corpus folder's.
    pub name: &'static str,
    /// Runs one input; `Err` names the broken invariant.
    pub check: fn(&[u8]) -> Result<(), String>,
    /// Tokens the mutator inserts (keywords, separators, boundary numbers).
    pub dictionary: &'static [&'static str],
    /// The largest input generated (inputs from the corpus may be larger).
    pub max_len: usize,
}

/// A failing input and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The input.
    pub input: Vec<u8>,
    /// The panic message, the broken invariant, or the time it took.
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Inputs run (corpus replays included).
    pub inputs: u64,
    /// Inputs that failed.
    pub failures: Vec<Failure>,
    /// Wall time.
    pub elapsed: Duration,
}

/// The corpus folder of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Every file of the target's corpus, sorted by name (so replays are reproducible).
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = dir
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::read(e.path()).ok().map(|b| (name, b))
        })
        .collect();
    files.sort();
    files
}

/// Runs one input: panics, broken invariants and slow inputs are failures.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input)));
    let took = start.elapsed();
    match outcome {
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(shorten(format!("panicked: {message}")))
        }
        Ok(Err(broken)) => Err(shorten(broken)),
        Ok(Ok(())) if took > SLOW => Err(format!(
            "took {took:?} for {} bytes (over {SLOW:?})",
            input.len()
        )),
        Ok(Ok(())) => Ok(()),
    }
}

/// A reason cut to 300 characters (invariant messages quote the values that broke them).
fn shorten(mut reason: String) -> String {
    if let Some((at, _)) = reason.char_indices().nth(300) {
        reason.truncate(at);
        reason.push('…');
    }
    reason
}

/// A generator seeded with `seed` (the same seed, the same inputs).
pub fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

fn below(rng: &mut TestRng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

/// Bytes the mutator likes: separators and boundaries common to text formats.
const INTERESTING: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\0",
    b":",
    b";",
    b",",
    b"=",
    b"@",
    b"(",
    b")",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b"\\",
    b"/",
    b" ",
    b"\t",
    b"0",
    b"-1",
    b"4294967295",
    b"4294967296",
    b"65535",
    b"65536",
    b"18446744073709551615",
    b"1e999",
    b"NaN",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xa8",
    b"\xf0\x9f\x98\x80",
];

/// One mutation of `base` (using `others` for splices).
pub fn mutate(rng: &mut TestRng, target: &Target, base: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut data = base.to_vec();
    let rounds = 1 + below(rng, 4);
    for _ in 0..rounds {
        let at = below(rng, data.len() + 1);
        match below(rng, 10) {
            0 if !data.is_empty() => {
                let i = below(rng, data.len());
                data[i] ^= 1 << below(rng, 8);
            }
            1 => data.insert(at, rng.next_u64() as u8),
            2 if !data.is_empty() => {
                let from = below(rng, data.len());
                let len = 1 + below(rng, (data.len() - from).min(64));
                data.drain(from..from + len);
            }
            3 if !data.is_empty() => {
                // A chunk repeated: long lines, deep nesting, many items.
                let from = below(rng, data.len());
                let len = 1 + below(rng, (data.len() - from).min(32));
                let chunk = data[from..from + len].to_vec();
                let times = 1 + below(rng, 256);
                let mut repeated = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    repeated.extend_from_slice(&chunk);
                }
                data.splice(at..at, repeated);
            }
            4 | 5 if !target.dictionary.is_empty() => {
                let token = target.dictionary[below(rng, target.dictionary.len())];
                data.splice(at..at, token.bytes());
            }
            6 => {
                let token = INTERESTING[below(rng, INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            7 if !others.is_empty() => {
                let other = &others[below(rng, others.len())];
                let from = below(rng, other.len() + 1);
                let to = from + below(rng, other.len() - from + 1);
                data.splice(at..at, other[from..to].iter().copied());
            }
            8 => data.truncate(at),
            _ if !data.is_empty() => {
                let i = below(rng, data.len());
                data[i] = INTERESTING[below(rng, INTERESTING.len())][0];
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
    data.truncate(target.max_len.max(base.len()));
    data
}

/// Replays the corpus, then runs mutated inputs until `budget` (inputs or time) is spent.
pub fn fuzz(target: &Target, seed: u64, budget: Budget) -> Report {
    let start = Instant::now();
    let mut report = Report::default();
    let mut pool: Vec<Vec<u8>> = corpus(target.name).into_iter().map(|(_, b)| b).collect();
    for input in &pool {
        report.inputs += 1;
        if let Err(reason) = run_one(target, input) {
            report.failures.push(Failure {
                input: input.clone(),
                reason,
            });
        }
    }
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut rng = rng(seed);
    let mut generated = 0u64;
    loop {
        match budget {
            Budget::Inputs(n) if generated >= n => break,
            Budget::Time(t) if start.elapsed() >= t => break,
            _ => {}
        }
        let base = pool[below(&mut rng, pool.len())].clone();
        let input = mutate(&mut rng, target, &base, &pool);
        generated += 1;
        report.inputs += 1;
        match run_one(target, &input) {
            Ok(()) => {
                // Keep a few mutants as new bases so mutations compound (bounded pool).
                if pool.len() < 256 && below(&mut rng, 16) == 0 {
                    pool.push(input);
                }
            }
            Err(reason) => {
                report.failures.push(Failure { input, reason });
                if report.failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many generated inputs (after the corpus).
    Inputs(u64),
    /// This much wall time (corpus included).
    Time(Duration),
}

/// Writes `input` to the target's corpus as `crash-<hash>`; returns the path.
pub fn save_failure(target: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    // FNV-1a: stable names across runs and platforms.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("crash-{hash:016x}"));
    std::fs::write(&path, input)?;
    Ok(path)
}

/// A short, printable view of an input for a failure message.
pub fn preview(input: &[u8]) -> String {
    let shown: String = String::from_utf8_lossy(&input[..input.len().min(200)])
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    format!("{} bytes: \"{shown}\"", input.len())
}
