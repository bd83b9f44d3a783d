//! The two engines behind [`super::Store`]: which one a URL names, how each is opened and
//! migrated, and the [`each!`] macro that compiles one query body for both.
//!
//! Queries are written once, with `$1, $2, …` placeholders (SQLite reads `$N` as the Nth
//! argument too) and `ON CONFLICT` upserts, which both engines run. Where the dialects really
//! differ the text comes from [`Engine`]'s methods here, so every per-engine word of SQL is in
//! this file or in `server/migrations/{sqlite,postgres}/`. One statement exists for PostgreSQL
//! alone: [`POSTGRES_INSERT_EVENTS`], the ingest hot path in one round trip.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;

/// SQLite's migrations (`server/migrations/sqlite/`).
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations (`server/migrations/postgres/`): the same versions, the same schema.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections PostgreSQL gets at most from one server (SQLite gets one: it serializes writers).
pub const POSTGRES_CONNECTIONS: u32 = 8;

/// How long a PostgreSQL query waits for a free connection before it fails (`503`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's ingest statement: a batch of events, then the issues and hours of those it
/// stored, in one statement (one round trip, committed on its own) where SQLite runs three
/// in a transaction (`events.rs`; SQLite has no `INSERT` inside `WITH`). The rows come as
/// arrays, so the text and its prepared plan are the same for every batch size.
///
/// Binds: `$1`–`$6` the columns (`project`, `event_id`, `fingerprint`, `level`, `title`,
/// `payload`; at most one row per `(project, event_id)`, in arrival order), `$7` the stored
/// time, `$8` its hour. Returns the `(project, event_id)` stored. Rows are written in key
/// order (events by id, issues and hours by fingerprint), so concurrent batches lock them in
/// one order and cannot deadlock; each issue takes the title, level and id of its last event
/// in arrival order.
pub const POSTGRES_INSERT_EVENTS: &str = "
WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS b(project, event_id, fingerprint, level, title, payload, arrival)
), stored AS (
    INSERT INTO events (project, event_id, fingerprint, level, title, payload, received_at)
    SELECT project, event_id, fingerprint, level, title, payload, $7 FROM batch
    ORDER BY project, event_id
    ON CONFLICT (project, event_id) DO NOTHING
    RETURNING project, event_id
), tally AS (
    SELECT b.project, b.fingerprint, count(*) AS n,
        (array_agg(b.title ORDER BY b.arrival DESC))[1] AS title,
        (array_agg(b.level ORDER BY b.arrival DESC))[1] AS level,
        (array_agg(b.event_id ORDER BY b.arrival DESC))[1] AS last_event_id
    FROM stored JOIN batch b USING (project, event_id)
    GROUP BY b.project, b.fingerprint
), issues_counted AS (
    INSERT INTO issues (project, fingerprint, title, level, count, first_seen, last_seen, last_event_id)
    SELECT project, fingerprint, title, level, n, $7, $7, last_event_id FROM tally
    ORDER BY project, fingerprint
    ON CONFLICT (project, fingerprint) DO UPDATE SET
        count = issues.count + excluded.count,
        title = excluded.title,
        level = excluded.level,
        last_seen = excluded.last_seen,
        last_event_id = excluded.last_event_id
), hours_counted AS (
    INSERT INTO issue_hours (project, fingerprint, hour, count)
    SELECT project, fingerprint, $8, n FROM tally
    ORDER BY project, fingerprint
    ON CONFLICT (project, fingerprint, hour) DO UPDATE SET
        count = issue_hours.count + excluded.count
)
SELECT project, event_id FROM stored";

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://PATH`, `sqlite::memory:`.
    Sqlite,
    /// `postgres://…`, `postgresql://…`.
    Postgres,
}

impl Engine {
    /// The engine `url` names, from its scheme; `None` for anything else (never a guess).
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// Its name in messages and test names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The smaller of two numbers, either of which may be NULL (NULL only when both are).
    pub fn least_present(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("MIN(COALESCE({a}, {b}), COALESCE({b}, {a}))"),
            // LEAST ignores NULLs.
            Self::Postgres => format!("LEAST({a}, {b})"),
        }
    }

    /// The smaller of two non-NULL numbers.
    pub fn least(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("MIN({a}, {b})"),
            Self::Postgres => format!("LEAST({a}, {b})"),
        }
    }

    /// The larger of two non-NULL numbers.
    pub fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("MAX({a}, {b})"),
            Self::Postgres => format!("GREATEST({a}, {b})"),
        }
    }
}

/// One value per engine: the pool, a transaction.
#[derive(Debug, Clone)]
pub enum Db<S, P> {
    /// SQLite's.
    Sqlite(S),
    /// PostgreSQL's.
    Postgres(P),
}

/// The connection pool of the engine in use.
pub type Pool = Db<SqlitePool, PgPool>;

/// A transaction on it.
pub type Tx = Db<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>;

