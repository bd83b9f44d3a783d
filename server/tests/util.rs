//! Helpers for the server's integration tests.

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use vigil_server::store::Store;
use vigil_server::{app, AppState, Config};

/// The admin token every test server uses.
pub const ADMIN: &str = "test-admin";

/// A router over an in-memory database, serving `www/` and `pkg/` from a temporary folder that
/// holds a small `index.html`, `test/page.html` and `vigil_bg.wasm`.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh app with the development config (project `1:dev`, admin token [`ADMIN`]).
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// As [`TestApp::new`], after `change` edits the config.
    pub async fn with_config(change: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(www.join("test")).unwrap();
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(www.join("index.html"), "<title>Vigil demo</title>").unwrap();
        std::fs::write(www.join("test/page.html"), "<p>test page</p>").unwrap();
        std::fs::write(pkg.join("vigil_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(pkg.join("vigil.js"), "export default 1;").unwrap();
        let mut config = Config::for_tests("sqlite::memory:");
        config.www = www;
        config.pkg = pkg;
        change(&mut config);
        let store = Store::connect(&config.database_url).await.unwrap();
        let state = AppState::new(&config, store);
        Self {
            router: app(state.clone()),
            state,
            _dir: dir,
        }
    }

    /// Sends one request through the router.
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// `GET path`, with the admin token when `admin` is true.
    pub async fn get(&self, path: &str, admin: bool) -> Response<Body> {
        let mut req = Request::get(path);
        if admin {
            req = req.header("authorization", format!("Bearer {ADMIN}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

/// The whole body as text.
pub async fn text(response: Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The whole body as JSON.
pub async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).unwrap()
}

/// A real server on `127.0.0.1:0` with the given hub settings, serving until dropped.
pub struct LiveServer {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    shutdown: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl LiveServer {
    /// Binds and serves in the background.
    pub async fn start(hub: vigil_server::hub::HubConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(&format!("sqlite://{}/vigil.db", dir.path().display()));
        config.www = dir.path().to_path_buf();
        config.pkg = dir.path().to_path_buf();
        let server = vigil_server::Server::bind_with_hub(&config, hub)
            .await
            .unwrap();
        let addr = server.local_addr();
        let state = server.state().clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(server.serve(shutdown.clone()));
        Self {
            addr,
            state,
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    /// `ws://ADDR/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Waits (at most 3 s) until the hub holds `n` sessions and the gauge says the same.
    pub async fn wait_sessions(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let count = self.state.hub().session_count();
            let gauge = self.state.metrics().ws_connections.get();
            if count == n && gauge == n as i64 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {n} sessions, hub has {count}, gauge says {gauge}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Shuts down gracefully and waits for the serve task.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("shutdown within 5 s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
