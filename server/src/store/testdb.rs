//! Fresh databases for tests, on either engine (unit, integration and end-to-end tests share it).
//!
//! PostgreSQL tests read [`POSTGRES_ENV`], a server URL like `postgres://vigil@127.0.0.1:5432`;
//! each test creates its own database there, so tests are isolated and run in parallel, and
//! the database is dropped when the test's [`TestDatabase`] is. Unset, a PostgreSQL test fails
//! saying so (`./dev.sh test` starts a throwaway cluster and sets it): never a silent skip.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::{Engine, Store, StoreError};

/// The variable naming the PostgreSQL server tests create their databases on.
pub const POSTGRES_ENV: &str = "VIGIL_TEST_POSTGRES";

/// Why a test database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    /// [`POSTGRES_ENV`] is not set.
    #[error(
        "{POSTGRES_ENV} is not set: set it to a PostgreSQL server URL such as \
         postgres://vigil@127.0.0.1:5432 (each test creates its own database there), \
         or run ./dev.sh test, which starts a throwaway cluster and sets it"
    )]
    Unset,
    /// The server refused or could not be reached.
    #[error("PostgreSQL at {0}: {1}")]
    Postgres(String, #[source] sqlx::Error),
    /// The store could not open the new database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A database made for one test: its URL, and for PostgreSQL the database dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    /// The engine.
    pub engine: Engine,
    /// What `--database-url` takes.
    pub url: String,
    /// PostgreSQL: the server URL (from [`POSTGRES_ENV`]) and the database's name.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A new, empty database: `sqlite::memory:` for SQLite (a new one per [`Store::connect`]),
    /// a freshly created database on [`POSTGRES_ENV`] for PostgreSQL.
    pub async fn new(engine: Engine) -> Result<Self, TestDbError> {
        match engine {
            Engine::Sqlite => Ok(Self {
                engine,
                url: "sqlite::memory:".into(),
                postgres: None,
            }),
            Engine::Postgres => {
                let server = std::env::var(POSTGRES_ENV)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or(TestDbError::Unset)?;
                let name = unique_name();
                admin(&server, &format!("CREATE DATABASE \"{name}\"")).await?;
                Ok(Self {
                    engine,
                    url: with_database(&server, &name),
                    postgres: Some((server, name)),
                })
            }
        }
    }

    /// A [`Store`] on it (migrated).
    pub async fn store(&self) -> Result<Store, TestDbError> {
        Ok(Store::connect(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    /// Drops a PostgreSQL database (ending connections still open to it). Runs on a thread of
    /// its own: a `Drop` cannot wait for a future on the test's runtime.
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(admin(
                    &server,
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ))
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            tracing::warn!(error = %e, "dropping a test database failed");
        }
    }
}

/// Runs `test` on a fresh, migrated store of `engine`, then drops the database. Panics (it is
/// a test) when the database cannot be made, with the reason.
pub async fn run_on<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = TestDatabase::new(engine)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", engine.name()));
    let store = db
        .store()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", engine.name()));
    test(store.clone()).await;
    store.close().await;
    drop(db);
}

/// A database name no other test (or test process) uses.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vigil_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `server` (a URL with or without a database) naming database `name` instead.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Runs one statement on `server`'s `postgres` database (or the one its URL names).
async fn admin(server: &str, sql: &str) -> Result<(), TestDbError> {
    let shown = crate::config::redact_url(server);
    let fail = |e| TestDbError::Postgres(shown.clone(), e);
    let mut options = PgConnectOptions::from_str(server).map_err(fail)?;
    if options.get_database().is_none() {
        options = options.database("postgres");
    }
    let mut conn = options.connect().await.map_err(fail)?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .map_err(fail)?;
    conn.close().await.map_err(fail)?;
    Ok(())
}

/// Writes store tests once and runs each on both engines: `name::sqlite` and `name::postgres`
/// (so a failure names its engine). Each gets a fresh, migrated [`Store`].
///
/// ```ignore
/// on_both_engines! {
///     async fn orders_round_trip(store: Store) { … }
/// }
/// ```
#[cfg(test)]
macro_rules! on_both_engines {
    () => {};
    ($(#[$meta:meta])* async fn $name:ident($store:ident: $sty:ty) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($store: $sty) $body

            #[tokio::test]
            async fn sqlite() {
                $crate::store::testdb::run_on($crate::store::Engine::Sqlite, run).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::store::testdb::run_on($crate::store::Engine::Postgres, run).await;
            }
        }
        $crate::store::testdb::on_both_engines!($($rest)*);
    };
}
#[cfg(test)]
pub(crate) use on_both_engines;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_replaces_the_servers() {
        for (server, url) in [
            (
                "postgres://vigil@127.0.0.1:5432",
                "postgres://vigil@127.0.0.1:5432/db",
            ),
            (
                "postgres://vigil@127.0.0.1:5432/",
                "postgres://vigil@127.0.0.1:5432/db",
            ),
            ("postgresql://u:p@h/postgres", "postgresql://u:p@h/db"),
            (
                "postgres://h/x?sslmode=disable",
                "postgres://h/db?sslmode=disable",
            ),
        ] {
            assert_eq!(with_database(server, "db"), url, "{server}");
        }
    }

    #[test]
    fn names_are_unique_and_plain() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
    }
}
