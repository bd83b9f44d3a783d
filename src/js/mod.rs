//! The `#[wasm_bindgen]` surface, one file per exported class or function group; each method
//! converts its arguments and delegates to its module. [`handle`] is the pattern every class
//! shares: an id in the cleanup manager and a `Weak` to the service, never ownership.

pub mod handle;
mod runtime;
mod subscription;
#[cfg(feature = "telemetry")]
mod vigil;
#[cfg(feature = "voice")]
mod voice;
#[cfg(feature = "ws")]
mod websocket;

pub use runtime::{after, dispose_all, every, listen, on_dispose, resources, start, version};
pub use subscription::Subscription;
#[cfg(feature = "telemetry")]
pub use vigil::Vigil;
#[cfg(feature = "voice")]
pub use voice::VoiceConnection;
#[cfg(feature = "ws")]
pub use websocket::WebSocketService;

/// Architecture Invariant (ARCHITECTURE.md, `js/`): JS lives in one snippet module per feature
/// (`options.js`, `telemetry.js`, `voice.js`), never in `inline_js`. The glue imports every
/// snippet at once, and the browser suite's server (wasm-bindgen-test-runner, tiny_http 0.12)
/// leaves new connections unanswered when more arrive together than it has idle threads, 3 as
/// the page loads: seven snippets hung the suite at "Loading scripts..." in one run of four.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod snippet_tests {
    use crate::prelude::*;
    use alloc::collections::BTreeSet;
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively.
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Architecture: every closure handed to the browser is a `guards::Tick` (one closure
    /// signature in the bundle; SIZE-NOTES.md, step 26).
    #[test]
    fn every_closure_is_a_tick() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut closure_types = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            // A promise made from Rust takes a borrowed executor closure, a second closure
            // type (`vigilDeferred` and `vigilWaiter` make promises in JS instead).
            for banned in [
                concat!("Closure::", "once"),
                concat!("Closure::", "new"),
                concat!("once_into", "_js"),
                concat!("Promise::", "new"),
            ] {
                assert!(
                    !text.contains(banned),
                    "{} uses {banned}: wrap a guards::Tick (or make the promise in JS) instead",
                    file.display()
                );
            }
            closure_types += text.matches(concat!("Closure<", "dyn")).count();
        }
        assert_eq!(closure_types, 1, "one closure type: guards::Tick");
    }

    #[test]
    fn js_lives_in_one_snippet_module_per_feature() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(
            files.len() > 20,
            "found the sources ({} files)",
            files.len()
        );
        let inline = concat!("(inline", "_js");
        let mut modules = BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                !text.contains(inline),
                "{} uses {inline}: put it in its feature's src/js/*.js",
                file.display()
            );
            for (at, _) in text.match_indices("module = \"/") {
                let rest = &text[at + "module = \"".len()..];
                modules.insert(rest[..rest.find('"').unwrap()].to_string());
            }
        }
        let expected: BTreeSet<String> = [
            "/src/js/options.js",
            "/src/js/telemetry.js",
            "/src/js/voice.js",
        ]
        .map(String::from)
        .into();
        assert_eq!(modules, expected, "the snippet modules the bindings import");
        for module in &modules {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(&module[1..])
                    .is_file(),
                "{module} exists"
            );
        }
    }
}
