//! `cargo test -p vigil-fuzz`: every target replays its whole corpus, then runs a short
//! randomized pass from a fixed seed (reproducible in CI); timing checks of the stack-trace
//! parser on megabyte-long pathological stacks; and proptest round trips of well-formed stacks
//! and DSNs. `./dev.sh fuzz [SECONDS]` runs longer with random seeds.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use vigil::errors::stack;
use vigil_fuzz::targets::{self, check_stack_text};
use vigil_fuzz::{fuzz, preview, Budget, Target};

/// Generated inputs per target under `cargo test` (the hub target runs fewer: each is a session).
const INPUTS: u64 = 5_000;

fn run(target: &Target, inputs: u64) {
    let report = fuzz(
        target,
        0x5eed_0000 + target.name.len() as u64,
        Budget::Inputs(inputs),
    );
    println!(
        "{}: {} inputs in {:?}",
        target.name, report.inputs, report.elapsed
    );
    for f in &report.failures {
        println!("  failing: {} ({})", f.reason, preview(&f.input));
    }
    if let Some(f) = report.failures.first() {
        panic!(
            "{}: {} failing inputs; first: {} ({})\n(`./dev.sh fuzz` writes failing inputs to fuzz/corpus/{}/)",
            target.name,
            report.failures.len(),
            f.reason,
            preview(&f.input),
            target.name,
        );
    }
}

#[test]
fn envelope() {
    run(&targets::ENVELOPE, INPUTS);
}

#[test]
fn otlp() {
    run(&targets::OTLP, INPUTS);
}

#[test]
fn auth() {
    run(&targets::AUTH, INPUTS);
}

#[test]
fn voice_offer() {
    run(&targets::VOICE_OFFER, INPUTS);
}

#[test]
fn voice_events() {
    run(&targets::VOICE_EVENTS, INPUTS / 4);
}

#[test]
fn hub_session() {
    run(&targets::HUB_SESSION, INPUTS / 4);
}

#[test]
fn stack() {
    run(&targets::STACK, INPUTS);
}

#[test]
fn dsn() {
    run(&targets::DSN, INPUTS);
}

#[test]
fn ratelimit() {
    run(&targets::RATELIMIT, INPUTS);
}

#[test]
fn every_target_has_seeds() {
    for t in targets::ALL {
        assert!(
            !vigil_fuzz::corpus(t.name).is_empty(),
            "fuzz/corpus/{}/ has no seeds",
            t.name
        );
    }
}

const MB: usize = 1 << 20;

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
}

/// Pathological `error.stack` strings of about 1 MB each.
fn pathological() -> Vec<(&'static str, String)> {
    vec![
        ("one huge line", "x".repeat(MB)),
        ("one huge 'at' line", format!("at {}", "f (".repeat(MB / 3))),
        (
            "'at' line of ( and )",
            format!("    at {})", "((((((((((".repeat(MB / 10)),
        ),
        (
            "nested parentheses",
            format!("    at f {}{}", "(".repeat(MB / 2), ")".repeat(MB / 2)),
        ),
        ("@ : ( soup lines", repeat_to("@:(@:)(:@\n", MB)),
        ("@ soup one line", repeat_to("@@::((", MB)),
        ("many non-frame lines", repeat_to("Error: nope\n", MB)),
        (
            "many frames",
            repeat_to("    at f (https://a.example/x.js:1:2)\n", MB),
        ),
        ("colons", format!("https://{}:1:2", ":".repeat(MB))),
        ("digits and colons", repeat_to("1:2:3:", MB)),
        (
            "wasm soup",
            repeat_to(":wasm-function[:wasm-function[]:", MB),
        ),
        (
            "eval at nesting",
            format!("    at f (eval at {})", "g (eval at ".repeat(MB / 12)),
        ),
        ("url then position", format!("{}://x:1:2", "a".repeat(MB))),
        ("blank lines", "\n".repeat(MB)),
        ("CR lines", "\r".repeat(MB)),
        ("multibyte", repeat_to("é@ü:(字)", MB)),
    ]
}

/// Each ~1 MB stack parses within a generous bound (debug build) and the figure is printed.
#[test]
fn megabyte_stacks_parse_in_linear_time() {
    let bound = if cfg!(debug_assertions) {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(100)
    };
    let mut worst = Duration::ZERO;
    for (name, text) in pathological() {
        // The best of up to 3 runs: a shared machine's hiccup is not the parser's time.
        let mut took = Duration::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let frames = stack::parse(&text, &[targets::NOT_IN_APP]);
            took = took.min(start.elapsed());
            assert!(frames.len() <= stack::MAX_FRAMES, "{name}");
            if took < bound / 2 {
                break;
            }
        }
        check_stack_text(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("stack, {name}: {} bytes in {took:?}", text.len());
        worst = worst.max(took);
        assert!(took < bound, "{name}: {took:?} for {} bytes", text.len());
    }
    println!("worst 1 MB stack: {worst:?}");
}

