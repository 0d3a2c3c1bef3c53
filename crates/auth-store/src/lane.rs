//! PostgreSQL connections for the hot paths (a login's credential read and session write, a
//! refresh's rotation, a sign-up), kept by the store instead of sqlx's pool. The pool pings
//! every connection it gets back (sqlx 0.8 has no setting to turn that off): a round trip to
//! the server per use, which wakes a server process and the service once more each time and
//! keeps the connection from serving anyone meanwhile. Here a connection whose work finished
//! ([`Lease::finish`]) goes straight back; one given back otherwise (an error, a request
//! dropped half-way) may have a reply or a rollback still to exchange, so it gets what the
//! pool gives every connection: a ping, on a task of its own, which flushes and reads them,
//! and it is kept only if that succeeds (closing it has the server roll back whatever it left
//! open).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::map_connect_err;
use crate::map_err;
use auth_core::StoreError;

/// A connection idle for this long is pinged before it is leased (the server may have dropped
/// it meanwhile: a restart, a failover, an idle timeout), as HikariCP does.
pub(crate) const PING_WHEN_IDLE_FOR: Duration = Duration::from_millis(500);

/// A connection this old is closed rather than kept, so connections are renewed over time (a
/// failover, a changed DNS name), as pools do by default.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

struct Idle {
    conn: AnyConnection,
    opened: Instant,
    since: Instant,
}

/// At most `max` connections, opened on demand and reused last-in first-out.
pub(crate) struct Lane {
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    connect: AnyConnectOptions,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

/// A leased connection. Call [`Lease::finish`] once what ran on it has finished; dropped
/// without it, the connection is pinged before it is kept (its slot stays taken meanwhile).
pub(crate) struct Lease {
    conn: Option<(AnyConnection, Instant)>,
    lane: Arc<Lane>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Lane {
    pub(crate) fn new(connect: AnyConnectOptions, max: u32, acquire_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max.max(1) as usize)),
            connect,
            acquire_timeout,
            closed: AtomicBool::new(false),
        }
    }

    /// A connection: an idle one (pinged first if it sat idle a while), or a new one. Waits
    /// at most the acquire timeout, for a free slot and for the connection both.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, StoreError> {
        match tokio::time::timeout(self.acquire_timeout, self.lease_unbounded()).await {
            Ok(leased) => leased,
            Err(_) => Err(map_err(sqlx::Error::PoolTimedOut)),
        }
    }

    async fn lease_unbounded(self: &Arc<Self>) -> Result<Lease, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| map_err(sqlx::Error::PoolClosed))?;
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(mut idle) = idle else { break };
            if idle.since.elapsed() >= PING_WHEN_IDLE_FOR && idle.conn.ping().await.is_err() {
                // Gone while idle: try the next, or open a new one.
                continue;
            }
            return Ok(Lease {
                conn: Some((idle.conn, idle.opened)),
                lane: self.clone(),
                permit: Some(permit),
            });
        }
        // Whatever stops a connection from opening, the database cannot serve now.
        let conn = AnyConnection::connect_with(&self.connect)
            .await
            .map_err(map_connect_err)?;
        Ok(Lease {
            conn: Some((conn, Instant::now())),
            lane: self.clone(),
            permit: Some(permit),
        })
    }

    /// Refuses new leases, closes the idle connections; leased ones are closed when given
    /// back.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for idle in idle {
            let _ = idle.conn.close().await;
        }
    }

    /// Idle connections (for tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Lane {
    /// Keeps a connection for the next lease, unless the lane is closed or the connection old.
    fn keep(&self, conn: AnyConnection, opened: Instant) {
        if self.closed.load(Ordering::Acquire) || opened.elapsed() >= MAX_LIFETIME {
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle {
                conn,
                opened,
                since: Instant::now(),
            });
    }
}

impl Lease {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match self.conn.as_mut() {
            Some((conn, _)) => conn,
            // Only `finish` (which consumes the lease) and `drop` take the connection.
            None => unreachable!("a lease holds its connection until it ends"),
        }
    }

    /// Gives the connection back for the next lease, without a round trip: what ran on it
    /// finished, so nothing is left open on it.
    pub(crate) fn finish(mut self) {
        if let Some((conn, opened)) = self.conn.take() {
            self.lane.keep(conn, opened);
        }
    }
}

