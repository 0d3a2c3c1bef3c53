//! The unit of work: a write runs as a closure on a [`StoreTx`], a transaction the store owns.
//! The store begins it (when the closure first needs an answer from the database), commits
//! it with what was recorded on it (audit events), rolls it back when the closure fails, maps
//! errors, and gives the connection back. Writes that read nothing back wait for the commit:
//! a unit of work made only of those (a login's session and audit event) is written as one
//! statement on PostgreSQL and in one call to SQLite's writer thread.

use auth_core::StoreError;
use auth_core::audit::AuditEvent;
use auth_core::events::{DomainEvent, OutgoingMail};
use auth_core::repo::{BoxFuture, Record, Records, Transaction, UnitOfWork};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Database, TransactionManager};

use crate::Store;
use crate::audit::{audit_insert, log_committed, new_audit_id};
use crate::connect::Writer;
use crate::dialect::{self, Stmt};
use crate::outbox::{event_insert, mail_insert};

type Manager = <Any as Database>::TransactionManager;

/// A write transaction of the store (see the module documentation).
pub struct StoreTx {
    store: Store,
    /// The connection, once the transaction has begun on it.
    open: Option<Writer>,
    /// Writes that read nothing back, run at commit in order.
    deferred: Vec<Stmt>,
    records: Records,
    /// The audit events being written at commit, with their ids, logged once it succeeds.
    committing: Vec<(String, AuditEvent)>,
    /// Whether the commit writes events / mails to the outbox (their relays are woken).
    wrote_events: bool,
    wrote_mail: bool,
}

impl Record for StoreTx {
    fn audit(&mut self, event: AuditEvent) {
        self.records.audit(event);
    }

    fn event(&mut self, event: DomainEvent) {
        self.records.event(event);
    }

    fn mail(&mut self, mail: OutgoingMail) {
        self.records.mail(mail);
    }
}

impl Transaction for StoreTx {}

impl StoreTx {
    pub(crate) fn backend(&self) -> dialect::Backend {
        self.store.backend()
    }

    /// The transaction's connection, beginning the transaction first if it has not begun.
    async fn conn(&mut self) -> Result<&mut AnyConnection, StoreError> {
        if self.open.is_none() {
            let mut writer = self.store.writer().await?;
            let begin = writer.begin_statement();
            if let Err(e) = Manager::begin(writer.conn(), Some(begin.into())).await {
                // Dropped unfinished: a PostgreSQL connection is pinged before it serves
                // again (it may be the reason BEGIN failed); SQLite's is renewed if broken.
                return Err(self.store.write_err(e));
            }
            self.open = Some(writer);
        }
        match self.open.as_mut() {
            Some(writer) => Ok(writer.conn()),
            None => Err(StoreError::Other(
                "the transaction has no connection".into(),
            )),
        }
    }

