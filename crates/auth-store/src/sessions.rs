//! Sessions and their refresh tokens (by hash): the session writes of a unit of work, the
//! reads, and the rotation of a refresh, the hot write that has a statement of its own.

use auth_core::StoreError;
use auth_core::domain::{SessionId, TenantId, User, UserId};
use auth_core::repo::{
    BoxFuture, Records, RefreshRotation, Rotation, RotationOutcome, SessionReads, SessionWrites,
};
use auth_core::session::{ClientInfo, RefreshRecord, RevokeReason, Session};
use sqlx::{Any, AnyConnection, FromRow, Row};
use tracing::instrument;

use crate::audit::{AUDIT_COLUMNS, AUDIT_VALUES, audit_args, clip, log_committed, new_audit_id};
use crate::connect::Conn;
use crate::dialect::{Backend, Stmt, portable, sql};
use crate::unit::StoreTx;
use crate::users::{access_of, stored_id, user_access_columns};
use crate::{Store, map_err};

#[derive(FromRow)]
pub(crate) struct SessionRow {
    id: String,
    user_id: String,
    tenant_id: String,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: i64,
    last_used_at: i64,
    idle_expires_at: i64,
    absolute_expires_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: stored_id(&r.id, SessionId::parse)?,
            user_id: stored_id(&r.user_id, UserId::parse)?,
            tenant: TenantId::trusted(r.tenant_id),
            client: ClientInfo {
                ip: r.ip,
                user_agent: r.user_agent,
                request_id: None,
            },
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(FromRow)]
struct RefreshRow {
    #[sqlx(flatten)]
    session: SessionRow,
    used_at: Option<i64>,
    successor_sealed: Option<String>,
    u_email: String,
    u_username: Option<String>,
    u_email_verified_at: Option<i64>,
    u_disabled_at: Option<i64>,
    u_created_at: i64,
    u_updated_at: i64,
    u_roles: Option<String>,
    u_permissions: Option<String>,
}

pub(crate) const SESSION_COLUMNS: &str = "s.id, s.user_id, s.tenant_id, s.user_agent, s.ip, s.created_at, \
     s.last_used_at, s.idle_expires_at, s.absolute_expires_at, s.revoked_at";

/// One statement: the token, its session, the user and the user's roles and permissions
/// (aggregated), so a refresh reads the database once.
pub(crate) fn refresh_read_sql(backend: Backend) -> &'static str {
    sql!(backend, 0, || {
        format!(
            "SELECT {SESSION_COLUMNS}, t.used_at, t.successor_sealed, u.email AS u_email, \
             u.username AS u_username, u.email_verified_at AS u_email_verified_at, \
             u.disabled_at AS u_disabled_at, u.created_at AS u_created_at, \
             u.updated_at AS u_updated_at, {access} \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             JOIN users u ON u.id = s.user_id WHERE t.token_hash = ?",
            access = user_access_columns(backend, "u_roles", "u_permissions"),
        )
    })
}

/// The writes of a rotation, decided on a read that took no lock: the presented token claimed
/// with its sealed successor pair, but only while it is unused and its session unrevoked;
/// then, only if that claim is in place, the successor's hash stored, the session's idle
/// expiry slid and the records (`audits` audit events) written. So a rotation planned on what
/// another request changed in the meantime (a concurrent rotation of the same token, a
/// revocation) writes nothing, and of two concurrent rotations of one token exactly one
/// writes. The sealed successor is unique (sealed under a random nonce), so it marks this
/// claim. Arguments: [`rotation_args`].
///
/// SQLite runs the statements with their `BEGIN IMMEDIATE` and `COMMIT` in one call, each one
/// after the claim conditioned on finding it and each returning a row for the row it wrote;
/// PostgreSQL runs one statement (data-modifying `WITH`) whose writes take their rows from
/// the claim's and which answers how many tokens it claimed.
fn rotation_sql(backend: Backend, audits: usize) -> &'static str {
    const CLAIM: &str = "UPDATE refresh_tokens SET used_at = ?, successor_sealed = ? \
         WHERE token_hash = ? AND used_at IS NULL \
         AND EXISTS (SELECT 1 FROM sessions WHERE id = ? AND revoked_at IS NULL)";
    const SUCCESSOR: &str =
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) SELECT ?, ?, ?";
    const TOUCH: &str = "UPDATE sessions SET last_used_at = ?, idle_expires_at = ? \
         WHERE id = ? AND revoked_at IS NULL";
    sql!(backend, audits, || {
        let audit = format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) SELECT {AUDIT_VALUES}");
        match backend {
            Backend::Sqlite => {
                const CLAIMED: &str = "EXISTS (SELECT 1 FROM refresh_tokens \
                 WHERE token_hash = ? AND successor_sealed = ?)";
                let audits = format!(" {audit} WHERE {CLAIMED} RETURNING 1;").repeat(audits);
                format!(
                    "BEGIN IMMEDIATE; {CLAIM} RETURNING 1; {SUCCESSOR} WHERE {CLAIMED} RETURNING 1; \
                 {TOUCH} AND {CLAIMED} RETURNING 1;{audits} COMMIT"
                )
            }
            Backend::Postgres => {
                let audits: String = (0..audits)
                    .map(|i| format!(", a{i} AS ({audit} FROM claimed)"))
                    .collect();
                format!(
                    "WITH claimed AS ({CLAIM} RETURNING token_hash), \
                 successor AS ({SUCCESSOR} FROM claimed), \
                 touched AS ({TOUCH} AND EXISTS (SELECT 1 FROM claimed)){audits} \
                 SELECT count(*) FROM claimed"
                )
            }
        }
    })
}

