//! Static files (`/www`, `/pkg`, `/dashboard/static`): no dotfiles, nothing outside the served
//! folder (a symlink that points out is refused), and the headers every response carries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;
use crate::AppState;

/// `/` (the demo page), `/www/*` (the demo pages) and `/pkg/*` (the package).
pub fn routes(state: &AppState) -> axum::Router<AppState> {
    let www = state.www();
    axum::Router::new()
        .route_service(
            "/",
            tower_http::services::ServeFile::new(www.join("index.html")),
        )
        .nest_service("/www", tower_http::services::ServeDir::new(www))
        .nest_service("/pkg", tower_http::services::ServeDir::new(state.pkg()))
}

/// The folders served, by URL prefix.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `(prefix with its trailing slash, folder)`.
    pub served: Vec<(&'static str, PathBuf)>,
}

/// `%XX` decoded; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a request path below a served folder names something that may be served: no
/// segment starting with `.` (dotfiles, `..`) and, once decoded, no backslash or NUL.
pub fn path_allowed(relative: &str) -> bool {
    let Some(decoded) = percent_decode(relative) else {
        return false;
    };
    !decoded.contains(['\\', '\0']) && !decoded.split('/').any(|seg| seg.starts_with('.'))
}

/// Whether `root/relative`, when it exists, resolves (symlinks followed) inside `root`.
async fn inside(root: &Path, relative: &str) -> bool {
    let Some(decoded) = percent_decode(relative) else {
        return false;
    };
    let target = root.join(decoded.trim_start_matches('/'));
    match tokio::fs::canonicalize(&target).await {
        Err(_) => true, // missing: the file service answers 404 itself
        Ok(resolved) => match tokio::fs::canonicalize(root).await {
            Ok(root) => resolved.starts_with(root),
            Err(_) => false,
        },
    }
}

/// Refuses, with `404`, dotfiles and paths that resolve outside their served folder.
pub async fn guard(State(roots): State<Arc<Roots>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    for (prefix, root) in &roots.served {
        if let Some(relative) = path.strip_prefix(prefix) {
            if !path_allowed(relative) || !inside(root, relative).await {
                return AppError::NotFound("no such file".into()).into_response();
            }
            break;
        }
    }
    next.run(request).await
}

/// The headers on every response unless a route set its own: no MIME sniffing, no referrer to
/// other origins, no framing by other sites.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    [
        SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
        SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("frame-ancestors 'none'"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotfiles_and_escapes_are_refused() {
        for ok in [
            "vigil.js",
            "test/page.html",
            "a%20b.txt",
            "snippets/x-1/inline0.js",
        ] {
            assert!(path_allowed(ok), "{ok}");
        }
        for bad in [
            ".gitignore",
            "a/.git/config",
            "..%2fsecret",
            "%2e%2e/secret",
            "%2egitignore",
            "a%5cb",
            "%00",
            "%zz",
            "%e9",
        ] {
            assert!(!path_allowed(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn symlinks_out_of_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        std::fs::write(root.join("page.html"), "p").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("out.txt"))
                .unwrap();
            std::os::unix::fs::symlink(root.join("page.html"), root.join("in.html")).unwrap();
            assert!(!inside(&root, "out.txt").await);
            assert!(inside(&root, "in.html").await);
        }
        assert!(inside(&root, "page.html").await);
        assert!(
            inside(&root, "missing.html").await,
            "404 comes from the file service"
        );
    }
}
