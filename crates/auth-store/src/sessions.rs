//! Sessions, refresh tokens (by hash) and the audit trail.

use std::sync::OnceLock;

use auth_core::StoreError;
use auth_core::domain::User;
use auth_core::repo::{Rotation, RotationOutcome, SessionRepository};
use auth_core::session::{AuditEvent, ClientInfo, RefreshRecord, Session};
use sqlx::{Any, AnyConnection, FromRow};
use tracing::instrument;

use crate::users::{sorted_permissions, sorted_roles, split_list};
use crate::{AnyQuery, Backend, Conn, Store, map_err};

#[derive(FromRow)]
struct SessionRow {
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

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            tenant: r.tenant_id,
            client: ClientInfo {
                ip: r.ip,
                user_agent: r.user_agent,
            },
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            revoked_at: r.revoked_at,
        }
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

const SESSION_COLUMNS: &str = "s.id, s.user_id, s.tenant_id, s.user_agent, s.ip, s.created_at, \
     s.last_used_at, s.idle_expires_at, s.absolute_expires_at, s.revoked_at";

/// Audit events are capped in size so a hostile user agent cannot bloat the table.
fn clip(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.chars().take(512).collect())
}

/// The insert of one audit event, its nine parameters numbered from `$first` (bound by
/// [`bind_audit`] in that order): one row, or the rows of `SELECT <the parameters> <rest>`
/// when `rest` (its `FROM` and `WHERE` clauses) is given.
fn audit_insert_sql(first: usize, rest: Option<&str>) -> String {
    let values = (first..first + 9)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = match rest {
        None => format!("VALUES ({values})"),
        Some(rest) => format!("SELECT {values} {rest}"),
    };
    format!(
        "INSERT INTO audit_events (id, tenant_id, kind, user_id, session_id, ip, user_agent, \
         detail, created_at) {rows}"
    )
}

/// Binds an audit event's nine parameters, in the order of [`audit_insert_sql`].
fn bind_audit<'q>(query: AnyQuery<'q>, e: &'q AuditEvent) -> AnyQuery<'q> {
    query
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&e.tenant)
        .bind(e.kind)
        .bind(&e.user_id)
        .bind(&e.session_id)
        .bind(clip(&e.client.ip))
        .bind(clip(&e.client.user_agent))
        .bind(e.detail.to_string())
        .bind(e.at)
}

async fn insert_audit(conn: &mut AnyConnection, e: &AuditEvent) -> Result<(), sqlx::Error> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| audit_insert_sql(1, None));
    bind_audit(sqlx::query(sql), e).execute(conn).await?;
    Ok(())
}

/// The session, its first refresh token and the audit event of the login, written at once:
/// PostgreSQL takes one statement (data-modifying `WITH`), SQLite three in one string with
/// its `BEGIN IMMEDIATE` and `COMMIT`, which sqlx runs in one call and binds from the same
/// numbered arguments ([`Store::sqlite_write_in_one_call`]).
fn create_session_sql(backend: Backend) -> &'static str {
    const SESSION: &str = "INSERT INTO sessions (id, user_id, tenant_id, user_agent, ip, created_at, \
         last_used_at, idle_expires_at, absolute_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)";
    const TOKEN: &str =
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($9, $1, $6)";
    static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    match backend {
        Backend::Sqlite => SQL[0].get_or_init(|| {
            let audit = audit_insert_sql(10, None);
            format!("BEGIN IMMEDIATE; {SESSION}; {TOKEN}; {audit}; COMMIT")
        }),
        Backend::Postgres => SQL[1].get_or_init(|| {
            let audit = audit_insert_sql(10, None);
            format!("WITH s AS ({SESSION}), t AS ({TOKEN}) {audit}")
        }),
    }
}