/// The arguments of [`rotation_sql`], in the order of its placeholders.
fn rotation_args(
    backend: Backend,
    token_hash: &str,
    session: SessionId,
    rotation: &Rotation,
    records: &Records,
    audit_ids: &[String],
) -> Stmt {
    let sid = session.to_string();
    let sealed = rotation.successor_sealed.as_str();
    let claim = Stmt::new(rotation_sql(backend, records.audit_events().len()))
        .bind(rotation.now)
        .bind(sealed)
        .bind(token_hash)
        .bind(sid.as_str());
    let claimed = |stmt: Stmt| match backend {
        Backend::Sqlite => stmt.bind(token_hash).bind(sealed),
        Backend::Postgres => stmt,
    };
    let mut stmt = claimed(
        claim
            .bind(rotation.successor_hash.as_str())
            .bind(sid.as_str())
            .bind(rotation.now),
    );
    stmt = claimed(
        stmt.bind(rotation.now)
            .bind(rotation.idle_expires_at)
            .bind(sid.as_str()),
    );
    for (id, event) in audit_ids.iter().zip(records.audit_events()) {
        stmt = claimed(stmt.extend(audit_args(id, event)));
    }
    stmt
}

impl Store {
    /// The refresh token with this hash, its session and its user with roles and permissions.
    async fn read_refresh_token(
        &self,
        conn: &mut AnyConnection,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query_as::<Any, RefreshRow>(refresh_read_sql(self.backend()))
            .bind(token_hash)
            .fetch_optional(conn)
            .await
            .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let (roles, permissions) = access_of(r.u_roles, r.u_permissions);
        let session = Session::try_from(r.session)?;
        let user = User {
            id: session.user_id,
            tenant: session.tenant.clone(),
            email: r.u_email,
            username: r.u_username,
            roles,
            permissions,
            email_verified: r.u_email_verified_at.is_some(),
            disabled: r.u_disabled_at.is_some(),
            created_at: r.u_created_at,
            updated_at: r.u_updated_at,
        };
        Ok(Some(RefreshRecord {
            session,
            user,
            used_at: r.used_at,
            successor_sealed: r.successor_sealed,
        }))
    }

    /// The writes of a rotation ([`rotation_sql`]); whether its claim held. PostgreSQL runs
    /// them on `conn`, the connection the rotation read on; SQLite gives that reader back and
    /// runs them in a transaction of their own on the writer connection, in this process's
    /// turn to write.
    async fn write_rotation(
        &self,
        mut conn: Conn,
        stmt: Stmt,
        audits: usize,
    ) -> Result<bool, StoreError> {
        match self.backend() {
            Backend::Postgres => {
                let row = stmt.query().fetch_one(conn.conn()).await.map_err(map_err)?;
                conn.finish();
                let claimed: i64 = row.try_get(0).map_err(map_err)?;
                Ok(claimed == 1)
            }
            // Each statement after the claim is conditioned on the claim, inside one
            // `BEGIN IMMEDIATE` transaction, so it is all of them or none.
            Backend::Sqlite => {
                conn.finish();
                match self.sqlite_write_in_one_call(stmt.query()).await?.len() {
                    0 => Ok(false),
                    n if n == 3 + audits => Ok(true),
                    n => Err(StoreError::Other(
                        format!(
                            "a rotation wrote {n} rows instead of {} or none",
                            3 + audits
                        )
                        .into(),
                    )),
                }
            }
        }
    }
}

