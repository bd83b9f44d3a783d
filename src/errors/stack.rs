//! Stack traces of Chromium (V8), Firefox (SpiderMonkey) and Safari (JavaScriptCore), wasm frames
//! included, parsed into frames oldest first (Sentry's order), at most [`MAX_FRAMES`].

use crate::prelude::*;
use crate::text::{find, rsplit3, split_once, trim_end_byte};

/// The most frames kept (the newest ones).
pub const MAX_FRAMES: usize = 50;

/// One stack frame: slices of the stack text it was read from (nothing is copied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame<'a> {
    /// Function name, when the engine gave one.
    pub function: Option<&'a str>,
    /// Script URL (or `<anonymous>`, `[native code]`, `[wasm code]`).
    pub filename: &'a str,
    /// 1-based line.
    pub lineno: Option<u32>,
    /// 1-based column.
    pub colno: Option<u32>,
    /// False for browser internals, extensions, `node_modules` and the given prefixes.
    pub in_app: bool,
    /// For wasm frames: the code offset (`0x…`).
    pub instruction_addr: Option<&'a str>,
}

/// Parses `stack` (the `Error.stack` string). Frames whose file starts with one of
/// `not_in_app` (e.g. the package's own URL) are marked `in_app: false`.
pub fn parse<'a>(stack: &'a str, not_in_app: &[&str]) -> Vec<Frame<'a>> {
    // `lines()` would bring std's char searcher; `parse_line` trims a `\r` with the rest.
    let mut frames: Vec<Frame> = crate::text::split(stack, b'\n')
        .filter_map(parse_line)
        .take(MAX_FRAMES)
        .map(|mut f| {
            f.in_app = in_app(f.filename, not_in_app);
            f
        })
        .collect();
    frames.reverse(); // engines print newest first
    frames
}

fn parse_line(line: &str) -> Option<Frame<'_>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None; // cheap: a megabyte of blank lines is a million of them
    }
    if let Some(rest) = line.strip_prefix("at ") {
        return Some(chromium(rest));
    }
    if let Some((function, location)) = split_once(line, "@") {
        // Firefox and Safari: `function@location` (function may be empty).
        if location.is_empty() {
            return None;
        }
        let function = function.trim_ascii();
        let mut frame = location_frame(location);
        if frame.function.is_none() && !function.is_empty() && function != "global code" {
            frame.function = Some(function);
        }
        return Some(frame);
    }
    // Safari prints bare `url:line:col` for anonymous frames.
    if find(line, "://").is_some() && ends_with_position(line) {
        return Some(location_frame(line));
    }
    None // the message line, or something that is not a frame
}

fn chromium(rest: &str) -> Frame<'_> {
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    if let (Some(open), true) = (find(rest, " ("), rest.ends_with(')')) {
        // `get`, not indexing: the positions are char boundaries, and a slice that could panic
        // pulls the panic's formatting (char `Debug`, Unicode tables) into the wasm.
        let function = rest.get(..open).unwrap_or_default().trim_ascii();
        let mut location = rest.get(open + 2..rest.len() - 1).unwrap_or_default();
        // `eval at f (url:1:2), <anonymous>:3:4`: the eval's own caller is the useful place.
        if let Some(inner) = location.strip_prefix("eval at ") {
            if let (Some(o), Some(c)) = (find(inner, "("), find(inner, ")")) {
                location = inner.get(o + 1..c).unwrap_or(location);
            }
        }
        let mut frame = location_frame(location);
        let function = function.strip_prefix("new ").unwrap_or(function);
        if !function.is_empty() {
            frame.function = Some(function);
        }
        frame
    } else {
        location_frame(rest)
    }
}

fn ends_with_position(s: &str) -> bool {
    let (_, line, col) = rsplit3(s, b':');
    let line = line.unwrap_or_default();
    !col.is_empty()
        && col.bytes().all(|b| b.is_ascii_digit())
        && !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
}

