//! Several instances on one PostgreSQL (server-api.md, "Running more than one instance").
//!
//! - [`notice`] (pure): the `NOTIFY` payload announcing an order (inline, or by id past the
//!   8,000-byte limit), naming the instance that stored it.
//! - [`feed`] (pure): which orders this instance hands to its hub, each once; the catch-up after
//!   the listener lost its connection.
//! - [`backoff`] (pure): the listener's reconnect waits.
//! - [`keys`] (pure): the rules of the voice keys every instance shares (SQL in
//!   `store::cluster`).
//!
//! [`Cluster`] is the shell: its own small pool (one connection for the listener, a few for
//! `NOTIFY` and voice keys), and one listener task that feeds the local hub with what the other
//! instances stored. A broadcast is delivered to this instance's subscribers by the handler that
//! stored it, and to the others' through `LISTEN`/`NOTIFY`; an instance skips its own notices.
//!
//! The listener reconnects with [`backoff`] (sqlx's `PgListener` would reconnect by itself, but
//! silently: notifications sent while it was down are lost without a sign, and PostgreSQL keeps
//! none for a session that is not listening). Here every loss is seen: [`Cluster::listening`] is
//! false until the listener is back (so `/healthz` says not ready), and after the reconnect the
//! orders stored meanwhile are read from the table and delivered ([`feed::Feed::catch_up`]).
//!
//! Bounds: the feed remembers at most [`feed::WINDOW`] ids; a catch-up reads at most [`CATCH_UP`]
//! orders and a fetch by id at most [`FETCH_WINDOW`]. sqlx buffers the notifications that arrive
//! while the task is busy in an unbounded channel of its own; the task does nothing between two
//! receives but decode, at most one table read, and a non-blocking hub broadcast, and each
//! notice is at most 8,000 bytes, so that buffer stays as small as the rate of orders allows.
//! A cluster has one PostgreSQL session per instance for listening (`application_name`
//! `vigil-listener-<instance>`), plus up to 4 for `NOTIFY` and voice keys, besides the store's 8.

pub mod backoff;
pub mod feed;
pub mod keys;
pub mod notice;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_protocol::orders::{self, Order};

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{self, Store, StoreError};
use crate::voice::keys::{Full, KeyError};
use backoff::Backoff;
use feed::{Action, Feed};

/// How long a request may wait for one of the cluster pool's connections before it fails (`503`)
/// instead of hanging while the database is unreachable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The newest orders read after a reconnect to find the ones missed meanwhile.
pub const CATCH_UP: u32 = 100;

/// The newest orders searched for an order announced by id.
pub const FETCH_WINDOW: u32 = 32;

/// Connections of the cluster pool for `NOTIFY` and voice keys (the listener has its own).
const POOL_SIZE: u32 = 4;

/// This instance's part in a cluster, cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    instance: String,
    pool: PgPool,
    listener_pool: PgPool,
    feed: Mutex<Feed>,
    listening: AtomicBool,
    metrics: Metrics,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Cluster {
    /// Joins the cluster on the PostgreSQL at `url` (the same database as the store): opens its
    /// pools lazily (the first query connects) with a fresh instance id. Starts nothing yet.
    pub fn new(url: &str, metrics: Metrics) -> Result<Self, StoreError> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        // The listener holds its one connection for as long as it lives.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            // Named, so an operator sees which instance's listener a session is.
            .connect_lazy_with(options.application_name(&listener_name(&instance)));
        Ok(Self {
            inner: Arc::new(Inner {
                feed: Mutex::new(Feed::new(&instance)),
                instance,
                pool,
                listener_pool,
                listening: AtomicBool::new(false),
                metrics,
                task: Mutex::new(None),
            }),
        })
    }

    /// This instance's id (in every notice it sends).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Whether the listener is connected and listening (after its catch-up).
    pub fn listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// What the feed counted.
    pub fn counts(&self) -> feed::Counts {
        lock(&self.inner.feed).counts()
    }

    /// Starts the listener task: it delivers the other instances' orders to `hub` until
    /// `shutdown` is cancelled. Waits (at most `wait`) for the first `LISTEN` to be in place, so
    /// a server that says it is listening on HTTP misses no broadcast; past `wait` the task keeps
    /// trying in the background.
    pub async fn start(&self, store: Store, hub: Hub, shutdown: CancellationToken, wait: Duration) {
        let task = tokio::spawn(listen(self.inner.clone(), store, hub, shutdown));
        *lock(&self.inner.task) = Some(task);
        let deadline = tokio::time::Instant::now() + wait;
        while !self.listening() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the listener task to end (after the shutdown token was cancelled) and closes the
    /// pools.
    pub async fn stop(&self) {
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.pool.close().await;
        self.inner.listener_pool.close().await;
    }

    /// Tells the other instances about `order`, which this instance stored and delivered to its
    /// own subscribers. The order is committed either way: a failed `NOTIFY` is logged and counted
    /// (`vigil_cluster_orders_total{outcome="publish_failed"}`), not the caller's error.
    pub async fn publish(&self, order: &Order) {
        lock(&self.inner.feed).local(order.id);
        let payload = notice::encode(&self.inner.instance, order);
        if let Err(e) =
            store::cluster::notify(&self.inner.pool, notice::ORDERS_CHANNEL, &payload).await
        {
            tracing::warn!(error = ?e, order = order.id, "announcing an order to the other instances failed");
            self.count("publish_failed", 1);
        }
    }

    /// Stores a new voice key (its hash) valid for `ttl`, unless `cap` live keys are out.
    /// Returns the expiry (ms since the epoch) or [`Full`]; expired keys purged on the way are
    /// counted in `vigil_voice_keys_dropped_total{reason="expired"}`.
    pub async fn mint_key(
        &self,
        key: &str,
        ttl: Duration,
        cap: usize,
    ) -> Result<Result<i64, Full>, StoreError> {
        let minted = store::cluster::mint_key(&self.inner.pool, &keys::hash(key), ttl, cap).await?;
        self.count_expired(minted.purged);
        Ok(minted.stored)
    }

    /// Spends `key` for whichever instance asks first; a second try anywhere is refused.
    pub async fn redeem_key(&self, key: &str) -> Result<Result<(), KeyError>, StoreError> {
        let verdict =
            store::cluster::redeem_key(&self.inner.pool, &keys::hash(key), store::now_ms()).await?;
        if verdict == Err(KeyError::Expired) {
            self.count_expired(1);
        }
        Ok(verdict)
    }

    /// Unspent keys in the shared table.
    pub async fn key_count(&self) -> Result<i64, StoreError> {
        store::cluster::key_count(&self.inner.pool).await
    }

    fn count_expired(&self, n: u64) {
        self.inner
            .metrics
            .voice_keys_dropped
            .with_label_values(&["expired"])
            .inc_by(n);
    }

    fn count(&self, outcome: &str, n: u64) {
        count(&self.inner, outcome, n);
    }
}

