//! PostgreSQL connections for the hot paths (a login's credential read and session write, a
//! refresh's rotation, a sign-up), kept by the store instead of sqlx's pool. The pool pings
//! every connection it gets back (sqlx 0.8 has no setting to turn that off): a round trip to
//! the server per use, which wakes a server process and the service once more each time and
//! keeps the connection from serving anyone meanwhile. Here a connection whose work finished
//! ([`Lease::finish`]) goes straight back; one given back otherwise (an error, a request
//! dropped half-way) may have a reply or a transaction left open on it, so it is closed (the
//! server rolls back whatever it left open) and the next lease opens a new one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

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
    permits: Semaphore,
    connect: AnyConnectOptions,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

/// A leased connection. Call [`Lease::finish`] once what ran on it has finished; dropped
/// without it, the connection is closed.
pub(crate) struct Lease<'a> {
    conn: Option<(AnyConnection, Instant)>,
    lane: &'a Lane,
    _permit: SemaphorePermit<'a>,
}

impl Lane {
    pub(crate) fn new(connect: AnyConnectOptions, max: u32, acquire_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max.max(1) as usize),
            connect,
            acquire_timeout,
            closed: AtomicBool::new(false),
        }
    }

    /// A connection: an idle one (pinged first if it sat idle a while), or a new one. Waits
    /// at most the acquire timeout, for a free slot and for the connection both.
    pub(crate) async fn lease(&self) -> Result<Lease<'_>, StoreError> {
        match tokio::time::timeout(self.acquire_timeout, self.lease_unbounded()).await {
            Ok(leased) => leased,
            Err(_) => Err(map_err(sqlx::Error::PoolTimedOut)),
        }
    }

    async fn lease_unbounded(&self) -> Result<Lease<'_>, StoreError> {
        let permit = self
            .permits
            .acquire()
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
                lane: self,
                _permit: permit,
            });
        }
        let conn = AnyConnection::connect_with(&self.connect)
            .await
            .map_err(map_err)?;
        Ok(Lease {
            conn: Some((conn, Instant::now())),
            lane: self,
            _permit: permit,
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

impl Lease<'_> {
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
        let Some((conn, opened)) = self.conn.take() else {
            return;
        };
        if self.lane.closed.load(Ordering::Acquire) || opened.elapsed() >= MAX_LIFETIME {
            return;
        }
        self.lane
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle {
                conn,
                opened,
                since: Instant::now(),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn lane(max: u32) -> Lane {
        sqlx::any::install_default_drivers();
        let connect = AnyConnectOptions::from_str("sqlite::memory:").expect("options");
        Lane::new(connect, max, Duration::from_millis(200))
    }

    #[tokio::test]
    async fn finished_leases_are_reused_and_unfinished_ones_closed() {
        let lane = lane(2);
        let mut lease = lane.lease().await.expect("lease");
        sqlx::query("CREATE TEMP TABLE t (x INTEGER)")
            .execute(lease.conn())
            .await
            .expect("create");
        lease.finish();
        assert_eq!(lane.idle_count(), 1);
        // The same connection comes back: its temporary table is still there.
        let mut lease = lane.lease().await.expect("lease");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(lease.conn())
            .await
            .expect("same connection");
        // Given back without `finish`: closed, not kept.
        drop(lease);
        assert_eq!(lane.idle_count(), 0);
        let mut lease = lane.lease().await.expect("lease");
        assert!(
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(lease.conn())
                .await
                .is_err(),
            "a new connection has no temporary table"
        );
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