    /// Runs a statement now; the number of rows it changed.
    pub(crate) async fn execute(&mut self, stmt: Stmt) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let done = stmt.query().execute(conn).await;
        done.map(|d| d.rows_affected())
            .map_err(|e| self.store.write_err(e))
    }

    /// Runs a statement now; the rows it returned.
    pub(crate) async fn fetch_all(&mut self, stmt: Stmt) -> Result<Vec<AnyRow>, StoreError> {
        let conn = self.conn().await?;
        let rows = stmt.query().fetch_all(conn).await;
        rows.map_err(|e| self.store.write_err(e))
    }

    /// Runs an insert at commit, with the other deferred ones. Only inserts that do not
    /// depend on each other's rows may be deferred: without a transaction begun, PostgreSQL
    /// runs them as parts of one statement, which all see the same snapshot.
    pub(crate) fn defer_insert(&mut self, stmt: Stmt) {
        debug_assert!(stmt.sql.trim_start().starts_with("INSERT"), "{}", stmt.sql);
        self.deferred.push(stmt);
    }

    /// What is left to write at commit: the deferred writes, then the records.
    fn pending(&mut self) -> Vec<Stmt> {
        let backend = self.backend();
        let mut pending = std::mem::take(&mut self.deferred);
        self.committing = self
            .records
            .take_audit_events()
            .into_iter()
            .map(|event| (new_audit_id(), event))
            .collect();
        pending.extend(
            self.committing
                .iter()
                .map(|(id, event)| audit_insert(backend, id, event)),
        );
        let events = self.records.take_events();
        self.wrote_events = !events.is_empty();
        pending.extend(events.iter().map(|e| event_insert(backend, e)));
        let mails = self.records.take_mails();
        self.wrote_mail = !mails.is_empty();
        let seal = &self.store.outbox.seal;
        pending.extend(mails.iter().map(|m| mail_insert(backend, m, seal)));
        pending
    }

    /// The audit events of a committed transaction go to the log; the relays of what it
    /// wrote to the outbox are woken.
    fn committed(&mut self) {
        log_committed(self.committing.iter().map(|(id, e)| (id, e)));
        self.committing.clear();
        if std::mem::take(&mut self.wrote_events) {
            self.store.outbox.events_ready.notify_one();
        }
        if std::mem::take(&mut self.wrote_mail) {
            self.store.outbox.mail_ready.notify_one();
        }
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        let pending = self.pending();
        if self.open.is_none() {
            self.store.write_in_one_call(pending).await?;
            self.committed();
            return Ok(());
        }
        for stmt in pending {
            if let Err(e) = self.execute(stmt).await {
                self.rollback().await;
                return Err(e);
            }
        }
        // The connection stays in `open` while the commit is under way, so a commit cut off
        // midway (its task dropped) is rolled back by `drop` like any open transaction.
        let committed = match self.open.as_mut() {
            Some(writer) => Manager::commit(writer.conn()).await,
            None => return Ok(()),
        };
        match committed {
            Ok(()) => {
                if let Some(writer) = self.open.take() {
                    writer.finish();
                }
                self.committed();
                Ok(())
            }
            Err(e) => {
                let e = self.store.write_err(e);
                self.rollback().await;
                Err(e)
            }
        }
    }

    /// Rolls back the open transaction, if any, and gives the connection back; one that
    /// cannot roll back is renewed (SQLite) or dropped unfinished, to be pinged (PostgreSQL).
    /// Like the commit, it keeps the connection in `open` while it runs.
    async fn rollback(mut self) {
        let Some(writer) = self.open.as_mut() else {
            return;
        };
        let rolled_back = Manager::rollback(writer.conn()).await;
        let Some(writer) = self.open.take() else {
            return;
        };
        match rolled_back {
            Ok(()) => writer.finish(),
            Err(e) => {
                tracing::warn!(error = %e, "rollback failed; the connection is replaced");
                self.store.renew_writer();
            }
        }
    }
}

impl Drop for StoreTx {
    /// Dropped with its transaction open (its request was dropped midway): the rollback is
    /// queued on the connection, which is renewed (SQLite) or pinged, flushing the rollback,
    /// before it serves again (PostgreSQL: the lane does so for a connection given back
    /// unfinished).
    fn drop(&mut self) {
        if let Some(mut writer) = self.open.take() {
            Manager::start_rollback(writer.conn());
            if matches!(writer, Writer::Sqlite(_)) {
                self.store.renew_writer();
            }
        }
    }
}

impl UnitOfWork for Store {
    type Tx = StoreTx;

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'t> FnOnce(&'t mut StoreTx) -> BoxFuture<'t, Result<T, StoreError>> + Send,
    {
        let mut tx = StoreTx {
            store: self.clone(),
            open: None,
            deferred: Vec::new(),
            records: Records::default(),
            committing: Vec::new(),
            wrote_events: false,
            wrote_mail: false,
        };
        match work(&mut tx).await {
            Ok(out) => {
                tx.commit().await?;
                Ok(out)
            }
            Err(e) => {
                tx.rollback().await;
                Err(e)
            }
        }
    }
}

impl Store {
    /// Writes that read nothing back, as one transaction in one round trip: one statement on
    /// PostgreSQL, one call to the writer thread on SQLite ([`dialect::one_call`]).
    pub(crate) async fn write_in_one_call(&self, statements: Vec<Stmt>) -> Result<(), StoreError> {
        if statements.is_empty() {
            return Ok(());
        }
        let backend = self.backend();
        let parts: Vec<&'static str> = statements.iter().map(|s| s.sql).collect();
        let sql = dialect::composed(backend, &parts);
        let stmt = Stmt::new(sql).extend(statements.into_iter().flat_map(|s| s.args));
        match backend {
            dialect::Backend::Postgres => {
                let mut writer = self.writer().await?;
                let done = stmt.query().execute(writer.conn()).await;
                done.map_err(|e| self.write_err(e))?;
                writer.finish();
            }
            dialect::Backend::Sqlite => {
                self.sqlite_write_in_one_call(stmt.query()).await?;
            }
        }
        Ok(())
    }
}
