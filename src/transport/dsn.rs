//! The Sentry DSN: `{scheme}://{publicKey}@{host}[:port]{path}/{projectId}`.

use crate::prelude::*;
use crate::text::{find, rsplit_once, split_once, trim_end_byte};
use thiserror::Error;

/// A parsed DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// `http` or `https`.
    pub scheme: String,
    /// The public key (the URL's user part).
    pub public_key: String,
    /// Host name or address.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// Path before the project id, without a trailing slash (often empty).
    pub path: String,
    /// The project id (last path segment).
    pub project_id: String,
}

/// What is wrong with a DSN; the message names the part.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DsnError {
    /// No `scheme://`.
    #[error(
        "dsn: expected {{scheme}}://{{publicKey}}@{{host}}/{{projectId}}, the scheme is missing"
    )]
    NoScheme,
    /// A scheme other than http(s).
    #[error("dsn: the scheme must be http or https, got \"{0}\"")]
    BadScheme(String),
    /// No `publicKey@`.
    #[error("dsn: the public key (before '@') is missing")]
    NoPublicKey,
    /// No host.
    #[error("dsn: the host is missing")]
    NoHost,
    /// A port that is not a number.
    #[error("dsn: the port \"{0}\" is not a number from 1 to 65535")]
    BadPort(String),
    /// No project id.
    #[error("dsn: the project id (the last path segment) is missing")]
    NoProject,
}

impl DsnError {
    /// The same text as `Display`, built without `core::fmt`.
    pub fn message(&self) -> String {
        let (text, value, after) = match self {
            Self::NoScheme => (
                "dsn: expected {scheme}://{publicKey}@{host}/{projectId}, the scheme is missing",
                "",
                "",
            ),
            Self::BadScheme(s) => (
                "dsn: the scheme must be http or https, got \"",
                s.as_str(),
                "\"",
            ),
            Self::NoPublicKey => ("dsn: the public key (before '@') is missing", "", ""),
            Self::NoHost => ("dsn: the host is missing", "", ""),
            Self::BadPort(p) => (
                "dsn: the port \"",
                p.as_str(),
                "\" is not a number from 1 to 65535",
            ),
            Self::NoProject => (
                "dsn: the project id (the last path segment) is missing",
                "",
                "",
            ),
        };
        crate::text::concat(&[text, value, after])
    }
}

impl Dsn {
    /// Parses a DSN string.
    pub fn parse(dsn: &str) -> Result<Self, DsnError> {
        let dsn = dsn.trim_ascii();
        let (scheme, rest) = split_once(dsn, "://").ok_or(DsnError::NoScheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(DsnError::BadScheme(scheme));
        }
        let (userinfo, rest) = split_once(rest, "@").ok_or(DsnError::NoPublicKey)?;
        let public_key = split_once(userinfo, ":").map_or(userinfo, |(key, _)| key);
        if public_key.is_empty() {
            return Err(DsnError::NoPublicKey);
        }
        let end = rest.bytes().position(|b| b == b'?' || b == b'#');
        let rest = end.and_then(|at| rest.get(..at)).unwrap_or(rest);
        let (authority, path) = match find(rest, "/") {
            Some(at) => (rest.get(..at).unwrap_or(rest), rest.get(at..).unwrap_or("")),
            None => (rest, ""),
        };
        let (host, port) = match rsplit_once(authority, b':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| DsnError::BadPort(p.to_owned()))?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err(DsnError::NoHost);
        }
        let path = trim_end_byte(path, b'/');
        let (path, project_id) = match rsplit_once(path, b'/') {
            // `…/sub//42`: the path keeps no trailing slash either (the URLs add their own).
            Some((p, id)) if !id.is_empty() => (trim_end_byte(p, b'/'), id),
            _ => return Err(DsnError::NoProject),
        };
        Ok(Self {
            scheme,
            public_key: public_key.to_owned(),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
            project_id: project_id.to_owned(),
        })
    }

    /// `{scheme}://{host}[:port]`.
    pub fn origin(&self) -> String {
        let mut out = crate::text::concat(&[&self.scheme, "://", &self.host]);
        if let Some(p) = self.port {
            out.push(':');
            crate::text::push_uint(&mut out, p.into());
        }
        out
    }

    /// Where envelopes go, with the key in the query (no CORS preflight, works for beacons).
    pub fn envelope_url(&self, client: &str) -> String {
        crate::text::concat(&[
            &self.origin(),
            &self.path,
            "/api/",
            &self.project_id,
            "/envelope/?sentry_version=7&sentry_key=",
            &self.public_key,
            "&sentry_client=",
            client,
        ])
    }

    /// The default OTLP endpoint: the DSN's origin + `/v1/metrics`.
    pub fn metrics_url(&self) -> String {
        let mut out = self.origin();
        out.push_str("/v1/metrics");
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_messages_are_the_display() {
        for e in [
            DsnError::NoScheme,
            DsnError::BadScheme("ftp".into()),
            DsnError::NoPublicKey,
            DsnError::NoHost,
            DsnError::BadPort("x".into()),
            DsnError::NoProject,
        ] {
            assert_eq!(e.message(), e.to_string());
        }
    }

    use super::*;

    #[test]
    fn parses_the_contract_form() {
        let d = Dsn::parse("http://dev@127.0.0.1:8080/1").unwrap();
        assert_eq!(
            d,
            Dsn {
                scheme: "http".into(),
                public_key: "dev".into(),
                host: "127.0.0.1".into(),
                port: Some(8080),
                path: String::new(),
                project_id: "1".into(),
            }
        );
        assert_eq!(
            d.envelope_url("vigil/0.1.0"),
            "http://127.0.0.1:8080/api/1/envelope/?sentry_version=7&sentry_key=dev&sentry_client=vigil/0.1.0"
        );
        assert_eq!(d.metrics_url(), "http://127.0.0.1:8080/v1/metrics");
    }

    #[test]
    fn paths_secret_keys_and_no_port() {
        let d = Dsn::parse("https://abc:secret@o1.ingest.example.com/prefix/sub/42/").unwrap();
        assert_eq!(d.public_key, "abc");
        assert_eq!(d.port, None);
        assert_eq!(d.path, "/prefix/sub");
        assert_eq!(d.project_id, "42");
        assert_eq!(
            d.envelope_url("c"),
            "https://o1.ingest.example.com/prefix/sub/api/42/envelope/?sentry_version=7&sentry_key=abc&sentry_client=c"
        );
    }

    #[test]
    fn every_error_names_the_part() {
        for (dsn, err) in [
            ("dev@host/1", DsnError::NoScheme),
            ("ftp://dev@host/1", DsnError::BadScheme("ftp".into())),
            ("http://host/1", DsnError::NoPublicKey),
            ("http://@host/1", DsnError::NoPublicKey),
            ("http://dev@/1", DsnError::NoHost),
            ("http://dev@host:99999/1", DsnError::BadPort("99999".into())),
            ("http://dev@host:x/1", DsnError::BadPort("x".into())),
            ("http://dev@host", DsnError::NoProject),
            ("http://dev@host/", DsnError::NoProject),
        ] {
            assert_eq!(Dsn::parse(dsn), Err(err.clone()), "{dsn}");
            assert!(err.to_string().starts_with("dsn: "));
        }
    }
}
