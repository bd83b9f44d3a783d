//! Helpers for the end-to-end tests: the real `vigil-server` binary on a free port, and headless
//! Chromium driven over the DevTools protocol (CDP).
//!
//! - [`Server::start`] builds the server binary if needed, starts it with a fresh database on
//!   `127.0.0.1:0`, and reads its start-up lines for the URL and admin token. Dropping it kills
//!   the process; [`Server::terminate`] sends SIGTERM and waits; [`Server::kill`] and
//!   [`Server::start_again`] crash it and bring it back on the same port and database.
//! - [`Browser::launch`] starts `/usr/bin/chromium` (or `$CHROMIUM`) headless with the flags this
//!   machine needs, and [`Browser::open`] gives a [`Page`] to evaluate JS in, count DOM listeners
//!   after a forced GC ([`Page::dom_counters`]), and take screenshots.
//! - [`require_pkg`] fails with a clear message when `pkg/` was not built (`./dev.sh build`).
//! - [`StaticSite::serve`] serves a built app's folder on its own origin, as a static host would.
//!
//! CDP is JSON over one WebSocket; the handful of commands used here do not need a generated
//! client for the whole protocol, which would lag behind Chromium's.

pub mod postgres;
pub mod soak_rounds;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

mod static_site;
pub use static_site::StaticSite;

/// Any error in a helper: tests unwrap or `?` it and read the message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The repository root (where `Cargo.toml`, `www/` and `pkg/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/e2e sits two levels below the root")
        .to_path_buf()
}

/// Where screenshots and other test output go: `target/e2e/`.
pub fn output_dir() -> PathBuf {
    let dir = target_dir().join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A file from the npm tools directory `./dev.sh setup` fills (`$VIGIL_TOOLS`, by default
/// `~/.cache/vigil/tools`), e.g. `node_modules/web-vitals/dist/web-vitals.iife.js`; the error
/// says how to install it.
pub fn tool_file(relative: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("VIGIL_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("vigil/tools"))
        })
        .ok_or("neither VIGIL_TOOLS nor HOME is set")?;
    let file = dir.join(relative);
    if file.exists() {
        Ok(file)
    } else {
        Err(format!(
            "{} is missing: run `./dev.sh setup` (`./dev.sh test` does it)",
            file.display()
        )
        .into())
    }
}

/// Panics with instructions when the package has not been built into `pkg/`.
pub fn require_pkg() {
    let wasm = workspace_root().join("pkg/vigil_bg.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build the package first with `./dev.sh build` (`./dev.sh test` does it)",
        wasm.display()
    );
}

/// Builds the server binary once per test process and returns its path.
pub fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Benchmarks measure the release build (`VIGIL_SERVER_RELEASE=1`, set by `./dev.sh
        // bench`); tests use the debug one.
        let release = std::env::var_os("VIGIL_SERVER_RELEASE").is_some();
        let mut args = vec![
            "build",
            "--quiet",
            "-p",
            "vigil-server",
            "--bin",
            "vigil-server",
        ];
        if release {
            args.push("--release");
        }
        let status = std::process::Command::new(cargo)
            .args(&args)
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build for vigil-server");
        assert!(status.success(), "building vigil-server failed");
        let bin = target_dir()
            .join(if release { "release" } else { "debug" })
            .join("vigil-server");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
}

