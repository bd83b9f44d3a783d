//! PostgreSQL for the end-to-end tests and benchmarks.
//!
//! - [`test_server`]: the server every test shares, `VIGIL_TEST_POSTGRES` (a URL such as
//!   `postgres://vigil@127.0.0.1:5432`; `./dev.sh test` starts a throwaway one and sets it). A
//!   test that needs PostgreSQL fails with instructions when it is unset, never skips.
//! - [`fresh_database`]: a new, empty database on a server, for one test.
//! - [`Cluster`]: a throwaway PostgreSQL of the test's own (initdb, start, stop, start again on the
//!   same port), for tests that take the database away under load.
//!
//! The binaries are PostgreSQL's own (`initdb`, `pg_ctl`, `psql`) from `$VIGIL_PG_BIN`, else
//! the newest `/usr/lib/postgresql/*/bin`, else `$PATH`. `initdb` refuses to run as root: as root
//! the cluster's folder is given to the `postgres` user and the commands run through `runuser`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Result;

/// `VIGIL_TEST_POSTGRES`, or a panic saying how to get one.
pub fn test_server() -> String {
    std::env::var("VIGIL_TEST_POSTGRES")
        .unwrap_or_else(|_| {
            panic!(
                "VIGIL_TEST_POSTGRES is not set: set it to a PostgreSQL server URL where tests may \
                 create databases (postgres://vigil@127.0.0.1:5432), or run ./dev.sh test, which \
                 starts a throwaway one"
            )
        })
        .trim_end_matches('/')
        .to_owned()
}

/// Creates an empty database with a unique name on `server` (a URL without a database) and
/// returns its URL.
pub fn fresh_database(server: &str) -> Result<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "vigil_e2e_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros()
    );
    let output = Command::new(bin("psql"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-d"])
        .arg(format!("{server}/postgres"))
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "CREATE DATABASE on {server} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(format!("{server}/{name}"))
}

/// Runs `sql` on `database_url` with `psql` and returns its unaligned, tuples-only output.
pub fn query(database_url: &str, sql: &str) -> Result<String> {
    let output = Command::new(bin("psql"))
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-A",
            "-t",
            "-q",
            "-d",
            database_url,
            "-c",
            sql,
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// A PostgreSQL binary.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("VIGIL_PG_BIN") {
        return Path::new(&dir).join(name);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, dir)| dir.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// A throwaway PostgreSQL on a free port, owned by one test: stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    /// `postgres://vigil@127.0.0.1:PORT` (user `vigil`, trust authentication).
    pub url: String,
}

impl Cluster {
    /// Initializes and starts a new cluster.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("vigil-pg-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if as_root() {
            run(
                "chown",
                &["-R", "postgres", &dir.path().display().to_string()],
            )?;
        }
        let data = dir.path().join("data");
        pg(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "vigil",
                "--no-sync",
            ],
        )?;
        let cluster = Self {
            url: format!("postgres://vigil@127.0.0.1:{port}"),
            dir,
            port,
        };
        cluster.start_again()?;
        Ok(cluster)
    }

    /// Starts the stopped cluster again on the same port and waits until it takes queries.
    pub fn start_again(&self) -> Result<()> {
        let dir = self.dir.path().display().to_string();
        let options = format!("-p {} -k {dir} -c listen_addresses=127.0.0.1", self.port);
        pg(
            "pg_ctl",
            &[
                "-D",
                &format!("{dir}/data"),
                "-o",
                &options,
                "-l",
                &format!("{dir}/log"),
                "-w",
                "start",
            ],
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while query(&format!("{}/postgres", self.url), "SELECT 1").is_err() {
            if Instant::now() > deadline {
                return Err("the cluster took no query within 20 s of starting".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the cluster (`fast`: open sessions are ended, as a restart would).
    pub fn stop(&self) -> Result<()> {
        let data = self.dir.path().join("data").display().to_string();
        pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL server command, as `postgres` when we are root.
fn pg(name: &str, args: &[&str]) -> Result<()> {
    let program = bin(name).display().to_string();
    if as_root() {
        let mut all = vec!["-u", "postgres", "--", program.as_str()];
        all.extend_from_slice(args);
        run("runuser", &all)
    } else {
        run(&program, args)
    }
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throwaway_cluster_stops_and_starts_again_on_its_port_with_its_data() -> Result<()> {
        let cluster = Cluster::start()?;
        let db = fresh_database(&cluster.url)?;
        query(&db, "CREATE TABLE t (x INT); INSERT INTO t VALUES (42)")?;
        cluster.stop()?;
        assert!(query(&db, "SELECT 1").is_err(), "stopped means unreachable");
        cluster.start_again()?;
        assert_eq!(query(&db, "SELECT x FROM t")?.trim(), "42");
        Ok(())
    }
}