/// Runs `$body` with `$x` bound to the engine's value inside a [`Db`] (a pool, a transaction):
/// the body is written once and compiled once per engine, each with its own sqlx types. With a
/// second name, `|x, DB|`, `DB` is the engine's `sqlx::Database` type inside the body.
macro_rules! each {
    ($db:expr, |$x:ident $(, $t:ident)?| $body:expr) => {
        match $db {
            $crate::store::engine::Db::Sqlite($x) => {
                $(type $t = ::sqlx::Sqlite;)?
                $body
            }
            $crate::store::engine::Db::Postgres($x) => {
                $(type $t = ::sqlx::Postgres;)?
                $body
            }
        }
    };
}
pub(crate) use each;

impl<S, P> Db<S, P> {
    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }
}

impl Pool {
    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(p) => Db::Sqlite(p.begin().await?),
            Db::Postgres(p) => Db::Postgres(p.begin().await?),
        })
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        each!(self, |p| p.close().await)
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        each!(self, |t| t.commit().await)
    }
}

/// Opens the database `url` names (of `engine`) and applies its migrations.
pub async fn open(engine: Engine, url: &str) -> Result<Pool, StoreError> {
    match engine {
        Engine::Sqlite => {
            let pool = sqlite(url).await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Ok(Db::Sqlite(pool))
        }
        Engine::Postgres => {
            let pool = postgres(url).await?;
            // sqlx holds an advisory lock while it migrates: instances starting together
            // apply each migration once.
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Ok(Db::Postgres(pool))
        }
    }
}

/// `sqlite://path/to/file.db` creates the parent folder; `sqlite::memory:` keeps one
/// connection so that every query sees the same database.
async fn sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let in_memory = url.contains(":memory:");
    if !in_memory {
        if let Some(dir) = Path::new(options.get_filename()).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Folder(dir.to_path_buf(), e))?;
            }
        }
    }
    // One connection: SQLite serializes writers anyway, and a pool of writers waits in
    // SQLite's sleep-based busy handler, which measured worse at p99 and max (ingest bench).
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        // In-process: a ping before each use would only be another trip to its thread.
        .test_before_acquire(false)
        .min_connections(if in_memory { 1 } else { 0 })
        .idle_timeout(if in_memory {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if in_memory {
            None
        } else {
            Some(Duration::from_secs(3600))
        })
        .connect_with(options)
        .await?)
}

/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`: the database must exist.
async fn postgres(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("vigil-server");
    Ok(PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        // No ping before each use: it is a round trip per query (per ingest batch). A
        // connection that died fails its query, answered 503 (`StoreError::is_unavailable`),
        // and sqlx's ping when it is released closes it.
        .test_before_acquire(false)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Some(Duration::from_secs(600)))
        .max_lifetime(Some(Duration::from_secs(3600)))
        .connect_with(options)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_names_the_engine() {
        assert_eq!(Engine::of("sqlite://data/vigil.db"), Some(Engine::Sqlite));
        assert_eq!(Engine::of("sqlite::memory:"), Some(Engine::Sqlite));
        assert_eq!(Engine::of("postgres://u:p@h/db"), Some(Engine::Postgres));
        assert_eq!(Engine::of("postgresql://h:5433/db"), Some(Engine::Postgres));
        for url in [
            "data/vigil.db",
            "mysql://x",
            "postgres:/x",
            "",
            "POSTGRES://h/db",
        ] {
            assert_eq!(Engine::of(url), None, "{url}");
        }
    }

    /// The SQLite migrations are the ones databases in the field recorded: sqlx refuses to open
    /// a database whose applied migration's SHA-384 differs (`VersionMismatch`), so moving
    /// them into `migrations/sqlite/` must not change a byte. Frozen from the files as they
    /// were in `server/migrations/` before the move.
    #[test]
    fn sqlite_migrations_are_unchanged() {
        let frozen = [
            (1, "44b9322ff780ff93be8272197b1d05e0f816d1d250bc105be9f97898ef75ffafe40b6184cf4f6baf8a2ffe4bf257edbc"),
            (2, "a9c3422cc3111510d442f5cebce896f678b4205e671a6d4deb58631245d9f803bf009d449967826af8843a2d2a34a421"),
            (3, "3a03a3487e9c029fee6939c3ef0cb206aed3517e15b952fb1d666f6b978d7ca2b55d57be139d5ec2779d1219f04cbed9"),
            (4, "bc721f3e1b24d6834de271a67bc33905941280552f9564ffec6829ba58548a5b1bd5ecdc7c25d47560c38d5d05c9686f"),
            (5, "5d2b9c34bf963f94b456e77a079517e9de698f76e236bb763724382274c6f74ccd9b0e7c71c7f1de4a2d82137938c737"),
            (6, "9ba59cc0fc1882e62bca2d7e65bce53570a042fadb1f4a9395881fbe2bd6c28904f30e2c4ee17cd1691ac89a2333c82c"),
            (7, "cb22d8a770eaffaaa16d776932c6721b76af7b893eadd6699dc2607d6145f8ea0f1fcdc2ad53f67112cf3b905239749c"),
        ];
        for (version, hex) in frozen {
            let m = SQLITE_MIGRATIONS
                .iter()
                .find(|m| m.version == version)
                .unwrap_or_else(|| panic!("migration {version} is missing"));
            let got: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, hex, "sqlite migration {version} changed");
        }
    }

    /// Both folders hold the same versions with the same names.
    #[test]
    fn both_engines_have_the_same_migrations() {
        let names = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS));
    }
}
