//! Configuration: every flag also reads an environment variable (server-api.md, "Running").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

/// `vigil-server` flags. With none, a development setup: project `1` with key `dev`, SQLite
/// under `data/`, and an admin token generated at start.
#[derive(Debug, Clone, Parser)]
#[command(name = "vigil-server", version, about)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "VIGIL_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Where to store events and metrics: `sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (migrations run on start either way).
    #[arg(
        long,
        env = "VIGIL_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/vigil.db"
    )]
    pub database_url: DatabaseUrl,

    /// The demo pages.
    #[arg(long, env = "VIGIL_WWW", default_value = "www")]
    pub www: PathBuf,

    /// The wasm-pack output.
    #[arg(long, env = "VIGIL_PKG", default_value = "pkg")]
    pub pkg: PathBuf,

    /// A project and its public key, `ID:PUBLIC_KEY`; repeat for more.
    #[arg(
        long = "project",
        env = "VIGIL_PROJECTS",
        value_delimiter = ',',
        default_value = "1:dev"
    )]
    pub projects: Vec<ProjectKey>,

    /// Bearer token for the read API, `/metrics` and the dashboard; generated (and printed) at
    /// start when not given. An empty token is refused.
    #[arg(long, env = "VIGIL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Origins allowed to send telemetry from a browser; none means any (development).
    #[arg(
        long = "allowed-origin",
        env = "VIGIL_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Events per second each public key may send (token bucket rate).
    #[arg(long, env = "VIGIL_RATE_LIMIT", default_value_t = 200.0)]
    pub rate_limit: f64,

    /// Events a public key may send in one burst (token bucket size).
    #[arg(long, env = "VIGIL_RATE_LIMIT_BURST", default_value_t = 1000.0)]
    pub rate_limit_burst: f64,

    /// The address the voice peer's UDP sockets bind to: each call binds its own socket on this
    /// IP; port 0 lets the system pick one per call, a port P gives calls the range
    /// P..P+voice-max-sessions.
    #[arg(long, env = "VIGIL_VOICE_UDP", default_value = "127.0.0.1:0", value_parser = concrete_ip)]
    pub voice_udp: SocketAddr,

    /// How long fleet health samples are kept (`90s`, `30m`, `12h`, `7d`; at most 365 days).
    #[arg(long, env = "VIGIL_HEALTH_RETENTION", default_value = "7d", value_parser = retention)]
    pub health_retention: std::time::Duration,

    /// How long error events and metric points are kept (issues not seen since go too).
    #[arg(long, env = "VIGIL_RETENTION", default_value = "30d", value_parser = retention)]
    pub retention: std::time::Duration,

    /// HTTP connections open at once; more are closed as they arrive.
    #[arg(long, env = "VIGIL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// HTTP connections open at once from one IP address.
    #[arg(long, env = "VIGIL_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// WebSocket sessions on `/ws` at once; more are refused with 503.
    #[arg(long, env = "VIGIL_WS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub ws_max_connections: usize,

    /// WebSocket sessions at once from one IP address; more are closed with 1013.
    #[arg(long, env = "VIGIL_WS_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub ws_max_connections_per_ip: usize,

    /// How long a connection may take to send a request's head (also ends idle keep-alive
    /// connections).
    #[arg(long, env = "VIGIL_HEADER_TIMEOUT", default_value = "10s", value_parser = retention)]
    pub header_timeout: std::time::Duration,

    /// How long a request's body may take to arrive.
    #[arg(long, env = "VIGIL_BODY_TIMEOUT", default_value = "15s", value_parser = retention)]
    pub body_timeout: std::time::Duration,

    /// Rows (events, metric points, health samples) one ingest transaction commits at most
    /// (the group commit's batch).
    #[arg(long, env = "VIGIL_INGEST_BATCH", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub ingest_batch: u32,

    /// How long the ingest writer waits for more after the first of a batch (`0ms`: it commits
    /// what is queued as soon as it is free; `500us`, `2ms`; at most 1s).
    #[arg(long, env = "VIGIL_INGEST_BATCH_WAIT", default_value = "0ms", value_parser = short_duration)]
    pub ingest_batch_wait: std::time::Duration,

    /// Rows waiting for the ingest writer at most; more are refused with 503 and Retry-After.
    #[arg(long, env = "VIGIL_INGEST_QUEUE", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ingest_queue: u32,

    /// Voice calls at once; more are refused with 503.
    #[arg(long, env = "VIGIL_VOICE_MAX_SESSIONS", default_value_t = 16)]
    pub voice_max_sessions: usize,

    /// Voice calls one client IP (an IPv6 client: its /64) may hold at once; more get 429.
    #[arg(long, env = "VIGIL_VOICE_MAX_CALLS_PER_IP", default_value_t = 4)]
    pub voice_max_calls_per_ip: usize,

    /// The longest a voice call may last (`90s`, `30m`, `2h`); it is then ended by the server.
    #[arg(long, env = "VIGIL_VOICE_MAX_CALL", default_value = "30m", value_parser = retention)]
    pub voice_max_call: std::time::Duration,

    /// A bearer token that may mint voice keys (`POST /voice/session`) besides the admin token:
    /// give it to the backend that hands keys to your pages.
    #[arg(long, env = "VIGIL_VOICE_MINT_TOKEN")]
    pub voice_mint_token: Option<Secret>,

    /// Opens the two routes a demo page calls itself, `POST /api/orders` and
    /// `POST /voice/session`, to any page, limited per IP. Without it both need the admin token
    /// (or, for minting, the voice mint token). `./dev.sh run` passes it.
    #[arg(long, env = "VIGIL_DEMO", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub demo: bool,
}