/// The real `vigil-server` process on a free port with its own database.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The admin token it printed.
    pub admin_token: String,
    /// Every line it printed on stdout before it was ready.
    pub startup_lines: Vec<String>,
    extra_args: Vec<String>,
    /// `--database-url` when not the SQLite file in `_data`.
    database_url: Option<String>,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts the server (building it first if needed) with `extra_args` after the defaults.
    pub async fn start(extra_args: &[&str]) -> Result<Self> {
        Self::start_with(None, extra_args).await
    }

    /// As [`Server::start`], storing into `database_url` (e.g. a PostgreSQL database that
    /// another instance shares) instead of a fresh SQLite file.
    pub async fn start_on(database_url: &str, extra_args: &[&str]) -> Result<Self> {
        Self::start_with(Some(database_url.to_owned()), extra_args).await
    }

    async fn start_with(database_url: Option<String>, extra_args: &[&str]) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        let (child, url, admin_token, startup_lines) =
            spawn_server("127.0.0.1:0", data.path(), database_url.as_deref(), &args).await?;
        Ok(Self {
            child,
            url,
            admin_token,
            startup_lines,
            extra_args: args,
            database_url,
            _data: data,
        })
    }

    /// The folder holding its database (`vigil.db` and SQLite's `-wal`/`-shm` files).
    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    /// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`: the peak), Linux only.
    pub fn memory_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no {field} in /proc/PID/status").into())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Kills the process at once (SIGKILL), as a crash would, and waits for it.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Starts the server again on the same port with the same database (after [`Server::kill`]).
    pub async fn start_again(&mut self) -> Result<()> {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let (child, url, admin_token, startup_lines) = spawn_server(
            &addr,
            self._data.path(),
            self.database_url.as_deref(),
            &self.extra_args,
        )
        .await?;
        self.child = child;
        self.url = url;
        self.admin_token = admin_token;
        self.startup_lines = startup_lines;
        Ok(())
    }

    /// One HTTP/1.1 request to the server with the admin token (and a JSON body when given);
    /// returns the status and the body. Plain TCP: the tests need no HTTP client.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> Result<(u16, String)> {
        let auth = format!("Authorization: Bearer {}\r\n", self.admin_token);
        let content = json
            .map(|_| "Content-Type: application/json\r\n".to_owned())
            .unwrap_or_default();
        let (status, _, body) = self
            .raw_request(
                method,
                path,
                &format!("{auth}{content}"),
                json.unwrap_or(""),
            )
            .await?;
        Ok((status, body))
    }

    /// One HTTP/1.1 request with exactly the header lines given (each ending in `\r\n`; no
    /// admin token unless they hold it); returns the status, the response's header block
    /// (lowercased names, for `contains` checks) and the body.
    pub async fn raw_request(
        &self,
        method: &str,
        path: &str,
        headers: &str,
        body: &str,
    ) -> Result<(u16, String, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        tcp.read_to_string(&mut response).await?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no HTTP status")?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_ascii_lowercase(), b.to_owned()))
            .unwrap_or_default();
        Ok((status, head, body))
    }

    /// `GET path` with the admin token: the body (any status).
    pub async fn get(&self, path: &str) -> Result<String> {
        Ok(self.request("GET", path, None).await?.1)
    }

    /// The DSN of project 1 (public key `dev`) on this server, as a page passes to `Vigil.start`.
    pub fn dsn(&self) -> String {
        format!("http://dev@{}/1", self.url.trim_start_matches("http://"))
    }

    /// `GET path` with the admin token, parsed as JSON.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.get(path).await?)?)
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit status.
    pub async fn terminate(mut self, timeout: Duration) -> Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        let exit = tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| format!("the server did not exit within {timeout:?} of SIGTERM"))??;
        Ok((exit, started.elapsed()))
    }
}

/// Starts the binary on `addr` with its database in `data` (or at `database_url`); returns it
/// once it printed its URL and admin token.
async fn spawn_server(
    addr: &str,
    data: &Path,
    database_url: Option<&str>,
    extra_args: &[String],
) -> Result<(Child, String, String, Vec<String>)> {
    let root = workspace_root();
    let db = database_url.map_or_else(
        || format!("sqlite://{}/vigil.db", data.display()),
        str::to_owned,
    );
    let mut child = Command::new(server_binary())
        // --demo: the demo page (and the tests' pages) post orders and mint voice keys
        // themselves, as `./dev.sh run` lets them.
        .args(["--demo", "--addr", addr, "--database-url", &db])
        .arg("--www")
        .arg(root.join("www"))
        .arg("--pkg")
        .arg(root.join("pkg"))
        .args(extra_args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut startup_lines = Vec::new();
    let (mut url, mut admin_token) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while url.is_none() || admin_token.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .map_err(|_| "the server printed no start-up lines within 30 s")??
            .ok_or("the server exited before it was ready")?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("admin token:").nth(1) {
            admin_token = Some(rest.trim().to_owned());
        }
        startup_lines.push(line);
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        child,
        url.unwrap_or_default(),
        admin_token.unwrap_or_default(),
        startup_lines,
    ))
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// At most this many CDP events are kept per browser (console lines, exceptions); later ones are
/// counted in [`Browser::events_dropped`].
pub const MAX_EVENTS: usize = 2_000;

#[derive(Debug, Default)]
struct Events {
    kept: Vec<Value>,
    dropped: u64,
}

/// Headless Chromium with one DevTools connection.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    events: Arc<Mutex<Events>>,
    next_id: AtomicU64,
    _profile: tempfile::TempDir,
}

/// The flags every headless Chromium needs on this machine (see `shared/specs/reference.md`).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-for-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,800",
];

impl Browser {
    /// Starts Chromium with [`CHROMIUM_FLAGS`] and connects to it.
    pub async fn launch() -> Result<Self> {
        Self::launch_with(&[]).await
    }

    /// Starts Chromium with extra flags (e.g. a fake-capture WAV file).
    pub async fn launch_with(extra_flags: &[&str]) -> Result<Self> {
        Self::launch_without(&[], extra_flags).await
    }