/// `url:line:col`, `url:line`, `url:wasm-function[N]:0xADDR`, or a marker like `<anonymous>`.
fn location_frame(location: &str) -> Frame<'_> {
    let location = location.trim_ascii();
    if let Some(at) = find(location, ":wasm-function[") {
        let open = at + ":wasm-function[".len();
        let after = location.get(open..).unwrap_or_default();
        let (index, addr) = split_once(after, "]:").unwrap_or((trim_end_byte(after, b']'), ""));
        // `wasm-function[N]` as the stack wrote it, with its `]` when there is one.
        let close = (open + index.len() + 1).min(location.len());
        return Frame {
            function: location.get(at + 1..close),
            filename: location.get(..at).unwrap_or_default(),
            instruction_addr: (!addr.is_empty()).then_some(addr),
            ..Frame::default()
        };
    }
    if location == "[wasm code]" {
        return Frame {
            filename: location,
            ..Frame::default()
        };
    }
    let (first, middle, last) = rsplit3(location, b':');
    match (first, middle.map(str::parse::<u32>), last.parse::<u32>()) {
        (Some(file), Some(Ok(line)), Ok(col)) => Frame {
            filename: file,
            lineno: Some(line),
            colno: Some(col),
            ..Frame::default()
        },
        (None, Some(_), Ok(line)) | (Some(_), Some(Err(_)), Ok(line)) => {
            // `url:line` (the URL itself may hold a colon, e.g. after the scheme).
            let file = location
                .get(..location.len() - last.len() - 1)
                .unwrap_or_default();
            Frame {
                filename: file,
                lineno: Some(line),
                ..Frame::default()
            }
        }
        _ => Frame {
            filename: location,
            ..Frame::default()
        },
    }
}