impl Config {
    /// The development setup, as with no flags, but on `addr` with `database_url`: for tests.
    pub fn for_tests(database_url: &str) -> Self {
        Self::parse_from([
            "vigil-server",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--admin-token",
            "test-admin",
        ])
    }
}

/// A secret (the admin token): never in `Debug` output, so never in a log line or a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the admin token must not be empty (leave it out to generate one)".into());
        }
        Ok(Self(s.to_owned()))
    }
}

impl Secret {
    /// A new random secret (128 bits as 32 hex digits).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// The database URL schemes this build stores into.
pub const SUPPORTED_DATABASES: &str =
    "sqlite://PATH, sqlite::memory: or postgres://USER[:PASSWORD]@HOST[:PORT]/DB";

/// Whether this build can store into `url` (never guess: anything else is refused at start).
pub fn database_supported(url: &str) -> bool {
    crate::store::Engine::of(url).is_some()
}

/// `url` with any password replaced by `***` (safe to print in an error or a log line): the
/// one in the authority (`user:password@`) and a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut out = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `--database-url`: a URL that may hold a password, so its `Debug` is redacted (a `Config`
/// in a log line or a panic never shows it). Reads as the `&str` it holds.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", redact_url(&self.0))
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<String> for DatabaseUrl {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// `90s`, `30m`, `12h`, `7d`: from one second to 365 days.
fn retention(s: &str) -> Result<std::time::Duration, String> {
    let unit = s
        .chars()
        .last()
        .ok_or("expected like 7d, 12h, 30m or 90s")?;
    let n: u64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| format!("expected like 7d, 12h, 30m or 90s, got {s:?}"))?;
    let secs = match unit {
        's' => n,
        'm' => n.saturating_mul(60),
        'h' => n.saturating_mul(3600),
        'd' => n.saturating_mul(86_400),
        _ => return Err(format!("expected like 7d, 12h, 30m or 90s, got {s:?}")),
    };
    if secs == 0 || secs > 365 * 86_400 {
        return Err(format!("{s}: from 1s to 365d"));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// `2ms`, `500us`, `1s`, `0ms`: from 0 to 1 second.
fn short_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("expected like 2ms, 500us or 1s, got {s:?}");
    let (digits, micros_per) = if let Some(d) = s.strip_suffix("us") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix("ms") {
        (d, 1_000)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1_000_000)
    } else {
        return Err(bad());
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let micros = n.saturating_mul(micros_per);
    if micros > 1_000_000 {
        return Err(format!("{s}: at most 1s"));
    }
    Ok(std::time::Duration::from_micros(micros))
}

/// A socket address whose IP can go in an ICE candidate (not `0.0.0.0` or `::`).
fn concrete_ip(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|e| format!("expected IP:PORT, got {s:?}: {e}"))?;
    if addr.ip().is_unspecified() {
        return Err(format!(
            "{s}: the voice peer announces this IP to browsers, so it must be a concrete address"
        ));
    }
    Ok(addr)
}

/// `ID:PUBLIC_KEY`, e.g. `1:dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectKey {
    /// The project id in the DSN path.
    pub id: String,
    /// The public key in the DSN's user part.
    pub public_key: String,
}