    /// Starts Chromium with [`CHROMIUM_FLAGS`] minus `omit` (e.g. the fake permission prompt, so
    /// that a prompt can be denied), plus `extra_flags`.
    pub async fn launch_without(omit: &[&str], extra_flags: &[&str]) -> Result<Self> {
        let profile = tempfile::tempdir()?;
        let exe = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut child = Command::new(&exe)
            .args(CHROMIUM_FLAGS.iter().filter(|f| !omit.contains(f)))
            .args(extra_flags)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {exe}: {e} (./dev.sh setup installs chromium)"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let ws_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                    return Ok::<_, Error>(rest.trim().to_owned());
                }
            }
            Err("chromium exited before DevTools was listening".into())
        })
        .await
        .map_err(|_| "chromium did not open DevTools within 30 s")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (socket, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
        let (mut sink, mut stream) = socket.split();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Events>> = Arc::default();
        let (p, e) = (Arc::clone(&pending), Arc::clone(&events));
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = p.lock().expect("pending lock").remove(&id) {
                        let _ = tx.send(v);
                    }
                } else {
                    let mut ev = e.lock().expect("events lock");
                    if ev.kept.len() < MAX_EVENTS {
                        ev.kept.push(v);
                    } else {
                        ev.dropped += 1;
                    }
                }
            }
        });
        Ok(Self {
            child,
            out,
            pending,
            events,
            next_id: AtomicU64::new(1),
            _profile: profile,
        })
    }

    /// Sends one CDP command (to the browser, or to a page's session) and waits for its result.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        self.out
            .send(Message::Text(msg.to_string().into()))
            .map_err(|_| "the DevTools connection is closed")?;
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| format!("{method}: no answer within 30 s"))?
            .map_err(|_| format!("{method}: the DevTools connection closed"))?;
        if let Some(err) = reply.get("error") {
            return Err(format!("{method}: {err}").into());
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Opens `www/test/empty.html` (a page that loads nothing) on `server`.
    pub async fn open_empty(&self, server: &Server) -> Result<Page<'_>> {
        self.open(&format!("{}/www/test/empty.html", server.url))
            .await
    }

    /// Opens a new tab at `url` and waits until its document has loaded.
    pub async fn open(&self, url: &str) -> Result<Page<'_>> {
        let page = self.open_blank(None).await?;
        page.goto(url).await?;
        Ok(page)
    }

    /// Opens a built app served by `site` at `/?dsn=` `server`'s DSN and waits until `ready`
    /// (a JS expression) is true; the page's console is in the error when it never is.
    pub async fn open_app(
        &self,
        site: &StaticSite,
        server: &Server,
        ready: &str,
    ) -> Result<Page<'_>> {
        let page = self
            .open(&format!("{}/?dsn={}", site.url, server.dsn()))
            .await?;
        page.wait_for(ready, Duration::from_secs(20))
            .await
            .map_err(|e| format!("{e}; console: {:?}", self.console()))?;
        Ok(page)
    }

    /// A new browser context (its own profile in memory, like an incognito window): its id.
    pub async fn create_context(&self) -> Result<String> {
        let r = self
            .call(None, "Target.createBrowserContext", json!({}))
            .await?;
        Ok(r["browserContextId"]
            .as_str()
            .ok_or("no browserContextId")?
            .to_owned())
    }

    /// Closes a browser context and every page in it at once (what closing a window does).
    pub async fn close_context(&self, context: &str) -> Result<()> {
        self.call(
            None,
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context }),
        )
        .await?;
        Ok(())
    }

    /// A new `about:blank` tab (in `context` when given), attached, with `Runtime` and `Page`
    /// enabled, so init scripts can be added before the first navigation.
    pub async fn open_blank(&self, context: Option<&str>) -> Result<Page<'_>> {
        let mut params = json!({ "url": "about:blank" });
        if let Some(c) = context {
            params["browserContextId"] = json!(c);
        }
        let target = self.call(None, "Target.createTarget", params).await?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        let page = Page {
            browser: self,
            session,
        };
        page.call("Runtime.enable", json!({})).await?;
        page.call("Page.enable", json!({})).await?;
        Ok(page)
    }

    /// Console lines and uncaught exceptions seen so far, as text (for failure messages).
    pub fn console(&self) -> Vec<String> {
        let ev = self.events.lock().expect("events lock");
        ev.kept
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled" => Some(format!(
                    "console.{}: {}",
                    e["params"]["type"].as_str().unwrap_or("?"),
                    e["params"]["args"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .map(|x| x["value"]
                                .as_str()
                                .map(str::to_owned)
                                .or_else(|| x["description"].as_str().map(str::to_owned))
                                .unwrap_or_else(|| x["value"].to_string()))
                            .collect::<Vec<_>>()
                            .join(" "))
                        .unwrap_or_default()
                )),
                "Runtime.exceptionThrown" => Some(format!(
                    "uncaught: {}",
                    e["params"]["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .unwrap_or("?")
                )),
                _ => None,
            })
            .collect()
    }

    /// How many CDP events were not kept because [`MAX_EVENTS`] were already.
    pub fn events_dropped(&self) -> u64 {
        self.events.lock().expect("events lock").dropped
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One tab, attached through a flat CDP session.
#[derive(Debug)]
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

/// `Memory.getDOMCounters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomCounters {
    /// Live documents.
    pub documents: u64,
    /// Live DOM nodes.
    pub nodes: u64,
    /// Registered JS event listeners.
    pub js_event_listeners: u64,
}