impl SessionWrites for StoreTx {
    fn create_session(&mut self, session: Session, token_hash: String) {
        let backend = self.backend();
        let insert_session = portable!(
            backend,
            "INSERT INTO sessions (id, user_id, tenant_id, user_agent, ip, created_at, \
             last_used_at, idle_expires_at, absolute_expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let insert_token = portable!(
            backend,
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)"
        );
        let id = session.id.to_string();
        self.defer_insert(
            Stmt::new(insert_session)
                .bind(id.as_str())
                .bind(session.user_id.to_string())
                .bind(session.tenant.as_str())
                .bind(clip(&session.client.user_agent))
                .bind(clip(&session.client.ip))
                .bind(session.created_at)
                .bind(session.last_used_at)
                .bind(session.idle_expires_at)
                .bind(session.absolute_expires_at),
        );
        self.defer_insert(
            Stmt::new(insert_token)
                .bind(token_hash)
                .bind(id)
                .bind(session.created_at),
        );
    }

    fn revoke_session<'a>(
        &'a mut self,
        id: &'a SessionId,
        owner: Option<&'a UserId>,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let owner = owner.map(|o| o.to_string());
            let update = portable!(
                self.backend(),
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
                 WHERE id = ? AND revoked_at IS NULL AND (? IS NULL OR user_id = ?)"
            );
            let done = self
                .execute(
                    Stmt::new(update)
                        .bind(at)
                        .bind(reason.as_str())
                        .bind(id.to_string())
                        .bind(owner.clone())
                        .bind(owner),
                )
                .await?;
            Ok(done > 0)
        })
    }

    fn revoke_user_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let update = portable!(
                self.backend(),
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
                 WHERE user_id = ? AND revoked_at IS NULL RETURNING id"
            );
            let rows = self
                .fetch_all(
                    Stmt::new(update)
                        .bind(at)
                        .bind(reason.as_str())
                        .bind(user.to_string()),
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get(0).map_err(map_err)?;
                    stored_id(&id, SessionId::parse)
                })
                .collect()
        })
    }

    fn revoke_other_sessions<'a>(
        &'a mut self,
        user: &'a UserId,
        keep: &'a SessionId,
        reason: RevokeReason,
        at: i64,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let update = portable!(
                self.backend(),
                "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
                 WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id"
            );
            let rows = self
                .fetch_all(
                    Stmt::new(update)
                        .bind(at)
                        .bind(reason.as_str())
                        .bind(user.to_string())
                        .bind(keep.to_string()),
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get(0).map_err(map_err)?;
                    stored_id(&id, SessionId::parse)
                })
                .collect()
        })
    }
}

impl SessionReads for Store {
    #[instrument(skip_all, err)]
    async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let mut conn = self.hot_conn().await?;
        let record = self.read_refresh_token(conn.conn(), token_hash).await?;
        conn.finish();
        Ok(record)
    }

    #[instrument(skip_all, err, fields(user_id = %user))]
    async fn active_sessions(&self, user: UserId, now: i64) -> Result<Vec<Session>, StoreError> {
        let select = sql!(self.backend(), 0, || {
            format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ? \
                 AND s.revoked_at IS NULL AND s.idle_expires_at > ? AND s.absolute_expires_at > ? \
                 ORDER BY s.created_at DESC, s.id DESC"
            )
        });
        let rows = sqlx::query_as::<Any, SessionRow>(select)
            .bind(user.to_string())
            .bind(now)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(Session::try_from).collect()
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<(SessionId, i64)>, StoreError> {
        let select = portable!(
            self.backend(),
            "SELECT id, revoked_at FROM sessions WHERE revoked_at >= ? \
             UNION ALL SELECT id, revoked_at FROM erased_sessions WHERE revoked_at >= ?"
        );
        let rows = sqlx::query_as::<Any, (String, i64)>(select)
            .bind(since)
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, at)| Ok((stored_id(&id, SessionId::parse)?, at)))
            .collect()
    }
}

impl RefreshRotation for Store {
    #[instrument(skip_all, err)]
    async fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> Result<RotationOutcome, StoreError>
    where
        F: FnOnce(&RefreshRecord, &mut Records) -> Option<Rotation> + Send,
    {
        // Read and planned (the new access token signed, the successor pair sealed) outside
        // any lock; the write claims the token only if what the plan relied on still holds.
        // The read and, on PostgreSQL, the write share one connection of the lane.
        let mut conn = self.hot_conn().await?;
        let Some(record) = self.read_refresh_token(conn.conn(), token_hash).await? else {
            conn.finish();
            return Ok(RotationOutcome::Unknown);
        };
        if record.used_at.is_some() {
            conn.finish();
            return Ok(RotationOutcome::Used(Box::new(record)));
        }
        let mut records = Records::default();
        let Some(rotation) = plan(&record, &mut records) else {
            conn.finish();
            return Ok(RotationOutcome::Declined);
        };
        let audit_ids: Vec<String> = records
            .audit_events()
            .iter()
            .map(|_| new_audit_id())
            .collect();
        let stmt = rotation_args(
            self.backend(),
            token_hash,
            record.session.id,
            &rotation,
            &records,
            &audit_ids,
        );
        let claimed = self
            .write_rotation(conn, stmt, records.audit_events().len())
            .await?;
        if claimed {
            log_committed(audit_ids.iter().zip(records.audit_events()));
        }
        Ok(if claimed {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Raced
        })
    }
}
