//! Where a client's public key is: the `sentry_key` query parameter, an `X-Sentry-Auth` header,
//! and for OTLP an `Authorization: Bearer` header or `key` query parameter.

/// The value of `sentry_key` in `X-Sentry-Auth: Sentry sentry_key=…, sentry_version=7, …`.
pub fn key_from_sentry_auth(header: &str) -> Option<&str> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Sentry ")
        .or_else(|| rest.strip_prefix("sentry "))
        .unwrap_or(rest);
    rest.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == "sentry_key")
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// The value of `name` in a URL query string (`a=1&sentry_key=dev`), percent-decoding not needed
/// for keys (letters, digits, `-`, `_`).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v).filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentry_auth_header_forms() {
        assert_eq!(
            key_from_sentry_auth(
                "Sentry sentry_version=7, sentry_client=vigil/0.1, sentry_key=dev"
            ),
            Some("dev")
        );
        assert_eq!(
            key_from_sentry_auth("Sentry sentry_key=abc,sentry_version=7"),
            Some("abc")
        );
        assert_eq!(key_from_sentry_auth("sentry_key = k1"), Some("k1"));
        assert_eq!(key_from_sentry_auth("Sentry sentry_version=7"), None);
        assert_eq!(key_from_sentry_auth("Sentry sentry_key="), None);
        assert_eq!(key_from_sentry_auth(""), None);
    }

    #[test]
    fn query_forms() {
        let q = Some("sentry_version=7&sentry_key=dev&sentry_client=x");
        assert_eq!(query_param(q, "sentry_key"), Some("dev"));
        assert_eq!(query_param(q, "key"), None);
        assert_eq!(query_param(Some("key="), "key"), None);
        assert_eq!(query_param(None, "key"), None);
    }
}