fn in_app(filename: &str, not_in_app: &[&str]) -> bool {
    let internal = filename.is_empty()
        || filename == "<anonymous>"
        || filename == "native"
        || filename.starts_with('[')
        || find(filename, "/node_modules/").is_some()
        || [
            "chrome-extension://",
            "moz-extension://",
            "safari-extension://",
            "webkit-masked-url:",
        ]
        .iter()
        .any(|p| filename.starts_with(p));
    !internal && !not_in_app.iter().any(|p| filename.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(
        function: Option<&'a str>,
        filename: &'a str,
        line: Option<u32>,
        col: Option<u32>,
    ) -> Frame<'a> {
        Frame {
            function,
            filename,
            lineno: line,
            colno: col,
            in_app: true,
            instruction_addr: None,
        }
    }

    #[test]
    fn chromium() {
        let stack = "TypeError: Cannot read properties of undefined (reading 'x')
    at render (http://localhost:8080/app.js:10:5)
    at async loadData (http://localhost:8080/app.js:20:3)
    at new Widget (http://localhost:8080/app.js:30:7)
    at http://localhost:8080/app.js:40:9
    at Array.map (<anonymous>)
    at eval (eval at run (http://localhost:8080/app.js:50:1), <anonymous>:1:1)";
        let frames = parse(stack, &[]);
        let mut map = f(Some("Array.map"), "<anonymous>", None, None);
        map.in_app = false;
        assert_eq!(
            frames,
            [
                f(
                    Some("eval"),
                    "http://localhost:8080/app.js",
                    Some(50),
                    Some(1)
                ),
                map,
                f(None, "http://localhost:8080/app.js", Some(40), Some(9)),
                f(
                    Some("Widget"),
                    "http://localhost:8080/app.js",
                    Some(30),
                    Some(7)
                ),
                f(
                    Some("loadData"),
                    "http://localhost:8080/app.js",
                    Some(20),
                    Some(3)
                ),
                f(
                    Some("render"),
                    "http://localhost:8080/app.js",
                    Some(10),
                    Some(5)
                ),
            ]
        );
    }

    #[test]
    fn firefox() {
        let stack = "render@http://localhost:8080/app.js:10:5
loadData@http://localhost:8080/app.js:20:3
@http://localhost:8080/app.js:40:9
";
        assert_eq!(
            parse(stack, &[]),
            [
                f(None, "http://localhost:8080/app.js", Some(40), Some(9)),
                f(
                    Some("loadData"),
                    "http://localhost:8080/app.js",
                    Some(20),
                    Some(3)
                ),
                f(
                    Some("render"),
                    "http://localhost:8080/app.js",
                    Some(10),
                    Some(5)
                ),
            ]
        );
    }

    #[test]
    fn safari() {
        let stack = "render@http://localhost:8080/app.js:10:5
map@[native code]
global code@http://localhost:8080/app.js:40:9
http://localhost:8080/app.js:41:2";
        let frames = parse(stack, &[]);
        assert_eq!(frames.len(), 4);
        assert_eq!(
            frames[0],
            f(None, "http://localhost:8080/app.js", Some(41), Some(2))
        );
        assert_eq!(
            frames[1],
            f(None, "http://localhost:8080/app.js", Some(40), Some(9))
        );
        assert_eq!(frames[2].filename, "[native code]");
        assert!(!frames[2].in_app);
        assert_eq!(frames[3].function, Some("render"));
    }

    #[test]
    fn wasm_frames_in_every_engine() {
        let chrome = "Error: boom
    at vigil.wasm.vigil::ws::feed::h9c2 (http://localhost:8080/pkg/vigil_bg.wasm:wasm-function[12]:0x1a2b)
    at http://localhost:8080/pkg/vigil_bg.wasm:wasm-function[7]:0xff";
        let frames = parse(chrome, &["http://localhost:8080/pkg/"]);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].function, Some("vigil.wasm.vigil::ws::feed::h9c2"));
        assert_eq!(
            frames[1].filename,
            "http://localhost:8080/pkg/vigil_bg.wasm"
        );
        assert_eq!(frames[1].instruction_addr, Some("0x1a2b"));
        assert!(
            !frames[1].in_app,
            "the package's own frames are not the app's"
        );
        assert_eq!(frames[0].function, Some("wasm-function[7]"));
        assert_eq!(frames[0].instruction_addr, Some("0xff"));

        let firefox =
            "vigil::ws::feed@http://localhost:8080/pkg/vigil_bg.wasm:wasm-function[12]:0x1a2b";
        let frames = parse(firefox, &[]);
        assert_eq!(frames[0].instruction_addr, Some("0x1a2b"));
        assert_eq!(frames[0].function, Some("wasm-function[12]"));

        let safari = "<?>.wasm-function[12]@[wasm code]";
        let frames = parse(safari, &[]);
        assert_eq!(frames[0].filename, "[wasm code]");
        assert_eq!(frames[0].function, Some("<?>.wasm-function[12]"));
    }

    #[test]
    fn at_most_fifty_frames_the_newest_kept_oldest_first() {
        let stack: String = (0..80)
            .map(|i| format!("    at f{i} (http://x/a.js:{}:1)\n", i + 1))
            .collect();
        let frames = parse(&stack, &[]);
        assert_eq!(frames.len(), MAX_FRAMES);
        assert_eq!(frames.last().unwrap().function, Some("f0"), "newest last");
        assert_eq!(frames[0].function, Some("f49"));
    }

    #[test]
    fn odd_lines_never_panic_and_are_skipped() {
        for s in [
            "",
            "\n\n",
            "@",
            "at ",
            "at (",
            "at x (",
            "a@b",
            "x:y:z",
            "Error: a:1:2",
            "@:1:2",
        ] {
            let _ = parse(s, &[]);
        }
        assert!(parse("Error: just a message", &[]).is_empty());
        let frames = parse("    at http://x/a.js:5", &[]);
        assert_eq!(frames[0].lineno, Some(5));
        assert_eq!(frames[0].filename, "http://x/a.js");
        assert!(!parse("    at foo (http://x/node_modules/lib/a.js:1:1)", &[])[0].in_app);
    }
}
