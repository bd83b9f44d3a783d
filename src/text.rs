//! Building text without `core::fmt` (ARCHITECTURE.md, "Size"): `format!`, `to_string()` and
//! `{}` pull the formatting machinery (~5 KB) into the wasm; these helpers are a few bytes.
//! Error types keep their `thiserror` `Display` for Rust callers and native tests, and add a
//! `message()` built here for the JS path; a native test checks that both say the same.

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

/// Appends `n` in decimal with at least `width` digits (leading zeros).
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut s = String::new();
    push_uint(&mut s, n);
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(&s);
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
    fn numbers_and_joins_match_core_fmt() {
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
        let mut s = String::new();
        push_padded(&mut s, 7, 3);
        push_padded(&mut s, 2026, 2);
        push_padded(&mut s, 0, 4);
        assert_eq!(s, "00720260000");
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
}
