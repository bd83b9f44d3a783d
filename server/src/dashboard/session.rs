//! Sign-in sessions, pure: secrets, hashes, cookies, constant-time comparison.
//!
//! The cookie carries a random secret; the database keeps only its SHA-256 and the SHA-256 of
//! the admin token it was issued under, so a stolen database holds no usable session and a
//! restart with another token ends every session.

use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "vigil_session";

/// How long a session lasts.
pub const TTL_SECS: i64 = 12 * 3600;

/// A new session secret: 244 random bits as 64 hex digits.
pub fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// SHA-256 as lowercase hex.
pub fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares in time that depends on the lengths only, never on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Set-Cookie` for a new session: not readable by scripts, never sent cross-site, expiring.
pub fn set_cookie(secret: &str) -> String {
    format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={TTL_SECS}")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session secret in a `Cookie` header, when it holds one of the right shape.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(hash("abc").len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cookies_are_http_only_strict_and_expire() {
        let c = set_cookie("s");
        for part in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn the_secret_is_read_from_the_cookie_header_only_when_well_formed() {
        let s = "a".repeat(64);
        assert_eq!(
            from_cookie_header(&format!("x=1; {COOKIE}={s}; y=2")),
            Some(s.as_str())
        );
        assert_eq!(from_cookie_header(&format!("{COOKIE}=short")), None);
        assert_eq!(
            from_cookie_header(&format!("{COOKIE}={}", "g".repeat(64))),
            None
        );
        assert_eq!(from_cookie_header("other=1"), None);
        assert_eq!(from_cookie_header(""), None);
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
