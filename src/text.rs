//! Building text without `core::fmt` (ARCHITECTURE.md, "Size"): `format!`, `to_string()` and
//! `{}` pull the formatting machinery (~5 KB) into the wasm; these helpers are a few bytes.
//! Error types keep their `thiserror` `Display` for Rust callers and native tests, and add a
//! `message()` built here for the JS path; a native test checks that both say the same.

use crate::prelude::*;
/// Appends `n` in decimal.
pub fn push_uint(out: &mut String, n: u64) {
    let mut digits = [0_u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// `n` in decimal.
pub fn uint(n: u64) -> String {
    let mut s = String::new();
    push_uint(&mut s, n);
    s
}

/// Where `needle` first occurs in `haystack` (a byte offset, on a char boundary when `needle`
/// is not empty). `str::find` with a string pattern brings std's two-way searcher and, through
/// its panics, char `Debug` and Unicode tables (~5 KB); this is a plain byte scan.
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() {
        return Some(0);
    }
    haystack.as_bytes().windows(n.len()).position(|w| w == n)
}

/// `haystack` split around the first `needle`, as `str::split_once` does.
pub fn split_once<'a>(haystack: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let at = find(haystack, needle)?;
    Some((haystack.get(..at)?, haystack.get(at + needle.len()..)?))
}

/// `haystack` split around the last `sep` (an ASCII byte), as `str::rsplit_once` does.
pub fn rsplit_once(haystack: &str, sep: u8) -> Option<(&str, &str)> {
    let at = haystack.bytes().rposition(|b| b == sep)?;
    Some((haystack.get(..at)?, haystack.get(at + 1..)?))
}

/// `(first, middle, last)` as `s.rsplitn(3, sep)` yields them (`last`, then `middle`, then the
/// rest): `url:line:col` is `(Some(url), Some(line), col)`, `a:b` is `(None, Some(a), b)`.
pub fn rsplit3(s: &str, sep: u8) -> (Option<&str>, Option<&str>, &str) {
    match rsplit_once(s, sep) {
        None => (None, None, s),
        Some((head, last)) => match rsplit_once(head, sep) {
            None => (None, Some(head), last),
            Some((first, middle)) => (Some(first), Some(middle), last),
        },
    }
}

/// The parts of `s` between each `sep` (an ASCII byte), as `str::split` does: std's char
/// searcher and its iterators are ~1.5 KB of wasm; this is a byte scan.
pub fn split(s: &str, sep: u8) -> Split<'_> {
    Split { rest: Some(s), sep }
}

/// The iterator [`split`] returns.
#[derive(Debug, Clone)]
pub struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match s.bytes().position(|b| b == self.sep) {
            Some(at) => {
                self.rest = s.get(at + 1..);
                s.get(..at)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// `s` without any trailing `b` (an ASCII byte), as `str::trim_end_matches` does.
pub fn trim_end_byte(s: &str, b: u8) -> &str {
    let keep = s.bytes().rposition(|c| c != b).map_or(0, |at| at + 1);
    s.get(..keep).unwrap_or(s)
}

/// The parts, joined.
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_splits_match_core_and_std() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            4096,
            65_535,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(uint(n), n.to_string());
        }
        assert_eq!(concat(&["a", "", "bc"]), "abc");
        for (h, n) in [
            ("a (b)", " ("),
            ("x", "xy"),
            ("", "a"),
            ("ééa]:b", "]:"),
            ("ab", ""),
        ] {
            assert_eq!(find(h, n), h.find(n), "{h} {n}");
            assert_eq!(split_once(h, n), h.split_once(n), "{h} {n}");
        }
    }

    #[test]
    fn byte_splits_match_std() {
        for s in [
            "",
            ":",
            "a",
            "a:b",
            "a:b:c",
            "::",
            "é:ü:",
            "http://h:1/x",
            ":a:",
            "a::b",
        ] {
            assert_eq!(
                split(s, b':').collect::<Vec<_>>(),
                s.split(':').collect::<Vec<_>>(),
                "{s}"
            );
            assert_eq!(rsplit_once(s, b':'), s.rsplit_once(':'), "{s}");
            let (first, middle, last) = rsplit3(s, b':');
            let std: Vec<&str> = s.rsplitn(3, ':').collect();
            let ours: Vec<&str> = [Some(last), middle, first].into_iter().flatten().collect();
            assert_eq!(ours, std, "{s}");
            assert_eq!(trim_end_byte(s, b':'), s.trim_end_matches(':'), "{s}");
        }
    }
}
