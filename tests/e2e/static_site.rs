//! [`StaticSite`]: a folder served over HTTP on its own port, as any static host would serve a
//! built web app (`GET`/`HEAD` only, a `Content-Type` by file extension, no directory listings).
//! The e2e tests use it for apps whose origin must differ from the Vigil server's.

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Result;

/// A static file server over one folder, stopped when dropped.
#[derive(Debug)]
pub struct StaticSite {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    task: JoinHandle<()>,
}

impl StaticSite {
    /// Serves `root` on a free port of 127.0.0.1; `/` is `root/index.html`.
    pub async fn serve(root: &Path) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let root = root.to_path_buf();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let root = root.clone();
                tokio::spawn(async move {
                    // A browser that goes away mid-answer is not the site's failure.
                    let _ = answer(stream, &root).await;
                });
            }
        });
        Ok(Self { url, task })
    }
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request per connection (`Connection: close`): enough for a page and its assets.
async fn answer(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let found = match method {
        "GET" | "HEAD" => {
            file_for(root, target).and_then(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        }
        _ => None,
    };
    let (status, kind, body) = match found {
        Some((path, body)) => ("200 OK", content_type(&path), body),
        None => ("404 Not Found", "text/plain", b"not found".to_vec()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

/// The file under `root` a request target names, never outside it.
fn file_for(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let mut file = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => file.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    file.is_file().then_some(file)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_stay_inside_the_root() {
        let root = std::env::temp_dir().join("vigil-static-site-test");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.join("assets/app.js"), "1").unwrap();
        assert_eq!(file_for(&root, "/"), Some(root.join("index.html")));
        assert_eq!(file_for(&root, "/?dsn=x"), Some(root.join("index.html")));
        assert_eq!(
            file_for(&root, "/assets/app.js"),
            Some(root.join("assets/app.js"))
        );
        assert_eq!(file_for(&root, "/../etc/passwd"), None);
        assert_eq!(file_for(&root, "/assets/../../x"), None);
        assert_eq!(file_for(&root, "/missing.js"), None);
    }
}