/// The writes of a rotation, decided on a read that took no lock: the presented token claimed
/// with its sealed successor pair, but only while it is unused and its session unrevoked; then,
/// only if that claim is in place, the successor's hash stored, the session's idle expiry slid
/// and the audit event recorded. So a rotation planned on what another request changed in the
/// meantime (a concurrent rotation of the same token, a revocation) writes nothing, and of two
/// concurrent rotations of one token exactly one writes. Parameters: $1 now, $2 the sealed
/// successor (unique: it is sealed under a random nonce, so it marks this claim), $3 the presented
/// token's hash, $4 the successor's hash, $5 the idle expiry, $6 the session id, $7.. the audit
/// event ([`bind_audit`]).
///
/// SQLite runs four statements, each after the claim conditioned on finding it and each
/// returning a row for the row it wrote, with their `BEGIN IMMEDIATE` and `COMMIT` in one call
/// ([`Store::sqlite_write_in_one_call`]); PostgreSQL one statement (data-modifying `WITH`) whose other writes
/// take their rows from the claim's.
fn rotation_sql(backend: Backend) -> &'static str {
    const CLAIM: &str = "UPDATE refresh_tokens SET used_at = $1, successor_sealed = $2 \
         WHERE token_hash = $3 AND used_at IS NULL \
         AND EXISTS (SELECT 1 FROM sessions WHERE id = $6 AND revoked_at IS NULL)";
    const TOUCH: &str = "UPDATE sessions SET last_used_at = $1, idle_expires_at = $5 \
         WHERE id = $6 AND revoked_at IS NULL";
    static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    match backend {
        Backend::Sqlite => SQL[0].get_or_init(|| {
            const CLAIMED: &str = "EXISTS (SELECT 1 FROM refresh_tokens \
                 WHERE token_hash = $3 AND successor_sealed = $2)";
            let audit = audit_insert_sql(7, Some(&format!("WHERE {CLAIMED}")));
            format!(
                "BEGIN IMMEDIATE; {CLAIM} RETURNING 1; \
                 INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                 SELECT $4, $6, $1 WHERE {CLAIMED} RETURNING 1; \
                 {TOUCH} AND {CLAIMED} RETURNING 1; {audit} RETURNING 1; COMMIT"
            )
        }),
        Backend::Postgres => SQL[1].get_or_init(|| {
            let audit = audit_insert_sql(7, Some("FROM claimed"));
            format!(
                "WITH claimed AS ({CLAIM} RETURNING token_hash), \
                 successor AS (INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                 SELECT $4, $6, $1 FROM claimed), \
                 touched AS ({TOUCH} AND EXISTS (SELECT 1 FROM claimed)) {audit}"
            )
        }),
    }
}

impl Store {
    /// One statement: the token, its session, the user and the user's roles and permissions
    /// (aggregated), so a refresh reads the database once. Built once per backend.
    pub(crate) fn refresh_read_sql(&self) -> &'static str {
        static SQL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = match self.backend() {
            Backend::Sqlite => &SQL[0],
            Backend::Postgres => &SQL[1],
        };
        slot.get_or_init(|| {
            format!(
                "SELECT {SESSION_COLUMNS}, t.used_at, t.successor_sealed, u.email AS u_email, \
                 u.username AS u_username, u.email_verified_at AS u_email_verified_at, \
                 u.disabled_at AS u_disabled_at, u.created_at AS u_created_at, u.updated_at AS u_updated_at, \
                 {access} \
                 FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id \
                 WHERE t.token_hash = $1",
                access = self.user_access_columns("u_roles", "u_permissions"),
            )
        })
    }

    /// The refresh token with this hash, its session and its user with roles and permissions.
    async fn read_refresh_token(
        &self,
        conn: &mut AnyConnection,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let sql = self.refresh_read_sql();
        let row = sqlx::query_as::<Any, RefreshRow>(sql)
            .bind(token_hash)
            .fetch_optional(conn)
            .await
            .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let roles = sorted_roles(split_list(r.u_roles));
        let permissions = sorted_permissions(split_list(r.u_permissions));
        let user = User {
            id: uuid::Uuid::parse_str(&r.session.user_id)
                .map_err(|e| StoreError::Other(Box::new(e)))?,
            tenant: r.session.tenant_id.clone(),
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
            session: r.session.into(),
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
        token_hash: &str,
        session_id: &str,
        rotation: &Rotation,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(rotation_sql(self.backend()))
            .bind(rotation.now)
            .bind(&rotation.successor_sealed)
            .bind(token_hash)
            .bind(&rotation.successor_hash)
            .bind(rotation.idle_expires_at)
            .bind(session_id);
        let query = bind_audit(query, audit);
        match self.backend() {
            // PostgreSQL counts the rows of the main statement: the audit event, written only
            // with the claim.
            Backend::Postgres => {
                let written = query.execute(conn.conn()).await.map_err(map_err)?;
                conn.finish();
                Ok(written.rows_affected() == 1)
            }
            // SQLite: one call, the transaction and its four statements, each of which returns
            // a row for the row it wrote. Each statement after the claim is conditioned on the
            // claim, inside one `BEGIN IMMEDIATE` transaction, so it is all four or none.
            Backend::Sqlite => {
                conn.finish();
                match self.sqlite_write_in_one_call(query).await?.len() {
                    4 => Ok(true),
                    0 => Ok(false),
                    n => Err(StoreError::Other(
                        format!("a rotation wrote {n} rows instead of 4 or none").into(),
                    )),
                }
            }
        }
    }
}