impl Page<'_> {
    /// A CDP command in this page's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Navigates and waits for `document.readyState == "complete"`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        // Wait for the new document (the old one may still say "complete").
        let href = serde_json::to_string(url)?;
        self.wait_for(
            &format!("location.href === {href} && document.readyState === 'complete'"),
            Duration::from_secs(20),
        )
        .await
    }

    /// Runs `source` in every document this page loads from now on, before the page's own
    /// scripts (e.g. a library the page expects on `window`).
    pub async fn add_init_script(&self, source: &str) -> Result<()> {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .await?;
        Ok(())
    }

    /// Clicks the middle of the element `selector` with real (trusted) mouse events.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let sel = serde_json::to_string(selector)?;
        let at = self
            .eval(&format!(
                "(() => {{ const r = document.querySelector({sel}).getBoundingClientRect();
                   return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await?;
        let (x, y) = (at[0].as_f64().ok_or("x")?, at[1].as_f64().ok_or("y")?);
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value as JSON.
    pub async fn eval(&self, expression: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("`{expression}` threw: {text}").into());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy, or fails after `timeout` with the console output.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(&format!("!!({expression})")).await;
            if matches!(v, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "waited {timeout:?} for `{expression}` (last: {v:?}); console:\n{}",
                    self.browser.console().join("\n")
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Imports and initializes the package in the page as `window.vigil` (module functions and
    /// classes), once; later calls do nothing.
    pub async fn load_package(&self) -> Result<()> {
        self.eval(
            "(async () => {
                if (!window.vigil) {
                    const m = await import('/pkg/vigil.js');
                    await m.default();
                    window.vigil = m;
                }
                return true;
            })()",
        )
        .await?;
        Ok(())
    }

    /// `vigil.resources()`, checked to be all zeros (the message names what is left).
    pub async fn assert_no_resources(&self) -> Result<()> {
        self.assert_no_resources_in("vigil.resources()").await
    }

    /// Like [`Page::assert_no_resources`], for a page that reaches its runtime's `resources()`
    /// through `expression` (a bundled app has no global `vigil`).
    pub async fn assert_no_resources_in(&self, expression: &str) -> Result<()> {
        let counts = self.eval(expression).await?;
        let live: Vec<String> = counts
            .as_object()
            .ok_or("resources() is an object")?
            .iter()
            .filter(|(_, n)| n.as_f64() != Some(0.0))
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        if live.is_empty() {
            Ok(())
        } else {
            Err(format!("resources left: {}", live.join(", ")).into())
        }
    }

    /// Forces a full garbage collection (removed listeners still count until one runs).
    pub async fn collect_garbage(&self) -> Result<()> {
        self.call("HeapProfiler.collectGarbage", json!({})).await?;
        Ok(())
    }

    /// DevTools' DOM counters, after a forced GC.
    pub async fn dom_counters(&self) -> Result<DomCounters> {
        self.collect_garbage().await?;
        let c = self.call("Memory.getDOMCounters", json!({})).await?;
        let n = |k: &str| c[k].as_u64().ok_or_else(|| format!("no {k} in {c}"));
        Ok(DomCounters {
            documents: n("documents")?,
            nodes: n("nodes")?,
            js_event_listeners: n("jsEventListeners")?,
        })
    }

    /// Saves a PNG of the whole page to `target/e2e/{name}.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        // The whole page, not just the viewport.
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "scale": 1,
                              "width": size["width"].as_f64().unwrap_or(1280.0),
                              "height": size["height"].as_f64().unwrap_or(720.0) },
                }),
            )
            .await?;
        let data = shot["data"].as_str().ok_or("no screenshot data")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
        let path = output_dir().join(format!("{name}.png"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}