/// Doubling the input roughly doubles the time (not quadruples): 256 KiB vs 1 MiB stays under 8x
/// (linear gives 4x; quadratic 16x).
#[test]
fn stack_time_grows_linearly() {
    for (name, unit) in [
        ("at ( soup", "    at f ((((:1:2"),
        ("@ soup", "@:(@:)(:@"),
        ("wasm soup", ":wasm-function[:wasm-"),
    ] {
        // The best of 3 runs each, against a shared machine's noise.
        let time = |len: usize| {
            let text = repeat_to(unit, len);
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let frames = stack::parse(&text, &[targets::NOT_IN_APP]);
                    let took = start.elapsed();
                    assert!(frames.len() <= stack::MAX_FRAMES);
                    took
                })
                .min()
                .unwrap_or_default()
        };
        let small = time(MB / 4).max(Duration::from_micros(200));
        let large = time(MB);
        println!("stack, {name}: 256 KiB {small:?}, 1 MiB {large:?}");
        assert!(
            large < small * 8,
            "{name}: 256 KiB {small:?}, 1 MiB {large:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips with proptest strategies: well-formed input parses back to what was written.
// ---------------------------------------------------------------------------------------------

/// A deterministic runner (CI is reproducible) that persists nothing.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn word(
    alphabet: &'static str,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(prop::sample::select(chars), len).prop_map(|c| c.into_iter().collect())
}

/// How an engine prints one frame.
#[derive(Debug, Clone, Copy)]
enum Style {
    Chromium,
    Firefox,
    SafariAnonymous,
}

#[derive(Debug, Clone)]
struct Spec {
    style: Style,
    function: String,
    url: String,
    line: u32,
    col: u32,
}

fn spec() -> impl Strategy<Value = Spec> {
    let style = prop_oneof![
        Just(Style::Chromium),
        Just(Style::Firefox),
        Just(Style::SafariAnonymous)
    ];
    let function = word("abcxyzABC_$0123456789.", 1..=12);
    let url = (
        prop::sample::select(vec!["https://", "http://"]),
        word("abcdefghij", 1..=10),
        word("abcdefghij0123456789/._-", 0..=20),
    )
        .prop_map(|(scheme, host, path)| format!("{scheme}{host}.example/{path}.js"));
    (style, function, url, 1..1_000_000u32, 1..100_000u32).prop_map(
        |(style, function, url, line, col)| Spec {
            style,
            function,
            url,
            line,
            col,
        },
    )
}

fn render(specs: &[Spec]) -> String {
    let mut out = String::from("Error: boom\n");
    for s in specs {
        let Spec {
            function,
            url,
            line,
            col,
            ..
        } = s;
        out.push_str(&match s.style {
            Style::Chromium => format!("    at {function} ({url}:{line}:{col})\n"),
            Style::Firefox => format!("{function}@{url}:{line}:{col}\n"),
            Style::SafariAnonymous => format!("{url}:{line}:{col}\n"),
        });
    }
    out
}

/// Every engine's frames parse back to their function, file, line and column, oldest first,
/// the newest 50 kept.
#[test]
fn stack_frames_round_trip() {
    runner(500)
        .run(&prop::collection::vec(spec(), 0..80), |specs| {
            let text = render(&specs);
            let frames = stack::parse(&text, &[targets::NOT_IN_APP]);
            let kept = specs.len().min(stack::MAX_FRAMES);
            prop_assert_eq!(frames.len(), kept);
            // Engines print newest first; frames come out oldest first.
            for (frame, s) in frames.iter().zip(specs[..kept].iter().rev()) {
                prop_assert_eq!(frame.filename, s.url.as_str());
                prop_assert_eq!(frame.lineno, Some(s.line));
                prop_assert_eq!(frame.colno, Some(s.col));
                let function = match s.style {
                    Style::SafariAnonymous => None,
                    _ => Some(s.function.as_str()),
                };
                prop_assert_eq!(frame.function, function);
                prop_assert!(frame.in_app);
            }
            Ok(())
        })
        .unwrap();
}

/// A DSN written from its parts parses back to them.
#[test]
fn dsn_round_trip() {
    use vigil::transport::dsn::Dsn;
    let parts = (
        prop::sample::select(vec!["http", "https"]),
        word("0123456789abcdef", 1..=32),
        word("abcdefghijklmnopqrstuvwxyz0123456789-.", 1..=30),
        prop::option::of(1..=u16::MAX),
        prop::collection::vec(word("abcdefghij0123456789-_.~", 1..=8), 0..4),
        word("0123456789", 1..=10),
    );
    runner(1000)
        .run(&parts, |(scheme, key, host, port, segments, project)| {
            let path: String = segments.iter().map(|s| format!("/{s}")).collect();
            let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
            let text = format!("{scheme}://{key}@{host}{port_text}{path}/{project}");
            let dsn = Dsn::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(dsn.scheme, scheme);
            prop_assert_eq!(dsn.public_key, key);
            prop_assert_eq!(dsn.host, host);
            prop_assert_eq!(dsn.port, port);
            prop_assert_eq!(dsn.path, path);
            prop_assert_eq!(dsn.project_id, project);
            Ok(())
        })
        .unwrap();
}