impl SessionRepository for Store {
    #[instrument(skip_all, err, fields(session_id = %session.id))]
    async fn create_session(
        &self,
        session: Session,
        token_hash: String,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(create_session_sql(self.backend()))
            .bind(&session.id)
            .bind(&session.user_id)
            .bind(&session.tenant)
            .bind(clip(&session.client.user_agent))
            .bind(clip(&session.client.ip))
            .bind(session.created_at)
            .bind(session.idle_expires_at)
            .bind(session.absolute_expires_at)
            .bind(&token_hash);
        let query = bind_audit(query, &audit);
        match self.backend() {
            // One statement is one transaction: no BEGIN and COMMIT round trips.
            Backend::Postgres => {
                let mut writer = self.writer().await?;
                query
                    .execute(writer.conn())
                    .await
                    .map_err(|e| self.write_err(e))?;
                writer.finish();
            }
            // The transaction and its three statements in one call to the writer's thread.
            Backend::Sqlite => {
                self.sqlite_write_in_one_call(query).await?;
            }
        }
        Ok(())
    }

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

    #[instrument(skip_all, err)]
    async fn rotate_refresh_token<F>(
        &self,
        token_hash: &str,
        plan: F,
    ) -> Result<RotationOutcome, StoreError>
    where
        F: FnOnce(&RefreshRecord) -> Option<(Rotation, AuditEvent)> + Send,
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
        let Some((rotation, audit)) = plan(&record) else {
            conn.finish();
            return Ok(RotationOutcome::Declined);
        };
        let claimed = self
            .write_rotation(conn, token_hash, &record.session.id, &rotation, &audit)
            .await?;
        Ok(if claimed {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Raced
        })
    }

    #[instrument(skip_all, err, fields(session_id = %session_id))]
    async fn revoke_session(
        &self,
        session_id: &str,
        user_id: Option<&str>,
        reason: &str,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await.map_err(|e| self.write_err(e))?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR user_id = $4)",
        )
        .bind(audit.at)
        .bind(reason)
        .bind(session_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_err(e))?
        .rows_affected();
        if done == 0 {
            tx.rollback().await.map_err(|e| self.write_err(e))?;
            writer.finish();
            return Ok(false);
        }
        insert_audit(&mut tx, &audit)
            .await
            .map_err(|e| self.write_err(e))?;
        tx.commit().await.map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(true)
    }

    #[instrument(skip_all, err, fields(user_id = %user_id))]
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: &str,
        audit: AuditEvent,
    ) -> Result<Vec<String>, StoreError> {
        let mut writer = self.writer().await?;
        let mut tx = writer.begin().await.map_err(|e| self.write_err(e))?;
        let ids = sqlx::query_scalar::<Any, String>(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL RETURNING id",
        )
        .bind(audit.at)
        .bind(reason)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.write_err(e))?;
        insert_audit(&mut tx, &audit)
            .await
            .map_err(|e| self.write_err(e))?;
        tx.commit().await.map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(ids)
    }

    #[instrument(skip_all, err, fields(user_id = %user_id))]
    async fn active_sessions(&self, user_id: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
             AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 ORDER BY s.created_at DESC, s.id DESC"
        );
        let rows = sqlx::query_as::<Any, SessionRow>(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as::<Any, (String, i64)>(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)
    }

    #[instrument(skip_all, err, fields(kind = audit.kind))]
    async fn record_audit(&self, audit: AuditEvent) -> Result<(), StoreError> {
        let mut writer = self.writer().await?;
        insert_audit(writer.conn(), &audit)
            .await
            .map_err(|e| self.write_err(e))?;
        writer.finish();
        Ok(())
    }
}