impl Drop for Lease {
    /// Given back unfinished: pinged on a task of its own (which sends a rollback sqlx queued
    /// and reads whatever reply was left), holding its slot until then, and kept only if the
    /// ping succeeds within the acquire timeout; closed otherwise.
    fn drop(&mut self) {
        let Some((mut conn, opened)) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let lane = self.lane.clone();
        let permit = self.permit.take();
        runtime.spawn(async move {
            let pinged = tokio::time::timeout(lane.acquire_timeout, conn.ping()).await;
            if matches!(pinged, Ok(Ok(()))) {
                lane.keep(conn, opened);
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn lane(max: u32) -> Arc<Lane> {
        sqlx::any::install_default_drivers();
        let connect = AnyConnectOptions::from_str("sqlite::memory:").expect("options");
        Arc::new(Lane::new(connect, max, Duration::from_millis(200)))
    }

    /// Waits until the lane keeps `n` idle connections (a lease dropped unfinished is pinged
    /// on a task of its own).
    async fn idle_becomes(lane: &Lane, n: usize) {
        for _ in 0..200 {
            if lane.idle_count() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "the lane keeps {} idle connections, not {n}",
            lane.idle_count()
        );
    }

    async fn count(lease: &mut Lease) -> i64 {
        sqlx::query_scalar::<sqlx::Any, i64>("SELECT count(*) FROM t")
            .fetch_one(lease.conn())
            .await
            .expect("same connection")
    }

    #[tokio::test]
    async fn finished_leases_are_reused_and_unfinished_ones_rolled_back_first() {
        let lane = lane(1);
        let mut lease = lane.lease().await.expect("lease");
        sqlx::query("CREATE TEMP TABLE t (x INTEGER)")
            .execute(lease.conn())
            .await
            .expect("create");
        lease.finish();
        assert_eq!(lane.idle_count(), 1);
        // The same connection comes back: its temporary table is still there.
        let mut lease = lane.lease().await.expect("lease");
        assert_eq!(count(&mut lease).await, 0);
        // Given back in the middle of a transaction, as a request dropped half-way would: the
        // transaction is rolled back before the connection serves again.
        {
            let mut tx = lease.conn().begin().await.expect("begin");
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
            // Dropped without a commit, as a request cut off mid-transaction is.
            drop(tx);
        }
        drop(lease);
        idle_becomes(&lane, 1).await;
        let mut lease = lane.lease().await.expect("the slot is free again");
        assert_eq!(
            count(&mut lease).await,
            0,
            "what it left open was rolled back"
        );
        lease.finish();
    }

    #[tokio::test]
    async fn leases_wait_for_a_free_slot_and_time_out() {
        let lane = lane(1);
        let held = lane.lease().await.expect("lease");
        let waited = lane.lease().await;
        assert!(
            matches!(waited, Err(StoreError::Unavailable(_))),
            "{:?}",
            waited.err()
        );
        held.finish();
        lane.lease().await.expect("the slot is free again").finish();
    }

    /// Whatever stops a connection from opening (here a SQLite file that cannot be opened; on
    /// PostgreSQL a database that does not accept connections, see the server's outage
    /// tests), the lease fails as unavailable.
    #[tokio::test]
    async fn a_connection_that_cannot_be_opened_is_unavailable() {
        sqlx::any::install_default_drivers();
        let url = format!(
            "sqlite://{}/missing-{}/auth.db?mode=rw",
            std::env::temp_dir().display(),
            uuid::Uuid::now_v7().simple()
        );
        let connect = AnyConnectOptions::from_str(&url).expect("options");
        let lane = Arc::new(Lane::new(connect, 1, Duration::from_millis(200)));
        let Err(refused) = lane.lease().await else {
            panic!("{url} was opened");
        };
        assert!(matches!(refused, StoreError::Unavailable(_)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_closed_lane_refuses_leases_and_keeps_nothing() {
        let lane = lane(2);
        let held = lane.lease().await.expect("lease");
        lane.lease().await.expect("lease").finish();
        lane.close().await;
        assert_eq!(lane.idle_count(), 0);
        assert!(matches!(
            lane.lease().await,
            Err(StoreError::Unavailable(_))
        ));
        held.finish();
        assert_eq!(
            lane.idle_count(),
            0,
            "a lease ended after close is not kept"
        );
    }
}