impl FromStr for ProjectKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, key) = s
            .split_once(':')
            .ok_or_else(|| format!("expected ID:PUBLIC_KEY, got {s:?}"))?;
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !ok(id) || !ok(key) {
            return Err(format!(
                "expected ID:PUBLIC_KEY of letters, digits, '-' or '_', got {s:?}"
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            public_key: key.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_development_setup() {
        let c = Config::parse_from(["vigil-server"]);
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(&*c.database_url, "sqlite://data/vigil.db");
        assert_eq!(
            c.projects,
            [ProjectKey {
                id: "1".into(),
                public_key: "dev".into()
            }]
        );
        assert!(c.admin_token.is_none());
        assert!(c.allowed_origins.is_empty());
        assert!(
            !c.demo,
            "the demo routes need a token unless --demo is given"
        );
        assert!(c.voice_mint_token.is_none());
        assert_eq!(c.voice_max_call, std::time::Duration::from_secs(30 * 60));
        assert_eq!(c.voice_max_calls_per_ip, 4);
    }

    #[test]
    fn demo_is_a_flag_and_an_environment_variable() {
        assert!(Config::parse_from(["vigil-server", "--demo"]).demo);
        let c = Config::parse_from([
            "vigil-server",
            "--voice-mint-token",
            "mint",
            "--voice-max-call",
            "90s",
        ]);
        assert_eq!(c.voice_mint_token.as_ref().unwrap().expose(), "mint");
        assert!(!format!("{c:?}").contains("\"mint\""));
        assert!(Config::try_parse_from(["vigil-server", "--voice-mint-token", " "]).is_err());
        assert_eq!(c.voice_max_call, std::time::Duration::from_secs(90));
    }

    #[test]
    fn the_admin_token_is_never_empty_and_never_in_debug_output() {
        let c = Config::parse_from(["vigil-server", "--admin-token", "Hunter2Secret"]);
        assert_eq!(c.admin_token.as_ref().unwrap().expose(), "Hunter2Secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("Hunter2Secret"), "{debug}");
        assert!(debug.contains("<redacted>"));
        for empty in ["", "   "] {
            assert!(Config::try_parse_from(["vigil-server", "--admin-token", empty]).is_err());
        }
    }

    #[test]
    fn only_supported_databases_and_no_password_in_messages() {
        for url in [
            "sqlite://data/vigil.db",
            "sqlite::memory:",
            "postgres://u:p@h/db",
            "postgresql://h:5433/db",
        ] {
            assert!(database_supported(url), "{url}");
        }
        for url in ["data/vigil.db", "mysql://x", "postgres:x", ""] {
            assert!(!database_supported(url), "{url}");
        }
        assert_eq!(
            redact_url("postgres://vigil:Hunter2Pass@db.internal:5432/vigil"),
            "postgres://vigil:***@db.internal:5432/vigil"
        );
        assert_eq!(
            redact_url("postgresql://db.internal/vigil?sslmode=require&password=Hunter2Pass"),
            "postgresql://db.internal/vigil?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgres://u:Hunter2Pass@h/db?PASSWORD=Hunter2Pass"),
            "postgres://u:***@h/db?PASSWORD=***"
        );
        assert_eq!(redact_url("sqlite://data/a.db"), "sqlite://data/a.db");
        assert_eq!(redact_url("x://u@h/p"), "x://u:***@h/p");
    }

    #[test]
    fn the_database_password_is_never_in_debug_output_or_help() {
        let url = "postgres://vigil:Hunter2Pass@db.internal:5432/vigil";
        let c = Config::parse_from(["vigil-server", "--database-url", url]);
        assert_eq!(&*c.database_url, url);
        let debug = format!("{c:?}");
        assert!(!debug.contains("Hunter2Pass"), "{debug}");
        assert!(
            debug.contains("postgres://vigil:***@db.internal:5432/vigil"),
            "{debug}"
        );
        let help = <Config as clap::CommandFactory>::command()
            .get_arguments()
            .filter(|a| a.get_id() == "database_url" || a.get_id() == "admin_token")
            .all(|a| a.is_hide_env_values_set());
        assert!(
            help,
            "--help would print VIGIL_DATABASE_URL / VIGIL_ADMIN_TOKEN"
        );
    }

    #[test]
    fn projects_repeat_and_split_on_commas() {
        let c = Config::parse_from([
            "vigil-server",
            "--project",
            "1:dev,2:abc",
            "--project",
            "3:x",
        ]);
        let ids: Vec<_> = c.projects.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
    }

    #[test]
    fn voice_flags_have_defaults_and_refuse_unspecified_ips() {
        let c = Config::parse_from(["vigil-server"]);
        assert_eq!(c.voice_udp.to_string(), "127.0.0.1:0");
        assert_eq!(c.voice_max_sessions, 16);
        let c = Config::parse_from([
            "vigil-server",
            "--voice-udp",
            "127.0.0.2:40000",
            "--voice-max-sessions",
            "3",
        ]);
        assert_eq!(c.voice_udp.port(), 40000);
        assert_eq!(c.voice_max_sessions, 3);
        let e = Config::try_parse_from(["vigil-server", "--voice-udp", "0.0.0.0:0"]).unwrap_err();
        assert!(e.to_string().contains("concrete"), "{e}");
    }

    #[test]
    fn the_ingest_writer_flags_have_the_measured_defaults() {
        let c = Config::parse_from(["vigil-server"]);
        assert_eq!(c.ingest_batch, 256);
        assert_eq!(c.ingest_batch_wait, std::time::Duration::ZERO);
        assert_eq!(c.ingest_queue, 8192);
        let c = Config::parse_from([
            "vigil-server",
            "--ingest-batch",
            "64",
            "--ingest-batch-wait",
            "500us",
            "--ingest-queue",
            "10",
        ]);
        assert_eq!(c.ingest_batch, 64);
        assert_eq!(c.ingest_batch_wait, std::time::Duration::from_micros(500));
        assert_eq!(c.ingest_queue, 10);
        assert_eq!(short_duration("0ms"), Ok(std::time::Duration::ZERO));
        assert_eq!(short_duration("1s"), Ok(std::time::Duration::from_secs(1)));
        for bad in ["2", "2m", "1001ms", "x ms", ""] {
            assert!(short_duration(bad).is_err(), "{bad}");
        }
        assert!(Config::try_parse_from(["vigil-server", "--ingest-batch", "0"]).is_err());
    }

    #[test]
    fn bad_project_is_refused_with_a_reason() {
        let e = Config::try_parse_from(["vigil-server", "--project", "nokey"]).unwrap_err();
        assert!(e.to_string().contains("ID:PUBLIC_KEY"), "{e}");
    }
}