fn count(inner: &Inner, outcome: &str, n: u64) {
    if n > 0 {
        inner
            .metrics
            .cluster_orders
            .with_label_values(&[outcome])
            .inc_by(n);
    }
}

/// Runs `f` on the feed and adds what it counted to `vigil_cluster_orders_total{outcome}`.
fn step<R>(inner: &Inner, f: impl FnOnce(&mut Feed) -> R) -> R {
    let (result, before, after) = {
        let mut feed = lock(&inner.feed);
        let before = feed.counts();
        let result = f(&mut feed);
        (result, before, feed.counts())
    };
    for (outcome, b, a) in [
        ("delivered", before.delivered, after.delivered),
        ("own", before.own, after.own),
        ("duplicate", before.duplicate, after.duplicate),
        ("malformed", before.malformed, after.malformed),
        ("caught_up", before.caught_up, after.caught_up),
        ("missing", before.missing, after.missing),
    ] {
        count(inner, outcome, a - b);
    }
    result
}

fn set_listening(inner: &Inner, up: bool) {
    inner.listening.store(up, Ordering::Release);
    inner.metrics.cluster_listening.set(i64::from(up));
}

/// The listener task: connect and `LISTEN`, catch up after a loss, deliver notices; on any loss
/// wait with backoff and start again. Ends when `shutdown` is cancelled.
async fn listen(inner: Arc<Inner>, store: Store, hub: Hub, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut connected_before = false;
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = session(&inner, &store, &hub, &mut backoff, &mut connected_before) => outcome,
        };
        set_listening(&inner, false);
        lock(&inner.feed).lost();
        let wait = backoff.next(random());
        tracing::warn!(error = %outcome, ?wait, attempt = backoff.attempts(), "cluster listener disconnected; reconnecting");
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    set_listening(&inner, false);
}

/// One connection's life: returns why it ended.
async fn session(
    inner: &Inner,
    store: &Store,
    hub: &Hub,
    backoff: &mut Backoff,
    connected_before: &mut bool,
) -> String {
    let mut listener = match PgListener::connect_with(&inner.listener_pool).await {
        Ok(l) => l,
        Err(e) => return format!("connect: {e}"),
    };
    // Reconnects are ours (with backoff, seen), not sqlx's (silent).
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen(notice::ORDERS_CHANNEL).await {
        return format!("LISTEN: {e}");
    }
    if *connected_before {
        inner.metrics.cluster_reconnects.inc();
    }
    *connected_before = true;
    // LISTEN is in place: anything committed from now on arrives as a notice, so the table read
    // next sees everything missed before.
    if lock(&inner.feed).needs_catch_up() {
        match store.recent_orders(CATCH_UP).await {
            Ok(recent) => {
                let due = step(inner, |feed| feed.catch_up(recent));
                for order in &due {
                    hub.broadcast(orders::TOPIC, orders::CREATED, order);
                }
            }
            Err(e) => return format!("catch-up read: {e}"),
        }
    }
    backoff.reset();
    set_listening(inner, true);
    loop {
        let notification = match listener.try_recv().await {
            Ok(Some(n)) => n,
            Ok(None) => return "connection lost".into(),
            Err(e) => return format!("receive: {e}"),
        };
        let action = step(inner, |feed| feed.notice(notification.payload()));
        let order = match action {
            Action::Deliver(order) => Some(order),
            Action::Fetch(id) => {
                let found = match store.recent_orders(FETCH_WINDOW).await {
                    Ok(recent) => recent.into_iter().find(|o| o.id == id),
                    Err(e) => {
                        tracing::warn!(error = ?e, order = id, "reading an announced order failed");
                        None
                    }
                };
                step(inner, |feed| feed.fetched(id, found))
            }
            Action::Skip => None,
        };
        if let Some(order) = order {
            hub.broadcast(orders::TOPIC, orders::CREATED, &order);
        }
    }
}

/// The `application_name` of an instance's listening session.
pub fn listener_name(instance: &str) -> String {
    format!("vigil-listener-{instance}")
}

fn random() -> u32 {
    // The low bits of a v4 UUID come from the OS generator.
    uuid::Uuid::new_v4().as_u128() as u32
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update of the feed is one call: it stays consistent across a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
